//! The native functions scripts call, one plugin module per family.
//!
//! Every function carries a `///` doc comment: the engine's metadata turns them into
//! `drscript docs`, the REPL's `:help` and editor definition files. Each primitive is a thin
//! wrapper: it finds the [`Exec`] of the run, describes its action to it, and calls a plain Rust
//! API that tests can drive without Rhai.

pub mod azure;
pub mod db;
pub mod dns;
pub mod environment;
pub mod flow;
pub mod kube;
pub mod notify;
pub mod scheduler;
pub mod shares;
pub mod site;
pub mod sync;

use std::sync::Arc;

use rhai::{Dynamic, EvalAltResult, NativeCallContext, Position};

use crate::exec::Exec;
use drscript_base::error::Error;

/// The handle to the run's [`Exec`], stored as the engine's default tag.
#[derive(Clone)]
pub struct ExecHandle(pub Arc<Exec>);

/// The [`Exec`] of the run that is calling a native function.
pub fn exec_of(ctx: &NativeCallContext) -> Arc<Exec> {
    ctx.tag()
        .and_then(|tag| tag.read_lock::<ExecHandle>().map(|h| h.0.clone()))
        .expect("the engine builder always installs the execution context")
}

/// A drscript error travelling through Rhai, recovered intact at the top of the run.
#[derive(Clone, Debug)]
pub struct Failure(pub Arc<Error>);

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Turns a drscript error into a Rhai runtime error (the position is filled in by Rhai).
pub fn to_rhai(error: Error) -> Box<EvalAltResult> {
    Box::new(EvalAltResult::ErrorRuntime(Dynamic::from(Failure(Arc::new(error))), Position::NONE))
}

/// The drscript error inside a Rhai error, if it carries one.
pub fn failure_of(err: &EvalAltResult) -> Option<Arc<Error>> {
    match err {
        EvalAltResult::ErrorRuntime(value, _) => value.read_lock::<Failure>().map(|f| f.0.clone()),
        EvalAltResult::ErrorInFunctionCall(_, _, inner, _) | EvalAltResult::ErrorInModule(_, inner, _) => {
            failure_of(inner)
        }
        _ => None,
    }
}

/// Registers every primitive family on `engine`.
pub fn register_all(engine: &mut rhai::Engine) {
    engine.register_type_with_name::<Failure>("Failure");
    engine.register_fn("to_string", |f: &mut Failure| f.to_string());
    engine.register_global_module(rhai::exported_module!(flow::flow_api).into());
    environment::register(engine);
    engine.register_global_module(rhai::exported_module!(notify::notify_api).into());
    engine.register_global_module(rhai::exported_module!(kube::kube_api).into());
    engine.register_global_module(rhai::exported_module!(scheduler::scheduler_api).into());
    engine.register_global_module(rhai::exported_module!(sync::sync_api).into());
    engine.register_global_module(rhai::exported_module!(shares::shares_api).into());
    engine.register_global_module(rhai::exported_module!(site::site_api).into());
}
