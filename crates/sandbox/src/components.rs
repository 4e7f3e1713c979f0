//! The sandbox's other parts, written by other modules and plugged in here as [`Component`]s:
//! the DNS zone (a JSON file `set_dns` updates) and the Azure Resource Manager emulator (the
//! storage account behind PROD's shares, with failover).

use serde_json::Value;

use super::Component;
use super::arm::{self, ArmHandle};
use super::dns_resolver;
use drscript_base::dns_zone::DnsZoneFile;

use crate::zone as dns_zone;
use drscript_base::error::Result;

/// The application and database records, starting at PROD and the primary database, and the
/// resolvers clients ask about them.
pub struct DnsZone {
    zone: DnsZoneFile,
    section: String,
    resolvers: Vec<dns_resolver::Resolver>,
}

impl DnsZone {
    pub fn create(dir: &std::path::Path) -> Result<DnsZone> {
        let (zone, section) = dns_zone::create_for_sandbox(dir)?;
        Ok(DnsZone { zone, section, resolvers: Vec::new() })
    }
}

impl DnsZone {
    /// A zone file with a customer's records (`sandbox up --like`), each at its active
    /// environment's target.
    pub fn create_like(dir: &std::path::Path, shape: &super::like::Shape, active: &str) -> Result<DnsZone> {
        let zone = DnsZoneFile::new(dir.join(dns_zone::SANDBOX_ZONE_FILE));
        let _ = std::fs::remove_file(zone.path());
        let zones: Vec<&str> = shape.records.values().map(|r| r.zone.trim_end_matches('.')).collect();
        zone.create(&zones)?;
        for r in shape.records.values() {
            if let Some(value) = super::like::Shape::initial_value(r, active) {
                zone.set(r.zone.trim_end_matches('.'), &r.name, &r.record_type, r.ttl, vec![value])?;
            }
        }
        Ok(DnsZone { section: shape.dns_config(dns_zone::SANDBOX_ZONE_FILE), zone, resolvers: Vec::new() })
    }

    /// Starts `count` resolvers answering from the zone (each caching up to `cache`) and lists
    /// them as `[dns] resolvers` in the config.
    pub async fn with_resolvers(mut self, count: usize, cache: std::time::Duration) -> Result<DnsZone> {
        for _ in 0..count {
            self.resolvers.push(dns_resolver::Resolver::start(self.zone.clone(), cache).await?);
        }
        let list: Vec<String> = self.resolvers.iter().map(|r| format!("\"{}\"", r.address())).collect();
        self.section = self.section.replacen("[dns]\n", &format!("[dns]\nresolvers = [{}]\n", list.join(", ")), 1);
        Ok(self)
    }
}

impl Component for DnsZone {
    fn name(&self) -> &str {
        "dns"
    }
    fn config_sections(&self) -> Vec<String> {
        vec![self.section.clone()]
    }
    fn status(&self) -> Value {
        self.zone.read().ok().and_then(|z| serde_json::to_value(z).ok()).unwrap_or(Value::Null)
    }
    fn state_url(&self) -> Option<String> {
        // A file, so that another process reads the zone as `set_dns` left it.
        Some(format!("file://{}", self.zone.path().display()))
    }
}

/// Storage accounts (and Azure DNS zones) behind an ARM endpoint.
pub struct Arm {
    handle: std::sync::Arc<ArmHandle>,
    section: String,
}

impl Arm {
    pub async fn start(
        dir: &std::path::Path,
        failover: std::time::Duration,
        entra: Option<&crate::entra::Entra>,
    ) -> Result<Arm> {
        let (handle, section) = arm::start_for_sandbox(dir, failover, entra).await?;
        Ok(Arm { handle: std::sync::Arc::new(handle), section })
    }

    /// The `[storage.NAME]` account the sandbox's config declares.
    pub fn account_name(&self) -> &'static str {
        "prod"
    }

    pub fn handle(&self) -> &std::sync::Arc<ArmHandle> {
        &self.handle
    }
}

impl Component for Arm {
    fn name(&self) -> &str {
        "arm"
    }
    fn config_sections(&self) -> Vec<String> {
        vec![self.section.clone()]
    }
    fn status(&self) -> Value {
        let mut state = self.handle.state_json();
        state["url"] = Value::String(self.handle.url.clone());
        state
    }
}
