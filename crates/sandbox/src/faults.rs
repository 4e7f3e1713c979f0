//! Fault injection for the sandbox's servers: the Kubernetes API servers answer 500/429/503,
//! answer slowly or reset the connection; the gateway answers too late for its client; the Azure
//! Files emulator tears range writes and throttles in bursts (503 `ServerBusy` with a
//! `Retry-After`, as a storage account does during a regional incident). A DR tool runs on the worst day, so its retries, guards and
//! `resume` are tested against a world that fails the way real services do. One kube fault is not
//! about requests but about the cluster: `gitops:revert` puts the workloads under a GitOps
//! controller with self-heal (Argo CD), which sets any `spec.replicas` change back within a
//! second (`kube_api::gitops`).
//!
//! The spec (`drscript sandbox up --faults SPEC`) is a `;`-separated list of `SERVICE=FAULT,...`:
//!
//! ```text
//! kube=error:0.2,slow:200ms,reset:0.05;gateway=timeout:0.3,late:31s;files=range_error:0.1
//! ```
//!
//! | fault           | services            | effect                                                        |
//! |-----------------|---------------------|---------------------------------------------------------------|
//! | `error:RATE`    | kube, gateway, files| answer 500, 429 or 503 (kube), 500/503 (others), nothing done  |
//! | `slow:DURATION` | kube, gateway, files| delay every answer by a random time up to DURATION             |
//! | `reset:RATE`    | kube, gateway       | close the connection without an answer, before or after acting|
//! | `timeout:RATE`  | gateway             | act, then answer only after `late` (default 35 s, past the client's 30 s timeout) |
//! | `late:DURATION` | gateway             | how late a `timeout` answers                                   |
//! | `range_error:RATE` | files            | Put Range writes half its range, then answers 500 (a torn write) |
//! | `throttle:RATE` | files               | that share of the time, in bursts, every request is answered 503 `ServerBusy` with `Retry-After` (the seconds left in the window), nothing done |
//! | `burst:DURATION`| files               | the length of one throttling window (default 2 s); adjacent windows merge into longer bursts |
//! | `gitops:revert[@ENV[+ENV]]` | kube       | Argo CD with self-heal manages every deployment and statefulset (of every environment, or of those named) and reverts their replica counts |
//!
//! RATE is a probability (`0.2`) or a percentage (`20%`); DURATION is `200ms`, `2s` or `1m`.
//! Decisions come from a seeded RNG per server (the seed and the server's label), so a run is
//! reproducible with `--seed N` as far as the order of requests is (concurrent clients of one
//! server may interleave differently).

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

use drscript_base::error::{Error, Result};

/// The simulated services faults apply to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Service {
    Kube,
    Gateway,
    Files,
}

impl Service {
    pub fn name(self) -> &'static str {
        match self {
            Service::Kube => "kube",
            Service::Gateway => "gateway",
            Service::Files => "files",
        }
    }

    fn supported(self) -> &'static [&'static str] {
        match self {
            Service::Kube => &["error", "slow", "reset", "gitops"],
            Service::Gateway => &["error", "slow", "reset", "timeout", "late"],
            Service::Files => &["error", "slow", "range_error", "throttle", "burst"],
        }
    }
}

/// How late a gateway `timeout` answers by default: past the 30 s of drscript's gateway client.
pub const DEFAULT_LATE: Duration = Duration::from_secs(35);

/// The length of one throttling window of the Files emulator by default.
pub const DEFAULT_BURST: Duration = Duration::from_secs(2);

/// `gitops:revert`: which environments' clusters a GitOps controller with self-heal manages.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GitopsFault {
    /// The environments (`prod`, `dr`); empty: all of them.
    pub envs: Vec<String>,
}

impl GitopsFault {
    /// Whether the cluster of `env` is under GitOps.
    pub fn covers(&self, env: &str) -> bool {
        self.envs.is_empty() || self.envs.iter().any(|e| e == env)
    }

