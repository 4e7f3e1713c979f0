//! `storage_status`, `storage_failover`: the storage account from scripts, over
//! [`crate::azure::storage`]. The unplanned failover's confirmation lives here, at the script
//! layer, through the flow module's `confirm` (so `--yes`, plans and refusals behave as
//! everywhere else).

use std::time::Duration;

use rhai::plugin::*;
use rhai::{Dynamic, EvalAltResult, Map, NativeCallContext};
use serde_json::json;

use super::dns::{check_keys, opt_secs, to_value};
use super::{exec_of, to_rhai};
use crate::azure::storage::{self, FailoverOptions, StorageStatus, failover_warning};
use crate::exec::Exec;
use drscript_base::error::Error;

type RhaiResult<T = Dynamic> = Result<T, Box<EvalAltResult>>;

/// The last sync time is the RPO evidence of the run: every status read lands in the report.
fn record_last_sync(exec: &Exec, status: &StorageStatus) -> RhaiResult<()> {
    if status.sku == "(plan)" {
        return Ok(());
    }
    let sync = status.last_sync_time.as_deref().unwrap_or("unknown");
    exec.metric(
        "storage_last_sync_time",
        json!(format!("{} {sync} (primary {}, {})", status.account, status.primary_location, status.sku)),
    )
    .map_err(to_rhai)
}

#[export_module]
pub mod azure_api {
    use super::*;

    /// Status of the storage account `account` of `[storage]`: `primary_location`,
    /// `secondary_location`, `status_of_primary`, `status_of_secondary`, `sku`,
    /// `geo_replication_status`, `last_sync_time` (writes before it are in the secondary region;
    /// recorded in the report), `can_failover` (`()` when Azure's answer leaves it out),
    /// `can_planned_failover`, `failover_in_progress`.
    #[rhai_fn(return_raw)]
    pub fn storage_status(ctx: NativeCallContext, account: &str) -> RhaiResult {
        let exec = exec_of(&ctx);
        let status = storage::storage_status(&exec, account).map_err(to_rhai)?;
        record_last_sync(&exec, &status)?;
        to_value(&status)
    }

    /// Fails the storage account over to its secondary region and waits until Azure reports the
    /// operation finished (at most an hour). Unplanned: the secondary becomes the primary, the
    /// account becomes locally redundant (LRS), and writes after the last sync time may be
    /// lost; it asks for confirmation first, showing that time. A failover already running is
    /// followed, not started again; an unplanned failover done within the last 24 hours (no
    /// secondary left) is reported and not repeated, so a rerun or resume is safe. The result's
    /// `performed` says whether drscript started one, `note` what it found instead.
    ///
    /// ```rhai
    /// storage_failover("prod");
    /// ```
    #[rhai_fn(name = "storage_failover", return_raw)]
    pub fn storage_failover(ctx: NativeCallContext, account: &str) -> RhaiResult {
        failover(&ctx, account, &Map::new())
    }

    /// `storage_failover(account, #{planned, timeout})`: `planned: true` swaps the regions and
    /// keeps geo-replication (both regions must be up); `timeout` in seconds (default 3600).
    #[rhai_fn(name = "storage_failover", return_raw)]
    pub fn storage_failover_opts(ctx: NativeCallContext, account: &str, options: Map) -> RhaiResult {
        failover(&ctx, account, &options)
    }
}

fn failover(ctx: &NativeCallContext, account: &str, options: &Map) -> RhaiResult {
    const P: &str = "storage_failover";
    check_keys(P, options, &["planned", "timeout"])?;
    let planned = match options.get("planned") {
        None => false,
        Some(v) => {
            v.as_bool().map_err(|t| to_rhai(Error::Usage(format!("{P}: `planned` must be true or false, not {t}"))))?
        }
    };
    let timeout = opt_secs(P, options, "timeout")?.unwrap_or(Duration::from_secs(3600));
    let exec = exec_of(ctx);
    let before = storage::storage_status(&exec, account).map_err(to_rhai)?;
    record_last_sync(&exec, &before)?;
    let warning = failover_warning(&before, planned);
    if let Some(found) = storage::already(&before, planned) {
        // Nothing will be started: following a running failover or reporting a finished one
        // needs no consent (a finished one is said by the change line).
        if found == storage::Already::Running {
            tracing::info!("storage account {}: a failover is already running", before.account);
        }
    } else if planned {
        tracing::info!("{warning}");
    } else {
        // A refusal stops the run (exit 3) inside `confirm`.
        ctx.call_native_fn::<bool>("confirm", (format!("{warning} Start the failover?"),))?;
    }
    let result = storage::storage_failover_from(&exec, account, before, FailoverOptions { planned, timeout })
        .map_err(to_rhai)?;
    if let Some(after) = &result.after {
        exec.metric(
            "storage_failover",
            json!(format!(
                "{} {} failover {} → {} in {:.1} s, now {}",
                result.account,
                result.failover_type.to_lowercase(),
                result.before.primary_location,
                after.primary_location,
                result.duration_ms as f64 / 1000.0,
                after.sku
            )),
        )
        .map_err(to_rhai)?;
    }
    to_value(&result)
}

pub fn register(engine: &mut rhai::Engine) {
    engine.register_global_module(rhai::exported_module!(azure_api).into());
}
