//! Emulated `Microsoft.Network/dnsZones` and `privateDnsZones` record sets (A, AAAA, CNAME),
//! with etags and `If-Match` / `If-None-Match`.
//!
//! Two shapes real zones hold besides record sets with records: a record set with no records
//! (`az network dns record-set a create` makes one; so does deleting its last record), and, in
//! public zones, an alias record set whose `targetResource.id` names an Azure resource (a public
//! IP, a Traffic Manager profile, a Front Door) instead of holding records, common at the apex.

use std::collections::{BTreeMap, HashMap};

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::Response;
use serde_json::{Value, json};

use super::{error, ok_json};

/// A zone the emulator starts with, and its record sets `(name, type, ttl, values)`.
#[derive(Debug, Clone)]
pub struct ZoneSeed {
    pub subscription: String,
    pub resource_group: String,
    pub zone: String,
    pub private: bool,
    pub records: Vec<(String, String, u32, Vec<String>)>,
    /// Alias record sets `(name, type, ttl, target resource id)` (public zones only).
    pub aliases: Vec<(String, String, u32, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct ZoneKey {
    subscription: String,
    resource_group: String,
    private: bool,
    zone: String,
}

impl ZoneKey {
    pub fn new(subscription: &str, resource_group: &str, private: bool, zone: &str) -> Self {
        ZoneKey {
            subscription: subscription.to_ascii_lowercase(),
            resource_group: resource_group.to_ascii_lowercase(),
            private,
            zone: zone.to_ascii_lowercase(),
        }
    }

    fn id(&self) -> String {
        format!(
            "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.Network/{}/{}",
            self.subscription,
            self.resource_group,
            if self.private { "privateDnsZones" } else { "dnszones" },
            self.zone
        )
    }
}

#[derive(Debug, Clone)]
struct RecordSet {
    ttl: u32,
    values: Vec<String>,
    /// `targetResource.id` of an alias record set.
    target: Option<String>,
    etag: String,
    /// `properties.metadata`: name/value tags of the set. A PUT replaces the whole set, so a PUT
    /// without them drops them, as Azure does.
    metadata: Option<Value>,
}

pub(crate) struct Zones {
    zones: HashMap<ZoneKey, BTreeMap<(String, String), RecordSet>>,
}

fn new_etag() -> String {
    let v: u128 = rand::random();
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        (v >> 96) as u32,
        (v >> 80) as u16,
        (v >> 64) as u16,
        (v >> 48) as u16,
        v as u64 & 0xffff_ffff_ffff
    )
}

impl Zones {
    pub fn new(seeds: &[ZoneSeed]) -> Self {
        let mut zones = HashMap::new();
        for seed in seeds {
            let key = ZoneKey::new(&seed.subscription, &seed.resource_group, seed.private, &seed.zone);
            let sets: &mut BTreeMap<(String, String), RecordSet> = zones.entry(key).or_default();
            for (name, rtype, ttl, values) in &seed.records {
                sets.insert(
                    (rtype.to_ascii_uppercase(), name.to_ascii_lowercase()),
                    RecordSet { ttl: *ttl, values: values.clone(), target: None, etag: new_etag(), metadata: None },
                );
            }
            for (name, rtype, ttl, target) in &seed.aliases {
                sets.insert(
                    (rtype.to_ascii_uppercase(), name.to_ascii_lowercase()),
                    RecordSet {
                        ttl: *ttl,
                        values: Vec::new(),
                        target: Some(target.clone()),
                        etag: new_etag(),
                        metadata: None,
                    },
                );
            }
        }
        Zones { zones }
    }

    pub fn zone(&self, key: &ZoneKey) -> Response {
        match self.zones.get(key) {
            Some(sets) => ok_json(
                StatusCode::OK,
                json!({
                    "id": key.id(),
                    "name": key.zone,
                    "type": if key.private { "Microsoft.Network/privateDnsZones" } else { "Microsoft.Network/dnszones" },
                    "location": "global",
                    "properties": { "numberOfRecordSets": sets.len() },
                }),
            ),
            None => not_found_zone(key),
        }
    }

