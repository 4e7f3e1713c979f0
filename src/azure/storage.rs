//! Storage account status and account failover through Azure Resource Manager.
//!
//! The status is the RPO evidence of a DR event: `lastSyncTime` says which writes are certainly
//! in the secondary region. An unplanned failover makes the secondary the primary and converts
//! the account to locally redundant storage (LRS); writes after the last sync time may be lost.
//! A planned failover swaps the regions and keeps geo-replication. Asking the operator is the
//! script layer's job; this module gives it the facts ([`failover_warning`]).

use std::time::{Duration, Instant};

use reqwest::Method;
use serde::Serialize;
use serde_json::Value;

use super::arm_client::{ArmClient, LroStatus};
use crate::config::{Config, StorageAccount};
use crate::error::{Error, Result};
use crate::exec::{Exec, Outcome};

/// The Microsoft.Storage API version used for both calls.
pub const STORAGE_API_VERSION: &str = "2023-05-01";

/// What `storage_status` reports.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StorageStatus {
    /// The config name (`[storage.NAME]`).
    pub name: String,
    pub account: String,
    pub sku: String,
    pub primary_location: String,
    pub secondary_location: String,
    pub status_of_primary: String,
    pub status_of_secondary: String,
    /// `Live`, `Bootstrap` or `Unavailable`; empty when the account is not geo-replicated.
    pub geo_replication_status: String,
    /// RFC 3339; absent when Azure does not know it (secondary offline, bootstrap, LRS).
    pub last_sync_time: Option<String>,
    pub can_failover: bool,
    pub can_planned_failover: bool,
    pub failover_in_progress: bool,
    pub post_failover_redundancy: String,
}

#[derive(Debug, Clone, Copy)]
pub struct FailoverOptions {
    pub planned: bool,
    pub timeout: Duration,
}

impl Default for FailoverOptions {
    fn default() -> Self {
        // Microsoft: "typically less than one hour".
        FailoverOptions { planned: false, timeout: Duration::from_secs(3600) }
    }
}

/// What `storage_failover` reports.
#[derive(Debug, Clone, Serialize)]
pub struct FailoverResult {
    pub name: String,
    pub account: String,
    /// `Planned` or `Unplanned`.
    pub failover_type: String,
    pub before: StorageStatus,
    pub after: Option<StorageStatus>,
    pub duration_ms: u64,
    /// False in dry run / plan.
    pub performed: bool,
}

/// The account `name` of `[storage]`, or an error listing the known ones.
pub fn account<'a>(config: &'a Config, name: &str) -> Result<&'a StorageAccount> {
    config.storage.get(name).ok_or_else(|| {
        Error::Usage(format!(
            "storage account `{name}` is not in [storage] of {} (known: {})",
            config.path.display(),
            config.storage.keys().cloned().collect::<Vec<_>>().join(", ")
        ))
    })
}

fn account_path(account: &StorageAccount) -> String {
    format!(
        "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.Storage/storageAccounts/{}",
        account.subscription, account.resource_group, account.account
    )
}

fn target(name: &str, account: &StorageAccount) -> String {
    format!("storage account {} ([storage.{name}], resource group {})", account.account, account.resource_group)
}

/// Reads the account with its geo-replication statistics.
pub async fn fetch_status(client: &ArmClient, name: &str, account: &StorageAccount) -> Result<StorageStatus> {
    let path = format!("{}?api-version={STORAGE_API_VERSION}&$expand=geoReplicationStats", account_path(account));
    let response =
        client.send(Method::GET, &path, None, &[]).await?.into_result("storage_status", &target(name, account))?;
    Ok(parse_status(name, account, &response.body))
}

fn parse_status(name: &str, account: &StorageAccount, body: &Value) -> StorageStatus {
    let props = &body["properties"];
    let geo = &props["geoReplicationStats"];
    let text = |v: &Value| v.as_str().unwrap_or("").to_string();
    StorageStatus {
        name: name.to_string(),
        account: account.account.clone(),
        sku: text(&body["sku"]["name"]),
        primary_location: text(&props["primaryLocation"]),
        secondary_location: text(&props["secondaryLocation"]),
        status_of_primary: text(&props["statusOfPrimary"]),
        status_of_secondary: text(&props["statusOfSecondary"]),
        geo_replication_status: text(&geo["status"]),
        last_sync_time: geo["lastSyncTime"].as_str().map(str::to_string),
        can_failover: geo["canFailover"].as_bool().unwrap_or(false),
        can_planned_failover: geo["canPlannedFailover"].as_bool().unwrap_or(false),
        failover_in_progress: props["failoverInProgress"].as_bool().unwrap_or(false),
        post_failover_redundancy: text(&geo["postFailoverRedundancy"]),
    }
}

