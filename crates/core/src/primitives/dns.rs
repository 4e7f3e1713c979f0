//! `set_dns`, `dns_lookup`, `wait_dns`: DNS switches from scripts, over [`crate::dns`].

use std::time::Duration;

use rhai::plugin::*;
use rhai::{Dynamic, EvalAltResult, Map, NativeCallContext};

use super::{exec_of, to_rhai};
use crate::dns::{self, DnsChange, LookupOptions, RecordSpec, RecordType};
use crate::exec::Exec;
use drscript_base::error::Error;

type RhaiResult<T = Dynamic> = Result<T, Box<EvalAltResult>>;

/// A script value from a serializable report.
pub(super) fn to_value<T: serde::Serialize>(value: &T) -> RhaiResult {
    rhai::serde::to_dynamic(value)
}

/// Options maps: every key must be one the primitive knows.
pub(super) fn check_keys(primitive: &str, map: &Map, allowed: &[&str]) -> RhaiResult<()> {
    match map.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => {
            Err(to_rhai(Error::Usage(format!("{primitive}: unknown option `{k}` (known: {})", allowed.join(", ")))))
        }
        None => Ok(()),
    }
}

pub(super) fn opt_str(primitive: &str, map: &Map, key: &str) -> RhaiResult<Option<String>> {
    match map.get(key) {
        None => Ok(None),
        Some(v) if v.is_string() => Ok(Some(v.to_string())),
        Some(v) => Err(to_rhai(Error::Usage(format!("{primitive}: `{key}` must be a string, not {}", v.type_name())))),
    }
}

pub(super) fn opt_secs(primitive: &str, map: &Map, key: &str) -> RhaiResult<Option<Duration>> {
    match map.get(key) {
        None => Ok(None),
        Some(v) => v
            .as_float()
            .or_else(|_| v.as_int().map(|i| i as f64))
            .ok()
            .filter(|s| *s >= 0.0 && s.is_finite())
            .map(|s| Some(Duration::from_secs_f64(s)))
            .ok_or_else(|| to_rhai(Error::Usage(format!("{primitive}: `{key}` must be a number of seconds")))),
    }
}

/// The report says until when resolvers may still answer the value that was replaced.
fn set_and_record(exec: &Exec, spec: &RecordSpec) -> RhaiResult {
    let change = dns::set_dns(exec, spec).map_err(to_rhai)?;
    record_caches(exec, &change)?;
    to_value(&change)
}

fn record_caches(exec: &Exec, change: &DnsChange) -> RhaiResult<()> {
    if !change.applied {
        return Ok(());
    }
    let until = chrono::Utc::now() + chrono::Duration::seconds(i64::from(change.caches_expire_after_secs));
    exec.metric(
        "dns_caches_expire",
        serde_json::json!(format!(
            "{} {} → {}: caches of the old value expire by {} (old TTL {} s)",
            change.record_type,
            change.name,
            change.value,
            until.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            change.caches_expire_after_secs
        )),
    )
    .map_err(to_rhai)
}

fn lookup_options(primitive: &str, opts: &Map, with_timeout: bool) -> RhaiResult<LookupOptions> {
    let mut allowed = vec!["type", "server", "zone"];
    if with_timeout {
        allowed.push("timeout");
    }
    check_keys(primitive, opts, &allowed)?;
    Ok(LookupOptions {
        record_type: opt_str(primitive, opts, "type")?.map(|t| RecordType::parse(&t)).transpose().map_err(to_rhai)?,
        server: opt_str(primitive, opts, "server")?,
        zone: opt_str(primitive, opts, "zone")?,
        timeout: if with_timeout { opt_secs(primitive, opts, "timeout")? } else { None },
    })
}

#[export_module]
pub mod dns_api {
    use super::*;

    /// Points the record `record` of `[dns.records]` at its target for `role` (e.g. `"dr"`,
    /// `"sync"`), through the configured provider. Idempotent: a record that already has that
    /// value and TTL is reported unchanged. Dry runs show `old → new`. Returns a map: `name`,
    /// `type`, `old` (values before), `value`, `ttl`, `changed`, `caches_expire_after_secs` (the old TTL: how
    /// long resolvers may still answer the old value).
    ///
    /// ```rhai
    /// set_dns("app", "dr");
    /// ```
    #[rhai_fn(name = "set_dns", return_raw)]
    pub fn set_dns_role(ctx: NativeCallContext, record: &str, role: &str) -> RhaiResult {
        let exec = exec_of(&ctx);
        let config = exec.config().map_err(to_rhai)?;
        let spec = dns::record::from_config(config, record, role).map_err(to_rhai)?;
        set_and_record(&exec, &spec)
    }

    /// Sets an explicit record: `#{zone, name, type, value, ttl}` (`type` A, AAAA or CNAME,
    /// default A; `ttl` default 300; `name` relative to the zone, `@` for the apex).
    ///
    /// ```rhai
    /// set_dns(#{zone: "example.com", name: "db", type: "CNAME", value: "pg-dr.example.com", ttl: 60});
    /// ```
    #[rhai_fn(name = "set_dns", return_raw)]
    pub fn set_dns_map(ctx: NativeCallContext, record: Map) -> RhaiResult {
        const P: &str = "set_dns";
        check_keys(P, &record, &["zone", "name", "type", "value", "ttl"])?;
        let need = |key: &str| -> RhaiResult<String> {
            opt_str(P, &record, key)?.ok_or_else(|| to_rhai(Error::Usage(format!("set_dns: `{key}` is required"))))
        };
        let record_type =
            RecordType::parse(&opt_str(P, &record, "type")?.unwrap_or_else(|| "A".into())).map_err(to_rhai)?;
        let ttl = match record.get("ttl") {
            None => 300,
            Some(v) => v
                .as_int()
                .ok()
                .and_then(|t| u32::try_from(t).ok())
                .ok_or_else(|| to_rhai(Error::Usage("set_dns: `ttl` must be a whole number of seconds".into())))?,
        };
        let spec =
            RecordSpec::new(&need("zone")?, &need("name")?, record_type, &need("value")?, ttl).map_err(to_rhai)?;
        set_and_record(&exec_of(&ctx), &spec)
    }

