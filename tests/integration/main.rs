//! Integration tests: every test drives the built `drscript` binary through [`test::Test`].

mod bad_config;
mod bad_input;
mod check;
mod demo;
mod cli_misuse;
mod docs;
mod flow;
mod imports;
mod lock;
mod notify;
mod receiver;
mod logs;
mod plan;
mod repl;
mod resume;
mod secrets;
mod security;
mod test;
