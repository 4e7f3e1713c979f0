//! `drscript status` and `drscript runs`: where service is, and what was done about it. Both
//! only read: no lock, no journal, and an unreachable environment is shown, not an error.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::output::out;
use drscript_base::error::{Error, Result};
use drscript_core::config::Config;
use drscript_core::shared::Shared;
use drscript_core::site::{self, Budget};

/// What `drscript status` was asked for.
#[derive(Debug, Clone)]
pub struct StatusOptions {
    pub json: bool,
    pub watch: Option<Duration>,
    pub openmetrics: Option<PathBuf>,
    pub budget: Budget,
    pub color: bool,
}

/// Prints the situation; `Ok(true)` when one side is active and healthy (exit 0), `Ok(false)`
/// otherwise (exit 1).
pub fn status(config: &Config, state_dir: &Path, shared: Option<&Shared>, options: &StatusOptions) -> Result<bool> {
    let runtime = drscript_core::runner::runtime()?;
    loop {
        // First: pulls the runs of every operator into the state directory.
        let view = shared.map(|s| s.view(state_dir));
        let history = site::history::runs(state_dir)?;
        let situation = runtime.block_on(site::read(config, &[], options.budget, &history, None))?;
        if let Some(path) = &options.openmetrics {
            write_atomically(path, &site::render::openmetrics(&situation))?;
        }
        let next = site::next::steps(config, &situation, state_dir);
        if options.json {
            let mut v = site::render::json(&situation);
            v["next"] = serde_json::to_value(&next).unwrap_or_default();
            if let Some(view) = &view {
                v["shared"] = serde_json::to_value(view).unwrap_or_default();
            }
            if let Some(used) = config.credential.used() {
                v["azure_credential"] = serde_json::Value::String(used);
            }
            out(&format!("{}\n", serde_json::to_string_pretty(&v).unwrap_or_default()));
        } else {
            if options.watch.is_some() && options.color {
                out("\x1b[2J\x1b[H");
            }
            out(&site::render::text(&situation, options.color));
            if let Some(used) = config.credential.used() {
                out(&format!("Azure credential: {used}\n"));
            }
            if let Some(view) = &view {
                out(&view.text());
            }
            out(&site::next::text(&next));
        }
        let Some(every) = options.watch else { return Ok(situation.healthy) };
        std::thread::sleep(every);
    }
}

/// Writes `text` to `path` through a temporary file, so that a collector never reads half a file.
fn write_atomically(path: &Path, text: &str) -> Result<()> {
    let tmp = path.with_extension("prom.tmp");
    std::fs::write(&tmp, text).map_err(|e| Error::io(format!("cannot write {}", tmp.display()), e))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io(format!("cannot write {}", path.display()), e))
}

/// `drscript runs`.
pub fn runs(state_dir: &Path, shared: Option<&Shared>, json: bool) -> Result<()> {
    let view = shared.map(|s| s.view(state_dir));
    let runs = site::history::runs(state_dir)?;
    if json {
        let mut v = serde_json::to_value(&runs).unwrap_or_default();
        if let Some(view) = &view {
            v = serde_json::json!({ "runs": v, "shared": view });
        }
        out(&format!("{}\n", serde_json::to_string_pretty(&v).unwrap_or_default()));
    } else {
        out(&site::history::render(&runs));
        if let Some(view) = &view {
            out(&view.text());
        }
    }
    Ok(())
}
