//! Azure DNS zones, public (`Microsoft.Network/dnsZones`) and private
//! (`Microsoft.Network/privateDnsZones`), as record sets through ARM.
//!
//! Writes are optimistic-concurrency safe: a record set that exists is replaced with
//! `If-Match: <etag>` of the version we read, a new one is created with `If-None-Match: *`, so a
//! concurrent change by someone else makes our write fail (412) and we read again instead of
//! silently overwriting it. The two APIs spell their properties differently (`TTL`/`ARecords` vs
//! `ttl`/`aRecords`); that is the only difference here.
//!
//! A record set that exists with no records (an `az network dns record-set a create`, or one
//! whose last record was removed) is empty to a reader but exists to a writer: it is replaced
//! with `If-Match` like any other. An alias record set (`targetResource`, common at the zone
//! apex: it follows a public IP, a Traffic Manager profile or a Front Door) holds no records;
//! drscript refuses to read it as a value or to overwrite it with records, and says so: replacing
//! an alias with a fixed address would silently cut it loose from the resource it follows.
//! Point the alias at the DR resource in Azure (or remove it) instead.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::RecordState;
use super::record::{RecordSpec, RecordType, fqdn};
use crate::azure::ArmClient;
use crate::config::Config;
use drscript_base::error::{Error, Result};

const PUBLIC_API_VERSION: &str = "2018-05-01";
const PRIVATE_API_VERSION: &str = "2024-06-01";
/// Read-modify-write rounds when someone else changes the record set in between.
const ROUNDS: usize = 3;

/// A record set that exists.
struct Found {
    /// Its records; `None` when it holds none (empty, or an alias).
    state: Option<RecordState>,
    etag: String,
    /// `targetResource.id` of an alias record set.
    alias: Option<String>,
    /// `properties.metadata`: a PUT replaces the whole set, so it is sent back as read.
    metadata: Option<Value>,
}

#[derive(Debug, Clone)]
pub struct AzureZones {
    client: ArmClient,
    subscription: String,
    resource_group: String,
    private: bool,
}

impl AzureZones {
    pub fn from_config(config: &Config, private: bool) -> Result<Self> {
        let dns = config.dns.as_ref().expect("called with a [dns] section");
        let need = |key: &str| Error::Config {
            message: format!("[dns] provider = \"{}\" needs `{key}`", if private { "azure_private" } else { "azure" }),
        };
        Ok(AzureZones {
            client: ArmClient::from_config(config)?,
            subscription: dns.subscription.clone().ok_or_else(|| need("subscription"))?,
            resource_group: dns.resource_group.clone().ok_or_else(|| need("resource_group"))?,
            private,
        })
    }

    pub fn new(client: ArmClient, subscription: &str, resource_group: &str, private: bool) -> Self {
        AzureZones { client, subscription: subscription.into(), resource_group: resource_group.into(), private }
    }

    pub fn describe(&self) -> String {
        format!("azure{} resource group {}", if self.private { " private DNS" } else { " DNS" }, self.resource_group)
    }

    fn path(&self, zone: &str, name: &str, record_type: RecordType) -> String {
        let (kind, version) =
            if self.private { ("privateDnsZones", PRIVATE_API_VERSION) } else { ("dnsZones", PUBLIC_API_VERSION) };
        format!(
            "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.Network/{kind}/{zone}/{record_type}/{name}?api-version={version}",
            self.subscription, self.resource_group
        )
    }

    fn target(&self, zone: &str, name: &str, record_type: RecordType) -> String {
        format!("{record_type} {} ({})", fqdn(name, zone), self.describe())
    }

    /// The record set as it is: `None` when it does not exist (a missing zone is an error).
    async fn get(&self, primitive: &str, zone: &str, name: &str, record_type: RecordType) -> Result<Option<Found>> {
        let response = self.client.send(Method::GET, &self.path(zone, name, record_type), None, &[]).await?;
        if response.status == StatusCode::NOT_FOUND {
            let code = response.body["error"]["code"].as_str().unwrap_or("");
            // A missing record set is normal; a missing zone (parent) is bad input.
            if code != "ParentResourceNotFound" && !code.contains("Zone") {
                return Ok(None);
            }
        }
        let response = response.into_result(primitive, &self.target(zone, name, record_type))?;
        let props = &response.body["properties"];
        Ok(Some(Found {
            state: self.parse(props, record_type),
            etag: response.body["etag"].as_str().unwrap_or("").to_string(),
            alias: props["targetResource"]["id"].as_str().filter(|id| !id.is_empty()).map(str::to_string),
            metadata: props.get("metadata").filter(|m| m.as_object().is_some_and(|o| !o.is_empty())).cloned(),
        }))
    }

