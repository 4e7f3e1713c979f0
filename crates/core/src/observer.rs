//! The one door from a run to the operator's screen. Nothing in this crate prints: a run tells a
//! [`RunObserver`] what happens (a run starts and ends, a step starts, waits for something and
//! finishes) and asks it the operator's questions; the command line installs the observer that
//! draws the live view. Without one, every hook does nothing and every question goes unanswered
//! (a run without a terminal stops at its first question, as documented).
//!
//! A primitive does not know its step: the step stack belongs to the script's thread, while a
//! wait may run in a future polled elsewhere and a sync reports from the engine's tasks. So the
//! step is captured where it is known ([`Status::here`] on the script's thread, or [`in_step`]
//! around the futures that [`crate::exec::Exec::block_on`] runs) and the text goes to that step.

use std::future::Future;
use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use crate::exec::Exec;
use crate::journal::Record;

/// Log events of this target are the plain log's own rendering of what a live view draws anyway
/// (step starts and ends, the run's last line): a view leaves them out.
pub const PLAIN_ONLY: &str = "drscript::plain";

/// How a step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finish {
    Ok,
    Failed,
    Stopped,
    /// Finished in an earlier attempt (`drscript resume`).
    Skipped,
}

/// How a run ended, for the last lines an observer shows.
#[derive(Debug)]
pub struct RunEnd<'a> {
    pub run_id: &'a str,
    /// `ok`, `stopped`, `refused` or `failed` (as journaled).
    pub outcome: &'a str,
    pub seconds: f64,
    pub run_dir: &'a Path,
    pub records: &'a [Record],
}

/// What a run shows and asks. Every method has a default that shows nothing.
pub trait RunObserver: Send + Sync {
    /// A live or dry run begins.
    fn run_started(&self) {}
    /// The run that began ended: `None` when it ended before it could say how (an error while
    /// writing its journal), so that the screen is given back all the same.
    fn run_finished(&self, _end: Option<&RunEnd<'_>>) {}
    fn step_started(&self, _number: &str, _title: &str) {}
    fn step_finished(&self, _number: &str, _how: Finish, _took: Duration) {}
    fn step_skipped(&self, _number: &str, _title: &str) {}
    /// What the step `step` waits for now; `None`: nothing any more.
    fn waiting(&self, _step: &str, _text: Option<String>) {}
    /// Shows `message` (already redacted) and `question`, and reads the operator's answer line;
    /// `Ok(None)` when the input ended.
    fn ask(&self, _message: &str, _question: &str) -> std::io::Result<Option<String>> {
        Err(std::io::Error::new(std::io::ErrorKind::Unsupported, "no terminal to ask on"))
    }
}

static OBSERVER: RwLock<Option<Arc<dyn RunObserver>>> = RwLock::new(None);

/// Installs the process's observer (the command line does, once, before any run).
pub fn install(observer: Arc<dyn RunObserver>) {
    *OBSERVER.write().unwrap_or_else(|e| e.into_inner()) = Some(observer);
}

/// Calls `f` with the installed observer, if any.
pub(crate) fn with(f: impl FnOnce(&dyn RunObserver)) {
    let observer = OBSERVER.read().unwrap_or_else(|e| e.into_inner()).clone();
    if let Some(observer) = observer {
        f(observer.as_ref());
    }
}

/// Asks through the installed observer; an error when there is none.
pub(crate) fn ask(message: &str, question: &str) -> std::io::Result<Option<String>> {
    let observer = OBSERVER.read().unwrap_or_else(|e| e.into_inner()).clone();
    match observer {
        Some(observer) => observer.ask(message, question),
        None => RunObserver::ask(&NoObserver, message, question),
    }
}

struct NoObserver;
impl RunObserver for NoObserver {}

/// A run's time on the screen: started by [`RunScreen::start`], ended by [`RunScreen::finish`]
/// or, if the run ends some other way, when dropped.
#[derive(Debug)]
pub(crate) struct RunScreen {
    open: bool,
}

impl RunScreen {
    pub(crate) fn start() -> RunScreen {
        with(|o| o.run_started());
        RunScreen { open: true }
    }

    pub(crate) fn finish(mut self, end: &RunEnd<'_>) {
        self.open = false;
        with(|o| o.run_finished(Some(end)));
    }
}

impl Drop for RunScreen {
    fn drop(&mut self) {
        if self.open {
            with(|o| o.run_finished(None));
        }
    }
}

tokio::task_local! {
    static STEP: Option<String>;
}

/// The number of the step this code runs for: the future's (see [`in_step`]), else the thread's.
pub fn current_step() -> Option<String> {
    STEP.try_with(Clone::clone)
        .ok()
        .flatten()
        .or_else(|| Exec::current_step().map(|f| f.number))
        .filter(|n| !n.is_empty())
}

/// Runs `fut` as part of the current thread's step, so that [`waiting`] inside it finds the step.
pub async fn in_step<T>(fut: impl Future<Output = T>) -> T {
    let step = current_step();
    STEP.scope(step, fut).await
}

/// Says what the current step waits for now.
pub fn waiting(text: impl Into<String>) {
    Status::here().set(text);
}

/// The status line of one step, to be set from any thread.
#[derive(Debug, Clone)]
pub struct Status {
    step: Option<String>,
}

impl Status {
    /// The status of the step this code runs for.
    pub fn here() -> Status {
        Status { step: current_step() }
    }

    pub fn set(&self, text: impl Into<String>) {
        if let Some(step) = &self.step {
            let text = text.into();
            with(|o| o.waiting(step, Some(text)));
        }
    }

    /// Nothing to wait for any more (the step goes on with other work).
    pub fn clear(&self) {
        if let Some(step) = &self.step {
            with(|o| o.waiting(step, None));
        }
    }
}
