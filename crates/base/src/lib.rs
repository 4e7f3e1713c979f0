//! The ground floor of drscript: the one error type and its exit codes, the redaction every
//! output passes through, secret references, rustc-style diagnostics, the sandbox DNS zone
//! file's format, and the few system calls the other crates need ([`sys`]).
//!
//! It may import nothing of drscript and holds no I/O policy: no network, no terminal, no
//! configuration. Every other crate builds on it.

pub mod diagnostic;
pub mod dns_zone;
pub mod error;
pub mod redact;
pub mod secret;
pub mod sys;

pub use error::{Error, Result};
