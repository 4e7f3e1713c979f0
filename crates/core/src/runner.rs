//! Running a runbook: rehearse it offline, then run it live (or as a dry run) under the lock,
//! with a journal and a report; and resuming a run that stopped.
//!
//! The rehearsal is a plan-mode pass over the whole script before anything happens. It catches
//! what static checks cannot (a wrong argument type computed at run time, an unknown environment,
//! a missing secret, an unknown `--var`) while nothing has been touched, so that such mistakes
//! exit 2 with "nothing was executed" instead of failing half-way through a failover.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::engine::{self, EngineOptions};
use crate::estimate::Estimate;
use crate::exec::{Exec, Mode, Prompting, RunContext};
use crate::journal::{self, Event, Journal, StepOutcome};
use crate::lock::Lock;
use crate::modules::{Resolver, Sources};
use crate::report;
use crate::script::Script;
use crate::script_error;
use crate::shared::{Mirror, Shared, SharedLock};
use crate::state::{self, StateDir};
use drscript_base::error::{Error, Result, exit};

#[derive(Debug, Clone)]
pub struct RunOptions {
    pub script: PathBuf,
    pub config: Option<PathBuf>,
    pub config_required: bool,
    pub mode: Mode,
    pub prompting: Prompting,
    pub vars: BTreeMap<String, String>,
    pub state_dir: PathBuf,
    pub stdlib_dir: Option<PathBuf>,
    pub skip_rehearsal: bool,
    /// `--state local`: keep to the state directory even when the config names a shared state
    /// (recorded in the journal; the next run that reaches the shared state uploads the run).
    pub local_state: bool,
}

#[derive(Debug, Clone)]
pub struct RunOutcome {
    pub run_id: Option<String>,
    pub run_dir: Option<PathBuf>,
    pub plan: Option<String>,
    pub steps: usize,
    pub seconds: f64,
}

/// Loads the config: an explicit path must exist; the default one is optional.
pub fn load_config(path: Option<&Path>, required: bool) -> Result<Option<Arc<Config>>> {
    match path {
        Some(p) if required || p.exists() => Ok(Some(Arc::new(Config::load(p)?))),
        _ => Ok(None),
    }
}

/// What a compiled runbook needs to be run by any engine.
pub struct Prepared {
    pub script: Script,
    pub config: Option<Arc<Config>>,
    pub engine_options: EngineOptions,
    pub ast: rhai::AST,
    pub sources: Sources,
}

impl Prepared {
    /// What the DR document requires of the script's switch steps that its text does not keep
    /// ([`crate::lint::switch_warnings`]), rendered as warnings.
    pub fn switch_warnings(&self) -> Vec<String> {
        crate::lint::switch_warnings(&self.ast, &self.script.label, &self.script.source)
    }

    /// The execution context for one pass over the script.
    #[allow(clippy::too_many_arguments)]
    fn exec(
        &self,
        options: &RunOptions,
        mode: Mode,
        runtime: &tokio::runtime::Handle,
        journaled: Option<(Journal, RunContext)>,
        finished: HashMap<String, Option<serde_json::Value>>,
        cancel: CancellationToken,
        lease_lost: Option<Arc<AtomicBool>>,
    ) -> Arc<Exec> {
        let (journal, run) = journaled.unzip();
        Exec::builder(mode, runtime.clone())
            .config(self.config.clone())
            .journal(journal)
            .vars(options.vars.clone())
            .prompting(options.prompting.clone())
            .run(run)
            .finished(finished)
            .cancel(cancel)
            .lease_lost(lease_lost)
            .build()
    }

    /// Runs the script once under `exec`; errors come back as drscript errors.
    fn evaluate(&self, exec: &Arc<Exec>, rehearsal: bool) -> Result<()> {
        let engine = engine::build(exec.clone(), &self.engine_options, self.sources.clone());
        engine
            .run_ast(&self.ast)
            .map_err(|e| script_error::convert(&e, &self.script.label, &self.sources, exec.failed_step(), rehearsal))
    }
}

