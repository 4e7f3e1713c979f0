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

use super::arm_client::{ArmClient, Attempt, LroStatus, POLICY, error_text, retry_after};
use crate::config::{Config, StorageAccount};
use crate::exec::{Exec, Outcome};
use drscript_base::error::{Error, Result};

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
    /// `geoReplicationStats.canFailover`; `None` when Azure's answer leaves it out (it is an
    /// optional field): then Azure itself decides when asked, rather than drscript refusing on a
    /// guess.
    pub can_failover: Option<bool>,
    pub can_planned_failover: bool,
    pub failover_in_progress: bool,
    pub post_failover_redundancy: String,
    /// RFC 3339: when the account last failed over; absent when it never has.
    pub last_geo_failover_time: Option<String>,
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
    /// False in dry run / plan, and when no failover was started (one was running or done).
    pub performed: bool,
    /// Set when drscript did not start the failover itself: what it found and did instead.
    pub note: Option<String>,
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
        can_failover: geo["canFailover"].as_bool(),
        can_planned_failover: geo["canPlannedFailover"].as_bool().unwrap_or(false),
        failover_in_progress: props["failoverInProgress"].as_bool().unwrap_or(false),
        post_failover_redundancy: text(&geo["postFailoverRedundancy"]),
        last_geo_failover_time: props["lastGeoFailoverTime"].as_str().map(str::to_string),
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
    let window = status
        .last_sync_time
        .as_deref()
        .and_then(|t| loss_window(t, chrono::Utc::now()))
        .map(|w| format!(" — about the last {w} of writes"))
        .unwrap_or_default();
    if planned {
        format!(
            "Planned failover of storage account {}: {} and {} swap roles; geo-replication is kept. Last sync time: {sync}.",
            status.account, status.primary_location, status.secondary_location
        )
    } else {
        format!(
            "Unplanned failover of storage account {}: {} becomes the primary and the account is converted to locally redundant storage (LRS); writes made after the last sync time {sync} may be lost{window}.",
            status.account, status.secondary_location
        )
    }
}

/// How long before `now` the last sync time `last_sync` (RFC 3339) was: the writes an unplanned
/// failover may lose, as `4 min 12 s`.
pub fn loss_window(last_sync: &str, now: chrono::DateTime<chrono::Utc>) -> Option<String> {
    let at = chrono::DateTime::parse_from_rfc3339(last_sync).ok()?;
    let secs = (now - at.with_timezone(&chrono::Utc)).num_seconds().max(0);
    Some(match secs {
        0..60 => format!("{secs} s"),
        60..3600 => format!("{} min {} s", secs / 60, secs % 60),
        _ => format!("{} h {} min", secs / 3600, secs % 3600 / 60),
    })
}

/// Starts an account failover and follows it to its end.
pub fn storage_failover(exec: &Exec, name: &str, options: FailoverOptions) -> Result<FailoverResult> {
    let before = storage_status(exec, name)?;
    storage_failover_from(exec, name, before, options)
}

/// How long after a failover an account without a secondary counts as "just failed over": a
/// rerun or a resume of the runbook within this time finds its own work done.
const RECENT_FAILOVER_HOURS: i64 = 24;
/// Failover requests sent at most, each only after the account showed the previous one had no
/// effect.
const POST_ATTEMPTS: u32 = 3;

/// What the account says before a failover is started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Already {
    /// A failover is running: it is followed, not started again.
    Running,
    /// An unplanned failover ended recently (no secondary left): the reason, for the operator.
    Done(String),
}

