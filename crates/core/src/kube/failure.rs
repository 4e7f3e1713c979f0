//! What went wrong talking to a cluster, whether it is worth retrying, and how to say it.
//!
//! 429, 5xx and connection failures are retried with exponential backoff; a refused connection
//! only a few times, so that an API server that is down is reported within seconds, not at the
//! end of a five-minute scale timeout. 401/403/404 are never retried and name the context,
//! namespace and object.

use std::future::Future;
use std::time::Duration;

use super::cluster::Cluster;
use super::kind::Kind;
use drscript_base::error::Error;
use drscript_base::redact::redacted;

/// How a failed call is handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// 429 or 5xx: the server is there but busy or broken for a moment.
    Busy,
    /// No answer at all: refused, reset, DNS, TLS handshake.
    Unreachable,
    /// 409: someone else wrote first; re-read and try again.
    Conflict,
    /// Anything else: retrying will not help.
    Fatal,
}

pub fn classify(e: &kube::Error) -> Class {
    match e {
        kube::Error::Api(s) if s.code == 429 || s.code >= 500 => Class::Busy,
        kube::Error::Api(s) if s.code == 409 => Class::Conflict,
        kube::Error::Api(_) => Class::Fatal,
        kube::Error::HyperError(_) | kube::Error::Service(_) | kube::Error::ReadEvents(_) => Class::Unreachable,
        _ => Class::Fatal,
    }
}

/// The message for a failed call against `kind/name` (or the namespace when `name` is empty).
pub fn describe(cluster: &Cluster, kind: Kind, name: &str, e: &kube::Error) -> String {
    let message = match e {
        kube::Error::Api(s) => match s.code {
            401 => format!(
                "401 Unauthorized: the API server {} rejected the credentials of context `{}` (kubeconfig {}); log in again or fix the user of that context",
                cluster.server, cluster.context, cluster.kubeconfig
            ),
            403 => forbidden(cluster, kind, name, &s.message),
            404 => format!(
                "404 Not Found: {kind} `{name}` does not exist in namespace `{}` (context `{}`)",
                cluster.namespace, cluster.context
            ),
            code => format!("{code} {}: {}", s.reason, s.message),
        },
        kube::Error::HyperError(_) | kube::Error::Service(_) => {
            format!(
                "cannot reach the API server {} (context `{}`): {}",
                cluster.server,
                cluster.context,
                drscript_base::error::chain(e)
            )
        }
        other => drscript_base::error::chain(other),
    };
    redacted(message)
}

/// A 403 as the operator needs it: who (the identity the API server saw), may not do what (verb
/// and resource), where, through which context. The API server's authorizer says it as
/// `User "U" cannot VERB resource "R" in API group "G" in the namespace "NS"`.
fn forbidden(cluster: &Cluster, kind: Kind, name: &str, message: &str) -> String {
    static RBAC: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r#"User "([^"]*)" cannot (\S+) resource "([^"]*)"(?: in API group "([^"]*)")?"#).unwrap()
    });
    match RBAC.captures(message) {
        Some(c) => {
            let group = match c.get(4).map_or("", |g| g.as_str()) {
                "" => "core".to_string(),
                g => g.to_string(),
            };
            format!(
                "403 Forbidden: identity `{}` may not `{}` `{}` (API group {group}) in namespace `{}` ({kind}/{name}, context `{}`, kubeconfig {}); its RBAC role must allow it, or use a context with more rights",
                &c[1], &c[2], &c[3], cluster.namespace, cluster.context, cluster.kubeconfig
            )
        }
        None => format!(
            "403 Forbidden: context `{}` may not do this to {kind}/{name} in namespace `{}`: {message}",
            cluster.context, cluster.namespace
        ),
    }
}

/// Retry budget per class: busy servers get more patience than absent ones.
fn attempts(class: Class) -> u32 {
    match class {
        Class::Busy => 6,
        Class::Unreachable => 3,
        Class::Conflict => 5,
        Class::Fatal => 1,
    }
}

/// The API server's waits (`drscript_base::retry`): 0.2 s doubling to 2 s; the tries are the
/// class's ([`attempts`]).
const POLICY: drscript_base::retry::Policy =
    drscript_base::retry::Policy::new(6, Duration::from_millis(200), Duration::from_secs(2));

/// The wait after the `n`th consecutive failure of a watch.
pub fn backoff(n: u32) -> Duration {
    POLICY.backoff(n)
}

/// Runs `call`, retrying 429, 5xx and connection failures with backoff. Conflicts are returned
/// to the caller, who must re-read before writing again.
pub async fn retrying<T, F, Fut>(
    primitive: &str,
    cluster: &Cluster,
    kind: Kind,
    name: &str,
    mut call: F,
) -> Result<T, CallError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, kube::Error>>,
{
    let mut tries = POLICY.start();
    loop {
        match call().await {
            Ok(v) => return Ok(v),
            Err(e) => {
                let class = classify(&e);
                let attempt = tries.tries();
                if class == Class::Conflict {
                    return Err(CallError::Conflict);
                }
                let wait = if attempt >= attempts(class) { None } else { tries.next(None) };
                let Some(wait) = wait else {
                    let mut message = describe(cluster, kind, name, &e);
                    if attempt > 1 {
                        message.push_str(&format!(" (after {attempt} attempts)"));
                    }
                    return Err(CallError::Failed(Error::action(primitive, cluster.target(kind, name), message)));
                };
                tracing::debug!(
                    "{primitive} {}: {}; retrying",
                    cluster.target(kind, name),
                    describe(cluster, kind, name, &e)
                );
                tokio::time::sleep(wait).await;
            }
        }
    }
}

/// A call that failed for good, or a conflict to be resolved by re-reading.
#[derive(Debug)]
pub enum CallError {
    Conflict,
    Failed(Error),
}

impl CallError {
    /// Turns a conflict into an error too (for calls that do not expect one).
    pub fn into_error(self, primitive: &str, target: String) -> Error {
        match self {
            CallError::Failed(e) => e,
            CallError::Conflict => {
                Error::action(primitive, target, "409 Conflict: the object was modified concurrently")
            }
        }
    }
}
