//! One DNS record as drscript manages it: a zone, a name inside it, a type (A, AAAA or CNAME),
//! a single value and a TTL — the shape shared by every provider.
//!
//! Values are checked here, before any provider is contacted, so that a typo in a runbook or a
//! config fails as bad input rather than as a half-applied change.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

use serde::Serialize;

use crate::config::Config;
use drscript_base::error::{Error, Result};

/// The record types drscript switches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum RecordType {
    A,
    #[serde(rename = "AAAA")]
    Aaaa,
    #[serde(rename = "CNAME")]
    Cname,
}

impl RecordType {
    pub fn parse(text: &str) -> Result<RecordType> {
        match text.to_ascii_uppercase().as_str() {
            "A" => Ok(RecordType::A),
            "AAAA" => Ok(RecordType::Aaaa),
            "CNAME" => Ok(RecordType::Cname),
            other => Err(Error::Usage(format!("DNS record type `{other}` is not supported (A, AAAA or CNAME)"))),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            RecordType::A => "A",
            RecordType::Aaaa => "AAAA",
            RecordType::Cname => "CNAME",
        }
    }
}

impl fmt::Display for RecordType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A desired record: `name` is relative to `zone` (`@` for the apex).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecordSpec {
    pub zone: String,
    pub name: String,
    #[serde(rename = "type")]
    pub record_type: RecordType,
    pub value: String,
    pub ttl: u32,
}

impl RecordSpec {
    /// Builds and checks a record; `name` may be relative, `@`, or a name inside `zone`.
    pub fn new(zone: &str, name: &str, record_type: RecordType, value: &str, ttl: u32) -> Result<Self> {
        let zone = normalize(zone);
        if zone.is_empty() || !is_hostname(&zone) {
            return Err(Error::Usage(format!("DNS zone `{zone}` is not a valid domain name")));
        }
        let name = relative_name(name, &zone)?;
        let value = check_value(record_type, value)?;
        Ok(RecordSpec { zone, name, record_type, value, ttl })
    }

    /// The record's fully qualified name without the trailing dot.
    pub fn fqdn(&self) -> String {
        fqdn(&self.name, &self.zone)
    }

    /// `A app.example.com`, for messages and journals.
    pub fn target(&self) -> String {
        format!("{} {}", self.record_type, self.fqdn())
    }
}

/// The record `record_name` of `[dns.records]` with the target configured for `role`.
pub fn from_config(config: &Config, record_name: &str, role: &str) -> Result<RecordSpec> {
    let dns = config.dns.as_ref().ok_or_else(|| Error::Config {
        message: format!("set_dns(\"{record_name}\"): no [dns] section in {}", config.path.display()),
    })?;
    let record = dns.records.get(record_name).ok_or_else(|| {
        let known: Vec<&str> = dns.records.keys().map(String::as_str).collect();
        Error::Usage(format!(
            "DNS record `{record_name}` is not in [dns.records] of {} (known: {})",
            config.path.display(),
            if known.is_empty() { "none".to_string() } else { known.join(", ") }
        ))
    })?;
    let value = record.targets.get(role).ok_or_else(|| {
        let roles: Vec<&str> = record.targets.keys().map(String::as_str).collect();
        Error::Usage(format!(
            "DNS record `{record_name}` has no target for role `{role}` (roles: {})",
            roles.join(", ")
        ))
    })?;
    let record_type = RecordType::parse(&record.record_type)?;
    RecordSpec::new(&record.zone, &record.name, record_type, value, record.ttl)
}

/// Lower case, no trailing dot.
pub fn normalize(name: &str) -> String {
    name.trim().trim_end_matches('.').to_ascii_lowercase()
}

/// `name` relative to `zone`, or `@` for the apex.
pub fn relative_name(name: &str, zone: &str) -> Result<String> {
    let name = normalize(name);
    let zone = normalize(zone);
    let relative = if name.is_empty() || name == "@" || name == zone {
        "@".to_string()
    } else if let Some(prefix) = name.strip_suffix(&format!(".{zone}")) {
        prefix.to_string()
    } else {
        name
    };
    if relative != "@" && !is_hostname(&relative) && !relative.starts_with("*.") {
        return Err(Error::Usage(format!("DNS name `{relative}` is not a valid name in zone {zone}")));
    }
    Ok(relative)
}

pub fn fqdn(relative: &str, zone: &str) -> String {
    if relative == "@" { zone.to_string() } else { format!("{relative}.{zone}") }
}

fn check_value(record_type: RecordType, value: &str) -> Result<String> {
    let value = value.trim();
    let bad = |what: &str| Error::Usage(format!("`{value}` is not a valid {record_type} record value ({what})"));
    match record_type {
        RecordType::A => value.parse::<Ipv4Addr>().map(|ip| ip.to_string()).map_err(|_| bad("an IPv4 address")),
        RecordType::Aaaa => value.parse::<Ipv6Addr>().map(|ip| ip.to_string()).map_err(|_| bad("an IPv6 address")),
        RecordType::Cname => {
            let host = normalize(value);
            if is_hostname(&host) && host.parse::<Ipv4Addr>().is_err() { Ok(host) } else { Err(bad("a host name")) }
        }
    }
}

fn is_hostname(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_made_relative_to_the_zone() {
        let r = RecordSpec::new("Example.com.", "app.example.com", RecordType::A, "10.0.0.1", 60).unwrap();
        assert_eq!((r.zone.as_str(), r.name.as_str()), ("example.com", "app"));
        assert_eq!(r.fqdn(), "app.example.com");
        let apex = RecordSpec::new("example.com", "@", RecordType::A, "10.0.0.1", 60).unwrap();
        assert_eq!(apex.fqdn(), "example.com");
    }

    #[test]
    fn values_must_match_the_type() {
        let e = RecordSpec::new("example.com", "app", RecordType::A, "dr.example.com", 60).unwrap_err();
        assert!(e.to_string().contains("not a valid A record value"), "{e}");
        assert!(RecordSpec::new("example.com", "app", RecordType::Aaaa, "10.0.0.1", 60).is_err());
        assert!(RecordSpec::new("example.com", "app", RecordType::Cname, "10.0.0.1", 60).is_err());
        let c = RecordSpec::new("example.com", "db", RecordType::Cname, "Sync.Example.com.", 60).unwrap();
        assert_eq!(c.value, "sync.example.com");
    }

    #[test]
    fn unsupported_type_is_named() {
        let e = RecordType::parse("MX").unwrap_err();
        assert!(e.to_string().contains("`MX` is not supported"), "{e}");
    }
}