/// Whether a failover is running or (unplanned) just finished, so that none must be started.
///
/// A planned failover swaps the regions and keeps geo-replication, so a second planned failover
/// soon after the first is a failback, not a repeat: for it only a running operation counts.
pub fn already(status: &StorageStatus, planned: bool) -> Option<Already> {
    if status.failover_in_progress {
        return Some(Already::Running);
    }
    if planned || !status.secondary_location.is_empty() {
        return None;
    }
    let when = status.last_geo_failover_time.as_deref()?;
    let at = chrono::DateTime::parse_from_rfc3339(when).ok()?.with_timezone(&chrono::Utc);
    let age = chrono::Utc::now().signed_duration_since(at);
    (age < chrono::Duration::hours(RECENT_FAILOVER_HOURS)).then(|| {
        Already::Done(format!(
            "storage account {} already failed over at {when}: {} is the primary and the account is {} with no \
             secondary region; no failover started",
            status.account, status.primary_location, status.sku
        ))
    })
}

/// Why an unplanned failover of the account cannot be started now, read once from its status:
/// it already failed over (no secondary left), it is not geo-redundant, or Azure says so.
/// `None` when it can, or when one is running (that one is followed).
pub fn cannot_fail_over(status: &StorageStatus) -> Option<String> {
    match already(status, false) {
        Some(Already::Running) => return None,
        Some(Already::Done(why)) => return Some(why),
        None => {}
    }
    if status.secondary_location.is_empty() {
        return Some(format!(
            "storage account {} has no secondary region ({}): there is nothing to fail over to",
            status.account, status.sku
        ));
    }
    (status.can_failover == Some(false)).then(|| {
        format!(
            "Azure reports that storage account {} cannot fail over now (canFailover = false; geo-replication `{}`)",
            status.account, status.geo_replication_status
        )
    })
}

/// Whether the account failed over between two readings.
fn failed_over(before: &StorageStatus, now: &StorageStatus) -> bool {
    now.primary_location != before.primary_location || now.last_geo_failover_time != before.last_geo_failover_time
}

/// How a failover request ended up.
enum Started {
    /// Accepted: the long-running operation to follow.
    Operation(super::ArmResponse),
    /// A failover is running (ours whose answer was lost, or someone else's): follow the account.
    Running,
    /// The account already failed over (our request's answer was lost).
    Done(StorageStatus),
}

/// Sends the failover POST, which is not idempotent: after an answer that does not say what
/// happened (a timeout, a lost connection, 5xx, 409) the account is read, and a running or
/// finished failover is followed; only when the account shows that nothing happened is the
/// request sent again.
async fn start(
    client: &ArmClient,
    path: &str,
    name: &str,
    acc: &StorageAccount,
    before: &StorageStatus,
    tgt: &str,
) -> Result<Started> {
    let mut last = String::new();
    // A POST is not idempotent: each try after an unclear answer reads the account first.
    let mut tries = drscript_base::retry::Policy { tries: POST_ATTEMPTS, ..POLICY }.start();
    let mut asked = None;
    for _ in 1..=POST_ATTEMPTS {
        if let Some(wait) = asked.take() {
            tokio::time::sleep(wait).await;
        }
        let why = match client.send_once(Method::POST, path, None, &[]).await? {
            Attempt::Answered(r) if r.status.is_success() => return Ok(Started::Operation(r)),
            Attempt::Answered(r) if r.status == reqwest::StatusCode::TOO_MANY_REQUESTS => {
                // Throttled requests are not processed.
                last = format!("{} {}", r.status, error_text(&r.body));
                asked = tries.next(retry_after(&r.headers));
                continue;
            }
            Attempt::Answered(r) if r.status == reqwest::StatusCode::CONFLICT || r.status.is_server_error() => {
                let conflict = r.status == reqwest::StatusCode::CONFLICT;
                let now = read_after_unclear(client, name, acc, tgt).await?;
                if now.failover_in_progress {
                    return Ok(Started::Running);
                }
                if failed_over(before, &now) {
                    return Ok(Started::Done(now));
                }
                if conflict {
                    // Not a failover in progress: the account's state refuses it.
                    return Err(r.into_result("storage_failover", tgt).unwrap_err());
                }
                last = format!("{} {}", r.status, error_text(&r.body));
                tracing::warn!("{tgt}: the failover request failed ({last}) and the account shows no failover");
                asked = tries.next(None);
                continue;
            }
            Attempt::Answered(r) => return Err(r.into_result("storage_failover", tgt).unwrap_err()),
            Attempt::NotSent(why) => {
                last = why;
                asked = tries.next(None);
                continue;
            }
            Attempt::Unknown(why) => why,
        };
        tracing::warn!("{tgt}: no answer to the failover request ({why}); reading the account before anything else");
        let now = read_after_unclear(client, name, acc, tgt).await?;
        if now.failover_in_progress {
            return Ok(Started::Running);
        }
        if failed_over(before, &now) {
            return Ok(Started::Done(now));
        }
        last = why;
        asked = tries.next(None);
    }
    Err(Error::action(
        "storage_failover",
        tgt,
        format!(
            "the failover could not be started ({POST_ATTEMPTS} requests, each time the account showed no failover): {last}"
        ),
    ))
}

