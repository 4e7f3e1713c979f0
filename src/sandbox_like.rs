//! `sandbox up --like FILE`: the customer's config read here, in the CLI, and handed to the
//! sandbox as a plain [`Shape`], so that the sandbox never links the configuration code of the
//! client it is a stand-in for.

use drscript_base::error::{Error, Result};
use drscript_core::config::Config;
use drscript_sandbox::databases::DbSpec;
use drscript_sandbox::like::{DnsRecord, EnvShape, Shape};

/// The shape of `config`; `active` names the environment that starts active (default: the
/// config's primary — `[settings] primary`, else `prod`, else the first the file lists).
pub fn shape_of(config: &Config, active: Option<&str>) -> Result<Shape> {
    let active = match active {
        Some(a) => config.environment(a)?.name.clone(),
        None => config.primary().to_string(),
    };
    let mut order = vec![active.clone()];
    order.extend(config.order.iter().filter(|k| **k != active).cloned());
    // The sandbox runs each side at the counts it serves at; a count the config omits is a
    // mistake the rehearsal must show, not a 1 it assumes.
    let count = |e: &drscript_core::config::Environment, c: &str| {
        let n = e.replicas_of(c).ok_or_else(|| Error::Config {
            message: format!(
                "environments.{}.replicas.{c}: missing (the count {} runs {c} at when it serves)",
                e.name, e.name
            ),
        })?;
        i32::try_from(n).map_err(|_| Error::Usage(format!("{n} replicas is too many for the sandbox")))
    };
    let environments = config
        .environments
        .iter()
        .map(|(name, e)| {
            let replicas = [count(e, "runtime")?, count(e, "listener")?, count(e, "rabbitmq")?];
            let core = ["runtime", "listener", "rabbitmq"];
            let extra = e
                .replicas
                .keys()
                .filter(|c| !core.contains(&c.as_str()))
                .map(|c| Ok((c.clone(), e.kind_of(c).to_string(), count(e, c)?)))
                .collect::<Result<Vec<_>>>()?;
            let names = core
                .iter()
                .map(|c| c.to_string())
                .chain(extra.iter().map(|(c, _, _)| c.clone()))
                .map(|c| (e.workload_name(&c), c))
                .map(|(name, c)| (c, name))
                .collect();
            let app_folders = e.shares.get("app").and_then(|s| s.folders.clone());
            let shape = EnvShape {
                namespace: e.namespace.clone(),
                release: e.release.clone(),
                replicas,
                names,
                extra,
                app_folders,
            };
            Ok((name.clone(), shape))
        })
        .collect::<Result<_>>()?;
    let records = config
        .dns
        .iter()
        .flat_map(|d| &d.records)
        .map(|(key, r)| {
            let record = DnsRecord {
                zone: r.zone.clone(),
                name: r.name.clone(),
                record_type: r.record_type.clone(),
                ttl: r.ttl,
                targets: r.targets.clone(),
            };
            (key.clone(), record)
        })
        .collect();
    Ok(Shape { order, environments, records, databases: databases_of(config) })
}

/// The `[databases.NAME]` entries of the sandbox: the customer's names, roles and database
/// names, each served by a sandbox PostgreSQL.
fn databases_of(config: &Config) -> Vec<DbSpec> {
    config
        .databases
        .iter()
        .filter_map(|(name, db)| {
            let target = drscript_core::db::Target::parse(&db.url).ok()?;
            let database = if target.database.is_empty() { "postgres".to_string() } else { target.database };
            Some(DbSpec { name: name.clone(), user: target.user, database })
        })
        .collect()
}
