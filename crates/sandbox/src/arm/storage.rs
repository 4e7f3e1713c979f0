//! Emulated `Microsoft.Storage/storageAccounts`: properties with geo-replication statistics, and
//! account failover as a long-running operation.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::{ArmOptions, error, ok_json};

/// A storage account the emulator starts with.
#[derive(Debug, Clone)]
pub struct AccountSeed {
    pub subscription: String,
    pub resource_group: String,
    pub name: String,
    pub primary_location: String,
    pub secondary_location: String,
    /// `Standard_RAGRS` unless set.
    pub sku: String,
    /// How far the secondary lags behind: `lastSyncTime` is now minus this.
    pub replication_lag: Duration,
    /// `allowSharedKeyAccess`, reported when set (absent means true, as in Azure).
    pub allow_shared_key_access: Option<bool>,
}

impl AccountSeed {
    pub fn new(subscription: &str, resource_group: &str, name: &str, primary: &str, secondary: &str) -> Self {
        AccountSeed {
            subscription: subscription.into(),
            resource_group: resource_group.into(),
            name: name.into(),
            primary_location: primary.into(),
            secondary_location: secondary.into(),
            sku: "Standard_RAGRS".into(),
            replication_lag: Duration::from_secs(90),
            allow_shared_key_access: None,
        }
    }
}

struct Account {
    seed: AccountSeed,
    sku: String,
    primary: String,
    secondary: Option<String>,
    /// The running failover's operation id.
    failover: Option<String>,
    /// When the last failover ended (`lastGeoFailoverTime`).
    last_failover: Option<DateTime<Utc>>,
}

struct Operation {
    id: String,
    subscription: String,
    location: String,
    account: usize,
    started: Instant,
    started_at: DateTime<Utc>,
    planned: bool,
    fail: bool,
    /// `Succeeded` / `Failed` once over.
    ended: Option<(String, DateTime<Utc>)>,
}

pub(crate) struct Storage {
    accounts: Vec<Account>,
    operations: HashMap<String, Operation>,
}

impl Storage {
    pub fn new(seeds: &[AccountSeed]) -> Self {
        Storage {
            accounts: seeds
                .iter()
                .map(|s| Account {
                    seed: s.clone(),
                    sku: s.sku.clone(),
                    primary: s.primary_location.clone(),
                    secondary: is_geo(&s.sku).then(|| s.secondary_location.clone()),
                    failover: None,
                    last_failover: None,
                })
                .collect(),
            operations: HashMap::new(),
        }
    }

    fn find(&self, sub: &str, rg: &str, name: &str) -> Result<usize, Box<Response>> {
        if let Some(i) = self.accounts.iter().position(|a| {
            a.seed.subscription.eq_ignore_ascii_case(sub)
                && a.seed.resource_group.eq_ignore_ascii_case(rg)
                && a.seed.name == name
        }) {
            return Ok(i);
        }
        if !self.accounts.iter().any(|a| a.seed.resource_group.eq_ignore_ascii_case(rg)) {
            return Err(Box::new(error(
                StatusCode::NOT_FOUND,
                "ResourceGroupNotFound",
                &format!("Resource group '{rg}' could not be found."),
            )));
        }
        Err(Box::new(error(
            StatusCode::NOT_FOUND,
            "ResourceNotFound",
            &format!(
                "The Resource 'Microsoft.Storage/storageAccounts/{name}' under resource group '{rg}' was not found."
            ),
        )))
    }

    /// Completes operations whose simulated duration has passed.
    fn settle(&mut self, duration: Duration) {
        for op in self.operations.values_mut() {
            if op.ended.is_some() || op.started.elapsed() < duration {
                continue;
            }
            let account = &mut self.accounts[op.account];
            account.failover = None;
            if op.fail {
                op.ended = Some(("Failed".into(), Utc::now()));
                continue;
            }
            let old_primary = std::mem::take(&mut account.primary);
            let new_primary = account.secondary.take().unwrap_or_else(|| old_primary.clone());
            account.primary = new_primary;
            if op.planned {
                account.secondary = Some(old_primary);
            } else {
                // Unplanned failover leaves a locally redundant account in the new region.
                account.sku = lrs_of(&account.sku);
            }
            account.last_failover = Some(Utc::now());
            op.ended = Some(("Succeeded".into(), Utc::now()));
        }
    }

    pub fn get(&self, sub: &str, rg: &str, name: &str, expand: Option<&str>) -> Response {
        let i = match self.find(sub, rg, name) {
            Ok(i) => i,
            Err(r) => return *r,
        };
        ok_json(StatusCode::OK, self.account_json(i, expand.is_some_and(|e| e.contains("geoReplicationStats"))))
    }

    pub fn settle_with(&mut self, options: &ArmOptions) {
        self.settle(options.failover_duration);
    }

