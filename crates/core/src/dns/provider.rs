//! The DNS provider named in `[dns] provider`: where records are read from and written to.
//!
//! Every provider reads from the authoritative source (the primary server, the zone's record
//! set in Azure, the sandbox's zone file), never from a resolver cache, so that "the new value
//! is live" means the authority says so.

use super::RecordState;
use super::azure_zone::AzureZones;
use super::record::{self, RecordSpec, RecordType};
use super::rfc2136::Rfc2136;
use crate::config::{Config, DnsProvider};
use drscript_base::dns_zone::DnsZoneFile;
use drscript_base::error::{Error, Result};

#[derive(Debug, Clone)]
pub enum Provider {
    Rfc2136(Rfc2136),
    Azure(AzureZones),
    Sandbox(DnsZoneFile),
}

impl Provider {
    pub fn from_config(config: &Config) -> Result<Provider> {
        let dns = config
            .dns
            .as_ref()
            .ok_or_else(|| Error::Config { message: format!("no [dns] section in {}", config.path.display()) })?;
        match dns.provider {
            DnsProvider::Rfc2136 => Ok(Provider::Rfc2136(Rfc2136::from_config(dns)?)),
            DnsProvider::Azure => Ok(Provider::Azure(AzureZones::from_config(config, false)?)),
            DnsProvider::AzurePrivate => Ok(Provider::Azure(AzureZones::from_config(config, true)?)),
            DnsProvider::Sandbox => {
                let path = dns.zone_file.clone().ok_or_else(|| Error::Config {
                    message: "[dns] provider = \"sandbox\" needs `zone_file`".to_string(),
                })?;
                Ok(Provider::Sandbox(DnsZoneFile::new(path)))
            }
        }
    }

    /// Where the records live, for targets in plans and journals.
    pub fn describe(&self) -> String {
        match self {
            Provider::Rfc2136(p) => format!("rfc2136 {}", p.server()),
            Provider::Azure(p) => p.describe(),
            Provider::Sandbox(z) => format!("sandbox {}", z.path().display()),
        }
    }

    /// Lookups against another server than the configured one (rfc2136 only).
    pub fn with_server(&self, server: Option<&str>) -> Result<Provider> {
        match (self, server) {
            (_, None) => Ok(self.clone()),
            (Provider::Rfc2136(p), Some(s)) => Ok(Provider::Rfc2136(p.with_server(s))),
            (_, Some(s)) => {
                // Other providers have no server to ask: query it as a plain authoritative server.
                Ok(Provider::Rfc2136(Rfc2136::plain(s)))
            }
        }
    }

    /// The record set `name` (relative to `zone`) of `record_type`, if present.
    pub async fn read(
        &self,
        primitive: &str,
        zone: &str,
        name: &str,
        record_type: RecordType,
    ) -> Result<Option<RecordState>> {
        match self {
            Provider::Rfc2136(p) => p.query(primitive, &record::fqdn(name, zone), record_type).await,
            Provider::Azure(p) => p.read(primitive, zone, name, record_type).await,
            Provider::Sandbox(z) => {
                let found = z.get(zone, name, record_type.as_str()).map_err(|e| {
                    Error::action(primitive, format!("{record_type} {}", record::fqdn(name, zone)), e.to_string())
                })?;
                Ok(found.filter(|r| !r.values.is_empty()).map(|r| {
                    let mut values = r.values;
                    values.sort();
                    RecordState { values, ttl: r.ttl }
                }))
            }
        }
    }

    pub async fn write(&self, spec: &RecordSpec) -> Result<()> {
        match self {
            Provider::Rfc2136(p) => p.update(spec).await,
            Provider::Azure(p) => p.write(spec).await,
            Provider::Sandbox(z) => z
                .set(&spec.zone, &spec.name, spec.record_type.as_str(), spec.ttl, vec![spec.value.clone()])
                .map_err(|e| Error::action("set_dns", format!("{} (sandbox)", spec.target()), e.to_string())),
        }
    }

    /// The zone that holds `fqdn`: the longest zone named in the config (or the sandbox file)
    /// that it ends with.
    pub fn zone_of(&self, config: &Config, fqdn: &str) -> Result<String> {
        let fqdn = record::normalize(fqdn);
        let mut zones: Vec<String> =
            config.dns.iter().flat_map(|d| d.records.values().map(|r| record::normalize(&r.zone))).collect();
        if let Provider::Sandbox(z) = self {
            zones.extend(z.read()?.zones.into_keys());
        }
        zones
            .into_iter()
            .filter(|z| fqdn == *z || fqdn.ends_with(&format!(".{z}")))
            .max_by_key(String::len)
            .ok_or_else(|| {
                Error::Usage(format!(
                    "cannot tell which zone holds `{fqdn}`: no [dns.records] entry is in its zone; pass #{{zone: \"...\"}}"
                ))
            })
    }
}
