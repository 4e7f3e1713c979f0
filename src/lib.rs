//! drscript: disaster-recovery runbooks as editable, testable Rhai scripts — the command line.
//!
//! The binary is a thin wrapper around [`main`]. This crate is the only one that talks to the
//! terminal: it parses the command line (`cli`), validates it into options (`app`), and hands
//! them to `drscript-core`, whose runs it shows through the live view (`view`, installed as
//! core's run observer). It also holds the commands that are only a screen over another crate:
//! the REPL, the demo, the docs, `status`/`runs`, `sync` and `sandbox`. Every crate of the
//! workspace may be imported here; none imports this one.

pub mod app;
pub mod cli;
pub mod demo;
pub mod docs;
pub mod init;
pub mod logging;
pub mod output;
pub mod repl;
pub mod sandbox_like;
pub mod status;
pub mod sync_cmd;
pub mod view;

pub use app::main;
pub use drscript_base::{Error, Result};
