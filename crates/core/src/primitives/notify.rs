//! `notify(msg [, opts])`: tells people what the runbook is doing, through the webhooks of the
//! config (generic JSON, Microsoft Teams, Slack). A notification that cannot be delivered is a
//! warning, never a failed DR step: the failover matters more than the message about it.

use rhai::plugin::*;
use rhai::{EvalAltResult, Map, NativeCallContext};

use super::{exec_of, to_rhai};
use crate::exec::{Exec, Outcome};
use crate::notify::{body, post};
use drscript_base::error::{Error, Result};

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
