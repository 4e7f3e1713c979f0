//! An Azure Resource Manager emulator on 127.0.0.1: storage accounts with geo-replication
//! statistics and account failover, and Azure DNS zones (public and private) with record sets.
//!
//! It follows the documented ARM patterns rather than any one SDK's expectations: bearer tokens
//! (401 without or with a wrong one), `api-version` required, error bodies
//! `{"error":{"code","message"}}`, long-running operations answered `202 Accepted` with
//! `Azure-AsyncOperation`, `Location` and `Retry-After` and an operation status resource, etags
//! on record sets with `If-Match` / `If-None-Match` (412 on mismatch). Fault knobs let tests and
//! rehearsals see throttling (429), missing permissions (403) and failed operations.
//!
//! Failover is simulated in time: it completes `failover_duration` after it starts, as observed
//! by the next request (no background task to keep in step).

mod dns;
mod storage;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::sync::oneshot;

pub use dns::ZoneSeed;
pub use storage::AccountSeed;

use drscript_base::error::{Error, Result};

/// How to start the emulator.
#[derive(Debug, Clone)]
pub struct ArmOptions {
    /// The bearer token every request must carry.
    pub token: String,
    /// How long an account failover takes.
    pub failover_duration: Duration,
    /// `Retry-After` seconds on accepted operations and status polls.
    pub retry_after_secs: u32,
    /// Answer long-running operations with `Location` only (no `Azure-AsyncOperation`).
    pub location_only: bool,
    pub accounts: Vec<AccountSeed>,
    pub zones: Vec<ZoneSeed>,
    /// 0 for an ephemeral port.
    pub port: u16,
    /// Also accept access tokens of the sandbox's Entra ID emulator for
    /// `https://management.azure.com` (`sandbox up --entra`).
    pub entra: Option<crate::entra::TokenVerifier>,
}

impl Default for ArmOptions {
    fn default() -> Self {
        ArmOptions {
            token: String::new(),
            failover_duration: Duration::from_secs(5),
            retry_after_secs: 1,
            location_only: false,
            accounts: Vec::new(),
            zones: Vec::new(),
            port: 0,
            entra: None,
        }
    }
}

/// Switches that make the emulator misbehave on purpose.
#[derive(Debug, Default)]
pub struct Faults {
    /// Answer the next N requests with 429 and `Retry-After`.
    pub throttle_next: AtomicU32,
    /// Answer the next N requests with 503.
    pub unavailable_next: AtomicU32,
    /// Answer every request with 403 AuthorizationFailed.
    pub forbidden: AtomicBool,
    /// The next failover operation ends `Failed`.
    pub fail_next_failover: AtomicBool,
    /// Start the next failover, then answer 500 instead of 202: the client cannot tell
    /// whether its request took effect.
    pub error_after_next_failover: AtomicBool,
    /// Start the next failover, then close the connection without answering (a proxy or a
    /// network that lost the answer).
    pub drop_after_next_failover: AtomicBool,
    /// After starting the next failover, answer the next N requests with 503 (the region in
    /// trouble: the client cannot even read the account to learn what happened).
    pub outage_after_next_failover: AtomicU32,
}

/// Marks a response that must not be sent: the connection is closed instead.
#[derive(Clone, Copy)]
struct DropConnection;

pub(crate) struct State {
    options: ArmOptions,
    faults: Arc<Faults>,
    storage: Mutex<storage::Storage>,
    dns: Mutex<dns::Zones>,
    /// Requests seen, by method and path (for tests and `sandbox status`).
    requests: Mutex<Vec<String>>,
}

/// A running emulator; stops when [`ArmHandle::stop`] is called or it is dropped.
pub struct ArmHandle {
    pub url: String,
    pub addr: SocketAddr,
    state: Arc<State>,
    shutdown: Option<oneshot::Sender<()>>,
}

impl ArmHandle {
    pub fn faults(&self) -> &Faults {
        &self.state.faults
    }

