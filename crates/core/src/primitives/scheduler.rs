//! `pause_scheduler`, `resume_scheduler`, `scheduler_state`: the Adeptia scheduler of an
//! environment, through its gateway (see [`crate::scheduler`]).

use std::path::PathBuf;

use rhai::plugin::*;
use rhai::{Dynamic, EvalAltResult, Map, NativeCallContext};

use super::kube::environment_arg;
use super::{exec_of, to_rhai};
use crate::exec::{Exec, Outcome};
use crate::scheduler::{Action, Gateway, describe_target, scheduler_state, set_scheduler};
use drscript_base::error::Result;

type RhaiResult<T = Dynamic> = std::result::Result<T, Box<EvalAltResult>>;

#[export_module]
pub mod scheduler_api {
    /// Pauses the scheduler of `env` (an environment or its name) with the gateway's
    /// `/event/schedulerservice?query=Pause` call, authenticated as the config says; the state is
    /// read back where the gateway allows and the call fails if it did not change. Already
    /// paused: nothing is sent. Returns `#{target, action, before, after, changed, verified}`.
    #[rhai_fn(return_raw)]
    pub fn pause_scheduler(ctx: NativeCallContext, env: Dynamic) -> RhaiResult {
        super::run(&exec_of(&ctx), env, Action::Pause).map_err(to_rhai)
    }

    /// Resumes the scheduler of `env` (`query=Resume`); otherwise like `pause_scheduler`.
    #[rhai_fn(return_raw)]
    pub fn resume_scheduler(ctx: NativeCallContext, env: Dynamic) -> RhaiResult {
        super::run(&exec_of(&ctx), env, Action::Resume).map_err(to_rhai)
    }

    /// The scheduler state of `env`: `"PAUSED"` or `"RUNNING"`, read with the environment's
    /// `scheduler_status_query` (`Status` by default, an assumption of drscript's); `"UNKNOWN"`,
    /// with a warning naming the assumption, when the gateway answers without a state. An
    /// unreachable gateway is an error. In a plan: `""`.
    #[rhai_fn(return_raw)]
    pub fn scheduler_state(ctx: NativeCallContext, env: Dynamic) -> RhaiResult<String> {
        super::state(&exec_of(&ctx), env).map_err(to_rhai)
    }
}

fn config_dir(exec: &Exec) -> PathBuf {
    exec.config().ok().and_then(|c| c.path.parent().map(PathBuf::from)).unwrap_or_default()
}

fn run(exec: &Exec, env: Dynamic, action: Action) -> Result<Dynamic> {
    let env = environment_arg(exec, &env)?;
    let base = config_dir(exec);
    // Secrets are local: check them in every mode so that a rehearsal finds a missing one.
    if let Some(secret) = Gateway::new(&env, &base)?.secret() {
        exec.secret(secret)?;
    }
    let target = describe_target(&env);
    let query = match action {
        Action::Pause => "Pause",
        Action::Resume => "Resume",
    };
    let detail = format!("GET /event/schedulerservice?query={query}");
    let described = || {
        let mut m = Map::new();
        m.insert("target".into(), target.clone().into());
        m.insert("action".into(), query.into());
        m.insert("changed".into(), Dynamic::FALSE);
        m.insert("planned".into(), Dynamic::TRUE);
        Dynamic::from(m)
    };
    exec.picture(|p| {
        let state = if action == Action::Pause { "PAUSED" } else { "RUNNING" };
        p.schedulers.insert(env.name.clone(), state.to_string());
    });
    // The log line names the environment's gateway; its URL is for -v, the journal and errors.
    let shown = format!("{} gateway", env.name);
    exec.change_shown(action.primitive(), &target, &shown, &detail, described, || {
        let report = exec.block_on(set_scheduler(&env, &base, action))?;
        let outcome = if report.changed { Outcome::Changed } else { Outcome::Unchanged };
        Ok((rhai::serde::to_dynamic(&report).unwrap_or(Dynamic::UNIT), outcome, None))
    })
}

fn state(exec: &Exec, env: Dynamic) -> Result<String> {
    let env = environment_arg(exec, &env)?;
    let base = config_dir(exec);
    if let Some(secret) = Gateway::new(&env, &base)?.secret() {
        exec.secret(secret)?;
    }
    exec.query("scheduler_state", &describe_target(&env), String::new, || exec.block_on(scheduler_state(&env, &base)))
}
