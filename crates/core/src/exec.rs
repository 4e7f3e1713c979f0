//! The execution context that every primitive consults: mode (live, dry run, plan), the config,
//! cancellation, the journal, the step stack and the record of actions.
//!
//! Primitives never decide on their own whether to touch the world: they describe each action to
//! [`Exec::query`] (a read) or [`Exec::change`] (a write), and the context runs it, describes it,
//! or substitutes a placeholder, and journals the outcome. That keeps dry-run semantics in one
//! place instead of `if dry_run` blocks scattered through primitives and scripts.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::journal::{Event, Journal, StepOutcome};
use crate::plan::{PlanEntry, PlanRecorder};
use drscript_base::error::{Error, Result};

/// How a script is executed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Everything happens for real.
    Live,
    /// Reads go to the real systems; changes are described, not made.
    DryRun,
    /// Nothing leaves the machine: reads return placeholders, changes are described.
    Plan,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Live => "live",
            Mode::DryRun => "dry-run",
            Mode::Plan => "plan",
        }
    }

    fn from_u8(v: u8) -> Mode {
        match v {
            0 => Mode::Live,
            1 => Mode::DryRun,
            _ => Mode::Plan,
        }
    }
}

/// How the operator answers questions.
#[derive(Debug, Clone, Default)]
pub struct Prompting {
    /// `--yes`: every confirmation is taken as given (never a `manual` step: see `acks`).
    pub assume_yes: bool,
    /// Both stdin and stderr are terminals.
    pub interactive: bool,
    /// `--ack TEXT` / `--ack-all-manual`: the manual steps acknowledged up front.
    pub acks: crate::prompt::Acks,
}

/// The run an execution context belongs to (live and dry runs; not rehearsals or plans).
#[derive(Debug, Clone)]
pub struct RunContext {
    pub run_id: String,
    pub state_dir: std::path::PathBuf,
}

/// One frame of the step stack (per thread; parallel branches start with a copy).
#[derive(Debug, Clone)]
pub struct Frame {
    pub id: String,
    pub number: String,
    pub title: String,
    pub lane: Option<String>,
}

thread_local! {
    static STACK: RefCell<Vec<Frame>> = const { RefCell::new(Vec::new()) };
    /// A parallel branch's reserved step index under its parent, so that numbering does not
    /// depend on which thread gets there first.
    static RESERVED: RefCell<Option<(Option<String>, u32)>> = const { RefCell::new(None) };
}

/// A step number as the numbers it is made of (`1.2.10` → `[1, 2, 10]`): sorted, script order
/// with parents before their children and `2` after `1.10`. `None` for what is not a step number.
pub fn step_order(number: &str) -> Option<Vec<u32>> {
    number.split('.').map(|part| part.parse().ok()).collect()
}

/// What a change did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Changed,
    Unchanged,
}

pub struct Exec {
    mode: AtomicU8,
    config: Option<Arc<Config>>,
    cancel: CancellationToken,
    runtime: tokio::runtime::Handle,
    journal: Option<Journal>,
    prompting: Prompting,
    run: Option<RunContext>,
    vars: BTreeMap<String, String>,
    used_vars: Mutex<BTreeSet<String>>,
    /// Steps that an earlier attempt finished, with their results (resume).
    finished: HashMap<String, Option<serde_json::Value>>,
    occurrences: Mutex<HashMap<String, u32>>,
    children: Mutex<HashMap<String, u32>>,
    plan: PlanRecorder,
    /// The innermost step that failed first, for the error message, with its error.
    failed_step: Mutex<Option<(Frame, String)>>,
    groups: AtomicU32,
    pictured: Mutex<Pictured>,
    /// Raised when the shared lock's lease is lost: no change after it (see `crate::shared`).
    lease_lost: Option<Arc<AtomicBool>>,
}