pub fn prepare(options: &RunOptions, runtime: &tokio::runtime::Handle) -> Result<Prepared> {
    let script = Script::find(&options.script)?;
    let config = load_config(options.config.as_deref(), options.config_required)?;
    let engine_options = EngineOptions {
        script_dir: script.dir(),
        stdlib_dir: options.stdlib_dir.clone().or_else(|| config.as_ref().and_then(|c| c.settings.stdlib_dir.clone())),
    };
    let sources = Sources::default();
    let exec = Exec::builder(Mode::Plan, runtime.clone()).config(config.clone()).build();
    let engine = engine::build(exec, &engine_options, sources.clone());
    let resolver = Resolver::new(engine_options.script_dir.clone(), engine_options.stdlib_dir.clone(), sources.clone());
    let ast = script.compile(&engine, &resolver, &sources)?;
    Ok(Prepared { script, config, engine_options, ast, sources })
}

/// Runs the script in plan mode; returns the exec holding the plan.
pub fn rehearse(
    prepared: &Prepared,
    options: &RunOptions,
    runtime: &tokio::runtime::Handle,
    finished: HashMap<String, Option<serde_json::Value>>,
    cancel: CancellationToken,
) -> Result<Arc<Exec>> {
    let exec = prepared.exec(options, Mode::Plan, runtime, None, finished, cancel, None);
    prepared.evaluate(&exec, true)?;
    let unused = exec.unused_vars();
    if !unused.is_empty() {
        return Err(Error::Usage(format!(
            "unknown --var {}: the script never asks for {} (it reads variables with param(name, default))",
            unused.join(", "),
            if unused.len() == 1 { "it" } else { "them" }
        )));
    }
    Ok(exec)
}

/// `drscript plan`: the rehearsal's record, nothing else.
pub fn plan(options: &RunOptions, cancel: CancellationToken) -> Result<RunOutcome> {
    let runtime = runtime()?;
    let prepared = prepare(options, runtime.handle())?;
    let exec = rehearse(&prepared, options, runtime.handle(), HashMap::new(), cancel)?;
    let mut text = format!(
        "Plan for {}{}\n\n",
        prepared.script.label,
        prepared.config.as_ref().map(|c| format!(" with {}", c.path.display())).unwrap_or_default()
    );
    let runbook = prepared.script.path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    // A plan is wanted most when things are broken: an unreadable history costs the estimate only.
    let expected =
        Estimate::last_finished(&state_dir(options, &prepared), &runbook, &options.vars).unwrap_or_else(|e| {
            tracing::warn!("no expected times: {e}");
            None
        });
    text.push_str(&exec.plan().render(expected.as_ref()));
    text.push_str(&format!(
        "\n{} step(s), {} action(s); nothing was changed.\n",
        exec.plan().step_count(),
        exec.plan().action_count()
    ));
    text.push_str(&crate::plan::expectation(expected.as_ref(), &runbook));
    Ok(RunOutcome { run_id: None, run_dir: None, plan: Some(text), steps: exec.plan().step_count(), seconds: 0.0 })
}

/// `drscript run`: rehearse, then run live or as a dry run, journaled.
pub fn run(options: &RunOptions, cancel: CancellationToken) -> Result<RunOutcome> {
    let runtime = runtime()?;
    let prepared = prepare(options, runtime.handle())?;
    if !options.skip_rehearsal {
        rehearse(&prepared, options, runtime.handle(), HashMap::new(), cancel.clone())?;
    }
    let state = StateDir::open(&state_dir(options, &prepared))?;
    let shared = connect_shared(options.local_state, prepared.config.as_deref(), &state)?;
    let (run_id, run_dir) = state.new_run()?;
    execute(options, &prepared, &runtime, &state, shared.as_ref(), run_id, run_dir, HashMap::new(), 1, cancel)
}