    /// The whole simulated state (accounts, zones), as `sandbox status --json` shows it.
    pub fn state_json(&self) -> Value {
        let storage = self.state.storage.lock().unwrap().to_json();
        let zones = self.state.dns.lock().unwrap().to_json();
        json!({ "storage_accounts": storage, "dns_zones": zones })
    }

    /// `METHOD path?query` of every request so far, with any `if-match=`/`if-none-match=`.
    pub fn requests(&self) -> Vec<String> {
        self.state.requests.lock().unwrap().clone()
    }

    pub fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

impl Drop for ArmHandle {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// Starts the emulator on the current tokio runtime.
pub async fn start(options: ArmOptions) -> Result<ArmHandle> {
    if options.token.len() < 8 {
        return Err(Error::Other("ARM emulator: the bearer token must be at least 8 characters".into()));
    }
    drscript_base::redact::register(&options.token);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", options.port))
        .await
        .map_err(|e| Error::io(format!("ARM emulator: binding 127.0.0.1:{}", options.port), e))?;
    let addr = listener.local_addr().map_err(|e| Error::io("ARM emulator address", e))?;
    let state = Arc::new(State {
        storage: Mutex::new(storage::Storage::new(&options.accounts)),
        dns: Mutex::new(dns::Zones::new(&options.zones)),
        faults: Arc::new(Faults::default()),
        requests: Mutex::new(Vec::new()),
        options,
    });
    let app_state = state.clone();
    let app = axum::Router::new().fallback(move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
        let state = app_state.clone();
        async move {
            let response = handle(&state, addr, method, uri, headers, body);
            if response.extensions().get::<DropConnection>().is_some() {
                // Unwinding ends the task that serves this connection, which closes it with no
                // answer sent; `resume_unwind` skips the panic hook, so nothing is printed.
                std::panic::resume_unwind(Box::new("ARM emulator: the answer is dropped on purpose"));
            }
            response
        }
    });
    let (tx, rx) = oneshot::channel::<()>();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = rx.await;
            })
            .await;
    });
    Ok(ArmHandle { url: format!("http://{addr}"), addr, state, shutdown: Some(tx) })
}

/// The sandbox's subscription, resource group and account (`[storage.prod]` of its config).
pub const SANDBOX_SUBSCRIPTION: &str = "00000000-0000-0000-0000-00000000d0d0";
pub const SANDBOX_RESOURCE_GROUP: &str = "rg-adeptia";
pub const SANDBOX_ACCOUNT: &str = "adeptiaprodfiles";
/// Where the sandbox keeps the emulator's bearer token, relative to its folder.
pub const SANDBOX_TOKEN_PATH: &str = "secrets/arm.token";

/// Starts the emulator for `drscript sandbox`: one RA-GRS account (eastus → westus) whose
/// failover takes `failover_duration`, a fresh token written to `dir/secrets/arm.token`.
/// Returns the handle and the `[azure]` and `[storage.prod]` sections of the sandbox's config.
///
/// With `entra` (`sandbox up --entra`), it also accepts the emulator's management tokens, the
/// account reports `allowSharedKeyAccess: false`, and the `[azure]` section signs in with
/// workload identity.
pub async fn start_for_sandbox(
    dir: &std::path::Path,
    failover_duration: Duration,
    entra: Option<&crate::entra::Entra>,
) -> Result<(ArmHandle, String)> {
    let token = format!("arm-{:032x}", rand::random::<u128>());
    drscript_base::redact::register(&token);
    crate::folder::write_secret(&dir.join(SANDBOX_TOKEN_PATH), &token)?;
    let mut account =
        AccountSeed::new(SANDBOX_SUBSCRIPTION, SANDBOX_RESOURCE_GROUP, SANDBOX_ACCOUNT, "eastus", "westus");
    account.allow_shared_key_access = entra.map(|_| false);
    let handle = start(ArmOptions {
        token,
        failover_duration,
        retry_after_secs: 1,
        accounts: vec![account],
        entra: entra.map(crate::entra::Entra::verifier),
        ..ArmOptions::default()
    })
    .await?;
    let azure = match entra {
        Some(e) => e.azure_section(&handle.url),
        None => format!(
            "[azure]\nauth = \"static_token\"\nresource_manager = \"{}\"\ntoken_file = \"{SANDBOX_TOKEN_PATH}\"\n",
            handle.url
        ),
    };
    let config = format!(
        "{azure}\n[storage.prod]\nsubscription = \"{SANDBOX_SUBSCRIPTION}\"\nresource_group = \"{SANDBOX_RESOURCE_GROUP}\"\naccount = \"{SANDBOX_ACCOUNT}\"\n"
    );
    Ok((handle, config))
}