/// What a dry run described but did not do. Later reads of the same things show it done, so that
/// a rehearsal of "scale DR up, resume its scheduler, check that DR serves" checks the picture
/// (as a plan does) instead of failing on the untouched estate.
#[derive(Debug, Default, Clone)]
pub struct Pictured {
    /// (environment, workload) → replicas.
    pub replicas: HashMap<(String, String), i32>,
    /// environment → `RUNNING` or `PAUSED`.
    pub schedulers: HashMap<String, String>,
}

pub struct ExecBuilder {
    mode: Mode,
    config: Option<Arc<Config>>,
    runtime: tokio::runtime::Handle,
    journal: Option<Journal>,
    prompting: Prompting,
    run: Option<RunContext>,
    vars: BTreeMap<String, String>,
    finished: HashMap<String, Option<serde_json::Value>>,
    cancel: CancellationToken,
    lease_lost: Option<Arc<AtomicBool>>,
}

impl ExecBuilder {
    /// The shared lock's "lease lost" flag: once raised, every change is refused.
    pub fn lease_lost(mut self, flag: Option<Arc<AtomicBool>>) -> Self {
        self.lease_lost = flag;
        self
    }
    pub fn config(mut self, config: Option<Arc<Config>>) -> Self {
        self.config = config;
        self
    }
    pub fn journal(mut self, journal: Option<Journal>) -> Self {
        self.journal = journal;
        self
    }
    pub fn prompting(mut self, prompting: Prompting) -> Self {
        self.prompting = prompting;
        self
    }
    pub fn run(mut self, run: Option<RunContext>) -> Self {
        self.run = run;
        self
    }
    pub fn vars(mut self, vars: BTreeMap<String, String>) -> Self {
        self.vars = vars;
        self
    }
    pub fn finished(mut self, finished: HashMap<String, Option<serde_json::Value>>) -> Self {
        self.finished = finished;
        self
    }
    pub fn cancel(mut self, cancel: CancellationToken) -> Self {
        self.cancel = cancel;
        self
    }
    pub fn build(self) -> Arc<Exec> {
        Arc::new(Exec {
            mode: AtomicU8::new(self.mode as u8),
            config: self.config,
            cancel: self.cancel,
            runtime: self.runtime,
            journal: self.journal,
            prompting: self.prompting,
            run: self.run,
            vars: self.vars,
            used_vars: Mutex::default(),
            finished: self.finished,
            occurrences: Mutex::default(),
            children: Mutex::default(),
            plan: PlanRecorder::default(),
            failed_step: Mutex::default(),
            groups: AtomicU32::new(0),
            pictured: Mutex::new(Pictured::default()),
            lease_lost: self.lease_lost,
        })
    }
}

impl Exec {
    pub fn builder(mode: Mode, runtime: tokio::runtime::Handle) -> ExecBuilder {
        ExecBuilder {
            mode,
            config: None,
            runtime,
            journal: None,
            prompting: Prompting::default(),
            run: None,
            vars: BTreeMap::new(),
            finished: HashMap::new(),
            cancel: CancellationToken::new(),
            lease_lost: None,
        }
    }

    pub fn mode(&self) -> Mode {
        Mode::from_u8(self.mode.load(Ordering::Relaxed))
    }

    /// Switches mode (the REPL's `:plan on|off`).
    pub fn set_mode(&self, mode: Mode) {
        self.mode.store(mode as u8, Ordering::Relaxed);
    }

    pub fn is_live(&self) -> bool {
        self.mode() == Mode::Live
    }

    pub fn config(&self) -> Result<&Arc<Config>> {
        self.config.as_ref().ok_or_else(|| Error::Config {
            message: "no config loaded: pass --config FILE or create ./drscript.toml".to_string(),
        })
    }

    pub fn prompting(&self) -> &Prompting {
        &self.prompting
    }

    /// The run this context executes, when it is a journaled run.
    pub fn run_context(&self) -> Option<&RunContext> {
        self.run.as_ref()
    }

    pub fn runtime(&self) -> &tokio::runtime::Handle {
        &self.runtime
    }