/// The direction the shared lock names (`from`, `to`): `--var from/to`, else, for the two switch
/// runbooks, the declared roles (`failover.rhai` goes from the primary to the standby). A switch
/// that takes its direction from the live state names none.
fn direction(options: &RunOptions, config: Option<&Config>, runbook: &str) -> BTreeMap<String, String> {
    let roles =
        config.filter(|c| c.roles_declared()).and_then(|c| Some((c.primary().to_string(), c.standby()?.to_string())));
    let (from, to) = match (runbook, roles) {
        ("failover.rhai", Some((primary, standby))) => (Some(primary), Some(standby)),
        ("failback.rhai", Some((primary, standby))) => (Some(standby), Some(primary)),
        _ => (None, None),
    };
    [("from", from), ("to", to)]
        .into_iter()
        .filter_map(|(key, default)| options.vars.get(key).cloned().or(default).map(|v| (key.to_string(), v)))
        .collect()
}

/// The shared state of the config, reconciled with `state` before a run; `None` when there is
/// none or `--state local` keeps to this machine (a warning).
fn connect_shared(local_state: bool, config: Option<&Config>, state: &StateDir) -> Result<Option<Shared>> {
    let Some(shared) = config.map(Shared::open).transpose()?.flatten() else { return Ok(None) };
    if local_state {
        tracing::warn!(
            "--state local: this run uses {} alone, not the shared state {} (no shared lock: make sure nobody else runs); the next run that reaches the shared state uploads it",
            state.root().display(),
            shared.location()
        );
        return Ok(None);
    }
    shared.connect(state)?;
    Ok(Some(shared))
}

/// `drscript resume`: continue the named (or last unfinished) run, skipping finished steps.
pub fn resume(run_id: Option<&str>, base: &RunOptions, force: bool, cancel: CancellationToken) -> Result<RunOutcome> {
    let state = StateDir::open(&base.state_dir)?;
    // The shared state first: the run to resume may have been started on another machine.
    let base_config = load_config(base.config.as_deref(), base.config_required)?;
    let shared = connect_shared(base.local_state, base_config.as_deref(), &state)?;
    let run_id = match run_id {
        Some(id) => id.to_string(),
        None => state.last_unfinished()?.ok_or_else(|| {
            Error::Resume(format!("nothing to resume: no unfinished live run in {}", state.root().display()))
        })?,
    };
    let run_dir = state.run_dir(&run_id);
    let journal_path = run_dir.join("journal.jsonl");
    if !journal_path.exists() {
        let known = state.runs()?;
        return Err(Error::Resume(format!(
            "no run {run_id} in {} (runs: {})",
            state.root().display(),
            if known.is_empty() { "none".to_string() } else { known.join(", ") }
        )));
    }
    let records = journal::read(&journal_path)?;
    let Some((script, hash, config, mode, vars, attempt)) = records.iter().rev().find_map(|r| match &r.event {
        Event::RunStarted { script, script_hash, config, mode, vars, attempt, .. } => {
            Some((script.clone(), script_hash.clone(), config.clone(), mode.clone(), vars.clone(), *attempt))
        }
        _ => None,
    }) else {
        return Err(Error::Resume(format!("run {run_id}: the journal has no start record")));
    };
    if records.iter().rev().find_map(|r| match &r.event {
        Event::RunFinished { exit_code, .. } => Some(*exit_code == exit::OK),
        Event::RunStarted { .. } => Some(false),
        _ => None,
    }) == Some(true)
    {
        return Err(Error::Resume(format!("run {run_id} finished successfully; there is nothing to resume")));
    }
    if mode != "live" {
        return Err(Error::Resume(format!("run {run_id} was a {mode} run; only live runs can be resumed")));
    }
    let mut options = base.clone();
    options.script = PathBuf::from(&script);
    options.config = config.map(PathBuf::from);
    // A run started on another machine names that machine's config: this one's stands in.
    if let (Some(theirs), Some(ours)) = (&options.config, &base_config)
        && !theirs.exists()
    {
        tracing::warn!("{} (where run {run_id} started) is not here: using {}", theirs.display(), ours.path.display());
        options.config = Some(ours.path.clone());
    }
    options.config_required = options.config.is_some();
    options.vars = vars;
    options.mode = Mode::Live;
    let runtime = runtime()?;
    let prepared = prepare(&options, runtime.handle())?;
    if prepared.script.hash != hash {
        if !force {
            return Err(Error::Resume(format!(
                "{script} changed since run {run_id} started (sha256 {} → {}); steps may no longer line up with the journal. Check the change, then rerun with --force to resume anyway",
                &hash[..12],
                &prepared.script.hash[..12]
            )));
        }
        tracing::warn!("{script} changed since run {run_id} started; resuming anyway (--force)");
    }
    let finished: HashMap<String, Option<serde_json::Value>> = records
        .iter()
        .filter_map(|r| match &r.event {
            Event::StepFinished { id, outcome: StepOutcome::Ok, result, .. } => Some((id.clone(), result.clone())),
            _ => None,
        })
        .collect();
    if !options.skip_rehearsal {
        rehearse(&prepared, &options, runtime.handle(), finished.clone(), cancel.clone())?;
    }
    // Resumed without a config of its own (`drscript --state-dir DIR resume RUN` pasted from a
    // page): the shared state of the run's config.
    let shared = match shared {
        Some(shared) => Some(shared),
        None => connect_shared(options.local_state, prepared.config.as_deref(), &state)?,
    };
    tracing::info!("resuming run {run_id}: {} step(s) finished earlier will be skipped", finished.len());
    execute(&options, &prepared, &runtime, &state, shared.as_ref(), run_id, run_dir, finished, attempt + 1, cancel)
}