    fn parse(value: &str) -> std::result::Result<GitopsFault, String> {
        let (mode, envs) = match value.split_once('@') {
            Some((mode, envs)) => (mode, envs.split('+').map(str::trim).map(str::to_string).collect::<Vec<_>>()),
            None => (value, Vec::new()),
        };
        if mode != "revert" {
            return Err(format!("`{value}` is not a GitOps mode (use revert or revert@ENV[+ENV])"));
        }
        if envs.iter().any(String::is_empty) {
            return Err(format!("`{value}` names an empty environment"));
        }
        Ok(GitopsFault { envs })
    }
}

impl fmt::Display for GitopsFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.envs.as_slice() {
            [] => f.write_str("revert"),
            envs => write!(f, "revert@{}", envs.join("+")),
        }
    }
}

/// The faults of one service.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceFaults {
    pub error: f64,
    pub slow: Option<Duration>,
    pub reset: f64,
    pub timeout: f64,
    pub late: Duration,
    pub range_error: f64,
    /// Files only: the share of throttling windows (`burst` long each).
    pub throttle: f64,
    pub burst: Duration,
    /// Kube only: a GitOps controller reverting replica changes.
    pub gitops: Option<GitopsFault>,
}

impl Default for ServiceFaults {
    fn default() -> Self {
        ServiceFaults {
            error: 0.0,
            slow: None,
            reset: 0.0,
            timeout: 0.0,
            late: DEFAULT_LATE,
            range_error: 0.0,
            throttle: 0.0,
            burst: DEFAULT_BURST,
            gitops: None,
        }
    }
}

impl ServiceFaults {
    pub fn is_empty(&self) -> bool {
        !self.on_requests() && self.gitops.is_none()
    }

    /// Whether any fault acts on requests (what needs an [`Injector`]).
    pub fn on_requests(&self) -> bool {
        self.error > 0.0
            || self.slow.is_some()
            || self.reset > 0.0
            || self.timeout > 0.0
            || self.range_error > 0.0
            || self.throttle > 0.0
    }
}

/// A parsed `--faults` spec: per service, what to inject.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FaultSpec {
    pub services: BTreeMap<Service, ServiceFaults>,
}

impl FaultSpec {
    pub fn is_empty(&self) -> bool {
        self.services.values().all(ServiceFaults::is_empty)
    }

    pub fn get(&self, service: Service) -> Option<&ServiceFaults> {
        self.services.get(&service).filter(|f| !f.is_empty())
    }

    /// The injector of one server (`label` tells servers of one service apart, e.g. `prod`),
    /// or `None` when the service has no faults on requests.
    pub fn injector(&self, service: Service, seed: u64, label: &str) -> Option<Arc<Injector>> {
        self.get(service).filter(|f| f.on_requests()).map(|f| Arc::new(Injector::new(service, f.clone(), seed, label)))
    }

    /// Whether the cluster of `env` runs under a GitOps controller with self-heal (`gitops:revert`).
    pub fn gitops(&self, env: &str) -> bool {
        self.services.get(&Service::Kube).and_then(|k| k.gitops.as_ref()).is_some_and(|g| g.covers(env))
    }
}

fn usage(spec: &str, message: String) -> Error {
    Error::Usage(format!(
        "--faults {spec}: {message} (expected e.g. `kube=error:0.2,slow:200ms,reset:0.05,gitops:revert;gateway=timeout:0.3;files=range_error:0.1`)"
    ))
}

fn parse_rate(text: &str) -> std::result::Result<f64, String> {
    let (number, scale) = match text.strip_suffix('%') {
        Some(n) => (n, 100.0),
        None => (text, 1.0),
    };
    let value: f64 = number.trim().parse().map_err(|_| format!("`{text}` is not a rate (use 0.2 or 20%)"))?;
    let value = value / scale;
    if !(0.0..=1.0).contains(&value) || value.is_nan() {
        return Err(format!("rate `{text}` is outside 0..1 (0%..100%)"));
    }
    Ok(value)
}

fn parse_duration(text: &str) -> std::result::Result<Duration, String> {
    let bad = || format!("`{text}` is not a duration (use 200ms, 2s or 1m)");
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit() && c != '.') {
        Some(i) => text.split_at(i),
        None => return Err(bad()),
    };
    let value: f64 = number.parse().map_err(|_| bad())?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" => value * 60.0,
        _ => return Err(bad()),
    };
    Duration::try_from_secs_f64(seconds).map_err(|_| bad())
}

