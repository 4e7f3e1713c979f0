//! The running sandbox's control endpoint, for `drscript sandbox outage` and `restore` from
//! another process: `POST /outage {env, parts, hang}`, `POST /restore {env}`, `GET /outages`, and
//! `GET /arm` (the ARM emulator's accounts and zones, for `sandbox status`); with Entra ID,
//! `GET /entra` (its endpoints and role assignments) and `POST /roles {account, principal, role}`
//! (assigns `Storage File Data Privileged Reader` or `... Contributor` to a principal's object
//! id on a Files account; `role: null` removes the assignment).
//! It also plays Azure's part after a storage account failover: once the account's primary has
//! moved, the shares behind it answer again (from the former secondary region).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};

use super::arm::ArmHandle;
use super::outage::{EnvGates, GateMode, Part};
use drscript_base::error::{Error, Result};

type Gates = Arc<BTreeMap<String, Arc<EnvGates>>>;

pub struct Control {
    addr: std::net::SocketAddr,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

#[derive(Deserialize)]
struct OutageRequest {
    env: String,
    #[serde(default)]
    parts: Vec<String>,
    #[serde(default)]
    hang: bool,
}

impl Control {
    pub async fn start(
        gates: BTreeMap<String, Arc<EnvGates>>,
        arm: Arc<ArmHandle>,
        entra: Option<crate::entra::Entra>,
    ) -> Result<Control> {
        let gates: Gates = Arc::new(gates);
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .map_err(|e| Error::io("cannot bind the sandbox control endpoint", e))?;
        let addr = listener.local_addr().map_err(|e| Error::io("sandbox control address", e))?;
        let router = axum::Router::new()
            .route("/outage", post(outage))
            .route("/restore", post(restore))
            .route("/outages", get(outages))
            .with_state(gates)
            .route("/arm", get(move || std::future::ready(Json(arm.state_json()))))
            .route("/roles", post(roles).get(roles_list))
            .route("/entra", get(entra_state))
            .layer(axum::Extension(entra));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Ok(Control { addr, tasks: vec![task] })
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Opens `gates`' share gate once the first storage account of `arm` has failed over (its
    /// primary location changed), as Azure serves the share from the former secondary region.
    pub fn follow_storage_failover(&mut self, arm: Arc<ArmHandle>, gates: Arc<EnvGates>) {
        let primary = |state: &Value| state["storage_accounts"][0]["properties"]["primaryLocation"].clone();
        let initial = primary(&arm.state_json());
        self.tasks.push(tokio::spawn(async move {
            loop {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                if primary(&arm.state_json()) != initial {
                    if let Some(share) = &gates.share
                        && share.mode() != GateMode::Open
                    {
                        share.set(GateMode::Open);
                    }
                    return;
                }
            }
        }));
    }
}

impl Drop for Control {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

fn find<'a>(gates: &'a Gates, env: &str) -> std::result::Result<&'a Arc<EnvGates>, (StatusCode, Json<Value>)> {
    gates.get(env).ok_or_else(|| {
        let known: Vec<&str> = gates.keys().map(String::as_str).collect();
        (StatusCode::NOT_FOUND, Json(json!({"error": format!("no environment `{env}` (known: {})", known.join(", "))})))
    })
}

async fn outage(State(gates): State<Gates>, Json(req): Json<OutageRequest>) -> (StatusCode, Json<Value>) {
    let env = match find(&gates, &req.env) {
        Ok(e) => e,
        Err(e) => return e,
    };
    let mut parts = Vec::new();
    for p in &req.parts {
        match Part::parse_all(p) {
            Ok(ps) => parts.extend(ps),
            Err(e) => return (StatusCode::BAD_REQUEST, Json(json!({"error": e.to_string()}))),
        }
    }
    match env.outage(&req.env, &parts, req.hang) {
        Ok(()) => (StatusCode::OK, Json(json!({"env": req.env, "parts": env.modes()}))),
        Err(e) => (StatusCode::BAD_REQUEST, Json(json!({"error": e.to_string()}))),
    }
}

async fn restore(State(gates): State<Gates>, Json(req): Json<OutageRequest>) -> (StatusCode, Json<Value>) {
    match find(&gates, &req.env) {
        Ok(env) => {
            env.restore();
            (StatusCode::OK, Json(json!({"env": req.env, "parts": env.modes()})))
        }
        Err(e) => e,
    }
}

async fn outages(State(gates): State<Gates>) -> Json<Value> {
    Json(Value::Object(gates.iter().map(|(name, g)| (name.clone(), g.modes())).collect()))
}

#[derive(Deserialize)]
struct RoleRequest {
    account: String,
    principal: String,
    /// A role's name (or `reader` / `contributor`); null removes the assignment.
    #[serde(default)]
    role: Option<String>,
}

type EntraExt = axum::Extension<Option<crate::entra::Entra>>;

fn no_entra() -> (StatusCode, Json<Value>) {
    (
        StatusCode::NOT_FOUND,
        Json(json!({"error": "the sandbox runs without Entra ID (start it with `sandbox up --entra`)"})),
    )
}

async fn roles(axum::Extension(entra): EntraExt, Json(req): Json<RoleRequest>) -> (StatusCode, Json<Value>) {
    let Some(entra) = entra else { return no_entra() };
    let role = match req.role.as_deref().map(crate::entra::Role::parse) {
        None => None,
        Some(Some(r)) => Some(r),
        Some(None) => {
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({"error": format!(
                    "unknown role `{}` (known: Storage File Data Privileged Reader, Storage File Data Privileged Contributor)",
                    req.role.unwrap_or_default()
                )})),
            );
        }
    };
    entra.roles().set(&req.account, &req.principal, role);
    (StatusCode::OK, Json(entra.roles().to_json()))
}

async fn roles_list(axum::Extension(entra): EntraExt) -> (StatusCode, Json<Value>) {
    match entra {
        Some(e) => (StatusCode::OK, Json(e.roles().to_json())),
        None => no_entra(),
    }
}

async fn entra_state(axum::Extension(entra): EntraExt) -> (StatusCode, Json<Value>) {
    match entra {
        Some(e) => (StatusCode::OK, Json(e.status())),
        None => no_entra(),
    }
}

/// `drscript sandbox outage|restore`: asks the sandbox running behind `control` (a URL).
pub async fn request(control: &str, path: &str, body: Value) -> Result<Value> {
    let url = format!("{control}{path}");
    let reply = reqwest::Client::new()
        .post(&url)
        .json(&body)
        .send()
        .await
        .map_err(|e| Error::action("sandbox", &url, drscript_base::error::chain(&e)))?;
    let ok = reply.status().is_success();
    let value: Value = reply.json().await.map_err(|e| Error::action("sandbox", &url, e.to_string()))?;
    if ok {
        Ok(value)
    } else {
        Err(Error::Usage(value["error"].as_str().unwrap_or("the sandbox refused the request").to_string()))
    }
}
