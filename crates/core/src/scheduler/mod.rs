//! The scheduler primitives' plain Rust API: `pause_scheduler(env)` and `resume_scheduler(env)`,
//! the document's `GET {gateway}/event/schedulerservice?_dc={millis}&query=Pause|Resume&page=1&start=0&limit=25`.
//!
//! The state is read back with `query=Status` where the gateway answers it (the sandbox does;
//! a real gateway may not, and then the reply of the call itself is trusted). A change that the
//! read-back does not confirm is an error.

mod client;

use std::path::Path;

use serde::Serialize;
use serde_json::Value;

pub use client::Gateway;

use crate::config::Environment;
use drscript_base::error::{Error, Result};

/// Pause or resume.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Pause,
    Resume,
}

impl Action {
    fn query(self) -> &'static str {
        match self {
            Action::Pause => "Pause",
            Action::Resume => "Resume",
        }
    }

    pub fn primitive(self) -> &'static str {
        match self {
            Action::Pause => "pause_scheduler",
            Action::Resume => "resume_scheduler",
        }
    }

    fn wanted(self) -> &'static str {
        match self {
            Action::Pause => "PAUSED",
            Action::Resume => "RUNNING",
        }
    }
}

/// What a pause or resume did.
#[derive(Debug, Clone, Serialize)]
pub struct SchedulerReport {
    pub target: String,
    pub action: String,
    /// The state before, when the gateway lets it be read (`PAUSED`, `RUNNING`).
    pub before: Option<String>,
    /// The state after, read back where possible, else as the reply said.
    pub after: Option<String>,
    /// False when the scheduler was already in the wanted state (nothing sent).
    pub changed: bool,
    /// Whether `after` was confirmed by a separate read.
    pub verified: bool,
}

/// The gateway's path and query for an action (`_dc` is the ExtJS cache buster: the time in ms).
pub fn scheduler_path(query: &str) -> String {
    let dc = chrono::Utc::now().timestamp_millis();
    format!("/event/schedulerservice?_dc={dc}&query={query}&page=1&start=0&limit=25")
}

/// The state named in a reply: `status`, or `data[0].schedulerStatus`, normalised.
fn state_of(reply: &Value) -> Option<String> {
    let raw = reply["status"]
        .as_str()
        .or_else(|| reply["data"][0]["schedulerStatus"].as_str())
        .or_else(|| reply["schedulerStatus"].as_str())?;
    let upper = raw.to_ascii_uppercase();
    Some(match upper.as_str() {
        "PAUSED" | "PAUSE" | "STANDBY" => "PAUSED".to_string(),
        "RUNNING" | "RUN" | "STARTED" | "RESUMED" | "ACTIVE" => "RUNNING".to_string(),
        _ => upper,
    })
}

fn check_success(gateway: &Gateway, action: Action, reply: &Value) -> Result<()> {
    if reply["success"] == Value::Bool(false) {
        let message = reply["message"].as_str().unwrap_or("no message");
        return Err(Error::action(
            action.primitive(),
            gateway.target(),
            drscript_base::redact::redacted(format!("the gateway refused {}: {message}", action.query())),
        ));
    }
    Ok(())
}

/// Reads the state, or `None` when the gateway does not answer a status query.
async fn read_state(gateway: &mut Gateway, action: Action, query: &str) -> Option<String> {
    if query.is_empty() {
        return None;
    }
    match gateway.get_json(action.primitive(), &scheduler_path(query)).await {
        Ok(reply) => state_of(&reply),
        Err(e) => {
            tracing::debug!("{}: no status read-back: {e}", gateway.target());
            None
        }
    }
}

