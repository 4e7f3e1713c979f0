//! drscript: disaster-recovery runbooks as editable, testable Rhai scripts.
//!
//! The binary is a thin wrapper around [`main`]; everything lives here so that the tests and the
//! binary share one path. Input flows one way: command line (`cli`) → validated options (`app`)
//! → a prepared, linted script (`script`, `lint`) → a rehearsal and a run (`runner`) through one
//! engine (`engine`) whose primitives consult one execution context (`exec`).

pub mod app;
pub mod azure;
pub mod azure_files;
pub mod cli;
pub mod config;
pub mod db;
pub mod demo;
pub mod diagnostic;
pub mod dns;
pub mod docs;
pub mod engine;
pub mod error;
pub mod estimate;
pub mod exec;
pub mod journal;
pub mod kube;
pub mod lint;
pub mod lock;
pub mod logging;
pub mod modules;
pub mod output;
pub mod plan;
pub mod primitives;
pub mod prompt;
pub mod redact;
pub mod repl;
pub mod report;
pub mod report_html;
pub mod runner;
pub mod sandbox;
pub mod scheduler;
pub mod script;
pub mod script_error;
pub mod secret;
pub mod site;
pub mod state;
pub mod status;
pub mod sync;
pub mod view;

pub use app::main;
pub use error::{Error, Result};
