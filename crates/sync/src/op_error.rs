//! The failure of one operation on one endpoint, classified so the engine knows whether a retry
//! can help.

#[derive(Debug, Clone)]
pub struct OpError {
    /// Already redacted, URL queries dropped: names the object, the URL and the status.
    pub message: String,
    /// Timeouts, connection resets, 429/5xx: worth another attempt.
    pub retryable: bool,
    pub not_found: bool,
    /// Every other operation on the endpoint will fail the same way (a refused credential, the
    /// share or container gone): the sync stops at once instead of failing file by file.
    pub fatal: bool,
    /// The wait the service asked for before the next try.
    pub retry_after: Option<std::time::Duration>,
}

impl OpError {
    pub fn new(message: impl AsRef<str>, retryable: bool) -> OpError {
        OpError {
            message: drscript_base::redact::for_error(message),
            retryable,
            not_found: false,
            fatal: false,
            retry_after: None,
        }
    }

    pub fn not_found(message: impl AsRef<str>) -> OpError {
        OpError { not_found: true, ..OpError::new(message, false) }
    }

    /// A failed request, classified by its status (`None`: no answer, worth a retry) and the
    /// service's error code.
    pub fn http(
        message: impl AsRef<str>,
        status: Option<u16>,
        code: Option<&str>,
        retry_after: Option<std::time::Duration>,
    ) -> OpError {
        OpError {
            retryable: status.is_none_or(drscript_base::retry::retryable_status)
                && code != Some(crate::azure_files::client::NO_TOKEN)
                && code != Some(UNTRUSTED),
            not_found: status == Some(404),
            fatal: fatal(status, code),
            retry_after,
            ..OpError::new(message, false)
        }
    }

    /// A chunk of a source's stream that failed on its way: a remote source's stream carries
    /// the request's own failure ([`OpError::into_io`]: a 503 on a range, with its
    /// `Retry-After`), which keeps its classification; anything else is an I/O error.
    pub fn from_stream(what: &str, e: &std::io::Error) -> OpError {
        match e.get_ref().and_then(|inner| inner.downcast_ref::<OpError>()) {
            Some(op) => OpError { message: drscript_base::redact::for_error(format!("{what}: {op}")), ..op.clone() },
            None => OpError::io(what, e),
        }
    }

    /// For a stream of content: the failure as an I/O error that [`OpError::from_stream`] reads
    /// back whole.
    pub fn into_io(self) -> std::io::Error {
        std::io::Error::other(self)
    }

    pub fn io(what: &str, e: &std::io::Error) -> OpError {
        use std::io::ErrorKind::*;
        let retryable = matches!(e.kind(), Interrupted | TimedOut | WouldBlock);
        let mut err = OpError::new(format!("{what}: {e}"), retryable);
        err.not_found = e.kind() == NotFound;
        err
    }
}

/// The code of a connection refused because the service's certificate is not trusted: no retry
/// can help, and every other request would meet the same certificate.
pub const UNTRUSTED: &str = "UntrustedCertificate";

/// Whether a transport failure's text (its causes) is a certificate the client does not trust.
/// The TLS stack says so only in words: "invalid peer certificate: UnknownIssuer", ...
pub fn untrusted_certificate(chain: &str) -> bool {
    chain.contains("invalid peer certificate") || chain.contains("certificate verify failed")
}

/// A status that no other file of the sync can escape: the credential refused (401, 403), or the
/// share or container itself missing (a 404 naming it, not a file that vanished meanwhile).
fn fatal(status: Option<u16>, code: Option<&str>) -> bool {
    if code == Some(crate::azure_files::client::NO_TOKEN) || code == Some(UNTRUSTED) {
        return true;
    }
    match status {
        Some(401 | 403) => true,
        Some(404) => matches!(code, Some("ShareNotFound" | "ContainerNotFound" | "ShareBeingDeleted")),
        _ => false,
    }
}

impl std::fmt::Display for OpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for OpError {}

pub type OpResult<T> = std::result::Result<T, OpError>;

/// Runs `op` until it succeeds, fails for good (not retryable, or fatal), `retry`'s budget is
/// spent, or `stopped` says the sync gave up meanwhile. Every operation of the sync engine is
/// idempotent as a whole (a listing, a whole file's copy from its start, a deletion), so each
/// may be tried again. Returns the last outcome and the tries made.
pub async fn retrying<T, Fut>(
    mut retry: drscript_base::retry::Retry,
    what: &str,
    stopped: impl Fn() -> bool,
    mut op: impl FnMut() -> Fut,
) -> (OpResult<T>, u32)
where
    Fut: std::future::Future<Output = OpResult<T>>,
{
    loop {
        match op().await {
            Err(e) if e.retryable && !e.fatal && !stopped() => match retry.next(e.retry_after) {
                Some(wait) => {
                    tracing::debug!("sync: {what}: {e}; try {} in {:.2} s", retry.tries(), wait.as_secs_f64());
                    tokio::time::sleep(wait).await;
                }
                None => return (Err(e), retry.tries()),
            },
            other => return (other, retry.tries()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_range_of_a_download_keeps_its_status_through_the_stream() {
        let busy = OpError::http(
            "GET x: 503 ServerBusy",
            Some(503),
            Some("ServerBusy"),
            Some(std::time::Duration::from_secs(1)),
        );
        let e = OpError::from_stream("cannot read the source of x", &busy.into_io());
        assert!(e.retryable && !e.fatal, "{e}");
        assert_eq!(e.retry_after, Some(std::time::Duration::from_secs(1)));
        assert!(e.message.starts_with("cannot read the source of x: GET x: 503"), "{e}");
        let gone = OpError::http("GET x: 403", Some(403), Some("AuthenticationFailed"), None);
        assert!(OpError::from_stream("cannot read", &gone.into_io()).fatal);
        let disk = std::io::Error::other("bad sector");
        assert!(!OpError::from_stream("cannot read", &disk).retryable);
    }
}
