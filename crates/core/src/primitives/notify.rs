//! `notify(msg [, opts])`: tells people what the runbook is doing, through the webhooks of the
//! config (generic JSON, Microsoft Teams, Slack). A notification that cannot be delivered is a
//! warning, never a failed DR step: the failover matters more than the message about it.

use std::time::Duration;

use rhai::plugin::*;
use rhai::{EvalAltResult, Map, NativeCallContext};

use super::{exec_of, to_rhai};
use crate::config::{Webhook, WebhookKind};
use crate::exec::{Exec, Outcome};
use drscript_base::error::{Error, Result};

const ATTEMPTS: u32 = 3;
const TIMEOUT: Duration = Duration::from_secs(10);

#[export_module]
pub mod notify_api {
    /// Posts `message` to every webhook of the config (`[[notify]]`). Never fails the run: an
    /// undeliverable message is logged as a warning. Returns how many webhooks accepted it.
    #[rhai_fn(return_raw)]
    pub fn notify(ctx: NativeCallContext, message: &str) -> Result<i64, Box<EvalAltResult>> {
        super::notify(&exec_of(&ctx), message, &Map::new()).map_err(to_rhai)
    }

    /// Like `notify(message)` with options: `to` (a webhook name or an array of names; all
    /// when absent), `level` (`info`, `warning`, `error`; colours the Teams card).
    #[rhai_fn(name = "notify", return_raw)]
    pub fn notify_with(ctx: NativeCallContext, message: &str, options: Map) -> Result<i64, Box<EvalAltResult>> {
        super::notify(&exec_of(&ctx), message, &options).map_err(to_rhai)
    }
}

fn notify(exec: &Exec, message: &str, options: &Map) -> Result<i64> {
    let Ok(config) = exec.config() else {
        tracing::debug!("notify: no config, nothing to post: {message}");
        return Ok(0);
    };
    let wanted: Option<Vec<String>> = options.get("to").map(|to| {
        if let Some(array) = to.clone().try_cast::<rhai::Array>() {
            array.iter().map(|d| d.to_string()).collect()
        } else {
            vec![to.to_string()]
        }
    });
    if let Some(names) = &wanted
        && let Some(unknown) = names.iter().find(|n| !config.notify.iter().any(|h| &h.name == *n))
    {
        return Err(Error::Usage(format!(
            "notify: no webhook named `{unknown}` in {} (known: {})",
            config.path.display(),
            config.notify.iter().map(|h| h.name.as_str()).collect::<Vec<_>>().join(", ")
        )));
    }
    let level = options.get("level").map_or_else(|| "info".to_string(), |l| l.to_string());
    let mut delivered = 0;
    for hook in config.notify.iter().filter(|h| wanted.as_ref().is_none_or(|w| w.contains(&h.name))) {
        let url = match hook.url.as_ref().map(|s| exec.secret(s)) {
            Some(Ok(url)) => url,
            Some(Err(e)) => return Err(e),
            None => continue,
        };
        let target = format!("webhook {} ({})", hook.name, hook.kind);
        let body = body(hook, message, &level);
        let result = exec.change(
            "notify",
            &target,
            &format!("\"{message}\""),
            || 0,
            || match exec.block_on(post(&url, &body)) {
                Ok(()) => Ok((1, Outcome::Changed)),
                Err(e) => {
                    tracing::warn!("notify {target}: not delivered: {e}");
                    Ok((0, Outcome::Unchanged))
                }
            },
        )?;
        delivered += result;
    }
    Ok(delivered)
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

async fn post(url: &str, body: &serde_json::Value) -> Result<()> {
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
