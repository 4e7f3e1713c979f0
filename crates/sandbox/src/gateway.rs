//! The Adeptia web gateway emulation of one environment: the scheduler service the document
//! calls (`GET /event/schedulerservice?_dc=..&query=Pause|Resume&page=1&start=0&limit=25`), with
//! the scheduler's state and the configured authentication: HTTP Basic, a bearer token, a header,
//! Adeptia's API login (`POST /rest/login/user`, token in the `ACCESS_TOKEN` response header),
//! and a servlet container's form login (`POST /j_security_check`, session in a `JSESSIONID`
//! cookie, requests without a session redirected to `/login.jsp`).
//!
//! Assumptions of this emulation (the document shows only the call, not the reply):
//! - the reply is ExtJS-store JSON: `{"success": true, "message": ..., "status": "PAUSED"|"RUNNING",
//!   "total": 1, "data": [{"schedulerStatus": ...}]}`;
//! - `query=Status` reads the state without changing it (the read-back drscript uses);
//! - a request without valid credentials gets what a servlet container in front of a web app
//!   gives: 401 with an HTML login page.
//!
//! Faults can be injected (`500`, an HTML page instead of JSON) to test clients.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::hash::fnv;

use drscript_base::error::{Error, Result};

/// The scheduler's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SchedulerState {
    Running,
    Paused,
}

impl SchedulerState {
    pub fn name(self) -> &'static str {
        match self {
            SchedulerState::Running => "RUNNING",
            SchedulerState::Paused => "PAUSED",
        }
    }
}

/// What the gateway demands of a caller (secrets as values: this is the server side).
#[derive(Debug, Clone)]
pub enum GatewayAuthMode {
    None,
    Basic {
        username: String,
        password: String,
    },
    Bearer {
        token: String,
    },
    Header {
        name: String,
        value: String,
    },
    AdeptiaLogin {
        username: String,
        password: String,
    },
    /// A Java servlet container's form login: `POST /j_security_check` with `j_username` and
    /// `j_password` sets a `JSESSIONID` cookie; a request without a valid session is redirected
    /// (302) to `/login.jsp`, a refused login to `/login.jsp?error=true`.
    FormLogin {
        username: String,
        password: String,
    },
}

/// A fault to answer every scheduler call with, until cleared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    Status(u16),
    /// 200 with an HTML page, as a misrouted request or a portal in front would answer.
    Html,
    /// Answers Pause and Resume with success but changes nothing (a scheduler that is stuck).
    Ignore,
}

struct Gateway {
    auth: GatewayAuthMode,
    state: Mutex<SchedulerState>,
    /// Tokens handed out by the login call.
    tokens: Mutex<Vec<String>>,
    fault: Mutex<Option<Fault>>,
    calls: Mutex<Vec<String>>,
}

const LOGIN_PAGE: &str = "<!DOCTYPE html><html><head><title>Adeptia Connect - Login</title></head><body><form action=\"/j_security_check\" method=\"post\"><input name=\"j_username\"/><input type=\"password\" name=\"j_password\"/></form></body></html>";

pub struct GatewayServer {
    addr: SocketAddr,
    gateway: Arc<Gateway>,
    faults: Arc<crate::faults::FaultSlot>,
    task: tokio::task::JoinHandle<()>,
}

impl GatewayServer {
    pub async fn start(port: u16, auth: GatewayAuthMode, initial: SchedulerState) -> Result<GatewayServer> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .map_err(|e| Error::io(format!("cannot bind the sandbox gateway to 127.0.0.1:{port}"), e))?;
        let addr = listener.local_addr().map_err(|e| Error::io("sandbox gateway address", e))?;
        let gateway = Arc::new(Gateway {
            auth,
            state: Mutex::new(initial),
            tokens: Mutex::new(Vec::new()),
            fault: Mutex::new(None),
            calls: Mutex::new(Vec::new()),
        });
        let router = Router::new()
            .route("/event/schedulerservice", get(scheduler))
            .route("/rest/login/user", post(login))
            .route("/j_security_check", post(form_login))
            .route("/login.jsp", get(login_page))
            .route("/_sandbox/state", get(state))
            .with_state(Arc::clone(&gateway));
        let faults = Arc::new(crate::faults::FaultSlot::default());
        let router = router.layer(axum::middleware::from_fn_with_state(Arc::clone(&faults), crate::faults::layer));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Ok(GatewayServer { addr, gateway, faults, task })
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn state(&self) -> SchedulerState {
        *lock(&self.gateway.state)
    }

    pub fn set_state(&self, state: SchedulerState) {
        *lock(&self.gateway.state) = state;
    }

    pub fn set_fault(&self, fault: Option<Fault>) {
        *lock(&self.gateway.fault) = fault;
    }

    /// Switches random faults on (or off with `None`) for the requests from now on.
    pub fn set_random_faults(&self, injector: Option<Arc<crate::faults::Injector>>) {
        self.faults.set(injector);
    }

    /// Forgets every token and session handed out, as a restarted gateway does.
    pub fn forget_sessions(&self) {
        lock(&self.gateway.tokens).clear();
    }

    /// The scheduler calls served so far (`Pause`, `Resume`, `Status`, `login`).
    pub fn calls(&self) -> Vec<String> {
        lock(&self.gateway.calls).clone()
    }
}

