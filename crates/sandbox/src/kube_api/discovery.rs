//! API discovery: `/version`, `/api`, `/apis`, `/api/v1`, `/apis/apps/v1`, `/apis/autoscaling`
//! (`v2`, preferred, and `v1`), in the legacy form (what kube-rs reads) and in the aggregated form
//! `apidiscovery.k8s.io/v2` that kubectl asks for first
//! (`Accept: application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList`). Each
//! resource lists the verbs, short names (`cm`, `hpa`; secrets have none) and the `all` category
//! the API server gives it.

use serde_json::{Value, json};

/// One served resource, the source of both discovery forms.
struct Served {
    group: &'static str,
    /// The versions it is served in, the preferred (storage) one first.
    versions: &'static [&'static str],
    plural: &'static str,
    singular: &'static str,
    kind: &'static str,
    short: &'static [&'static str],
    verbs: &'static [&'static str],
    /// In `kubectl get all`.
    all: bool,
    /// Subresource name, with the group/version/kind it answers with (an empty version: the
    /// version of the parent) and its verbs.
    subresources: &'static [(&'static str, &'static str, &'static str, &'static str, &'static [&'static str])],
}

const READ_WRITE: &[&str] = &["get", "list", "patch", "update", "watch"];
/// What the API server lists for a resource clients create and delete.
const FULL: &[&str] = &["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"];
const SUB_VERBS: &[&str] = &["get", "patch", "update"];
const SCALE: &[(&str, &str, &str, &str, &[&str])] = &[("scale", "autoscaling", "v1", "Scale", SUB_VERBS)];

const fn served(
    group: &'static str,
    versions: &'static [&'static str],
    (plural, singular, kind): (&'static str, &'static str, &'static str),
    short: &'static [&'static str],
    verbs: &'static [&'static str],
    all: bool,
) -> Served {
    Served { group, versions, plural, singular, kind, short, verbs, all, subresources: &[] }
}

const SERVED: &[Served] = &[
    served("", &["v1"], ("configmaps", "configmap", "ConfigMap"), &["cm"], FULL, false),
    served("", &["v1"], ("events", "event", "Event"), &["ev"], &["get", "list", "watch"], false),
    served("", &["v1"], ("pods", "pod", "Pod"), &["po"], &["delete", "get", "list", "watch"], true),
    served("", &["v1"], ("secrets", "secret", "Secret"), &[], FULL, false),
    served("apps", &["v1"], ("replicasets", "replicaset", "ReplicaSet"), &["rs"], &["get", "list", "watch"], true),
    Served {
        subresources: SCALE,
        ..served("apps", &["v1"], ("deployments", "deployment", "Deployment"), &["deploy"], READ_WRITE, true)
    },
    Served {
        subresources: SCALE,
        ..served("apps", &["v1"], ("statefulsets", "statefulset", "StatefulSet"), &["sts"], READ_WRITE, true)
    },
    Served {
        subresources: &[("status", "autoscaling", "", "HorizontalPodAutoscaler", SUB_VERBS)],
        ..served(
            "autoscaling",
            &["v2", "v1"],
            ("horizontalpodautoscalers", "horizontalpodautoscaler", "HorizontalPodAutoscaler"),
            &["hpa"],
            FULL,
            true,
        )
    },
];

/// The API groups under `/apis`, each with its versions, the preferred one first.
const GROUPS: &[(&str, &[&str])] = &[("apps", &["v1"]), ("autoscaling", &["v2", "v1"])];

/// Whether `group`/`version` serves `plural` (`/apis/autoscaling/v1/.../horizontalpodautoscalers`).
pub fn serves(group: &str, version: &str, plural: &str) -> bool {
    SERVED.iter().any(|s| s.group == group && s.plural == plural && s.versions.contains(&version))
}

/// Whether `group`/`version` is served at all (`/apis/autoscaling/v2`).
pub fn is_group_version(group: &str, version: &str) -> bool {
    SERVED.iter().any(|s| s.group == group && s.versions.contains(&version))
}

/// Sets `key` unless `items` is empty: the API server omits empty short names and categories.
fn optional(object: &mut Value, key: &str, items: &[&str]) {
    if !items.is_empty() {
        object[key] = json!(items);
    }
}

