//! `sandbox up --like FILE`: a sandbox shaped like a customer's config — the same environment
//! names, namespaces, Helm releases, replica counts, DNS records and database names — so that the customer's own
//! runbooks can be rehearsed against it unchanged (only the endpoints are the sandbox's).

use std::collections::BTreeMap;

use crate::config::{Config, DnsRecord};
use crate::error::{Error, Result};

#[derive(Debug, Clone)]
pub struct EnvShape {
    pub namespace: String,
    pub release: String,
    /// runtime, listener, rabbitmq.
    pub replicas: [i32; 3],
}

#[derive(Debug, Clone)]
pub struct Shape {
    /// Environment names, the active (PROD) one first.
    pub order: Vec<String>,
    pub environments: BTreeMap<String, EnvShape>,
    pub records: BTreeMap<String, DnsRecord>,
    /// The customer's `[databases]` names, roles and database names (served by PostgreSQL).
    pub databases: Vec<super::databases::DbSpec>,
}

impl Shape {
    /// The shape of `config`; `active` names the environment that starts active (default:
    /// `prod` if there is one, else the first).
    pub fn of(config: &Config, active: Option<&str>) -> Result<Shape> {
        let active = match active {
            Some(a) => config.environment(a)?.name.clone(),
            None if config.environments.contains_key("prod") => "prod".to_string(),
            None => config.environments.keys().next().cloned().unwrap_or_default(),
        };
        let mut order = vec![active.clone()];
        order.extend(config.environments.keys().filter(|k| **k != active).cloned());
        let replicas =
            |n: u32| i32::try_from(n).map_err(|_| Error::Usage(format!("{n} replicas is too many for the sandbox")));
        let environments = config
            .environments
            .iter()
            .map(|(name, e)| {
                Ok((
                    name.clone(),
                    EnvShape {
                        namespace: e.namespace.clone(),
                        release: e.release.clone(),
                        replicas: [
                            replicas(e.replicas.runtime)?,
                            replicas(e.replicas.listener)?,
                            replicas(e.replicas.rabbitmq)?,
                        ],
                    },
                ))
            })
            .collect::<Result<_>>()?;
        let records = config.dns.as_ref().map(|d| d.records.clone()).unwrap_or_default();
        let databases = super::databases::specs_like(config);
        Ok(Shape { order, environments, records, databases })
    }

    /// The `[dns]` section of the sandbox's config for these records, served from `zone_file`.
    pub fn dns_config(&self, zone_file: &str) -> String {
        let mut out = format!("[dns]\nprovider = \"sandbox\"\nzone_file = \"{zone_file}\"\n");
        for (key, r) in &self.records {
            let targets: Vec<String> = r.targets.iter().map(|(role, value)| format!("{role} = \"{value}\"")).collect();
            out.push_str(&format!(
                "\n[dns.records.{key}]\nzone = \"{}\"\nname = \"{}\"\ntype = \"{}\"\nttl = {}\ntargets = {{ {} }}\n",
                r.zone,
                r.name,
                r.record_type,
                r.ttl,
                targets.join(", ")
            ));
        }
        out
    }

    /// The value a record starts with: its target for the active environment, else for
    /// `primary`, else its first target.
    pub fn initial_value(record: &DnsRecord, active: &str) -> Option<String> {
        record
            .targets
            .get(active)
            .or_else(|| record.targets.get("primary"))
            .or_else(|| record.targets.values().next())
            .cloned()
    }
}