impl Drop for GatewayServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn base64(text: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let bytes = text.as_bytes();
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn authorised(gateway: &Gateway, headers: &HeaderMap) -> bool {
    let header_value = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    match &gateway.auth {
        GatewayAuthMode::None => true,
        GatewayAuthMode::Basic { username, password } => {
            header_value("authorization") == format!("Basic {}", base64(&format!("{username}:{password}")))
        }
        GatewayAuthMode::Bearer { token } => header_value("authorization") == format!("Bearer {token}"),
        GatewayAuthMode::Header { name, value } => &header_value(name) == value,
        GatewayAuthMode::AdeptiaLogin { .. } => {
            let token = header_value("access_token");
            !token.is_empty() && lock(&gateway.tokens).contains(&token)
        }
        GatewayAuthMode::FormLogin { .. } => {
            let cookies = header_value("cookie");
            let tokens = lock(&gateway.tokens);
            cookies
                .split(';')
                .filter_map(|c| c.trim().strip_prefix("JSESSIONID="))
                .any(|s| tokens.iter().any(|t| t == s))
        }
    }
}

fn redirect(to: &str) -> Response {
    (StatusCode::FOUND, [(header::LOCATION, to)], "").into_response()
}

async fn login_page() -> Response {
    html(StatusCode::OK)
}

/// `POST /j_security_check`: a form login; the session is a cookie.
async fn form_login(State(gateway): State<Arc<Gateway>>, body: Bytes) -> Response {
    lock(&gateway.calls).push("login".to_string());
    let GatewayAuthMode::FormLogin { username, password } = &gateway.auth else {
        return redirect("/login.jsp?error=true");
    };
    let form: HashMap<String, String> = url::form_urlencoded::parse(&body).into_owned().collect();
    let given = |k: &str| form.get(k).map(String::as_str).unwrap_or_default();
    if given("j_username") != username || given("j_password") != password {
        return redirect("/login.jsp?error=true");
    }
    let session = {
        let mut tokens = lock(&gateway.tokens);
        let session = format!("{:016X}{:04X}", fnv(&format!("{username}{}", tokens.len())), tokens.len());
        tokens.push(session.clone());
        session
    };
    let cookie = format!("JSESSIONID={session}; Path=/; HttpOnly");
    (StatusCode::FOUND, [(header::LOCATION, "/".to_string()), (header::SET_COOKIE, cookie)], "").into_response()
}

fn html(code: StatusCode) -> Response {
    (code, [(header::CONTENT_TYPE, "text/html;charset=UTF-8")], LOGIN_PAGE).into_response()
}

async fn scheduler(
    State(gateway): State<Arc<Gateway>>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    if !authorised(&gateway, &headers) {
        if matches!(gateway.auth, GatewayAuthMode::FormLogin { .. }) {
            return redirect("/login.jsp");
        }
        return html(StatusCode::UNAUTHORIZED);
    }
    let action = query.get("query").cloned().unwrap_or_default();
    lock(&gateway.calls).push(action.clone());
    match *lock(&gateway.fault) {
        Some(Fault::Html) => return html(StatusCode::OK),
        Some(Fault::Ignore) if action != "Status" => {
            return axum::Json(json!({"success": true, "message": "OK", "total": 0, "data": []})).into_response();
        }
        Some(Fault::Status(code)) => {
            let code = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            return (code, [(header::CONTENT_TYPE, "text/plain")], "java.lang.IllegalStateException: Scheduler service unavailable\n\tat com.adeptia.indigo.event.SchedulerService.process(SchedulerService.java:214)").into_response();
        }
        Some(Fault::Ignore) | None => {}
    }
    let mut state = lock(&gateway.state);
    let message = match action.as_str() {
        "Pause" => {
            *state = SchedulerState::Paused;
            "Scheduler paused successfully"
        }
        "Resume" => {
            *state = SchedulerState::Running;
            "Scheduler resumed successfully"
        }
        "Status" => "Scheduler status",
        other => {
            return (
                StatusCode::BAD_REQUEST,
                axum::Json(json!({"success": false, "message": format!("unknown query `{other}`: expected Pause, Resume or Status")})),
            )
                .into_response();
        }
    };
    axum::Json(json!({
        "success": true,
        "message": message,
        "status": state.name(),
        "total": 1,
        "data": [{"schedulerStatus": state.name()}]
    }))
    .into_response()
}

#[derive(Deserialize)]
struct Login {
    username: String,
    password: String,
}

async fn login(State(gateway): State<Arc<Gateway>>, body: Bytes) -> Response {
    lock(&gateway.calls).push("login".to_string());
    let GatewayAuthMode::AdeptiaLogin { username, password } = &gateway.auth else {
        return (
            StatusCode::NOT_FOUND,
            axum::Json(json!({"status": "FAILURE", "message": "API login is not enabled"})),
        )
            .into_response();
    };
    let Ok(attempt) = serde_json::from_slice::<Login>(&body) else {
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"status": "FAILURE", "message": "expected JSON {username, password}"})),
        )
            .into_response();
    };
    if &attempt.username != username || &attempt.password != password {
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({"status": "FAILURE", "message": "Invalid username or password"})),
        )
            .into_response();
    }
    let token = {
        let mut tokens = lock(&gateway.tokens);
        let token = format!("act-{:016x}-{}", fnv(&format!("{username}{}", tokens.len())), tokens.len());
        tokens.push(token.clone());
        token
    };
    (
        StatusCode::OK,
        [("ACCESS_TOKEN", token.as_str())],
        axum::Json(json!({"status": "SUCCESS", "message": "Login successful"})),
    )
        .into_response()
}

async fn state(State(gateway): State<Arc<Gateway>>) -> axum::Json<Value> {
    axum::Json(json!({"scheduler": lock(&gateway.state).name(), "calls": *lock(&gateway.calls)}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648_vectors() {
        assert_eq!(base64("f"), "Zg==");
        assert_eq!(base64("fo"), "Zm8=");
        assert_eq!(base64("foo"), "Zm9v");
        assert_eq!(base64("user:pass"), "dXNlcjpwYXNz");
    }
}