/// Reads the account after a failover request whose effect is unknown; if that fails too, the
/// error says that a failover may be running, so that nobody simply starts another.
async fn read_after_unclear(client: &ArmClient, name: &str, acc: &StorageAccount, tgt: &str) -> Result<StorageStatus> {
    fetch_status(client, name, acc).await.map_err(|e| {
        Error::action(
            "storage_failover",
            tgt,
            format!(
                "the failover request got no clear answer and the account cannot be read now ({e}); a failover may \
                 be running: check the account (failoverInProgress, primary location) before starting another"
            ),
        )
    })
}

/// Follows a running failover through the account itself (no operation URL is known): reads it
/// until `failoverInProgress` clears, then checks that the primary moved.
async fn follow(
    client: &ArmClient,
    name: &str,
    acc: &StorageAccount,
    before: &StorageStatus,
    timeout: Duration,
    tgt: &str,
) -> Result<StorageStatus> {
    let deadline = Instant::now() + timeout;
    let mut wait = Duration::from_millis(100);
    loop {
        let now = fetch_status(client, name, acc).await?;
        if !now.failover_in_progress {
            if failed_over(before, &now) {
                return Ok(now);
            }
            return Err(Error::action(
                "storage_failover",
                tgt,
                format!(
                    "the failover that was running ended without moving the primary (still {}); see the account's activity log",
                    now.primary_location
                ),
            ));
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(Error::action(
                "storage_failover",
                tgt,
                format!(
                    "the running failover did not finish within {} s; it may still complete in Azure",
                    timeout.as_secs()
                ),
            ));
        }
        tokio::time::sleep(wait.min(left)).await;
        wait = (wait * 2).min(Duration::from_secs(10));
    }
}