    pub fn record_set(
        &mut self,
        method: &Method,
        key: &ZoneKey,
        rtype: &str,
        name: &str,
        headers: &HeaderMap,
        body: &Bytes,
    ) -> Response {
        let rtype = rtype.to_ascii_uppercase();
        if !["A", "AAAA", "CNAME"].contains(&rtype.as_str()) {
            return error(
                StatusCode::BAD_REQUEST,
                "BadRequest",
                &format!("The record type '{rtype}' is not supported by the ARM emulator."),
            );
        }
        let Some(sets) = self.zones.get_mut(key) else {
            return not_found_zone(key);
        };
        let set_key = (rtype.clone(), name.to_ascii_lowercase());
        let existing = sets.get(&set_key).cloned();
        let header = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).map(|s| s.trim_matches('"').to_string());
        let precondition = || {
            if let Some(want) = header("if-match") {
                match &existing {
                    None => return Some(precondition_failed(name, "does not exist")),
                    Some(s) if want != "*" && want != s.etag => {
                        return Some(precondition_failed(name, "has been modified (etag mismatch)"));
                    }
                    _ => {}
                }
            }
            if header("if-none-match").as_deref() == Some("*") && existing.is_some() {
                return Some(precondition_failed(name, "already exists"));
            }
            None
        };
        match *method {
            Method::GET => match existing {
                Some(set) => ok_json(StatusCode::OK, set_json(key, &rtype, name, &set)),
                None => not_found_record(key, name),
            },
            Method::PUT | Method::PATCH => {
                if let Some(r) = precondition() {
                    return r;
                }
                let parsed: Value = match serde_json::from_slice(body) {
                    Ok(v) => v,
                    Err(e) => {
                        return error(
                            StatusCode::BAD_REQUEST,
                            "InvalidRequestContent",
                            &format!("The request content was invalid: {e}"),
                        );
                    }
                };
                let (ttl, values, target) = match parse_props(key.private, &rtype, &parsed["properties"]) {
                    Ok(x) => x,
                    Err(m) => return error(StatusCode::BAD_REQUEST, "BadRequest", &m),
                };
                let created = existing.is_none();
                let metadata = parsed["properties"].get("metadata").filter(|m| m.is_object()).cloned();
                let set = RecordSet { ttl, values, target, etag: new_etag(), metadata };
                sets.insert(set_key, set.clone());
                let mut r = ok_json(
                    if created { StatusCode::CREATED } else { StatusCode::OK },
                    set_json(key, &rtype, name, &set),
                );
                r.headers_mut().insert("etag", HeaderValue::from_str(&set.etag).unwrap());
                r
            }
            Method::DELETE => {
                if let Some(r) = precondition() {
                    return r;
                }
                let removed = sets.remove(&set_key).is_some();
                let mut r = ok_json(if removed { StatusCode::OK } else { StatusCode::NO_CONTENT }, Value::Null);
                *r.body_mut() = axum::body::Body::empty();
                r
            }
            _ => error(
                StatusCode::METHOD_NOT_ALLOWED,
                "MethodNotAllowed",
                &format!("{method} is not supported on record sets."),
            ),
        }
    }

    pub fn to_json(&self) -> Value {
        let mut out: Vec<Value> = self
            .zones
            .iter()
            .map(|(key, sets)| {
                json!({
                    "zone": key.zone,
                    "private": key.private,
                    "resource_group": key.resource_group,
                    "records": sets.iter().map(|((t, n), s)| json!({"name": n, "type": t, "ttl": s.ttl, "values": s.values, "target_resource": s.target, "etag": s.etag, "metadata": s.metadata})).collect::<Vec<_>>(),
                })
            })
            .collect();
        out.sort_by_key(|z| z["zone"].as_str().unwrap_or("").to_string());
        Value::Array(out)
    }
}

fn not_found_zone(key: &ZoneKey) -> Response {
    error(
        StatusCode::NOT_FOUND,
        "ParentResourceNotFound",
        &format!("Can not perform requested operation on nested resource. Parent resource '{}' not found.", key.zone),
    )
}

