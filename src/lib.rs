//! drscript: disaster-recovery runbooks as editable, testable Rhai scripts.
//!
//! The binary is a thin wrapper around [`main`]; everything lives here so that the tests and the
//! binary share one path.

pub mod config;
pub mod diagnostic;
pub mod error;
pub mod exec;
pub mod journal;
pub mod lock;
pub mod plan;
pub mod redact;
pub mod secret;
pub mod state;
pub mod sync;
pub mod azure_files;
pub mod sandbox_files;

pub use error::{Error, Result};

/// Runs the command line and returns the process exit code.
pub fn main() -> i32 {
    0
}