    pub fn cancel_token(&self) -> &CancellationToken {
        &self.cancel
    }

    pub fn is_cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }

    /// Records, in a dry run, a change that was only described (see [`Pictured`]).
    pub fn picture(&self, record: impl FnOnce(&mut Pictured)) {
        if self.mode() == Mode::DryRun {
            record(&mut self.pictured.lock().unwrap_or_else(|e| e.into_inner()));
        }
    }

    /// What this dry run pictured so far (empty in every other mode).
    pub fn pictured(&self) -> Pictured {
        self.pictured.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn check_cancelled(&self) -> Result<()> {
        if self.is_cancelled() { Err(interrupted()) } else { Ok(()) }
    }

    /// Runs a future to completion on the runtime, giving up when the run is cancelled. The
    /// future belongs to the current step: what it waits for shows on the step's line while it
    /// runs, and nothing once it is over (ok or not).
    pub fn block_on<T>(&self, fut: impl Future<Output = Result<T>>) -> Result<T> {
        let cancel = self.cancel.clone();
        let fut = crate::observer::in_step(fut);
        let result = self.runtime.block_on(async move {
            tokio::select! {
                biased;
                () = cancel.cancelled() => Err(interrupted()),
                r = fut => r,
            }
        });
        crate::observer::Status::here().clear();
        result
    }

    /// Sleeps, waking early (with an error) when the run is cancelled.
    pub fn sleep(&self, duration: Duration) -> Result<()> {
        self.block_on(async move {
            tokio::time::sleep(duration).await;
            Ok(())
        })
    }

    // ----- secrets -----

    /// Reads a secret in every mode, plans included: it is local (a variable or a file), so a
    /// rehearsal finds a missing one before anything runs. Call it before `change`/`query`.
    pub fn secret(&self, secret: &drscript_base::secret::SecretRef) -> Result<String> {
        secret.resolve()
    }

    // ----- variables -----

    /// The `--var` value for `name`, noting that the script asked for it.
    pub fn var(&self, name: &str) -> Option<&String> {
        self.used_vars.lock().unwrap().insert(name.to_string());
        self.vars.get(name)
    }

    /// `--var` names that the script never asked for.
    pub fn unused_vars(&self) -> Vec<String> {
        let used = self.used_vars.lock().unwrap();
        self.vars.keys().filter(|k| !used.contains(*k)).cloned().collect()
    }

    // ----- journal -----

    pub fn journal(&self, event: Event) -> Result<()> {
        match &self.journal {
            Some(j) => j.write(event),
            None => Ok(()),
        }
    }

    pub fn plan(&self) -> &PlanRecorder {
        &self.plan
    }

    // ----- steps -----

    pub fn current_step() -> Option<Frame> {
        STACK.with(|s| s.borrow().last().cloned())
    }

    pub fn stack() -> Vec<Frame> {
        STACK.with(|s| s.borrow().clone())
    }

    /// Reserves `count` consecutive step indexes under the current step for parallel branches;
    /// returns the first.
    pub fn reserve_steps(&self, count: u32) -> u32 {
        let parent = Self::current_step().map(|f| f.id).filter(|id| !id.is_empty());
        let mut children = self.children.lock().unwrap();
        let n = children.entry(parent.unwrap_or_default()).or_insert(0);
        let first = *n + 1;
        *n += count;
        first
    }

    /// Installs a copy of a parent thread's stack (parallel branches), with a lane label and the
    /// step index reserved for the branch's first step.
    pub fn adopt_stack(mut frames: Vec<Frame>, lane: String, reserved: u32) {
        let parent = frames.last().map(|f| f.id.clone()).filter(|id| !id.is_empty());
        RESERVED.with(|r| *r.borrow_mut() = Some((parent, reserved)));
        if let Some(top) = frames.last_mut() {
            top.lane = Some(lane);
        } else {
            frames.push(Frame { id: String::new(), number: String::new(), title: String::new(), lane: Some(lane) });
        }
        STACK.with(|s| *s.borrow_mut() = frames);
    }

    /// Puts back a stack saved with [`Exec::stack`] after a plan walked a parallel branch on
    /// this thread, dropping a reservation the branch left unused.
    pub fn restore_stack(frames: Vec<Frame>) {
        RESERVED.with(|r| *r.borrow_mut() = None);
        STACK.with(|s| *s.borrow_mut() = frames);
    }

    /// The lane of the parallel branch a step entered now starts directly under (not of its
    /// nested steps, which run inside that branch one after another).
    fn branch_lane() -> Option<String> {
        Self::current_step().and_then(|f| f.lane)
    }

    fn lane() -> Option<String> {
        STACK.with(|s| s.borrow().iter().rev().find_map(|f| f.lane.clone()))
    }

    /// Enters a step: assigns its stable id and number. Returns the frame and, when an earlier
    /// attempt finished this step, its recorded result.
    /// Whether an earlier attempt of this run finished a step titled `title` (at any depth).
    pub fn finished_earlier(&self, title: &str) -> bool {
        self.finished.keys().any(|id| {
            let key = id.rsplit_once('#').map_or(id.as_str(), |(k, _)| k);
            key == title || key.ends_with(&format!("/{title}"))
        })
    }

    pub fn enter_step(&self, title: &str) -> (Frame, Option<Option<serde_json::Value>>) {
        let parent = Self::current_step().filter(|f| !f.id.is_empty());
        let parent_id = parent.as_ref().map(|p| p.id.clone());
        let key = match &parent_id {
            Some(p) => format!("{p}/{title}"),
            None => title.to_string(),
        };
        let occurrence = {
            let mut occ = self.occurrences.lock().unwrap();
            let n = occ.entry(key.clone()).or_insert(0);
            *n += 1;
            *n
        };
        let id = format!("{key}#{occurrence}");
        let reserved = RESERVED.with(|r| {
            let mut r = r.borrow_mut();
            match r.as_ref() {
                Some((p, index)) if *p == parent_id => {
                    let index = *index;
                    *r = None;
                    Some(index)
                }
                _ => None,
            }
        });
        let index = reserved.unwrap_or_else(|| {
            let mut children = self.children.lock().unwrap();
            let n = children.entry(parent_id.clone().unwrap_or_default()).or_insert(0);
            *n += 1;
            *n
        });
        let number = match &parent {
            Some(p) => format!("{}.{index}", p.number),
            None => index.to_string(),
        };
        let frame = Frame { id: id.clone(), number, title: title.to_string(), lane: None };
        let done = self.finished.get(&id).cloned();
        (frame, done)
    }

    pub fn push_step(&self, frame: &Frame) -> Result<()> {
        self.plan.push(PlanEntry::Step {
            id: frame.id.clone(),
            number: frame.number.clone(),
            title: frame.title.clone(),
            depth: frame.number.matches('.').count(),
            skipped: false,
            parallel: Self::branch_lane(),
        });
        let lane = Self::lane();
        let parent = Self::current_step().map(|f| f.id).filter(|id| !id.is_empty());
        STACK.with(|s| s.borrow_mut().push(frame.clone()));
        self.journal(Event::StepStarted {
            id: frame.id.clone(),
            number: frame.number.clone(),
            title: frame.title.clone(),
            parent,
            lane,
        })
    }

    pub fn pop_step(
        &self,
        frame: &Frame,
        started: Instant,
        result: std::result::Result<Option<serde_json::Value>, (bool, String)>,
    ) -> Result<()> {
        STACK.with(|s| {
            let mut s = s.borrow_mut();
            if s.last().is_some_and(|f| f.id == frame.id) {
                s.pop();
            }
        });
        let duration_ms = started.elapsed().as_millis() as u64;
        let event = match result {
            Ok(value) => Event::StepFinished {
                id: frame.id.clone(),
                outcome: StepOutcome::Ok,
                duration_ms,
                result: value,
                error: None,
            },
            Err((interrupted, message)) => {
                let mut failed = self.failed_step.lock().unwrap();
                if failed.is_none() {
                    *failed = Some((frame.clone(), message.clone()));
                }
                Event::StepFinished {
                    id: frame.id.clone(),
                    outcome: if interrupted { StepOutcome::Interrupted } else { StepOutcome::Failed },
                    duration_ms,
                    result: None,
                    error: Some(message),
                }
            }
        };
        self.journal(event)
    }

    pub fn note_skipped(&self, frame: &Frame) -> Result<()> {
        self.plan.push(PlanEntry::Step {
            id: frame.id.clone(),
            number: frame.number.clone(),
            title: frame.title.clone(),
            depth: frame.number.matches('.').count(),
            skipped: true,
            parallel: Self::branch_lane(),
        });
        self.journal(Event::StepSkipped {
            id: frame.id.clone(),
            number: frame.number.clone(),
            title: frame.title.clone(),
        })
    }

    /// A new number for a group of parallel branches (their lanes in the timeline).
    pub fn next_group(&self) -> u32 {
        self.groups.fetch_add(1, Ordering::Relaxed) + 1
    }

    pub fn failed_step(&self) -> Option<Frame> {
        self.failed_step.lock().unwrap().as_ref().map(|(f, _)| f.clone())
    }

    /// The error of [`Exec::failed_step`] (so that `parallel` reports that error, not another
    /// branch's).
    pub fn failed_step_error(&self) -> Option<String> {
        self.failed_step.lock().unwrap().as_ref().map(|(_, m)| m.clone())
    }

    // ----- actions -----

    /// A read. Performed in live and dry-run mode; in plan mode `placeholder` stands in.
    pub fn query<T>(
        &self,
        primitive: &str,
        target: &str,
        placeholder: impl FnOnce() -> T,
        read: impl FnOnce() -> Result<T>,
    ) -> Result<T> {
        self.check_cancelled()?;
        if self.mode() == Mode::Plan {
            self.record(primitive, target, "read", "planned", None);
            return Ok(placeholder());
        }
        let started = Instant::now();
        let result = read();
        self.finish_action(primitive, target, "", started, result.as_ref().map(|_| Outcome::Unchanged), Kind::Read)?;
        result
    }

    /// A change. Performed only in live mode; otherwise described (`detail` says what would
    /// happen) and `described` is returned.
    pub fn change<T>(
        &self,
        primitive: &str,
        target: &str,
        detail: &str,
        described: impl FnOnce() -> T,
        apply: impl FnOnce() -> Result<(T, Outcome)>,
    ) -> Result<T> {
        self.change_shown(primitive, target, target, detail, described, || {
            apply().map(|(value, outcome)| (value, outcome, None))
        })
    }

    /// [`Exec::change`] whose log lines name the target as `shown` (`prod.shares.app/web` for a
    /// share whose `target` is its full path or URL: the journal, the plan, errors and `-v` keep
    /// `target`), and whose `apply` may say what it did (`copied 296 files (1.9 MiB), ...`): the
    /// action's one log line then ends with that instead of the planned `detail`.
    pub fn change_shown<T>(
        &self,
        primitive: &str,
        target: &str,
        shown: &str,
        detail: &str,
        described: impl FnOnce() -> T,
        apply: impl FnOnce() -> Result<(T, Outcome, Option<String>)>,
    ) -> Result<T> {
        self.check_cancelled()?;
        if shown != target {
            tracing::debug!("{primitive} {target}");
        }
        if self.mode() != Mode::Live {
            if self.mode() == Mode::DryRun {
                tracing::info!("would {}", join_words(&[primitive, shown, detail]));
            }
            self.record(primitive, target, detail, "planned", None);
            self.journal(Event::Action {
                step: Self::current_step().map(|f| f.id).filter(|s| !s.is_empty()),
                primitive: primitive.to_string(),
                target: target.to_string(),
                detail: detail.to_string(),
                outcome: "planned".to_string(),
                duration_ms: 0,
                error: None,
            })?;
            return Ok(described());
        }
        if self.lease_lost.as_ref().is_some_and(|f| f.load(Ordering::SeqCst)) {
            return Err(Error::Stopped(format!(
                "the shared lock was lost (its lease could not be renewed): stopped before {primitive} {target}, so that no other run changes things at the same time; check `drscript status`, then resume this run"
            )));
        }
        let started = Instant::now();
        match apply() {
            Ok((value, outcome, told)) => {
                let kind = Kind::Change { shown, told: told.as_deref() };
                self.finish_action(primitive, target, detail, started, Ok(outcome), kind)?;
                Ok(value)
            }
            Err(e) => {
                self.finish_action(primitive, target, detail, started, Err(&e), Kind::Change { shown, told: None })?;
                Err(e)
            }
        }
    }

    fn record(&self, primitive: &str, target: &str, detail: &str, kind: &str, error: Option<&str>) {
        let _ = error;
        self.plan.push(PlanEntry::Action {
            primitive: primitive.to_string(),
            target: target.to_string(),
            detail: if kind == "read" { "(read)".to_string() } else { detail.to_string() },
            depth: Self::current_step().map_or(0, |f| f.number.matches('.').count() + 1),
        });
    }

    fn finish_action(
        &self,
        primitive: &str,
        target: &str,
        detail: &str,
        started: Instant,
        outcome: std::result::Result<Outcome, &Error>,
        kind: Kind<'_>,
    ) -> Result<()> {
        let duration_ms = started.elapsed().as_millis() as u64;
        let (outcome, error) = match outcome {
            Ok(Outcome::Changed) => ("ok".to_string(), None),
            Ok(Outcome::Unchanged) if kind == Kind::Read => ("read".to_string(), None),
            Ok(Outcome::Unchanged) => ("unchanged".to_string(), None),
            Err(e) => ("failed".to_string(), Some(e)),
        };
        if let Kind::Change { shown, told } = kind {
            match error {
                None if told.is_some() => tracing::info!("{primitive} {shown}: {}", told.unwrap_or_default()),
                None => tracing::info!(
                    "{}{}",
                    join_words(&[primitive, shown, detail]),
                    if outcome == "unchanged" { " (unchanged)" } else { "" }
                ),
                // The line names the primitive and its target already.
                Some(Error::Action { primitive: p, message, .. }) if p == primitive => {
                    tracing::error!("{primitive} {target} failed: {message}")
                }
                Some(e) => tracing::error!("{primitive} {target} failed: {e}"),
            }
        } else {
            tracing::debug!("{primitive} {target} read in {duration_ms} ms");
        }
        let error = error.map(ToString::to_string);
        self.journal(Event::Action {
            step: Self::current_step().map(|f| f.id).filter(|s| !s.is_empty()),
            primitive: primitive.to_string(),
            target: target.to_string(),
            detail: detail.to_string(),
            outcome,
            duration_ms,
            error,
        })
    }

    /// Records a figure for the report (bytes synced, last sync time, ...).
    pub fn metric(&self, name: &str, value: serde_json::Value) -> Result<()> {
        self.journal(Event::Metric { name: name.to_string(), value })
    }

    /// A warning from a primitive: logged, and journaled so that the report lists it.
    pub fn warning(&self, message: &str) -> Result<()> {
        tracing::warn!("{message}");
        self.journal(Event::Log { level: "warn".to_string(), message: message.to_string() })
    }
}

/// What an action was, for its log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind<'a> {
    Read,
    /// A change: its target as the log line names it, and what it did when it says so itself.
    Change {
        shown: &'a str,
        told: Option<&'a str>,
    },
}

fn join_words(words: &[&str]) -> String {
    words.iter().filter(|w| !w.is_empty()).copied().collect::<Vec<_>>().join(" ")
}

pub fn interrupted() -> Error {
    Error::Stopped("interrupted (Ctrl-C)".to_string())
}
