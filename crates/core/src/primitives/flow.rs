//! Structure of a runbook: steps, parallel branches, waits, questions, parameters, messages.

use std::time::{Duration, Instant};

use rhai::plugin::*;
use rhai::{Array, Dynamic, EvalAltResult, FnPtr, Map, NativeCallContext};

use super::{exec_of, failure_of, to_rhai};
use crate::exec::{Exec, Mode, Outcome};
use crate::journal::Event;
use crate::observer::{self, Finish};
use crate::prompt;
use drscript_base::error::Error;

type RhaiResult<T = Dynamic> = Result<T, Box<EvalAltResult>>;

#[export_module]
pub mod flow_api {
    /// Runs `body` as a step titled `title`: journaled, timed, numbered in plans and reports,
    /// skipped by `drscript resume` when an earlier attempt finished it. Returns what `body`
    /// returns.
    ///
    /// ```rhai
    /// step("Scale down PROD runtime", || scale(prod, "deployment", "ac-ac-runtime", 0));
    /// ```
    #[rhai_fn(return_raw)]
    pub fn step(ctx: NativeCallContext, title: &str, body: FnPtr) -> RhaiResult {
        super::run_step(&ctx, title, &body)
    }

    /// Runs the closures at the same time and waits for all of them; fails (after all finished)
    /// if any failed. Returns their results in order.
    ///
    /// ```rhai
    /// parallel([|| step("runtime", || ...), || step("listener", || ...)]);
    /// ```
    #[rhai_fn(return_raw)]
    pub fn parallel(ctx: NativeCallContext, branches: Array) -> RhaiResult<Array> {
        super::run_parallel(&ctx, branches)
    }

    /// Waits `seconds` (fractions allowed). Skipped in plans and dry runs.
    #[rhai_fn(name = "sleep", return_raw)]
    pub fn sleep_float(ctx: NativeCallContext, seconds: f64) -> RhaiResult<()> {
        super::sleep(&ctx, seconds)
    }

    /// Waits `seconds`. Skipped in plans and dry runs.
    #[rhai_fn(name = "sleep", return_raw)]
    pub fn sleep_int(ctx: NativeCallContext, seconds: i64) -> RhaiResult<()> {
        super::sleep(&ctx, seconds as f64)
    }

    /// Asks the operator to confirm `message`; a refusal stops the run (exit 3). Without a
    /// terminal the run stops unless `--yes` was given. Plans and dry runs assume yes.
    #[rhai_fn(return_raw)]
    pub fn confirm(ctx: NativeCallContext, message: &str) -> RhaiResult<bool> {
        super::ask(&ctx, "confirm", message, prompt::confirm)
    }

    /// Asks the operator to do `message` by hand and to acknowledge it by typing `done`.
    /// `--yes` does not answer it: without a terminal the run stops (exit 3) unless the step was
    /// acknowledged up front with `--ack TEXT` (TEXT in the message or the step title) or
    /// `--ack-all-manual`; the report lists such acknowledgements as warnings.
    #[rhai_fn(return_raw)]
    pub fn manual(ctx: NativeCallContext, message: &str) -> RhaiResult<bool> {
        super::ask(&ctx, "manual", message, prompt::manual)
    }

    /// Calls `condition` until it returns true, polling from 100 ms up to 2 s apart, for at
    /// most 300 s. Not evaluated in plans.
    #[rhai_fn(return_raw)]
    pub fn wait_until(ctx: NativeCallContext, condition: FnPtr) -> RhaiResult<()> {
        super::wait_until(&ctx, &condition, &Map::new())
    }

    /// Like `wait_until(condition)` with options: `timeout` (seconds), `interval` (largest
    /// pause between polls, seconds), `what` (text for logs and errors).
    #[rhai_fn(name = "wait_until", return_raw)]
    pub fn wait_until_with(ctx: NativeCallContext, condition: FnPtr, options: Map) -> RhaiResult<()> {
        super::wait_until(&ctx, &condition, &options)
    }

    /// The value of `--var NAME=VALUE`, converted to the type of `default`, or `default`.
    #[rhai_fn(return_raw)]
    pub fn param(ctx: NativeCallContext, name: &str, default: Dynamic) -> RhaiResult {
        super::param(&ctx, name, default)
    }

    /// Stops the run with `message` (exit 1). In a plan it is only noted.
    #[rhai_fn(return_raw)]
    pub fn fail(ctx: NativeCallContext, message: &str) -> RhaiResult<()> {
        let exec = exec_of(&ctx);
        if exec.mode() == Mode::Plan {
            super::note_in_plan(&exec, format!("would fail here if reached: {message}"));
            return Ok(());
        }
        let target = Exec::current_step().map_or_else(|| "script".to_string(), |f| format!("step {}", f.title));
        Err(to_rhai(Error::action("fail", target, message)))
    }