fn not_found_record(key: &ZoneKey, name: &str) -> Response {
    error(
        StatusCode::NOT_FOUND,
        "NotFound",
        &format!(
            "The resource record '{name}' does not exist in resource group '{}' of subscription '{}'.",
            key.resource_group, key.subscription
        ),
    )
}

fn precondition_failed(name: &str, why: &str) -> Response {
    error(
        StatusCode::PRECONDITION_FAILED,
        "PreconditionFailed",
        &format!("The condition on record set '{name}' was not met: it {why}."),
    )
}

fn field_names(private: bool, rtype: &str) -> (&'static str, &'static str, &'static str) {
    match (private, rtype) {
        (false, "A") => ("TTL", "ARecords", "ipv4Address"),
        (false, "AAAA") => ("TTL", "AAAARecords", "ipv6Address"),
        (false, _) => ("TTL", "CNAMERecord", "cname"),
        (true, "A") => ("ttl", "aRecords", "ipv4Address"),
        (true, "AAAA") => ("ttl", "aaaaRecords", "ipv6Address"),
        (true, _) => ("ttl", "cnameRecord", "cname"),
    }
}

/// TTL, records and alias target of a PUT body. A record set may hold no records; an alias
/// holds none (Azure refuses both at once), and only public zones know aliases.
fn parse_props(private: bool, rtype: &str, props: &Value) -> Result<(u32, Vec<String>, Option<String>), String> {
    let (ttl_key, list_key, field) = field_names(private, rtype);
    let ttl =
        props.get(ttl_key).and_then(Value::as_u64).ok_or_else(|| format!("properties.{ttl_key} is required"))? as u32;
    let values: Vec<String> = if rtype == "CNAME" {
        props[list_key][field].as_str().map(|s| vec![s.to_string()]).unwrap_or_default()
    } else {
        props[list_key].as_array().into_iter().flatten().filter_map(|r| r[field].as_str().map(str::to_string)).collect()
    };
    let target = match props.get("targetResource").filter(|t| !t.is_null()) {
        None => None,
        Some(_) if private => {
            return Err("properties.targetResource is not a property of private DNS record sets".into());
        }
        Some(t) => match t["id"].as_str().filter(|id| id.starts_with("/subscriptions/")) {
            Some(id) => Some(id.to_string()),
            None => return Err("properties.targetResource.id must be an Azure resource ID".into()),
        },
    };
    if target.is_some() && !values.is_empty() {
        return Err(format!(
            "A record set cannot have both records and a target resource: remove properties.{list_key} or properties.targetResource"
        ));
    }
    for v in &values {
        let ok = match rtype {
            "A" => v.parse::<std::net::Ipv4Addr>().is_ok(),
            "AAAA" => v.parse::<std::net::Ipv6Addr>().is_ok(),
            _ => !v.is_empty(),
        };
        if !ok {
            return Err(format!("'{v}' is not a valid value for a {rtype} record"));
        }
    }
    Ok((ttl, values, target))
}

fn set_json(key: &ZoneKey, rtype: &str, name: &str, set: &RecordSet) -> Value {
    let (ttl_key, list_key, field) = field_names(key.private, rtype);
    let fqdn = if name == "@" { format!("{}.", key.zone) } else { format!("{name}.{}.", key.zone) };
    let mut props = json!({ "fqdn": fqdn, ttl_key: set.ttl });
    // An empty CNAME record set has no `CNAMERecord`; empty A/AAAA sets an empty list.
    if rtype != "CNAME" {
        props[list_key] = Value::Array(set.values.iter().map(|v| json!({ field: v })).collect());
    } else if let Some(v) = set.values.first() {
        props[list_key] = json!({ field: v });
    }
    if let Some(target) = &set.target {
        props["targetResource"] = json!({ "id": target });
    }
    if let Some(m) = &set.metadata {
        props["metadata"] = m.clone();
    }
    if !key.private {
        props["provisioningState"] = json!("Succeeded");
    }
    json!({
        "id": format!("{}/{rtype}/{name}", key.id()),
        "name": name,
        "type": format!("Microsoft.Network/{}/{rtype}", if key.private { "privateDnsZones" } else { "dnszones" }),
        "etag": set.etag,
        "properties": props,
    })
}
