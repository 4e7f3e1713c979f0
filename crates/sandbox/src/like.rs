//! `sandbox up --like FILE`: a sandbox shaped like a customer's config — the same environment
//! names, namespaces, Helm releases, replica counts, DNS records and database names — so that the customer's own
//! runbooks can be rehearsed against it unchanged (only the endpoints are the sandbox's).
//!
//! The shape is a plain description: the caller reads the customer's file and fills it in, so
//! that the sandbox never depends on the configuration code of the client it stands in for.

use std::collections::BTreeMap;

#[derive(Debug, Clone)]
pub struct EnvShape {
    pub namespace: String,
    pub release: String,
    /// runtime, listener, rabbitmq.
    pub replicas: [i32; 3],
    /// Workload names by component (runtime, listener, rabbitmq and the extra ones).
    pub names: BTreeMap<String, String>,
    /// The customer's own components: name, kind (`deployment`, `statefulset`), count.
    pub extra: Vec<(String, String, i32)>,
    /// The folders of the application share a switch copies, when the config lists them: the
    /// sandbox seeds those the document does not name.
    pub app_folders: Option<Vec<String>>,
}

/// A DNS record of the customer's `[dns.records]`, one target per role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsRecord {
    pub zone: String,
    pub name: String,
    pub record_type: String,
    pub ttl: u32,
    /// Target per role: `prod`/`dr`, `primary`/`sync`, ...
    pub targets: BTreeMap<String, String>,
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