    /// Logs `message` at info level (and into the journal).
    #[rhai_fn(return_raw)]
    pub fn info(ctx: NativeCallContext, message: &str) -> RhaiResult<()> {
        super::log(&ctx, "info", message)
    }

    /// Logs `message` as a warning (and into the journal); the report lists warnings.
    #[rhai_fn(return_raw)]
    pub fn warn(ctx: NativeCallContext, message: &str) -> RhaiResult<()> {
        super::log(&ctx, "warn", message)
    }

    /// Records a figure for the report and `drscript runs` (`metric("rpo", "0")`,
    /// `metric("downtime", "start")`); journaled, never shown as a step. Ignored in plans.
    #[rhai_fn(return_raw)]
    pub fn metric(ctx: NativeCallContext, name: &str, value: Dynamic) -> RhaiResult<()> {
        let exec = exec_of(&ctx);
        if exec.mode() == Mode::Plan {
            return Ok(());
        }
        let json = serde_json::to_value(&value).unwrap_or(serde_json::Value::Null);
        exec.metric(name, json).map_err(to_rhai)
    }

    /// True when an earlier attempt of this run (before `drscript resume`) finished a step titled
    /// `title`: lets a runbook that changes branch on resume know what was already done.
    pub fn finished_earlier(ctx: NativeCallContext, title: &str) -> bool {
        exec_of(&ctx).finished_earlier(title)
    }

    /// True when changes are only described (plan or dry run), false in a live run.
    pub fn is_dry_run(ctx: NativeCallContext) -> bool {
        exec_of(&ctx).mode() != Mode::Live
    }
}

/// A note in the plan at the depth of the current step (what a stop would have said).
pub fn note_in_plan(exec: &Exec, text: String) {
    let depth = Exec::current_step().map_or(0, |f| f.number.matches('.').count() + 1);
    exec.plan().push(crate::plan::PlanEntry::Note { text, depth });
}

fn run_step(ctx: &NativeCallContext, title: &str, body: &FnPtr) -> RhaiResult {
    let exec = exec_of(ctx);
    if title.trim().is_empty() {
        return Err(to_rhai(Error::Usage("step: the title must not be empty".into())));
    }
    let (frame, done) = exec.enter_step(title);
    // The plain log's step lines; the live view draws the steps from the hooks instead.
    const PLAIN: &str = observer::PLAIN_ONLY;
    if let Some(result) = done {
        tracing::info!(target: PLAIN, "↷ {} {} (finished in an earlier attempt)", frame.number, title);
        observer::with(|o| o.step_skipped(&frame.number, &frame.title));
        exec.note_skipped(&frame).map_err(to_rhai)?;
        return Ok(match result {
            Some(json) => rhai::serde::to_dynamic(json).unwrap_or(Dynamic::UNIT),
            None => Dynamic::UNIT,
        });
    }
    let shown = exec.mode() != Mode::Plan;
    if shown {
        tracing::info!(target: PLAIN, "▶ {} {}", frame.number, title);
    }
    exec.push_step(&frame).map_err(to_rhai)?;
    if shown {
        observer::with(|o| o.step_started(&frame.number, &frame.title));
    }
    let started = Instant::now();
    let result = body.call_within_context::<Dynamic>(ctx, ());
    let took = started.elapsed();
    let elapsed = took.as_secs_f64();
    match &result {
        Ok(value) => {
            let json = serde_json::to_value(value).ok().filter(|v| !v.is_null());
            exec.pop_step(&frame, started, Ok(json)).map_err(to_rhai)?;
            if shown {
                observer::with(|o| o.step_finished(&frame.number, Finish::Ok, took));
                tracing::info!(target: PLAIN, "✓ {} {} ({elapsed:.1}s)", frame.number, title);
            }
        }
        Err(err) => {
            let stopped = exec.is_cancelled()
                || matches!(**err, EvalAltResult::ErrorTerminated(..))
                || failure_of(err).is_some_and(|e| matches!(*e, Error::Stopped(_)));
            let message = failure_of(err).map_or_else(|| err.to_string(), |e| e.to_string());
            exec.pop_step(&frame, started, Err((stopped, message))).map_err(to_rhai)?;
            if !shown {
                // A rehearsal reports its findings once, as the run's error.
            } else if stopped {
                observer::with(|o| o.step_finished(&frame.number, Finish::Stopped, took));
                tracing::warn!(target: PLAIN, "■ {} {} stopped after {elapsed:.1}s", frame.number, title);
            } else {
                observer::with(|o| o.step_finished(&frame.number, Finish::Failed, took));
                tracing::error!(target: PLAIN, "✗ {} {} failed after {elapsed:.1}s", frame.number, title);
            }
        }
    }
    result
}