#[allow(clippy::too_many_arguments)]
fn execute(
    options: &RunOptions,
    prepared: &Prepared,
    runtime: &tokio::runtime::Runtime,
    state: &StateDir,
    shared: Option<&Shared>,
    run_id: String,
    run_dir: PathBuf,
    finished: HashMap<String, Option<serde_json::Value>>,
    attempt: u32,
    cancel: CancellationToken,
) -> Result<RunOutcome> {
    let _lock = Lock::acquire(state.root(), &run_id)?;
    let runbook = prepared.script.path.file_name().map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    let direction = direction(options, prepared.config.as_deref(), &runbook);
    let shared_lock = shared.map(|s| s.lock(&run_id, &runbook, &direction)).transpose()?;
    // After the lock: dropped first, so that its last upload happens while the lock is held.
    let mirror = shared.map(|s| s.mirror(&run_id, &run_dir.join("journal.jsonl")));
    let journal = Journal::open(&run_dir.join("journal.jsonl"))?.after_write(mirror.as_ref().map(Mirror::hook));
    journal.write(Event::RunStarted {
        run_id: run_id.clone(),
        attempt,
        script: absolute(&prepared.script.path),
        script_hash: prepared.script.hash.clone(),
        config: prepared.config.as_ref().map(|c| absolute(&c.path)),
        mode: match options.mode {
            Mode::Live => "live",
            _ => "dry-run",
        }
        .to_string(),
        vars: options.vars.clone(),
        pid: std::process::id(),
        version: crate::identity::VERSION.to_string(),
    })?;
    if options.local_state
        && let Some(shared) = prepared.config.as_deref().map(Shared::open).transpose()?.flatten()
    {
        journal.write(Event::Log {
            level: "warn".to_string(),
            message: format!(
                "--state local: run on this machine's state alone, without the shared lock of {}; uploaded by the next run that reaches it",
                shared.location()
            ),
        })?;
    }
    let screen = crate::observer::RunScreen::start();
    tracing::info!(
        "run {run_id}{} of {}",
        if options.mode == Mode::Live { "" } else { " (dry run: nothing will be changed)" },
        prepared.script.label
    );
    let run = RunContext { run_id: run_id.clone(), state_dir: state.root().to_path_buf() };
    let resume_command = format!("drscript --state-dir {} resume {run_id}", absolute(state.root()));
    let announce = |event: crate::notify::RunEvent| {
        if options.mode == Mode::Live
            && let Some(config) = &prepared.config
        {
            crate::notify::announce(config, event);
        }
    };
    let event = |event: &'static str, text: String| crate::notify::RunEvent {
        event,
        run_id: run_id.clone(),
        runbook: runbook.clone(),
        text,
        step: None,
        error: None,
        resume: None,
        downtime_seconds: None,
    };
    announce(event(
        "started",
        format!(
            "drscript: {runbook} started by {} (run {run_id}{})",
            crate::identity::by(),
            if attempt > 1 { format!(", attempt {attempt}") } else { String::new() }
        ),
    ));
    let interrupted = cancel.clone();
    let exec = prepared.exec(
        options,
        options.mode,
        runtime.handle(),
        Some((journal, run)),
        finished,
        cancel,
        shared_lock.as_ref().map(SharedLock::lost_flag),
    );
    let started = Instant::now();
    let result = prepared.evaluate(&exec, false);
    let seconds = started.elapsed().as_secs_f64();
    let (outcome, code, error) = match &result {
        Ok(()) => ("ok", exit::OK, None),
        Err(e) if e.exit_code() == exit::STOPPED => ("stopped", exit::STOPPED, Some(e.to_string())),
        Err(e @ Error::Refused(_)) => ("refused", e.exit_code(), Some(e.to_string())),
        Err(e) => ("failed", e.exit_code(), Some(e.to_string())),
    };
    exec.journal(Event::RunFinished {
        outcome: outcome.to_string(),
        exit_code: code,
        duration_ms: (seconds * 1000.0) as u64,
        error,
    })?;
    let records = journal::read(&run_dir.join("journal.jsonl"))?;
    write_reports(&run_dir, &records)?;
    let report_path = run_dir.join("report.md");
    let step = exec.failed_step().map(|f| format!("{} {}", f.number, f.title));
    let first_line = |e: &Error| e.to_string().lines().next().unwrap_or_default().to_string();
    let notice = match &result {
        Ok(()) => {
            let downtime = crate::report::downtime_ms(&records).map(|ms| ms as f64 / 1000.0);
            crate::notify::RunEvent {
                downtime_seconds: downtime,
                ..event(
                    "finished",
                    format!(
                        "drscript: {runbook} finished in {seconds:.1} s{} (run {run_id}, by {})",
                        downtime.map(|d| format!(", downtime {d:.1} s")).unwrap_or_default(),
                        crate::identity::by()
                    ),
                )
            }
        }
        Err(e @ Error::Refused(_)) => crate::notify::RunEvent {
            error: Some(first_line(e)),
            ..event("refused", format!("drscript: {runbook} refused, nothing changed: {}", first_line(e)))
        },
        Err(e) => {
            let kind = match e.exit_code() {
                // Ctrl-C or SIGTERM: the operator (or the system) stopped it mid-run.
                exit::STOPPED if interrupted.is_cancelled() => "interrupted",
                exit::STOPPED => "stopped",
                _ => "failed",
            };
            crate::notify::RunEvent {
                step: step.clone(),
                error: Some(first_line(e)),
                resume: Some(resume_command.clone()),
                ..event(
                    kind,
                    format!(
                        "drscript: {runbook} {kind}{}: {} — continue with: {resume_command}",
                        step.as_ref().map(|s| format!(" at step {s}")).unwrap_or_default(),
                        first_line(e)
                    ),
                )
            }
        }
    };
    announce(notice);
    crate::notify::flush(Duration::from_secs(5));
    // The plain log's last line; on a terminal the live view ends with the summary instead.
    const PLAIN: &str = crate::observer::PLAIN_ONLY;
    match &result {
        Ok(()) => {
            tracing::info!(target: PLAIN, "run {run_id} finished in {seconds:.1}s; report: {}", report_path.display())
        }
        Err(e) if e.exit_code() == exit::STOPPED => tracing::warn!(
            target: PLAIN,
            "run {run_id} stopped after {seconds:.1}s; continue with `drscript resume {run_id}`; report: {}",
            report_path.display()
        ),
        Err(Error::Refused(_)) => tracing::warn!(
            target: PLAIN,
            "run {run_id} refused the situation: nothing was changed; report: {}",
            report_path.display()
        ),
        Err(_) => tracing::error!(
            target: PLAIN,
            "run {run_id} failed after {seconds:.1}s; fix the cause and continue with `drscript resume {run_id}`; report: {}",
            report_path.display()
        ),
    }
    screen.finish(&crate::observer::RunEnd { run_id: &run_id, outcome, seconds, run_dir: &run_dir, records: &records });
    result?;
    Ok(RunOutcome {
        run_id: Some(run_id),
        run_dir: Some(run_dir),
        plan: None,
        steps: exec.plan().step_count(),
        seconds,
    })
}