/// [`storage_failover`] when the status was just read (to show it to the operator first).
///
/// A failover that is already running is followed instead of started; an unplanned failover
/// that already happened (see [`already`]) is reported and not repeated.
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
    let found = already(&before, options.planned);
    if exec.mode() != crate::exec::Mode::Plan && found.is_none() {
        if options.planned && !before.can_planned_failover {
            return Err(Error::action(
                "storage_failover",
                &tgt,
                "Azure reports that a planned failover is not possible now (canPlannedFailover = false)",
            ));
        }
        if !options.planned && before.can_failover == Some(false) {
            let last =
                before.last_geo_failover_time.as_deref().map(|t| format!("; last failover {t}")).unwrap_or_default();
            return Err(Error::action(
                "storage_failover",
                &tgt,
                format!(
                    "Azure reports that the account cannot fail over now (canFailover = false; geo-replication status `{}`{last})",
                    before.geo_replication_status
                ),
            ));
        }
    }
    let detail = match &found {
        Some(Already::Running) => "a failover is already running: follow it".to_string(),
        Some(Already::Done(why)) => why.clone(),
        None => failover_warning(&before, options.planned),
    };
    let described = FailoverResult {
        name: name.to_string(),
        account: acc.account.clone(),
        failover_type: failover_type.to_string(),
        before: before.clone(),
        after: None,
        duration_ms: 0,
        performed: false,
        note: None,
    };
    exec.change(
        "storage_failover",
        &tgt,
        &detail,
        || described.clone(),
        || {
            if let Some(Already::Done(why)) = &found {
                // Said once, by the change line (with "unchanged").
                let result = FailoverResult { after: Some(before.clone()), note: Some(why.clone()), ..described.clone() };
                return Ok((result, Outcome::Unchanged));
            }
            let client = ArmClient::from_config(&config)?;
            let started = Instant::now();
            let (after, performed, note) = exec.block_on(async {
                let mut path = format!("{}/failover?api-version={STORAGE_API_VERSION}", account_path(&acc));
                if options.planned {
                    path.push_str("&failoverType=Planned");
                }
                let how = if found == Some(Already::Running) {
                    Started::Running
                } else {
                    start(&client, &path, name, &acc, &before, &tgt).await?
                };
                match how {
                    Started::Operation(response) => {
                        match client.wait_operation(&response, options.timeout, "storage_failover", &tgt).await? {
                            LroStatus::Succeeded => {}
                            LroStatus::Failed(why) => {
                                return Err(Error::action("storage_failover", &tgt, format!("the failover failed: {why}")));
                            }
                            LroStatus::Canceled => {
                                return Err(Error::action("storage_failover", &tgt, "the failover was canceled"));
                            }
                        }
                        Ok((fetch_status(&client, name, &acc).await?, true, None))
                    }
                    Started::Running => {
                        let note = if found == Some(Already::Running) {
                            "a failover was already running; drscript followed it instead of starting another"
                        } else {
                            "the answer to the failover request was lost; the account showed the failover running and drscript followed it"
                        };
                        tracing::warn!("{tgt}: {note}");
                        let after = follow(&client, name, &acc, &before, options.timeout, &tgt).await?;
                        Ok((after, found.is_none(), Some(note.to_string())))
                    }
                    Started::Done(now) => {
                        let note = "the answer to the failover request was lost; the account showed the failover done";
                        tracing::warn!("{tgt}: {note}");
                        Ok((now, true, Some(note.to_string())))
                    }
                }
            })?;
            let result = FailoverResult {
                after: Some(after),
                duration_ms: started.elapsed().as_millis() as u64,
                performed,
                note,
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
        can_failover: Some(true),
        can_planned_failover: true,
        failover_in_progress: false,
        post_failover_redundancy: "(plan)".into(),
        last_geo_failover_time: None,
    }
}

#[cfg(test)]
mod tests {
    use super::{loss_window, parse_status};

    #[test]
    fn a_missing_can_failover_is_unknown_not_false() {
        let account = crate::config::StorageAccount {
            subscription: "s".into(),
            resource_group: "rg".into(),
            account: "a".into(),
        };
        let body = serde_json::json!({"sku": {"name": "Standard_GRS"}, "properties": {"geoReplicationStats": {"status": "Live"}}});
        assert_eq!(parse_status("prod", &account, &body).can_failover, None);
        let body = serde_json::json!({"properties": {"geoReplicationStats": {"canFailover": false}}});
        assert_eq!(parse_status("prod", &account, &body).can_failover, Some(false));
    }

    #[test]
    fn the_loss_window_is_the_time_since_the_last_sync() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-12-06T10:00:00Z").unwrap().to_utc();
        assert_eq!(loss_window("2026-12-06T09:59:48Z", now).as_deref(), Some("12 s"));
        assert_eq!(loss_window("2026-12-06T09:55:48+00:00", now).as_deref(), Some("4 min 12 s"));
        assert_eq!(loss_window("2026-12-06T07:30:00Z", now).as_deref(), Some("2 h 30 min"));
        assert_eq!(loss_window("yesterday", now), None);
    }
}
