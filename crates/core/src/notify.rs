//! Webhooks (`[[notify]]`): what `notify()` posts from a script, and what the engine itself
//! posts about every live run — started, waiting on a manual step, stopped, interrupted (Ctrl-C,
//! SIGTERM), failed (with the step,
//! the error and the exact `resume` command), refused, finished (with the downtime) — so that a run
//! that fails at 3 a.m. pages someone. A webhook that cannot be reached is a warning, never a
//! failed run: the engine's posts go out on their own threads and the run waits for them at its
//! end at most a few seconds.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::config::{Config, Webhook, WebhookKind};
use drscript_base::error::{Error, Result};

const ATTEMPTS: u32 = 3;
const TIMEOUT: Duration = Duration::from_secs(10);

/// The events the engine posts; a webhook's `events` (default: all) picks among them.
pub const RUN_EVENTS: &[&str] = &["started", "manual", "stopped", "interrupted", "failed", "refused", "finished"];

/// One thing that happened to a run, as the webhooks receive it.
pub struct RunEvent {
    /// One of [`RUN_EVENTS`].
    pub event: &'static str,
    pub run_id: String,
    pub runbook: String,
    /// One line for people.
    pub text: String,
    /// The step it concerns (failed, stopped, manual).
    pub step: Option<String>,
    pub error: Option<String>,
    /// The command that continues the run, as it can be pasted.
    pub resume: Option<String>,
    pub downtime_seconds: Option<f64>,
}

impl RunEvent {
    fn level(&self) -> &'static str {
        match self.event {
            "failed" => "error",
            "stopped" | "interrupted" | "refused" | "manual" => "warning",
            _ => "info",
        }
    }

    /// The generic JSON: every field, for machines.
    fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "source": "drscript",
            "event": self.event,
            "level": self.level(),
            "text": self.text,
            "run_id": self.run_id,
            "runbook": self.runbook,
            "step": self.step,
            "error": self.error,
            "resume": self.resume,
            "downtime_seconds": self.downtime_seconds,
            "by": crate::identity::by(),
            "version": crate::identity::VERSION,
        })
    }
}

static SENDING: Mutex<Vec<std::thread::JoinHandle<()>>> = Mutex::new(Vec::new());

/// Posts `event` to every webhook of `config` that wants it, in the background.
pub fn announce(config: &Config, event: RunEvent) {
    for hook in config.notify.iter().filter(|h| h.events.as_ref().is_none_or(|e| e.iter().any(|n| n == event.event))) {
        let Some(secret) = &hook.url else { continue };
        let url = match secret.resolve() {
            Ok(url) => url,
            Err(e) => {
                tracing::warn!("notify {}: {e}", hook.name);
                continue;
            }
        };
        let body = match hook.kind {
            WebhookKind::Generic => event.json(),
            _ => body(hook, &event.text, event.level()),
        };
        let name = hook.name.clone();
        let what = event.event;
        let handle = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build();
            let result = match runtime {
                Ok(rt) => rt.block_on(post(&url, &body)),
                Err(e) => Err(Error::Other(format!("cannot start a runtime: {e}"))),
            };
            if let Err(e) = result {
                tracing::warn!("notify {name}: the run's `{what}` was not delivered: {e}");
            }
        });
        SENDING.lock().unwrap_or_else(|e| e.into_inner()).push(handle);
    }
}

/// Waits (at most `limit`) for the posts still under way, so that a process about to exit does
/// not cut them off.
pub fn flush(limit: Duration) {
    let deadline = Instant::now() + limit;
    let handles: Vec<_> = std::mem::take(&mut *SENDING.lock().unwrap_or_else(|e| e.into_inner()));
    for handle in handles {
        while !handle.is_finished() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        if handle.is_finished() {
            let _ = handle.join();
        }
    }
}

/// The JSON each kind of webhook accepts.
pub fn body(hook: &Webhook, message: &str, level: &str) -> serde_json::Value {
    match hook.kind {
        WebhookKind::Teams => serde_json::json!({
            "@type": "MessageCard",
            "@context": "https://schema.org/extensions",
            "summary": message,
            "themeColor": match level { "error" => "C62828", "warning" => "FF9800", _ => "1A7F37" },
            "title": "drscript",
            "text": message,
        }),
        WebhookKind::Slack => serde_json::json!({ "text": message }),
        _ => serde_json::json!({ "source": "drscript", "level": level, "text": message }),
    }
}

pub async fn post(url: &str, body: &serde_json::Value) -> Result<()> {
    let client = reqwest::Client::builder()
        .timeout(TIMEOUT)
        .build()
        .map_err(|e| Error::Other(format!("cannot build an HTTP client: {e}")))?;
    let mut last = String::new();
    for attempt in 1..=ATTEMPTS {
        match client.post(url).json(body).send().await {
            Ok(response) if response.status().is_success() => return Ok(()),
            Ok(response) => {
                let status = response.status();
                last = format!("HTTP {status}");
                if !(status.is_server_error() || status.as_u16() == 429) {
                    break;
                }
            }
            Err(e) => last = drscript_base::redact::redacted(e.to_string()),
        }
        if attempt < ATTEMPTS {
            tokio::time::sleep(Duration::from_millis(200 * 2u64.pow(attempt))).await;
        }
    }
    Err(Error::Other(format!("{last} after {ATTEMPTS} attempt(s)")))
}
