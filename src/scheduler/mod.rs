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
use crate::error::{Error, Result};

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
            crate::redact::redacted(format!("the gateway refused {}: {message}", action.query())),
        ));
    }
    Ok(())
}

/// Reads the state, or `None` when the gateway does not answer a status query.
async fn read_state(gateway: &mut Gateway, action: Action) -> Option<String> {
    match gateway.get_json(action.primitive(), &scheduler_path("Status")).await {
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
    let before = read_state(&mut gateway, action).await;
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
    let (after, verified) = match read_state(&mut gateway, action).await {
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

/// The scheduler state of `env` (`PAUSED`, `RUNNING`), read with `query=Status`.
pub async fn scheduler_state(env: &Environment, config_dir: &Path) -> Result<String> {
    let mut gateway = Gateway::new(env, config_dir)?;
    let reply = gateway.get_json("scheduler_state", &scheduler_path("Status")).await?;
    state_of(&reply).ok_or_else(|| {
        Error::action("scheduler_state", gateway.target(), "the gateway's reply names no scheduler state")
    })
}

/// `prod gateway https://...`: how the scheduler primitives name their target without connecting.
pub fn describe_target(env: &Environment) -> String {
    format!("{} gateway {}", env.name, env.gateway.trim_end_matches('/'))
}