/// `storage_status(name)` through the execution context.
pub fn storage_status(exec: &Exec, name: &str) -> Result<StorageStatus> {
    let config = exec.config()?.clone();
    let acc = account(&config, name)?.clone();
    check_secrets(exec, &config)?;
    let placeholder = placeholder_status(name, &acc);
    exec.query(
        "storage_status",
        &target(name, &acc),
        || placeholder,
        || {
            let client = ArmClient::from_config(&config)?;
            exec.block_on(fetch_status(&client, name, &acc))
        },
    )
}

fn check_secrets(exec: &Exec, config: &Config) -> Result<()> {
    match &config.azure {
        Some(azure) => super::Credential::check_secrets(exec, azure),
        None => Err(Error::Config {
            message: format!("no [azure] section in {}: it says how to authenticate to Azure", config.path.display()),
        }),
    }
}

/// What an operator must know before a failover starts.
pub fn failover_warning(status: &StorageStatus, planned: bool) -> String {
    let sync = status.last_sync_time.clone().unwrap_or_else(|| "unknown".to_string());
    if planned {
        format!(
            "Planned failover of storage account {}: {} and {} swap roles; geo-replication is kept. Last sync time: {sync}.",
            status.account, status.primary_location, status.secondary_location
        )
    } else {
        format!(
            "Unplanned failover of storage account {}: {} becomes the primary and the account is converted to locally redundant storage (LRS); writes made after the last sync time {sync} may be lost.",
            status.account, status.secondary_location
        )
    }
}

/// Starts an account failover and follows it to its end.
pub fn storage_failover(exec: &Exec, name: &str, options: FailoverOptions) -> Result<FailoverResult> {
    let before = storage_status(exec, name)?;
    storage_failover_from(exec, name, before, options)
}

/// [`storage_failover`] when the status was just read (to show it to the operator first).
pub fn storage_failover_from(
    exec: &Exec,
    name: &str,
    before: StorageStatus,
    options: FailoverOptions,
) -> Result<FailoverResult> {
    let config = exec.config()?.clone();
    let acc = account(&config, name)?.clone();
    check_secrets(exec, &config)?;
    let failover_type = if options.planned { "Planned" } else { "Unplanned" };
    let tgt = target(name, &acc);
    if exec.mode() != crate::exec::Mode::Plan {
        if options.planned && !before.can_planned_failover {
            return Err(Error::action(
                "storage_failover",
                &tgt,
                "Azure reports that a planned failover is not possible now (canPlannedFailover = false)",
            ));
        }
        if !options.planned && !before.can_failover {
            return Err(Error::action(
                "storage_failover",
                &tgt,
                format!(
                    "Azure reports that the account cannot fail over now (canFailover = false; geo-replication status `{}`)",
                    before.geo_replication_status
                ),
            ));
        }
    }
    let detail = failover_warning(&before, options.planned);
    let described = FailoverResult {
        name: name.to_string(),
        account: acc.account.clone(),
        failover_type: failover_type.to_string(),
        before: before.clone(),
        after: None,
        duration_ms: 0,
        performed: false,
    };
    exec.change(
        "storage_failover",
        &tgt,
        &detail,
        || described.clone(),
        || {
            let client = ArmClient::from_config(&config)?;
            let started = Instant::now();
            let after = exec.block_on(async {
                let mut path = format!("{}/failover?api-version={STORAGE_API_VERSION}", account_path(&acc));
                if options.planned {
                    path.push_str("&failoverType=Planned");
                }
                let response =
                    client.send(Method::POST, &path, None, &[]).await?.into_result("storage_failover", &tgt)?;
                match client.wait_operation(&response, options.timeout, "storage_failover", &tgt).await? {
                    LroStatus::Succeeded => {}
                    LroStatus::Failed(why) => {
                        return Err(Error::action("storage_failover", &tgt, format!("the failover failed: {why}")));
                    }
                    LroStatus::Canceled => {
                        return Err(Error::action("storage_failover", &tgt, "the failover was canceled"));
                    }
                }
                fetch_status(&client, name, &acc).await
            })?;
            let result = FailoverResult {
                after: Some(after),
                duration_ms: started.elapsed().as_millis() as u64,
                performed: true,
                ..described.clone()
            };
            Ok((result, Outcome::Changed))
        },
    )
}

fn placeholder_status(name: &str, account: &StorageAccount) -> StorageStatus {
    StorageStatus {
        name: name.to_string(),
        account: account.account.clone(),
        sku: "(plan)".into(),
        primary_location: "(plan)".into(),
        secondary_location: "(plan)".into(),
        status_of_primary: "(plan)".into(),
        status_of_secondary: "(plan)".into(),
        geo_replication_status: "(plan)".into(),
        last_sync_time: None,
        can_failover: true,
        can_planned_failover: true,
        failover_in_progress: false,
        post_failover_redundancy: "(plan)".into(),
    }
}