/// Writes the reports of a run from its journal.
/// A live interactive session (the REPL with `--live`): it holds the state directory's lock for
/// as long as it lives, journals every change under a run id of its own (mode `repl`, never
/// resumed: a person typed it), and is listed by `drscript runs` with its report.
/// With a shared state (`[state]`), the session holds the shared lock too and its journal is
/// mirrored, as a run's.
pub struct Interactive {
    pub run_id: String,
    pub run_dir: PathBuf,
    state_dir: PathBuf,
    // Dropped in this order: the last upload, the shared lock, the local lock.
    mirror: Option<Mirror>,
    shared_lock: Option<SharedLock>,
    _lock: Lock,
    started: Instant,
}

impl Interactive {
    /// `local_state`: `--state local` (see [`RunOptions::local_state`]).
    pub fn open(state_dir: &Path, config: Option<&crate::config::Config>, local_state: bool) -> Result<Interactive> {
        let state = StateDir::open(state_dir)?;
        let shared = connect_shared(local_state, config, &state)?;
        let (run_id, run_dir) = state.new_run()?;
        let lock = Lock::acquire(state.root(), &run_id)?;
        let shared_lock = shared.as_ref().map(|s| s.lock(&run_id, "<repl>", &BTreeMap::new())).transpose()?;
        let mirror = shared.as_ref().map(|s| s.mirror(&run_id, &run_dir.join("journal.jsonl")));
        Journal::open(&run_dir.join("journal.jsonl"))?.after_write(mirror.as_ref().map(Mirror::hook)).write(
            Event::RunStarted {
                run_id: run_id.clone(),
                attempt: 1,
                script: "<repl>".to_string(),
                script_hash: String::new(),
                config: config.map(|c| absolute(&c.path)),
                mode: "repl".to_string(),
                vars: Default::default(),
                pid: std::process::id(),
                version: crate::identity::VERSION.to_string(),
            },
        )?;
        Ok(Interactive {
            run_id,
            run_dir,
            state_dir: state.root().to_path_buf(),
            mirror,
            shared_lock,
            _lock: lock,
            started: Instant::now(),
        })
    }

