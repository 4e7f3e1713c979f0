//! The built binary driven end to end: runbooks against the sandbox in its own process, situations, crashes, faults, the terminal view, and every command's misuse.
#![allow(clippy::print_stdout, clippy::print_stderr)] // a test or benchmark reports on its own terminal

pub use drscript_test_support::test;

mod azure_rhai;
mod bad_config;
mod bad_input;
mod check;
mod cli_misuse;
mod crash;
mod db_sandbox;
mod demo;
mod dns_resolvers;
mod docs;
mod entra;
mod faults;
mod flow;
mod imports;
mod kube_rhai;
mod lock;
mod logs;
mod notify;
mod plan;
mod receiver;
mod repl;
mod resume;
mod runbooks;
mod sandbox_cli;
mod secrets;
mod security;
mod shared_state;
mod situations;
mod sync_script;
mod terminal_view;
mod walk;
