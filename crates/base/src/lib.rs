//! The ground floor of drscript: the one error type and its exit codes, the redaction every
//! output passes through, the clients' one retry policy ([`retry`]: how long to wait, never the
//! waiting), secret references, rustc-style diagnostics, the sandbox DNS zone file's format, and
//! the few system calls the other crates need ([`sys`]).
//!
//! It may import nothing of drscript and does no I/O of its own: no network, no terminal, no
//! configuration. Every other crate builds on it.

pub mod diagnostic;
pub mod dns_zone;
pub mod error;
pub mod redact;
pub mod retry;
pub mod secret;
pub mod sys;

pub use error::{Error, Result};