    /// The shared lock's "lease lost" flag, for the session's engines.
    pub fn lease_lost(&self) -> Option<Arc<AtomicBool>> {
        self.shared_lock.as_ref().map(SharedLock::lost_flag)
    }

    /// A journal handle and run context for an engine of this session (several may follow one
    /// another: each appends to the same journal).
    pub fn journaled(&self) -> Result<(Journal, RunContext)> {
        Ok((
            Journal::open(&self.run_dir.join("journal.jsonl"))?.after_write(self.mirror.as_ref().map(Mirror::hook)),
            RunContext { run_id: self.run_id.clone(), state_dir: self.state_dir.clone() },
        ))
    }

    /// Ends the session: its last record and its report; returns the report's path.
    pub fn finish(self) -> Result<PathBuf> {
        let (journal, _) = self.journaled()?;
        journal.write(Event::RunFinished {
            outcome: "ok".to_string(),
            exit_code: exit::OK,
            duration_ms: self.started.elapsed().as_millis() as u64,
            error: None,
        })?;
        let records = journal::read(&self.run_dir.join("journal.jsonl"))?;
        write_reports(&self.run_dir, &records)?;
        Ok(self.run_dir.join("report.md"))
    }
}

pub fn write_reports(run_dir: &Path, records: &[journal::Record]) -> Result<()> {
    state::write_private(&run_dir.join("report.md"), &report::markdown(records))?;
    state::write_private(&run_dir.join("report.html"), &crate::report_html::html(records))
}

fn state_dir(options: &RunOptions, prepared: &Prepared) -> PathBuf {
    prepared
        .config
        .as_ref()
        .and_then(|c| c.settings.state_dir.clone())
        .filter(|_| options.state_dir == Path::new(crate::state::DEFAULT_DIR))
        .unwrap_or_else(|| options.state_dir.clone())
}

fn absolute(path: &Path) -> String {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf()).display().to_string()
}

pub fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::io("cannot start the async runtime", e))
}