impl FromStr for FaultSpec {
    type Err = Error;

    fn from_str(spec: &str) -> Result<FaultSpec> {
        let mut out = FaultSpec::default();
        for part in spec.split(';').map(str::trim).filter(|p| !p.is_empty()) {
            let (service, faults) =
                part.split_once('=').ok_or_else(|| usage(spec, format!("`{part}` should be SERVICE=FAULT,...")))?;
            let service = match service.trim() {
                "kube" => Service::Kube,
                "gateway" => Service::Gateway,
                "files" => Service::Files,
                other => return Err(usage(spec, format!("unknown service `{other}` (kube, gateway or files)"))),
            };
            if out.services.contains_key(&service) {
                return Err(usage(spec, format!("`{}` is given twice", service.name())));
            }
            let mut f = ServiceFaults::default();
            for fault in faults.split(',').map(str::trim) {
                let (name, value) = fault
                    .split_once(':')
                    .ok_or_else(|| usage(spec, format!("`{fault}` should be NAME:VALUE (e.g. error:0.2)")))?;
                if !service.supported().contains(&name) {
                    return Err(usage(
                        spec,
                        format!(
                            "{} has no fault `{name}` ({} faults: {})",
                            service.name(),
                            service.name(),
                            service.supported().join(", ")
                        ),
                    ));
                }
                let at = |m: String| usage(spec, format!("{}={name}: {m}", service.name()));
                match name {
                    "error" => f.error = parse_rate(value).map_err(at)?,
                    "reset" => f.reset = parse_rate(value).map_err(at)?,
                    "timeout" => f.timeout = parse_rate(value).map_err(at)?,
                    "range_error" => f.range_error = parse_rate(value).map_err(at)?,
                    "throttle" => f.throttle = parse_rate(value).map_err(at)?,
                    "burst" => {
                        f.burst = parse_duration(value).map_err(at)?;
                        if f.burst < Duration::from_millis(10) {
                            return Err(at("a burst is at least 10ms".to_string()));
                        }
                    }
                    "slow" => f.slow = Some(parse_duration(value).map_err(at)?),
                    "late" => f.late = parse_duration(value).map_err(at)?,
                    "gitops" => f.gitops = Some(GitopsFault::parse(value).map_err(at)?),
                    _ => unreachable!("checked against supported()"),
                }
            }
            out.services.insert(service, f);
        }
        if out.services.is_empty() {
            return Err(usage(spec, "no service named".to_string()));
        }
        Ok(out)
    }
}

impl fmt::Display for FaultSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        for (service, s) in &self.services {
            let mut items = Vec::new();
            for (name, rate) in [
                ("error", s.error),
                ("reset", s.reset),
                ("timeout", s.timeout),
                ("range_error", s.range_error),
                ("throttle", s.throttle),
            ] {
                if rate > 0.0 {
                    items.push(format!("{name}:{rate}"));
                }
            }
            if let Some(d) = s.slow {
                items.push(format!("slow:{}ms", d.as_millis()));
            }
            if s.timeout > 0.0 {
                items.push(format!("late:{}ms", s.late.as_millis()));
            }
            if s.throttle > 0.0 {
                items.push(format!("burst:{}ms", s.burst.as_millis()));
            }
            if let Some(g) = &s.gitops {
                items.push(format!("gitops:{g}"));
            }
            parts.push(format!("{}={}", service.name(), items.join(",")));
        }
        write!(f, "{}", parts.join(";"))
    }
}

/// What to do with one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Pass,
    /// Answer with this status without acting.
    Error(u16),
    /// Close the connection without an answer; `after`: once the request has been acted on.
    Reset {
        after: bool,
    },
    /// Act, then answer after the delay.
    Late(Duration),
    /// Write the first half of the range, then answer 500.
    TornRange,
    /// Answer 503 `ServerBusy` with `Retry-After` of this many seconds, without acting.
    Throttle(u64),
}