/// An ARM error response.
pub(crate) fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (status, [("content-type", "application/json")], json!({"error": {"code": code, "message": message}}).to_string())
        .into_response()
}

pub(crate) fn ok_json(status: StatusCode, body: Value) -> Response {
    (status, [("content-type", "application/json")], body.to_string()).into_response()
}

fn handle(state: &State, addr: SocketAddr, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let path = uri.path().to_string();
    let shown = uri.path_and_query().map(|p| p.as_str().to_string()).unwrap_or_else(|| path.clone());
    let mut line = format!("{method} {shown}");
    for name in ["if-match", "if-none-match"] {
        if let Some(v) = headers.get(name).and_then(|v| v.to_str().ok()) {
            line.push_str(&format!(" {name}={v}"));
        }
    }
    state.requests.lock().unwrap().push(line);
    let query: HashMap<String, String> =
        uri.query().map(|q| url::form_urlencoded::parse(q.as_bytes()).into_owned().collect()).unwrap_or_default();
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let lower: Vec<String> = segments.iter().map(|s| s.to_ascii_lowercase()).collect();
    let lower: Vec<&str> = lower.iter().map(String::as_str).collect();
    if let Some(refused) = refuse(state, &headers, &query, &lower, &path) {
        return refused;
    }
    let base = format!("http://{addr}");
    match lower.as_slice() {
        ["subscriptions", _, "resourcegroups", _, "providers", "microsoft.storage", "storageaccounts", _]
            if method == Method::GET =>
        {
            let mut storage = state.storage.lock().unwrap();
            storage.settle_with(&state.options);
            storage.get(segments[1], segments[3], segments[7], query.get("$expand").map(String::as_str))
        }
        [
            "subscriptions",
            _,
            "resourcegroups",
            _,
            "providers",
            "microsoft.storage",
            "storageaccounts",
            _,
            "failover",
        ] if method == Method::POST => failover(state, &base, &segments, &query),
        [
            "subscriptions",
            _,
            "providers",
            "microsoft.storage",
            "locations",
            _,
            kind @ ("asyncoperations" | "operationresults"),
            _,
        ] if method == Method::GET => {
            state.storage.lock().unwrap().operation(&state.options, segments[7], *kind == "asyncoperations")
        }
        [
            "subscriptions",
            _,
            "resourcegroups",
            _,
            "providers",
            "microsoft.network",
            kind @ ("dnszones" | "privatednszones"),
            _,
            rtype,
            _,
        ] => {
            let key = dns::ZoneKey::new(segments[1], segments[3], *kind == "privatednszones", segments[7]);
            state.dns.lock().unwrap().record_set(&method, &key, rtype, segments[9], &headers, &body)
        }
        [
            "subscriptions",
            _,
            "resourcegroups",
            _,
            "providers",
            "microsoft.network",
            kind @ ("dnszones" | "privatednszones"),
            _,
        ] if method == Method::GET => {
            let key = dns::ZoneKey::new(segments[1], segments[3], *kind == "privatednszones", segments[7]);
            state.dns.lock().unwrap().zone(&key)
        }
        _ => error(
            StatusCode::NOT_FOUND,
            "NoRegisteredProviderFound",
            &format!("The ARM emulator does not serve {method} {path}."),
        ),
    }
}