/// Pauses or resumes the scheduler of `env`, verifying the result where the gateway allows.
/// `config_dir` is the folder of the config file (secret files are relative to it).
pub async fn set_scheduler(env: &Environment, config_dir: &Path, action: Action) -> Result<SchedulerReport> {
    let mut gateway = Gateway::new(env, config_dir)?;
    let query = env.scheduler_status_query.as_str();
    let before = read_state(&mut gateway, action, query).await;
    if before.as_deref() == Some(action.wanted()) {
        return Ok(SchedulerReport {
            target: gateway.target(),
            action: action.query().to_string(),
            before: before.clone(),
            after: before,
            changed: false,
            verified: true,
        });
    }
    let reply = gateway.get_json(action.primitive(), &scheduler_path(action.query())).await?;
    check_success(&gateway, action, &reply)?;
    let (after, verified) = match read_state(&mut gateway, action, query).await {
        Some(state) => (Some(state), true),
        None => (state_of(&reply), false),
    };
    if let Some(state) = &after
        && state != action.wanted()
    {
        return Err(Error::action(
            action.primitive(),
            gateway.target(),
            format!("the gateway accepted {} but the scheduler reports {state}", action.query()),
        ));
    }
    Ok(SchedulerReport {
        target: gateway.target(),
        action: action.query().to_string(),
        before,
        after,
        changed: true,
        verified,
    })
}

/// The scheduler's state as far as the gateway tells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchedulerReading {
    /// `PAUSED`, `RUNNING` (or another state the gateway names); `None`: unknown.
    pub state: Option<String>,
    /// Why it is unknown, naming the assumption.
    pub note: Option<String>,
    /// The gateway refused drscript's credentials ([`credentials_refused`]): the state is unknown
    /// because drscript is not let in, not because the query is unknown.
    pub denied: Option<String>,
}

/// Whether a scheduler client error says the gateway refused drscript's credentials: an API login
/// answered 401/403, any other call answered 401/403 (the client then says "check
/// gateway_auth"), or a login page where JSON was expected. A 5xx or a lost connection, at the
/// login or elsewhere, is the gateway's trouble, not a wrong password.
pub fn credentials_refused(error: &str) -> bool {
    let login_refused = error.contains("login at ") && [": 401 ", ": 403 "].iter().any(|s| error.contains(s));
    login_refused || error.contains("check gateway_auth") || error.contains("HTML page instead of JSON")
}

/// Reads the scheduler state of `env` with its `scheduler_status_query` (`Status` by default).
/// A gateway that cannot be reached is an error; one that answers without a state (it does not
/// know the query) gives an unknown state with the reason, never an error: the query is an
/// assumption of drscript's, not part of the documented procedure.
pub async fn read_scheduler(env: &Environment, config_dir: &Path) -> Result<SchedulerReading> {
    let query = env.scheduler_status_query.as_str();
    if query.is_empty() {
        let note = format!("{}: scheduler_status_query = \"\" (the gateway has no status query)", env.name);
        return Ok(SchedulerReading { state: None, note: Some(note), denied: None });
    }
    let mut gateway = Gateway::new(env, config_dir)?;
    let target = gateway.target();
    let unknown = |why: String| SchedulerReading {
        state: None,
        denied: credentials_refused(&why).then(|| why.clone()),
        note: Some(format!(
            "{target} does not tell the scheduler state with query={query} ({why}); that query is an assumption of drscript's, set scheduler_status_query for this gateway"
        )),
    };
    match gateway.get_json("scheduler_state", &scheduler_path(query)).await {
        Ok(reply) => Ok(match state_of(&reply) {
            Some(state) => SchedulerReading { state: Some(state), note: None, denied: None },
            None => unknown("its reply names no state".to_string()),
        }),
        Err(e) if e.to_string().contains("cannot reach") => Err(e),
        Err(e) => Ok(unknown(e.to_string())),
    }
}

/// The scheduler state of `env` (`PAUSED`, `RUNNING`, or `UNKNOWN` with a warning naming the
/// assumption when the gateway does not say).
pub async fn scheduler_state(env: &Environment, config_dir: &Path) -> Result<String> {
    let reading = read_scheduler(env, config_dir).await?;
    if let Some(note) = &reading.note {
        tracing::warn!("{note}");
    }
    Ok(reading.state.unwrap_or_else(|| "UNKNOWN".to_string()))
}

/// `prod gateway https://...`: how the scheduler primitives name their target without connecting.
pub fn describe_target(env: &Environment) -> String {
    format!("{} gateway {}", env.name, env.gateway.trim_end_matches('/'))
}
