//! DNS switches: point a record at the target of a role (`set_dns`), and confirm that the
//! authoritative source answers it (`dns_lookup`, `wait_dns`).
//!
//! Changes are idempotent (a record that already has the value and TTL is reported unchanged and
//! not written) and every write is read back from the provider before it counts as done. The
//! TTL of the value that was replaced is reported, because that is how long resolvers may keep
//! answering the old one.

pub mod azure_zone;
pub mod provider;
pub mod record;
pub mod resolvers;
pub mod rfc2136;

use std::time::{Duration, Instant};

use serde::Serialize;

pub use provider::Provider;
pub use record::{RecordSpec, RecordType};

use crate::config::DnsProvider;
use crate::exec::{Exec, Outcome};
use drscript_base::error::{Error, Result};

/// A record set as the authority holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecordState {
    pub values: Vec<String>,
    pub ttl: u32,
}

/// What `set_dns` did (or would do).
#[derive(Debug, Clone, Serialize)]
pub struct DnsChange {
    pub name: String,
    #[serde(rename = "type")]
    pub record_type: RecordType,
    pub zone: String,
    pub provider: String,
    /// The values before; empty when the record did not exist; `None` when not read (plan).
    pub old: Option<Vec<String>>,
    pub old_ttl: Option<u32>,
    /// The value set (or to be set).
    pub value: String,
    pub ttl: u32,
    /// True when a write was (or would be) needed.
    pub changed: bool,
    /// False in dry run and plan.
    pub applied: bool,
    /// Seconds until resolvers that cached the old value must ask again (the old TTL).
    pub caches_expire_after_secs: u32,
}

/// Options of `dns_lookup` and `wait_dns`.
#[derive(Debug, Clone, Default)]
pub struct LookupOptions {
    pub record_type: Option<RecordType>,
    /// Ask this `host:port` instead of the configured authority.
    pub server: Option<String>,
    pub zone: Option<String>,
    /// `wait_dns` only; 300 s by default.
    pub timeout: Option<Duration>,
}

/// What `dns_lookup` and `wait_dns` report.
#[derive(Debug, Clone, Serialize)]
pub struct Lookup {
    pub name: String,
    #[serde(rename = "type")]
    pub record_type: RecordType,
    pub values: Vec<String>,
    pub ttl: u32,
    pub found: bool,
    pub source: String,
    /// `wait_dns`: how long it took the authority to answer the value.
    pub waited_ms: u64,
    /// `wait_dns`: when caches holding an older value will have expired (now + TTL), RFC 3339.
    pub caches_expire_at: Option<String>,
}

impl Lookup {
    /// Nothing found (yet), or a plan's placeholder.
    fn empty(name: &str, record_type: RecordType, source: &str) -> Lookup {
        Lookup {
            name: name.to_string(),
            record_type,
            values: vec![],
            ttl: 0,
            found: false,
            source: source.to_string(),
            waited_ms: 0,
            caches_expire_at: None,
        }
    }
}

fn old_text(old: &Option<Vec<String>>) -> String {
    match old {
        None => "(current value not read in plan mode)".to_string(),
        Some(v) if v.is_empty() => "(absent)".to_string(),
        Some(v) => v.join(", "),
    }
}

/// Reads the secrets the configured provider needs through `exec` (a plan finds a missing one).
fn check_secrets(exec: &Exec) -> Result<()> {
    let config = exec.config()?;
    let Some(dns) = &config.dns else {
        return Ok(());
    };
    match dns.provider {
        DnsProvider::Rfc2136 => dns.tsig_secret.as_ref().map(|s| exec.secret(s)).transpose().map(drop),
        DnsProvider::Azure | DnsProvider::AzurePrivate => match &config.azure {
            Some(azure) => crate::azure::Credential::check_secrets(exec, azure),
            None => Err(Error::Config {
                message: format!(
                    "[dns] provider = \"{}\" needs an [azure] section in {}",
                    dns.provider,
                    config.path.display()
                ),
            }),
        },
        DnsProvider::Sandbox => Ok(()),
    }
}

/// Sets one record through the configured provider.
pub fn set_dns(exec: &Exec, spec: &RecordSpec) -> Result<DnsChange> {
    let config = exec.config()?.clone();
    check_secrets(exec)?;
    let provider = Provider::from_config(&config)?;
    let target = format!("{} ({})", spec.target(), provider.describe());
    let current: Option<Option<RecordState>> = exec.query(
        "set_dns",
        &target,
        || None,
        || exec.block_on(provider.read("set_dns", &spec.zone, &spec.name, spec.record_type)).map(Some),
    )?;
    let old = current.as_ref().map(|c| c.as_ref().map(|s| s.values.clone()).unwrap_or_default());
    let old_ttl = current.as_ref().and_then(|c| c.as_ref().map(|s| s.ttl));
    let same = current
        .as_ref()
        .is_some_and(|c| c.as_ref().is_some_and(|s| s.values == [spec.value.clone()] && s.ttl == spec.ttl));
    let change = DnsChange {
        name: spec.fqdn(),
        record_type: spec.record_type,
        zone: spec.zone.clone(),
        provider: provider.describe(),
        old: old.clone(),
        old_ttl,
        value: spec.value.clone(),
        ttl: spec.ttl,
        changed: !same,
        applied: false,
        caches_expire_after_secs: if same { 0 } else { old_ttl.unwrap_or(0) },
    };
    let detail = if same {
        format!("{} (ttl {}) already set", spec.value, spec.ttl)
    } else {
        format!("{} → {} (ttl {})", old_text(&old), spec.value, spec.ttl)
    };
    // The log line names the record; the provider (a zone file's path, a server) is for -v.
    exec.change_shown(
        "set_dns",
        &target,
        &spec.target(),
        &detail,
        || change.clone(),
        || {
            if same {
                return Ok((change.clone(), Outcome::Unchanged, None));
            }
            exec.block_on(async {
                provider.write(spec).await?;
                let now = provider.read("set_dns", &spec.zone, &spec.name, spec.record_type).await?;
                match now {
                    Some(s) if s.values == [spec.value.clone()] => Ok(()),
                    other => Err(Error::action(
                        "set_dns",
                        &target,
                        format!(
                            "the provider accepted the update but answers {} instead of {}",
                            other.map(|s| s.values.join(", ")).unwrap_or_else(|| "nothing".into()),
                            spec.value
                        ),
                    )),
                }
            })?;
            Ok((DnsChange { applied: true, ..change.clone() }, Outcome::Changed, None))
        },
    )
}