/// What ARM answers before it looks at the resource: authentication first, then throttling and
/// outages, a missing api-version, and a denied role assignment.
fn refuse(
    state: &State,
    headers: &HeaderMap,
    query: &HashMap<String, String>,
    lower: &[&str],
    path: &str,
) -> Option<Response> {
    // Authentication comes first, as in ARM.
    let expected = format!("Bearer {}", state.options.token);
    let entra_token = |v: &str| {
        let token = v.strip_prefix("Bearer ").unwrap_or_default();
        state.options.entra.as_ref().is_some_and(|e| e.verify(token, crate::entra::MANAGEMENT_RESOURCE).is_ok())
    };
    match headers.get("authorization").and_then(|v| v.to_str().ok()) {
        None => {
            let mut r = error(
                StatusCode::UNAUTHORIZED,
                "AuthenticationFailed",
                "Authentication failed. The 'Authorization' header is missing.",
            );
            r.headers_mut().insert(
                "www-authenticate",
                HeaderValue::from_static("Bearer authorization_uri=\"https://login.windows.net/\""),
            );
            return Some(r);
        }
        Some(v) if v != expected && !entra_token(v) => {
            return Some(error(StatusCode::UNAUTHORIZED, "InvalidAuthenticationToken", "The access token is invalid."));
        }
        Some(_) => {}
    }
    let faults = &state.faults;
    if take(&faults.throttle_next) {
        let mut r = error(
            StatusCode::TOO_MANY_REQUESTS,
            "TooManyRequests",
            "The request is being throttled as the limit has been reached for operation type.",
        );
        r.headers_mut().insert("retry-after", HeaderValue::from(state.options.retry_after_secs));
        return Some(r);
    }
    if take(&faults.unavailable_next) {
        return Some(error(
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailable",
            "The service is temporarily unavailable.",
        ));
    }
    if !query.contains_key("api-version") {
        return Some(error(
            StatusCode::BAD_REQUEST,
            "MissingApiVersionParameter",
            "The api-version query parameter (?api-version=) is required for all requests.",
        ));
    }
    if faults.forbidden.load(Ordering::Relaxed) {
        let action = if lower.contains(&"microsoft.network") {
            "Microsoft.Network/dnszones/write"
        } else {
            "Microsoft.Storage/storageAccounts/failover/action"
        };
        return Some(error(
            StatusCode::FORBIDDEN,
            "AuthorizationFailed",
            &format!(
                "The client does not have authorization to perform action '{action}' over scope '{path}' or the scope is invalid."
            ),
        ));
    }
    None
}

/// `POST .../storageAccounts/NAME/failover`, with the faults that follow a failover request.
fn failover(state: &State, base: &str, segments: &[&str], query: &HashMap<String, String>) -> Response {
    let faults = &state.faults;
    let planned = query.get("failoverType").is_some_and(|t| t.eq_ignore_ascii_case("Planned"));
    let fail = faults.fail_next_failover.swap(false, Ordering::Relaxed);
    let mut storage = state.storage.lock().unwrap();
    storage.settle_with(&state.options);
    let mut response = storage.failover(
        &state.options,
        base,
        segments[1],
        segments[3],
        segments[7],
        planned,
        fail,
        &query["api-version"],
    );
    if response.status() == StatusCode::ACCEPTED {
        let outage = faults.outage_after_next_failover.swap(0, Ordering::Relaxed);
        faults.unavailable_next.fetch_add(outage, Ordering::Relaxed);
        if faults.drop_after_next_failover.swap(false, Ordering::Relaxed) {
            response.extensions_mut().insert(DropConnection);
        } else if faults.error_after_next_failover.swap(false, Ordering::Relaxed) {
            response = error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalServerError",
                "An unexpected error occurred while processing the request.",
            );
        }
    }
    response
}

/// Decrements a counter if positive; true when it was.
fn take(counter: &AtomicU32) -> bool {
    counter.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1)).is_ok()
}
