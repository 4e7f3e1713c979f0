//! drscript: disaster-recovery runbooks as editable, testable Rhai scripts.
//!
//! The binary is a thin wrapper around [`main`]; everything lives here so that the tests and the
//! binary share one path.

pub mod azure;
pub mod config;
pub mod db;
pub mod diagnostic;
pub mod dns;
pub mod error;
pub mod exec;
pub mod journal;
pub mod lock;
pub mod plan;
pub mod redact;
/// Shim until the sandbox's own `sandbox/mod.rs` lands from main: only this branch's files.
pub mod sandbox {
    pub mod arm;
    pub mod dns_zone;
}
pub mod secret;
pub mod state;

pub use error::{Error, Result};

/// Runs the command line and returns the process exit code.
pub fn main() -> i32 {
    0
}