fn categories(s: &Served) -> &'static [&'static str] {
    if s.all { &["all"] } else { &[] }
}

pub const AGGREGATED: &str = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";

/// True when the client accepts the aggregated v2 discovery document.
pub fn wants_aggregated(accept: &str) -> bool {
    accept.split(',').any(|a| {
        let a = a.replace(' ', "");
        a.contains("as=APIGroupDiscoveryList") && a.contains("v=v2;") || a.ends_with("v=v2;as=APIGroupDiscoveryList")
    })
}

pub fn version() -> Value {
    json!({
        "major": "1", "minor": "32",
        "gitVersion": "v1.32.4-drscript-sandbox",
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": "go1.23.8", "compiler": "gc", "platform": "linux/amd64"
    })
}

pub fn api_versions(server: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server}]
    })
}

/// `/apis/GROUP`.
pub fn api_group(name: &str) -> Option<Value> {
    let (_, versions) = GROUPS.iter().find(|(g, _)| *g == name)?;
    let versions: Vec<Value> =
        versions.iter().map(|v| json!({"groupVersion": format!("{name}/{v}"), "version": v})).collect();
    Some(json!({
        "kind": "APIGroup", "apiVersion": "v1", "name": name,
        "versions": versions, "preferredVersion": versions[0]
    }))
}

pub fn api_group_list() -> Value {
    let groups: Vec<Value> = GROUPS
        .iter()
        .filter_map(|(name, _)| api_group(name))
        .map(|mut group| {
            if let Some(g) = group.as_object_mut() {
                g.remove("kind");
                g.remove("apiVersion");
            }
            group
        })
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// `/api/v1` (group "") or `/apis/GROUP/VERSION`.
pub fn resource_list(group: &str, version: &str) -> Value {
    let group_version = if group.is_empty() { version.to_string() } else { format!("{group}/{version}") };
    let mut resources = Vec::new();
    for s in SERVED.iter().filter(|s| s.group == group && s.versions.contains(&version)) {
        let mut resource = json!({
            "name": s.plural, "singularName": s.singular, "namespaced": true, "kind": s.kind, "verbs": s.verbs
        });
        optional(&mut resource, "shortNames", s.short);
        optional(&mut resource, "categories", categories(s));
        resources.push(resource);
        for (sub, g, v, kind, verbs) in s.subresources {
            let v = if v.is_empty() { version } else { v };
            resources.push(json!({
                "name": format!("{}/{sub}", s.plural), "singularName": "", "namespaced": true,
                "group": g, "version": v, "kind": kind, "verbs": verbs
            }));
        }
    }
    json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": resources})
}

/// The aggregated document for `/api` (group "") or `/apis` (every other group).
pub fn aggregated(core: bool) -> Value {
    let groups: Vec<(&str, &[&str])> = if core { vec![("", &["v1"])] } else { GROUPS.to_vec() };
    let items: Vec<Value> = groups
        .iter()
        .map(|(group, versions)| {
            let versions: Vec<Value> = versions
                .iter()
                .map(|version| {
                    let resources: Vec<Value> = SERVED
                        .iter()
                        .filter(|s| s.group == *group && s.versions.contains(version))
                        .map(|s| aggregated_resource(s, version))
                        .collect();
                    json!({"version": version, "resources": resources, "freshness": "Current"})
                })
                .collect();
            json!({"metadata": {"name": group, "creationTimestamp": null}, "versions": versions})
        })
        .collect();
    json!({"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2", "metadata": {}, "items": items})
}

fn aggregated_resource(s: &Served, version: &str) -> Value {
    let subs: Vec<Value> = s
        .subresources
        .iter()
        .map(|(sub, g, v, kind, verbs)| {
            let v = if v.is_empty() { version } else { v };
            json!({"subresource": sub, "responseKind": {"group": g, "version": v, "kind": kind}, "verbs": verbs})
        })
        .collect();
    let mut resource = json!({
        "resource": s.plural,
        "responseKind": {"group": s.group, "version": version, "kind": s.kind},
        "scope": "Namespaced", "singularResource": s.singular, "verbs": s.verbs
    });
    optional(&mut resource, "shortNames", s.short);
    optional(&mut resource, "categories", categories(s));
    if !subs.is_empty() {
        resource["subresources"] = json!(subs);
    }
    resource
}