    fn account_json(&self, i: usize, geo_stats: bool) -> Value {
        let a = &self.accounts[i];
        let s = &a.seed;
        let in_progress = a.failover.is_some();
        let mut props = json!({
            "provisioningState": "Succeeded",
            "primaryLocation": a.primary,
            "statusOfPrimary": "available",
            "primaryEndpoints": {
                "blob": format!("https://{}.blob.core.windows.net/", s.name),
                "file": format!("https://{}.file.core.windows.net/", s.name),
            },
        });
        if let Some(allowed) = s.allow_shared_key_access {
            props["allowSharedKeyAccess"] = json!(allowed);
        }
        // Documented as true while a failover runs and absent otherwise.
        if in_progress {
            props["failoverInProgress"] = json!(true);
        }
        if let Some(t) = a.last_failover {
            props["lastGeoFailoverTime"] = json!(t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true));
        }
        if let Some(secondary) = &a.secondary {
            props["secondaryLocation"] = json!(secondary);
            props["statusOfSecondary"] = json!("available");
        }
        if geo_stats {
            props["geoReplicationStats"] = if a.secondary.is_some() {
                let last_sync = Utc::now() - chrono::Duration::from_std(s.replication_lag).unwrap_or_default();
                json!({
                    "status": "Live",
                    "lastSyncTime": last_sync.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
                    "canFailover": !in_progress,
                    "canPlannedFailover": !in_progress,
                    "postFailoverRedundancy": lrs_of(&a.sku),
                    "postPlannedFailoverRedundancy": a.sku,
                })
            } else {
                json!({ "status": "Unavailable", "canFailover": false, "canPlannedFailover": false })
            };
        }
        json!({
            "id": format!("/subscriptions/{}/resourceGroups/{}/providers/Microsoft.Storage/storageAccounts/{}", s.subscription, s.resource_group, s.name),
            "name": s.name,
            "type": "Microsoft.Storage/storageAccounts",
            "location": a.primary,
            "kind": "StorageV2",
            "sku": { "name": a.sku, "tier": "Standard" },
            "properties": props,
        })
    }

    #[allow(clippy::too_many_arguments)]
    pub fn failover(
        &mut self,
        options: &ArmOptions,
        base: &str,
        sub: &str,
        rg: &str,
        name: &str,
        planned: bool,
        fail: bool,
        api_version: &str,
    ) -> Response {
        let i = match self.find(sub, rg, name) {
            Ok(i) => i,
            Err(r) => return *r,
        };
        let a = &self.accounts[i];
        if a.failover.is_some() {
            return error(
                StatusCode::CONFLICT,
                "FailoverInProgress",
                &format!("A failover is already in progress for storage account '{name}'. Wait for it to complete."),
            );
        }
        if a.secondary.is_none() {
            return error(
                StatusCode::CONFLICT,
                "FailoverNotSupported",
                &format!("Storage account '{name}' is {} and has no secondary region to fail over to.", a.sku),
            );
        }
        let id = format!("{:032x}", rand::random::<u128>());
        let location = a.primary.clone();
        self.accounts[i].failover = Some(id.clone());
        self.operations.insert(
            id.clone(),
            Operation {
                id: id.clone(),
                subscription: sub.to_string(),
                location: location.clone(),
                account: i,
                started: Instant::now(),
                started_at: Utc::now(),
                planned,
                fail,
                ended: None,
            },
        );
        let op_url = |kind: &str| {
            format!(
                "{base}/subscriptions/{sub}/providers/Microsoft.Storage/locations/{location}/{kind}/{id}?api-version={api_version}"
            )
        };
        let mut r = ok_json(StatusCode::ACCEPTED, Value::Null);
        *r.body_mut() = axum::body::Body::empty();
        let h = r.headers_mut();
        if !options.location_only {
            h.insert("azure-asyncoperation", HeaderValue::from_str(&op_url("asyncoperations")).unwrap());
        }
        h.insert("location", HeaderValue::from_str(&op_url("operationresults")).unwrap());
        h.insert("retry-after", HeaderValue::from(options.retry_after_secs));
        r
    }

    pub fn operation(&mut self, options: &ArmOptions, id: &str, async_status: bool) -> Response {
        self.settle(options.failover_duration);
        let Some(op) = self.operations.get(id) else {
            return error(StatusCode::NOT_FOUND, "OperationNotFound", &format!("Operation '{id}' was not found."));
        };
        let status = op.ended.as_ref().map(|(s, _)| s.as_str()).unwrap_or("InProgress");
        let retry = HeaderValue::from(options.retry_after_secs);
        if async_status {
            let mut body = json!({
                "id": format!("/subscriptions/{}/providers/Microsoft.Storage/locations/{}/asyncoperations/{}", op.subscription, op.location, op.id),
                "name": op.id,
                "status": status,
                "startTime": op.started_at.to_rfc3339(),
            });
            if let Some((_, end)) = &op.ended {
                body["endTime"] = json!(end.to_rfc3339());
            }
            if status == "Failed" {
                body["error"] = json!({"code": "FailoverFailed", "message": "The failover of the storage account failed (simulated fault)."});
            }
            let mut r = ok_json(StatusCode::OK, body);
            if status == "InProgress" {
                r.headers_mut().insert("retry-after", retry);
            }
            return r;
        }
        match status {
            "InProgress" => {
                let mut r = ok_json(StatusCode::ACCEPTED, Value::Null);
                *r.body_mut() = axum::body::Body::empty();
                r.headers_mut().insert("retry-after", retry);
                r
            }
            "Failed" => error(
                StatusCode::CONFLICT,
                "FailoverFailed",
                "The failover of the storage account failed (simulated fault).",
            ),
            _ => {
                let mut r = ok_json(StatusCode::OK, Value::Null);
                *r.body_mut() = axum::body::Body::empty();
                r
            }
        }
    }

    pub fn to_json(&self) -> Value {
        Value::Array((0..self.accounts.len()).map(|i| self.account_json(i, true)).collect())
    }
}

fn is_geo(sku: &str) -> bool {
    sku.contains("GRS") || sku.contains("GZRS")
}

fn lrs_of(sku: &str) -> String {
    let tier = sku.split('_').next().unwrap_or("Standard");
    format!("{tier}_LRS")
}