/// The faults of one running server, with its RNG and the count of what it injected.
pub struct Injector {
    service: Service,
    faults: ServiceFaults,
    rng: Mutex<StdRng>,
    injected: Mutex<BTreeMap<String, u64>>,
    /// Where the throttling windows are counted from, and what decides each one.
    started: std::time::Instant,
    salt: u64,
}

impl Injector {
    pub fn new(service: Service, faults: ServiceFaults, seed: u64, label: &str) -> Injector {
        let salt = super::hash::fnv(&format!("{}/{label}", service.name()));
        Injector {
            service,
            faults,
            rng: Mutex::new(StdRng::seed_from_u64(seed ^ salt)),
            injected: Mutex::new(BTreeMap::new()),
            started: std::time::Instant::now(),
            salt: seed ^ salt,
        }
    }

    /// Whether throttling window `k` is a burst: a hash of the seed and `k`, so that a run is
    /// reproducible whatever the order of requests.
    fn throttled(&self, k: u64) -> bool {
        // splitmix64 of the salt and the window.
        let mut h = self.salt ^ k.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        h = (h ^ (h >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        h = (h ^ (h >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        h ^= h >> 31;
        (h >> 11) as f64 / (1u64 << 53) as f64 <= self.faults.throttle && self.faults.throttle > 0.0
    }

    /// In a burst at `elapsed` (since the injector started): the seconds until its window ends (whole
    /// seconds, at least 1, as `Retry-After` carries them); `None` outside one.
    fn burst_left(&self, elapsed: Duration) -> Option<u64> {
        let burst = self.faults.burst.as_secs_f64();
        let k = (elapsed.as_secs_f64() / burst) as u64;
        if !self.throttled(k) {
            return None;
        }
        // The server knows its own window only: a following one may throttle again.
        let left = (k + 1) as f64 * burst - elapsed.as_secs_f64();
        Some(left.ceil().max(1.0) as u64)
    }

    fn count(&self, what: String) {
        *self.injected.lock().unwrap_or_else(|e| e.into_inner()).entry(what).or_insert(0) += 1;
    }

    /// What was injected so far (`error 503`, `reset after`, `late`, `torn range`, `slow`).
    pub fn injected(&self) -> BTreeMap<String, u64> {
        self.injected.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The delay and the decision for one request; `range_write` marks a Put Range with data.
    pub fn decide(&self, range_write: bool) -> (Duration, Decision) {
        let f = &self.faults;
        let mut rng = self.rng.lock().unwrap_or_else(|e| e.into_inner());
        let delay = f.slow.map_or(Duration::ZERO, |max| max.mul_f64(rng.random::<f64>()));
        let throttle = self.burst_left(self.started.elapsed());
        let decision = if let Some(secs) = throttle {
            Decision::Throttle(secs)
        } else if rng.random_bool(f.error) {
            let codes: &[u16] = if self.service == Service::Kube { &[500, 429, 503] } else { &[500, 503] };
            Decision::Error(codes[rng.random_range(0..codes.len())])
        } else if rng.random_bool(f.reset) {
            Decision::Reset { after: rng.random_bool(0.5) }
        } else if rng.random_bool(f.timeout) {
            Decision::Late(f.late)
        } else if range_write && rng.random_bool(f.range_error) {
            Decision::TornRange
        } else {
            Decision::Pass
        };
        drop(rng);
        if !delay.is_zero() {
            self.count("slow".to_string());
        }
        match decision {
            Decision::Pass => {}
            Decision::Error(code) => self.count(format!("error {code}")),
            Decision::Reset { after } => self.count(format!("reset {}", if after { "after" } else { "before" })),
            Decision::Late(_) => self.count("late".to_string()),
            Decision::TornRange => self.count("torn range".to_string()),
            Decision::Throttle(_) => self.count("throttle 503".to_string()),
        }
        (delay, decision)
    }

    /// The reply of an injected error, in the service's own error format.
    fn error_reply(&self, code: u16) -> Response {
        let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let message = format!("injected fault: {code}");
        match self.service {
            Service::Kube => {
                let reason = match code {
                    429 => "TooManyRequests",
                    503 => "ServiceUnavailable",
                    _ => "InternalError",
                };
                let body = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                    "message": message, "reason": reason, "details": {"retryAfterSeconds": 1}, "code": code});
                let mut r = (status, [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response();
                if code == 429 {
                    r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
                }
                r
            }
            Service::Gateway => (status, [(header::CONTENT_TYPE, "text/plain")], message).into_response(),
            Service::Files => {
                let code_name = if code == 503 { "ServerBusy" } else { "InternalError" };
                let body = format!(
                    "<?xml version=\"1.0\" encoding=\"utf-8\"?><Error><Code>{code_name}</Code><Message>{message}</Message></Error>"
                );
                let mut r = (status, [(header::CONTENT_TYPE, "application/xml")], body).into_response();
                r.headers_mut().insert(
                    "x-ms-error-code",
                    HeaderValue::from_static(if code == 503 { "ServerBusy" } else { "InternalError" }),
                );
                r
            }
        }
    }
}

/// Where a server keeps its injector: empty until faults are switched on; switched off (its
/// counts kept) when the outage is declared over.
#[derive(Default)]
pub struct FaultSlot {
    injector: RwLock<Option<Arc<Injector>>>,
    off: std::sync::atomic::AtomicBool,
}

impl FaultSlot {
    pub fn set(&self, injector: Option<Arc<Injector>>) {
        *self.injector.write().unwrap_or_else(|e| e.into_inner()) = injector;
        self.off.store(false, std::sync::atomic::Ordering::SeqCst);
    }

    /// Stops injecting; what was injected stays in the report.
    pub fn switch_off(&self) {
        self.off.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// Injects again after [`FaultSlot::switch_off`] (an outage that starts at a chosen moment).
    pub fn switch_on(&self) {
        self.off.store(false, std::sync::atomic::Ordering::SeqCst);
    }

    fn injector(&self) -> Option<Arc<Injector>> {
        self.injector.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The injector while faults are on.
    pub fn get(&self) -> Option<Arc<Injector>> {
        self.injector().filter(|_| !self.off.load(std::sync::atomic::Ordering::SeqCst))
    }

    /// `{"service": ..., "active": bool, "injected": {...}}`, for `GET /_sandbox/faults`.
    pub fn report(&self) -> Value {
        match self.injector() {
            Some(i) => json!({"service": i.service.name(), "active": self.get().is_some(), "injected": i.injected()}),
            None => json!({"service": Value::Null, "active": false, "injected": {}}),
        }
    }
}

/// A reply whose body fails at once: hyper drops the connection, and the client sees it closed
/// (or reset) without a complete answer.
fn reset_reply() -> Response {
    let stream = futures::stream::once(async {
        Err::<axum::body::Bytes, std::io::Error>(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "injected connection reset",
        ))
    });
    Response::new(Body::from_stream(stream))
}

fn is_range_write(request: &Request) -> bool {
    let query = request.uri().query().unwrap_or("");
    request.method() == axum::http::Method::PUT
        && query.split('&').any(|kv| kv.eq_ignore_ascii_case("comp=range"))
        && request
            .headers()
            .get("x-ms-write")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("update"))
}

/// `start-end` of an `x-ms-range`/`x-ms-source-range` value (`bytes=0-99`).
fn range_of(value: &str) -> Option<(u64, u64)> {
    let (a, b) = value.trim().strip_prefix("bytes=")?.split_once('-')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

/// Rewrites a Put Range so that it covers the first half of its range only (the torn write).
async fn halve_range(request: Request) -> std::result::Result<Request, Response> {
    let (mut parts, body) = request.into_parts();
    let range_header = if parts.headers.contains_key("x-ms-range") { "x-ms-range" } else { "range" };
    let Some((start, end)) = parts.headers.get(range_header).and_then(|v| v.to_str().ok()).and_then(range_of) else {
        return Ok(Request::from_parts(parts, body));
    };
    let len = end.saturating_sub(start) + 1;
    let half = len / 2;
    if half == 0 {
        return Ok(Request::from_parts(parts, body));
    }
    let set = |headers: &mut axum::http::HeaderMap, name: &'static str, value: String| {
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.insert(name, v);
        }
    };
    set(&mut parts.headers, range_header, format!("bytes={start}-{}", start + half - 1));
    parts.headers.remove("content-md5");
    if let Some((ss, _)) = parts.headers.get("x-ms-source-range").and_then(|v| v.to_str().ok()).and_then(range_of) {
        set(&mut parts.headers, "x-ms-source-range", format!("bytes={ss}-{}", ss + half - 1));
        return Ok(Request::from_parts(parts, body));
    }
    let bytes = axum::body::to_bytes(body, usize::MAX).await.map_err(|_| StatusCode::BAD_REQUEST.into_response())?;
    let kept = bytes.slice(..(half as usize).min(bytes.len()));
    set(&mut parts.headers, "content-length", kept.len().to_string());
    Ok(Request::from_parts(parts, Body::from(kept)))
}

/// The axum middleware every sandbox server runs behind: injects the faults of its slot, answers
/// `GET /_sandbox/faults` with what it injected, `DELETE /_sandbox/faults` by switching the
/// faults off and `PUT /_sandbox/faults` by switching them on again. Other `/_sandbox/`
/// endpoints are exempt.
pub async fn layer(State(slot): State<Arc<FaultSlot>>, request: Request, next: Next) -> Response {
    let path = request.uri().path();
    if path == "/_sandbox/faults" {
        // DELETE ends the outage: later requests are served normally (tests of recovery).
        if request.method() == axum::http::Method::DELETE {
            slot.switch_off();
        } else if request.method() == axum::http::Method::PUT {
            slot.switch_on();
        }
        return axum::Json(slot.report()).into_response();
    }
    let Some(injector) = slot.get().filter(|_| !path.starts_with("/_sandbox/")) else {
        return next.run(request).await;
    };
    let (delay, decision) = injector.decide(is_range_write(&request));
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    match decision {
        Decision::Pass => next.run(request).await,
        Decision::Error(code) => injector.error_reply(code),
        Decision::Throttle(secs) => {
            let mut reply = injector.error_reply(503);
            if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                reply.headers_mut().insert(header::RETRY_AFTER, v);
            }
            reply
        }
        Decision::Reset { after: false } => reset_reply(),
        Decision::Reset { after: true } => {
            let _ = next.run(request).await;
            reset_reply()
        }
        Decision::Late(late) => {
            let reply = next.run(request).await;
            tokio::time::sleep(late).await;
            reply
        }
        Decision::TornRange => match halve_range(request).await {
            Ok(half) => {
                let _ = next.run(half).await;
                injector.error_reply(500)
            }
            Err(reply) => reply,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_example() {
        let spec: FaultSpec =
            "kube=error:0.2,slow:200ms,reset:0.05;gateway=timeout:30%,late:31s;files=range_error:0.1".parse().unwrap();
        let kube = spec.get(Service::Kube).unwrap();
        assert_eq!((kube.error, kube.slow, kube.reset), (0.2, Some(Duration::from_millis(200)), 0.05));
        let gateway = spec.get(Service::Gateway).unwrap();
        assert_eq!((gateway.timeout, gateway.late), (0.3, Duration::from_secs(31)));
        assert_eq!(spec.get(Service::Files).unwrap().range_error, 0.1);
        let again: FaultSpec = spec.to_string().parse().unwrap();
        assert_eq!(again, spec);
    }

    #[test]
    fn gitops_revert_is_a_kube_fault_of_all_or_some_environments() {
        let spec: FaultSpec = "kube=gitops:revert".parse().unwrap();
        assert!(spec.gitops("prod") && spec.gitops("dr"));
        assert!(spec.injector(Service::Kube, 0, "prod").is_none(), "no fault on requests");
        assert!(!spec.is_empty());
        let spec: FaultSpec = "kube=error:0.1,gitops:revert@dr".parse().unwrap();
        assert!(spec.gitops("dr") && !spec.gitops("prod"));
        assert!(spec.injector(Service::Kube, 0, "prod").is_some());
        assert_eq!(spec.to_string().parse::<FaultSpec>().unwrap(), spec);
        assert_eq!(
            "kube=gitops:revert@dr+prod".parse::<FaultSpec>().unwrap().to_string(),
            "kube=gitops:revert@dr+prod"
        );
        for (bad, needle) in
            [("kube=gitops:sync", "not a GitOps mode"), ("gateway=gitops:revert", "gateway has no fault")]
        {
            let e = bad.parse::<FaultSpec>().unwrap_err().to_string();
            assert!(e.contains(needle), "{bad}: {e}");
        }
    }

    #[test]
    fn bad_specs_are_usage_errors_naming_the_part() {
        for (spec, needle) in [
            ("kube=error:2", "outside 0..1"),
            ("kube=error:x", "`x` is not a rate"),
            ("db=error:0.1", "unknown service `db`"),
            ("kube=timeout:0.1", "kube has no fault `timeout`"),
            ("files=reset:0.1", "files has no fault `reset`"),
            ("kube=slow:200", "`200` is not a duration"),
            ("kube", "should be SERVICE=FAULT"),
            ("kube=error", "should be NAME:VALUE"),
            ("kube=error:0.1;kube=reset:0.1", "given twice"),
            ("", "no service named"),
        ] {
            let e = spec.parse::<FaultSpec>().unwrap_err();
            assert_eq!(e.exit_code(), 2, "{spec}");
            assert!(e.to_string().contains(needle), "{spec}: {e}");
        }
    }

    #[test]
    fn files_throttle_in_bursts_that_cover_the_rate_and_say_when_they_end() {
        let spec: FaultSpec = "files=throttle:25%,burst:1s".parse().unwrap();
        let f = spec.get(Service::Files).unwrap();
        assert_eq!((f.throttle, f.burst), (0.25, Duration::from_secs(1)));
        assert_eq!(spec.to_string().parse::<FaultSpec>().unwrap(), spec);
        let i = spec.injector(Service::Files, 3, "files").unwrap();
        // Over 2,000 windows, about a quarter are bursts, and they come in runs.
        let windows: Vec<bool> = (0..2000).map(|k| i.throttled(k)).collect();
        let share = windows.iter().filter(|t| **t).count() as f64 / 2000.0;
        assert!((0.2..0.3).contains(&share), "{share}");
        let runs = windows.windows(2).filter(|w| w[0] && w[1]).count();
        assert!(runs > 0, "some bursts last longer than one window");
        let k = windows.iter().position(|t| *t).unwrap() as u64;
        let free = windows.iter().position(|t| !*t).unwrap() as u64;
        assert_eq!(
            i.burst_left(Duration::from_millis(k * 1000 + 300)),
            Some(1),
            "Retry-After: whole seconds, rounded up"
        );
        assert_eq!(i.burst_left(Duration::from_millis(free * 1000 + 10)), None);
        let long: FaultSpec = "files=throttle:100%,burst:5s".parse().unwrap();
        let l = long.injector(Service::Files, 1, "files").unwrap();
        assert_eq!(l.burst_left(Duration::from_millis(1200)), Some(4));
        let always: FaultSpec = "files=throttle:100%".parse().unwrap();
        let a = always.injector(Service::Files, 1, "files").unwrap();
        assert!(matches!(a.decide(false).1, Decision::Throttle(s) if s >= 1));
        assert!(a.injected().contains_key("throttle 503"));
        let e = "files=throttle:0.1,burst:1ms".parse::<FaultSpec>().unwrap_err().to_string();
        assert!(e.contains("at least 10ms"), "{e}");
        let e = "kube=throttle:0.1".parse::<FaultSpec>().unwrap_err().to_string();
        assert!(e.contains("kube has no fault `throttle`"), "{e}");
    }

    #[test]
    fn the_same_seed_gives_the_same_decisions() {
        let spec: FaultSpec = "kube=error:0.3,reset:0.1".parse().unwrap();
        let run = |seed, label| {
            let i = spec.injector(Service::Kube, seed, label).unwrap();
            (0..200).map(|_| i.decide(false).1).collect::<Vec<_>>()
        };
        assert_eq!(run(7, "prod"), run(7, "prod"));
        assert_ne!(run(7, "prod"), run(8, "prod"));
        assert_ne!(run(7, "prod"), run(7, "dr"));
        let errors = run(7, "prod").iter().filter(|d| matches!(d, Decision::Error(_))).count();
        assert!((30..=90).contains(&errors), "{errors} errors in 200 at a rate of 0.3");
    }
}