/// Resolves which zone, relative name and type a lookup means.
fn lookup_target(
    exec: &Exec,
    provider: &Provider,
    name: &str,
    opts: &LookupOptions,
) -> Result<(String, String, RecordType)> {
    let config = exec.config()?;
    let fqdn = record::normalize(name);
    let zone = match &opts.zone {
        Some(z) => record::normalize(z),
        None => match provider {
            // A DNS server needs no zone to answer a query.
            Provider::Rfc2136(_) => provider.zone_of(config, &fqdn).unwrap_or_default(),
            _ => provider.zone_of(config, &fqdn)?,
        },
    };
    let record_type = match opts.record_type {
        Some(t) => t,
        None => config
            .dns
            .iter()
            .flat_map(|d| d.records.values())
            .find(|r| {
                record::fqdn(&record::normalize(&r.name), &record::normalize(&r.zone)) == fqdn
                    || record::normalize(&r.name) == fqdn
            })
            .map(|r| RecordType::parse(&r.record_type))
            .transpose()?
            .unwrap_or(RecordType::A),
    };
    if zone.is_empty() {
        return Ok((String::new(), fqdn, record_type));
    }
    Ok((zone.clone(), record::relative_name(&fqdn, &zone)?, record_type))
}

async fn read_lookup(
    primitive: &str,
    provider: &Provider,
    zone: &str,
    relative: &str,
    record_type: RecordType,
) -> Result<Option<RecordState>> {
    if zone.is_empty() {
        // rfc2136 without a known zone: the relative name is the full name.
        if let Provider::Rfc2136(p) = provider {
            return p.query(primitive, relative, record_type).await;
        }
    }
    provider.read(primitive, zone, relative, record_type).await
}

/// Asks the authority for a record.
pub fn dns_lookup(exec: &Exec, name: &str, opts: &LookupOptions) -> Result<Lookup> {
    check_secrets(exec)?;
    let provider = Provider::from_config(exec.config()?)?.with_server(opts.server.as_deref())?;
    let (zone, relative, record_type) = lookup_target(exec, &provider, name, opts)?;
    let fqdn = record::normalize(name);
    let source = provider.describe();
    let target = format!("{record_type} {fqdn} ({source})");
    let placeholder = Lookup::empty(&fqdn, record_type, &source);
    exec.query(
        "dns_lookup",
        &target,
        || placeholder.clone(),
        || {
            let state = exec.block_on(read_lookup("dns_lookup", &provider, &zone, &relative, record_type))?;
            Ok(to_lookup(placeholder.clone(), state))
        },
    )
}

fn to_lookup(base: Lookup, state: Option<RecordState>) -> Lookup {
    match state {
        Some(s) => Lookup { values: s.values, ttl: s.ttl, found: true, ..base },
        None => base,
    }
}

/// Polls the authority until it answers exactly `value` for `name`; reports when caches of the
/// previous value will have expired. Outside live runs it looks once and does not wait.
pub fn wait_dns(exec: &Exec, name: &str, value: &str, opts: &LookupOptions) -> Result<Lookup> {
    check_secrets(exec)?;
    let provider = Provider::from_config(exec.config()?)?.with_server(opts.server.as_deref())?;
    let (zone, relative, record_type) = lookup_target(exec, &provider, name, opts)?;
    let fqdn = record::normalize(name);
    // Normalise the expected value the same way a record's value is.
    let expected = RecordSpec::new(if zone.is_empty() { "invalid" } else { &zone }, "@", record_type, value, 0)?.value;
    let timeout = opts.timeout.unwrap_or(Duration::from_secs(300));
    let source = provider.describe();
    let target = format!("{record_type} {fqdn} = {expected} ({source})");
    let base = Lookup::empty(&fqdn, record_type, &source);
    exec.query(
        "wait_dns",
        &target,
        || base.clone(),
        || {
            let started = Instant::now();
            let mut interval = Duration::from_millis(50);
            loop {
                let state = exec.block_on(read_lookup("wait_dns", &provider, &zone, &relative, record_type))?;
                let done = state.as_ref().is_some_and(|s| s.values == [expected.clone()]);
                let mut result = to_lookup(base.clone(), state);
                if done || !exec.is_live() {
                    result.waited_ms = started.elapsed().as_millis() as u64;
                    if done {
                        let expire = chrono::Utc::now() + chrono::Duration::seconds(i64::from(result.ttl));
                        result.caches_expire_at = Some(expire.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
                    }
                    return Ok(result);
                }
                let answers = if result.values.is_empty() { "nothing".to_string() } else { result.values.join(", ") };
                if started.elapsed() >= timeout {
                    return Err(Error::action(
                        "wait_dns",
                        &target,
                        format!("still answers {answers} after {} s", timeout.as_secs()),
                    ));
                }
                crate::observer::waiting(format!("DNS {fqdn} answers {answers}, waiting for {expected}"));
                exec.sleep(interval)?;
                interval = (interval * 3 / 2).min(Duration::from_secs(2));
            }
        },
    )
}