fn run_parallel(ctx: &NativeCallContext, branches: Array) -> RhaiResult<Array> {
    let exec = exec_of(ctx);
    let closures: Vec<FnPtr> = branches
        .into_iter()
        .enumerate()
        .map(|(i, b)| {
            let type_name = b.type_name();
            b.try_cast::<FnPtr>().ok_or_else(|| {
                to_rhai(Error::Usage(format!(
                    "parallel: item {} is a {type_name}, expected a closure like `|| step(...)`",
                    i + 1
                )))
            })
        })
        .collect::<Result<_, _>>()?;
    let group = exec.next_group();
    let lane = |i: usize| format!("p{group}.{}", i + 1);
    let parent = Exec::stack();
    let first = exec.reserve_steps(closures.len() as u32);
    // Plans walk the branches one after another on this thread, in script order, each numbered
    // and laned as the live run's thread will be.
    if exec.mode() == Mode::Plan {
        let results = closures
            .iter()
            .enumerate()
            .map(|(i, closure)| {
                Exec::adopt_stack(parent.clone(), lane(i), first + i as u32);
                let result = closure.call_within_context::<Dynamic>(ctx, ());
                Exec::restore_stack(parent.clone());
                result
            })
            .collect();
        return results;
    }
    let results: Vec<RhaiResult> = std::thread::scope(|scope| {
        let handles: Vec<_> = closures
            .iter()
            .enumerate()
            .map(|(i, closure)| {
                let stack = parent.clone();
                let lane = lane(i);
                scope.spawn(move || {
                    Exec::adopt_stack(stack, lane, first + i as u32);
                    closure.call_within_context::<Dynamic>(ctx, ())
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err(to_rhai(Error::Other("a parallel branch panicked".to_string())))))
            .collect()
    });
    // The error reported is the failed step's (the first step that failed, which the run's
    // error names): another branch's error would pair that step with someone else's failure.
    let failed = exec.failed_step_error();
    let message = |e: &EvalAltResult| failure_of(e).map_or_else(|| e.to_string(), |f| f.to_string());
    let chosen = results
        .iter()
        .position(|r| matches!(r, Err(e) if Some(message(e)) == failed))
        .or_else(|| results.iter().position(Result::is_err));
    let mut values = Array::with_capacity(results.len());
    let mut first_error = None;
    for (i, result) in results.into_iter().enumerate() {
        match result {
            Ok(v) => values.push(v),
            Err(e) if Some(i) == chosen => first_error = Some(e),
            Err(e) => tracing::error!("another parallel branch failed too: {}", message(&e)),
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(values),
    }
}

fn sleep(ctx: &NativeCallContext, seconds: f64) -> RhaiResult<()> {
    let exec = exec_of(ctx);
    if !seconds.is_finite() || seconds < 0.0 {
        return Err(to_rhai(Error::Usage(format!("sleep: {seconds} is not a number of seconds"))));
    }
    exec.change(
        "sleep",
        &format!("{seconds}s"),
        "",
        || (),
        || {
            exec.sleep(Duration::from_secs_f64(seconds))?;
            Ok(((), Outcome::Changed))
        },
    )
    .map_err(to_rhai)
}

fn ask(
    ctx: &NativeCallContext,
    primitive: &str,
    message: &str,
    question: fn(&crate::exec::Prompting, Option<&str>, &str) -> crate::Result<prompt::Answer>,
) -> RhaiResult<bool> {
    let exec = exec_of(ctx);
    exec.change(
        primitive,
        &format!("\"{message}\""),
        "",
        || true,
        || {
            let title = Exec::current_step().map(|f| f.title);
            if primitive == "manual" {
                announce_manual(&exec, title.as_deref(), message);
            }
            let answer = question(exec.prompting(), title.as_deref(), message)?;
            // The whole question is in the action's line (and the journal); a long one once.
            let first = message.lines().next().unwrap_or_default();
            let first = if message.contains('\n') { format!("{first} …") } else { first.to_string() };
            if answer.is_up_front() {
                tracing::warn!("{primitive}: \"{first}\" {}", answer.describe());
            } else {
                tracing::info!("{primitive}: \"{first}\" {}", answer.describe());
            }
            Ok((true, Outcome::Changed))
        },
    )
    .map_err(to_rhai)
}

/// A live run about to wait for a person at a manual step: the webhooks hear of it (a run
/// without a terminal stops instead, and says so when it ends).
fn announce_manual(exec: &Exec, title: Option<&str>, message: &str) {
    let prompting = exec.prompting();
    if exec.mode() != crate::exec::Mode::Live
        || !prompting.interactive
        || prompting.acks.covering(title, message).is_some()
    {
        return;
    }
    let (Ok(config), Some(run)) = (exec.config(), exec.run_context()) else { return };
    let step = Exec::current_step().map(|f| format!("{} {}", f.number, f.title));
    crate::notify::announce(
        config,
        crate::notify::RunEvent {
            event: "manual",
            run_id: run.run_id.clone(),
            runbook: String::new(),
            text: format!(
                "drscript: run {} waits for a person at {}: {}",
                run.run_id,
                step.as_deref().unwrap_or("a manual step"),
                message.lines().next().unwrap_or_default()
            ),
            step,
            error: None,
            resume: None,
            downtime_seconds: None,
        },
    );
}

fn wait_until(ctx: &NativeCallContext, condition: &FnPtr, options: &Map) -> RhaiResult<()> {
    let exec = exec_of(ctx);
    let number = |key: &str, default: f64| -> RhaiResult<f64> {
        match options.get(key) {
            None => Ok(default),
            Some(v) => v
                .as_float()
                .or_else(|_| v.as_int().map(|i| i as f64))
                .map_err(|t| to_rhai(Error::Usage(format!("wait_until: `{key}` must be a number, not {t}")))),
        }
    };
    let timeout = number("timeout", 300.0)?;
    let max_interval = number("interval", 2.0)?.max(0.01);
    let what = options.get("what").map_or_else(|| "condition".to_string(), |w| w.to_string());
    exec.change(
        "wait_until",
        &what,
        &format!("(at most {timeout}s)"),
        || (),
        || {
            let started = Instant::now();
            let mut pause = 0.1f64.min(max_interval);
            loop {
                let ok = condition.call_within_context::<Dynamic>(ctx, ()).map_err(|e| {
                    failure_of(&e).map_or_else(|| Error::Other(e.to_string()), |f| Error::Other(f.to_string()))
                })?;
                if ok.as_bool().unwrap_or(false) {
                    return Ok(((), Outcome::Changed));
                }
                if started.elapsed().as_secs_f64() >= timeout {
                    return Err(Error::action(
                        "wait_until",
                        what.clone(),
                        format!("not true within {timeout}s (last value: {ok})"),
                    ));
                }
                exec.sleep(Duration::from_secs_f64(pause))?;
                pause = (pause * 2.0).min(max_interval);
            }
        },
    )
    .map_err(to_rhai)
}

fn param(ctx: &NativeCallContext, name: &str, default: Dynamic) -> RhaiResult {
    let exec = exec_of(ctx);
    let Some(raw) = exec.var(name) else { return Ok(default) };
    let bad = |expected: &str| {
        to_rhai(Error::Usage(format!("--var {name}={raw}: expected {expected} (the script's default is {default})")))
    };
    if default.is_int() {
        raw.trim().parse::<i64>().map(Dynamic::from).map_err(|_| bad("an integer"))
    } else if default.is_float() {
        raw.trim().parse::<f64>().map(Dynamic::from).map_err(|_| bad("a number"))
    } else if default.is_bool() {
        match raw.trim().to_ascii_lowercase().as_str() {
            "true" | "yes" | "1" => Ok(Dynamic::TRUE),
            "false" | "no" | "0" => Ok(Dynamic::FALSE),
            _ => Err(bad("true or false")),
        }
    } else {
        Ok(Dynamic::from(raw.clone()))
    }
}

fn log(ctx: &NativeCallContext, level: &str, message: &str) -> RhaiResult<()> {
    let exec = exec_of(ctx);
    if exec.mode() == Mode::Plan {
        // A warning belongs in the plan: the operator reads it before anything runs.
        if level == "warn" {
            note_in_plan(&exec, format!("warning: {message}"));
        }
        tracing::debug!(target: "script", "{message}");
        return Ok(());
    }
    if level == "warn" {
        tracing::warn!(target: "script", "{message}");
    } else {
        tracing::info!(target: "script", "{message}");
    }
    exec.journal(Event::Log { level: level.to_string(), message: message.to_string() }).map_err(to_rhai)
}