    /// Asks the authoritative source (the configured DNS server, Azure DNS, the sandbox zone)
    /// for `name`. Returns `#{name, type, values, ttl, found, source}`. The record type is the
    /// one configured for that name, else A.
    #[rhai_fn(name = "dns_lookup", return_raw)]
    pub fn dns_lookup(ctx: NativeCallContext, name: &str) -> RhaiResult {
        let exec = exec_of(&ctx);
        to_value(&dns::dns_lookup(&exec, name, &LookupOptions::default()).map_err(to_rhai)?)
    }

    /// `dns_lookup(name, server)`: asks the DNS server `host:port` instead.
    #[rhai_fn(name = "dns_lookup", return_raw)]
    pub fn dns_lookup_server(ctx: NativeCallContext, name: &str, server: &str) -> RhaiResult {
        let exec = exec_of(&ctx);
        let opts = LookupOptions { server: Some(server.to_string()), ..LookupOptions::default() };
        to_value(&dns::dns_lookup(&exec, name, &opts).map_err(to_rhai)?)
    }

    /// `dns_lookup(name, #{type, server, zone})`.
    #[rhai_fn(name = "dns_lookup", return_raw)]
    pub fn dns_lookup_opts(ctx: NativeCallContext, name: &str, options: Map) -> RhaiResult {
        let opts = lookup_options("dns_lookup", &options, false)?;
        let exec = exec_of(&ctx);
        to_value(&dns::dns_lookup(&exec, name, &opts).map_err(to_rhai)?)
    }

    /// Waits (polling from 50 ms, backing off to 2 s; 300 s at most) until the authoritative
    /// source answers exactly `value` for `name`. Returns the lookup plus `waited_ms` and
    /// `caches_expire_at` (now + TTL). In plans and dry runs it looks once and does not wait.
    ///
    /// ```rhai
    /// set_dns("app", "dr");
    /// wait_dns("app.example.com", "10.1.0.10");
    /// ```
    #[rhai_fn(name = "wait_dns", return_raw)]
    pub fn wait_dns(ctx: NativeCallContext, name: &str, value: &str) -> RhaiResult {
        let exec = exec_of(&ctx);
        to_value(&dns::wait_dns(&exec, name, value, &LookupOptions::default()).map_err(to_rhai)?)
    }

    /// `wait_dns(name, value, #{timeout, type, server, zone})`; `timeout` in seconds.
    #[rhai_fn(name = "wait_dns", return_raw)]
    pub fn wait_dns_opts(ctx: NativeCallContext, name: &str, value: &str, options: Map) -> RhaiResult {
        let opts = lookup_options("wait_dns", &options, true)?;
        let exec = exec_of(&ctx);
        to_value(&dns::wait_dns(&exec, name, value, &opts).map_err(to_rhai)?)
    }

    /// Waits until every resolver of `[dns] resolvers` (the ones clients use) answers the
    /// record `record`'s target for `role`, asking them all at once with backoff, for at most
    /// `[dns] resolver_wait_secs` (default the record's TTL plus 10 s); one that leaves three
    /// questions in a row unanswered is not waited for (no cache expiry makes it answer: it may
    /// be in the region that is down). Resolvers that still
    /// answer the old value then are a warning naming them, not a failure: the authority is
    /// switched and their caches expire by themselves. Returns `#{name, type, expected, agreed,
    /// total, answers, waited_ms}`; with no resolvers configured, `total` is 0 and nothing is
    /// asked. Plans do not ask; dry runs ask once.
    ///
    /// ```rhai
    /// set_dns("app", "dr");
    /// wait_resolvers("app", "dr");
    /// ```
    #[rhai_fn(name = "wait_resolvers", return_raw)]
    pub fn wait_resolvers(ctx: NativeCallContext, record: &str, role: &str) -> RhaiResult {
        resolvers_for(&ctx, record, role, None)
    }

    /// `wait_resolvers(record, role, #{timeout})`; `timeout` in seconds.
    #[rhai_fn(name = "wait_resolvers", return_raw)]
    pub fn wait_resolvers_opts(ctx: NativeCallContext, record: &str, role: &str, options: Map) -> RhaiResult {
        check_keys("wait_resolvers", &options, &["timeout"])?;
        let timeout = opt_secs("wait_resolvers", &options, "timeout")?;
        resolvers_for(&ctx, record, role, timeout)
    }
}

fn resolvers_for(ctx: &NativeCallContext, record: &str, role: &str, timeout: Option<Duration>) -> RhaiResult {
    let exec = exec_of(ctx);
    let config = exec.config().map_err(to_rhai)?;
    let spec = dns::record::from_config(config, record, role).map_err(to_rhai)?;
    to_value(&dns::resolvers::wait_resolvers(&exec, &spec, timeout).map_err(to_rhai)?)
}

pub fn register(engine: &mut rhai::Engine) {
    engine.register_global_module(rhai::exported_module!(dns_api).into());
}
