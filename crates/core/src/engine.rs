//! The one engine builder, used by run, plan, check, the REPL, docs and the tests.

use std::path::PathBuf;
use std::sync::Arc;

use rhai::Engine;

use crate::exec::Exec;
use crate::journal::Event;
use crate::modules::{Resolver, Sources};
use crate::primitives::{self, ExecHandle};

/// Limits that stop runaway scripts with a clear message. A runbook needs a few thousand
/// operations; loops that poll use `wait_until`, whose waiting costs no operations.
pub const MAX_OPERATIONS: u64 = 20_000_000;
pub const MAX_CALL_LEVELS: usize = 64;
pub const MAX_STRING_SIZE: usize = 4 * 1024 * 1024;
pub const MAX_ARRAY_SIZE: usize = 1_000_000;
pub const MAX_MAP_SIZE: usize = 100_000;

#[derive(Debug, Clone, Default)]
pub struct EngineOptions {
    /// The runbook's folder: modules next to it win over the stdlib.
    pub script_dir: Option<PathBuf>,
    /// A folder that overrides the embedded stdlib.
    pub stdlib_dir: Option<PathBuf>,
}

/// Builds an engine bound to `exec`. `sources` collects every module text it loads.
pub fn build(exec: Arc<Exec>, options: &EngineOptions, sources: Sources) -> Engine {
    let mut engine = Engine::new();
    engine
        .set_max_operations(MAX_OPERATIONS)
        .set_max_call_levels(MAX_CALL_LEVELS)
        .set_max_expr_depths(128, 64)
        .set_max_string_size(MAX_STRING_SIZE)
        .set_max_array_size(MAX_ARRAY_SIZE)
        .set_max_map_size(MAX_MAP_SIZE)
        .set_strict_variables(true)
        .set_fail_on_invalid_map_property(true);

    let print_exec = exec.clone();
    engine.on_print(move |text| {
        if print_exec.mode() == crate::exec::Mode::Plan {
            tracing::debug!(target: "script", "{text}");
            return;
        }
        tracing::info!(target: "script", "{text}");
        let _ = print_exec.journal(Event::Log { level: "info".into(), message: text.to_string() });
    });
    engine.on_debug(|text, source, pos| {
        tracing::debug!(target: "script", "{}{pos:?}: {text}", source.map(|s| format!("{s} ")).unwrap_or_default());
    });
    let progress_exec = exec.clone();
    engine.on_progress(move |_| progress_exec.is_cancelled().then(|| "interrupted (Ctrl-C)".into()));

    engine.set_module_resolver(Resolver::new(options.script_dir.clone(), options.stdlib_dir.clone(), sources));
    engine.set_default_tag(rhai::Dynamic::from(ExecHandle(exec)));
    primitives::register_all(&mut engine);
    primitives::dns::register(&mut engine);
    primitives::azure::register(&mut engine);
    primitives::db::register(&mut engine);
    engine
}
