//! Integration tests: every test drives the built `drscript` binary through [`test::Test`].

mod bad_config;
mod bad_input;
mod check;
mod cli_misuse;
mod demo;
mod docs;
mod flow;
mod imports;
mod lock;
mod logs;
mod notify;
mod plan;
mod receiver;
mod repl;
mod resume;
mod secrets;
mod security;
mod test;
