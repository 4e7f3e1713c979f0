//! The failure of one operation on one endpoint, classified so the engine knows whether a retry
//! can help.

#[derive(Debug, Clone)]
pub struct OpError {
    /// Already redacted, URL queries dropped: names the object, the URL and the status.
    pub message: String,
    /// Timeouts, connection resets, 429/5xx: worth another attempt.
    pub retryable: bool,
    pub not_found: bool,
}

impl OpError {
    pub fn new(message: impl AsRef<str>, retryable: bool) -> OpError {
        OpError { message: drscript_base::redact::for_error(message), retryable, not_found: false }
    }

    pub fn not_found(message: impl AsRef<str>) -> OpError {
        OpError { message: drscript_base::redact::for_error(message), retryable: false, not_found: true }
    }

    pub fn io(what: &str, e: &std::io::Error) -> OpError {
        use std::io::ErrorKind::*;
        let retryable = matches!(e.kind(), Interrupted | TimedOut | WouldBlock);
        let mut err = OpError::new(format!("{what}: {e}"), retryable);
        err.not_found = e.kind() == NotFound;
        err
    }
}

impl std::fmt::Display for OpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

pub type OpResult<T> = std::result::Result<T, OpError>;
