//! The sandbox's components beyond the environments: the DNS zone file and the Azure Resource
//! Manager emulation (storage account with geo-replication and failover).

use std::time::Duration;

use serde_json::Value;

use super::Component;
use super::arm::{self, ArmHandle};
use super::dns_zone::{self, DnsZoneFile};
use crate::error::Result;

/// The zone `set_dns` updates, with the `app` and `db` records of the DR model.
pub struct Dns {
    zone: DnsZoneFile,
    config: String,
}

impl Dns {
    pub fn create(dir: &std::path::Path) -> Result<Dns> {
        let (zone, config) = dns_zone::create_for_sandbox(dir)?;
        Ok(Dns { zone, config })
    }
}

impl Dns {
    /// A zone file with a customer's records, each at its active environment's target.
    pub fn create_like(dir: &std::path::Path, shape: &super::like::Shape, active: &str) -> Result<Dns> {
        let zone = DnsZoneFile::new(dir.join(dns_zone::SANDBOX_ZONE_FILE));
        let _ = std::fs::remove_file(zone.path());
        let zones: Vec<&str> = shape.records.values().map(|r| r.zone.trim_end_matches('.')).collect();
        zone.create(&zones)?;
        for r in shape.records.values() {
            if let Some(value) = super::like::Shape::initial_value(r, active) {
                zone.set(r.zone.trim_end_matches('.'), &r.name, &r.record_type, r.ttl, vec![value])?;
            }
        }
        Ok(Dns { config: shape.dns_config(dns_zone::SANDBOX_ZONE_FILE), zone })
    }
}

impl Component for Dns {
    fn name(&self) -> &str {
        "dns"
    }
    fn config_sections(&self) -> Vec<String> {
        vec![self.config.clone()]
    }
    fn status(&self) -> Value {
        self.zone.read().map_or(Value::Null, |z| serde_json::to_value(z).unwrap_or(Value::Null))
    }
    fn state_url(&self) -> Option<String> {
        // A file, so that `sandbox status` in another process reads the zone as `set_dns` left it.
        Some(format!("file://{}", self.zone.path().display()))
    }
}

/// The ARM emulation: the PROD storage account, its replication state and failover.
pub struct Arm {
    handle: ArmHandle,
    config: String,
}

impl Arm {
    pub async fn start(dir: &std::path::Path, failover: Duration) -> Result<Arm> {
        let (handle, config) = arm::start_for_sandbox(dir, failover).await?;
        Ok(Arm { handle, config })
    }

    /// The name of its `[storage.NAME]` section.
    pub fn account(&self) -> &str {
        "prod"
    }
}

impl Component for Arm {
    fn name(&self) -> &str {
        "arm"
    }
    fn config_sections(&self) -> Vec<String> {
        vec![self.config.clone()]
    }
    fn status(&self) -> Value {
        self.handle.state_json()
    }
}