    fn alias_error(&self, primitive: &str, zone: &str, name: &str, record_type: RecordType, target: &str) -> Error {
        Error::action(
            primitive,
            self.target(zone, name, record_type),
            format!(
                "this is an alias record set: it follows the Azure resource {target} and holds no addresses of its own. \
                 drscript does not overwrite an alias with fixed records; point the alias at the DR resource in Azure \
                 (or remove the alias), or manage a record without an alias"
            ),
        )
    }

    pub async fn read(
        &self,
        primitive: &str,
        zone: &str,
        name: &str,
        record_type: RecordType,
    ) -> Result<Option<RecordState>> {
        match self.get(primitive, zone, name, record_type).await? {
            Some(Found { alias: Some(target), .. }) => {
                Err(self.alias_error(primitive, zone, name, record_type, &target))
            }
            Some(found) => Ok(found.state),
            None => Ok(None),
        }
    }

    pub async fn write(&self, spec: &RecordSpec) -> Result<()> {
        let target = self.target(&spec.zone, &spec.name, spec.record_type);
        for _ in 0..ROUNDS {
            let current = self.get("set_dns", &spec.zone, &spec.name, spec.record_type).await?;
            // An existing record set, with records or without, is replaced only as it was read.
            let condition = match &current {
                Some(Found { alias: Some(alias), .. }) => {
                    return Err(self.alias_error("set_dns", &spec.zone, &spec.name, spec.record_type, alias));
                }
                Some(found) if !found.etag.is_empty() => ("If-Match", found.etag.clone()),
                Some(_) => ("If-Match", "*".to_string()),
                None => ("If-None-Match", "*".to_string()),
            };
            let body = self.body(spec, current.as_ref().and_then(|c| c.metadata.as_ref()));
            let response = self
                .client
                .send(
                    Method::PUT,
                    &self.path(&spec.zone, &spec.name, spec.record_type),
                    Some(&body),
                    &[(condition.0, &condition.1)],
                )
                .await?;
            if response.status == StatusCode::PRECONDITION_FAILED {
                tracing::warn!("{target}: changed concurrently (412), reading it again");
                continue;
            }
            response.into_result("set_dns", &target)?;
            return Ok(());
        }
        Err(Error::action(
            "set_dns",
            target,
            format!("the record set kept changing under us ({ROUNDS} attempts ended in 412 Precondition Failed)"),
        ))
    }

    fn body(&self, spec: &RecordSpec, metadata: Option<&Value>) -> Value {
        let v = spec.value.as_str();
        let mut props = match (self.private, spec.record_type) {
            (false, RecordType::A) => json!({"TTL": spec.ttl, "ARecords": [{"ipv4Address": v}]}),
            (false, RecordType::Aaaa) => {
                json!({"TTL": spec.ttl, "AAAARecords": [{"ipv6Address": v}]})
            }
            (false, RecordType::Cname) => json!({"TTL": spec.ttl, "CNAMERecord": {"cname": v}}),
            (true, RecordType::A) => json!({"ttl": spec.ttl, "aRecords": [{"ipv4Address": v}]}),
            (true, RecordType::Aaaa) => {
                json!({"ttl": spec.ttl, "aaaaRecords": [{"ipv6Address": v}]})
            }
            (true, RecordType::Cname) => json!({"ttl": spec.ttl, "cnameRecord": {"cname": v}}),
        };
        if let Some(m) = metadata {
            props["metadata"] = m.clone();
        }
        json!({ "properties": props })
    }

    fn parse(&self, props: &Value, record_type: RecordType) -> Option<RecordState> {
        let ttl = props.get(if self.private { "ttl" } else { "TTL" }).and_then(Value::as_u64).unwrap_or(0) as u32;
        let list = |key: &str, field: &str| -> Vec<String> {
            props[key].as_array().into_iter().flatten().filter_map(|r| r[field].as_str().map(str::to_string)).collect()
        };
        let mut values = match (self.private, record_type) {
            (false, RecordType::A) => list("ARecords", "ipv4Address"),
            (false, RecordType::Aaaa) => list("AAAARecords", "ipv6Address"),
            (true, RecordType::A) => list("aRecords", "ipv4Address"),
            (true, RecordType::Aaaa) => list("aaaaRecords", "ipv6Address"),
            (false, RecordType::Cname) => props["CNAMERecord"]["cname"]
                .as_str()
                .map(|c| vec![c.trim_end_matches('.').to_string()])
                .unwrap_or_default(),
            (true, RecordType::Cname) => props["cnameRecord"]["cname"]
                .as_str()
                .map(|c| vec![c.trim_end_matches('.').to_string()])
                .unwrap_or_default(),
        };
        values.sort();
        (!values.is_empty()).then_some(RecordState { values, ttl })
    }
}
