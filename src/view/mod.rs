//! The operator's screen during a run: on a terminal, a live tree of steps (what runs, what it
//! waits for, what is done) instead of a log stream; everywhere else the plain log lines.
//!
//! There is at most one live view per process, started by the runner for a live or dry run and
//! finished with the run's summary. Until then (and whenever it is not allowed, see
//! [`Terminal`]) every hook here does nothing, so the primitives call them unconditionally.

mod layer;
mod live;
mod summary;
mod terminal;
mod tree;

use std::io::{BufRead, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

pub use layer::{PLAIN_ONLY, ViewLayer};
pub use summary::Summary;
pub use terminal::Terminal;
pub use tree::Finish;

use drscript_core::observer::{RunEnd, RunObserver};
use live::Live;

static ALLOWED: AtomicBool = AtomicBool::new(false);
static ACTIVE: AtomicBool = AtomicBool::new(false);
static LIVE: RwLock<Option<Arc<Live>>> = RwLock::new(None);

/// Lets runs draw the live view (decided once, where logging is set up).
pub fn allow(terminal: Terminal) {
    ALLOWED.store(terminal.live(), Ordering::Relaxed);
}

/// Whether the live view draws now (the plain stderr log is silent meanwhile).
pub fn is_active() -> bool {
    ACTIVE.load(Ordering::Relaxed)
}

fn with_live(f: impl FnOnce(&Live)) {
    if !is_active() {
        return;
    }
    let live = LIVE.read().unwrap_or_else(|e| e.into_inner()).clone();
    if let Some(live) = live {
        f(&live);
    }
}

/// The live view of one run; dropping it without [`Screen::finish`] clears it all the same.
pub struct Screen(Option<Arc<Live>>);

impl Screen {
    /// Starts the live view when allowed; otherwise a screen that does nothing.
    pub fn start() -> Screen {
        if !ALLOWED.load(Ordering::Relaxed) || is_active() {
            return Screen(None);
        }
        let live = Live::start();
        *LIVE.write().unwrap_or_else(|e| e.into_inner()) = Some(live.clone());
        ACTIVE.store(true, Ordering::Relaxed);
        Screen(Some(live))
    }

    /// Ends the live view: the remaining steps are printed for good, then `summary`.
    pub fn finish(mut self, summary: &[String]) {
        if self.stop() {
            let mut stderr = drscript_base::redact::RedactingWriter::new(std::io::stderr());
            for line in summary {
                let _ = std::io::Write::write_all(&mut stderr, format!("{line}\n").as_bytes());
            }
        }
    }

    fn stop(&mut self) -> bool {
        let Some(live) = self.0.take() else { return false };
        ACTIVE.store(false, Ordering::Relaxed);
        LIVE.write().unwrap_or_else(|e| e.into_inner()).take();
        live.finish();
        true
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The live view as the run's observer: installed once by the command line, it draws only
/// while a [`Screen`] is up (see [`allow`]).
#[derive(Default)]
pub struct Observer {
    screen: std::sync::Mutex<Option<Screen>>,
}

impl RunObserver for Observer {
    fn run_started(&self) {
        let mut screen = self.screen.lock().unwrap_or_else(|e| e.into_inner());
        if screen.is_none() {
            *screen = Some(Screen::start());
        }
    }

    fn run_finished(&self, end: Option<&RunEnd<'_>>) {
        let screen = self.screen.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let (Some(screen), Some(end)) = (screen, end) {
            screen.finish(&Summary(end).lines());
        }
    }

    fn step_started(&self, number: &str, title: &str) {
        with_live(|live| live.step_started(number, title));
    }

    fn step_finished(&self, number: &str, how: Finish, took: Duration) {
        with_live(|live| live.step_finished(number, how, took));
    }

    fn step_skipped(&self, number: &str, title: &str) {
        with_live(|live| live.step_skipped(number, title));
    }

    fn waiting(&self, step: &str, text: Option<String>) {
        with_live(|live| live.waiting(step, text));
    }

    fn ask(&self, message: &str, question: &str) -> std::io::Result<Option<String>> {
        suspend(|| {
            let mut stderr = std::io::stderr().lock();
            write!(stderr, "\n>>> {message}\n{question}")?;
            stderr.flush()?;
            drop(stderr);
            let mut line = String::new();
            let read = std::io::stdin().lock().read_line(&mut line)?;
            Ok((read > 0).then_some(line))
        })
    }
}

/// A message of the program itself (Ctrl-C's "stopping at the next safe point"): above the live
/// area while it draws, else straight to stderr.
pub fn say(text: &str) {
    let mut shown = false;
    with_live(|live| {
        live.say(text.trim());
        shown = true;
    });
    if !shown {
        let _ = std::io::Write::write_all(&mut std::io::stderr(), format!("{text}\n").as_bytes());
    }
}

/// Runs `f` (a question to the operator) with the live view off the screen.
pub fn suspend<R>(f: impl FnOnce() -> R) -> R {
    let live = if is_active() { LIVE.read().unwrap_or_else(|e| e.into_inner()).clone() } else { None };
    match live {
        Some(live) => live.suspend(f),
        None => f(),
    }
}
