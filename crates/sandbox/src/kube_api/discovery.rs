//! API discovery: `/version`, `/api`, `/apis`, `/api/v1`, `/apis/apps/v1`, in the legacy form
//! (what kube-rs reads) and in the aggregated form `apidiscovery.k8s.io/v2` that kubectl asks for
//! first (`Accept: application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList`).

use serde_json::{Value, json};

/// One served resource, the source of both discovery forms.
struct Served {
    group: &'static str,
    plural: &'static str,
    singular: &'static str,
    kind: &'static str,
    short: &'static [&'static str],
    verbs: &'static [&'static str],
    /// Subresource name, with the group/version/kind it answers with.
    subresources: &'static [(&'static str, &'static str, &'static str, &'static str, &'static [&'static str])],
}

const READ_WRITE: &[&str] = &["get", "list", "patch", "update", "watch"];
const SUB_VERBS: &[&str] = &["get", "patch", "update"];

const SERVED: &[Served] = &[
    Served {
        group: "",
        plural: "pods",
        singular: "pod",
        kind: "Pod",
        short: &["po"],
        verbs: &["delete", "get", "list", "watch"],
        subresources: &[],
    },
    Served {
        group: "",
        plural: "events",
        singular: "event",
        kind: "Event",
        short: &["ev"],
        verbs: &["get", "list", "watch"],
        subresources: &[],
    },
    Served {
        group: "apps",
        plural: "replicasets",
        singular: "replicaset",
        kind: "ReplicaSet",
        short: &["rs"],
        verbs: &["get", "list", "watch"],
        subresources: &[],
    },
    Served {
        group: "apps",
        plural: "deployments",
        singular: "deployment",
        kind: "Deployment",
        short: &["deploy"],
        verbs: READ_WRITE,
        subresources: &[("scale", "autoscaling", "v1", "Scale", SUB_VERBS)],
    },
    Served {
        group: "apps",
        plural: "statefulsets",
        singular: "statefulset",
        kind: "StatefulSet",
        short: &["sts"],
        verbs: READ_WRITE,
        subresources: &[("scale", "autoscaling", "v1", "Scale", SUB_VERBS)],
    },
];

/// Events are not in `all` (so `kubectl get all` does not list them), as on a real server.
fn categories(s: &Served) -> Value {
    if s.plural == "events" { json!([]) } else { json!(["all"]) }
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

pub fn api_group() -> Value {
    json!({
        "kind": "APIGroup", "apiVersion": "v1", "name": "apps",
        "versions": [{"groupVersion": "apps/v1", "version": "v1"}],
        "preferredVersion": {"groupVersion": "apps/v1", "version": "v1"}
    })
}

pub fn api_group_list() -> Value {
    let mut group = api_group();
    group.as_object_mut().map(|g| {
        g.remove("kind");
        g.remove("apiVersion")
    });
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": [group]})
}

/// `/api/v1` (group "") or `/apis/apps/v1`.
pub fn resource_list(group: &str) -> Value {
    let group_version = if group.is_empty() { "v1".to_string() } else { format!("{group}/v1") };
    let mut resources = Vec::new();
    for s in SERVED.iter().filter(|s| s.group == group) {
        resources.push(json!({
            "name": s.plural, "singularName": s.singular, "namespaced": true, "kind": s.kind,
            "verbs": s.verbs, "shortNames": s.short, "categories": categories(s)
        }));
        for (sub, g, v, kind, verbs) in s.subresources {
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
    let groups: Vec<&str> = if core { vec![""] } else { vec!["apps"] };
    let items: Vec<Value> = groups
        .iter()
        .map(|group| {
            let resources: Vec<Value> = SERVED
                .iter()
                .filter(|s| s.group == *group)
                .map(|s| {
                    let subs: Vec<Value> = s
                        .subresources
                        .iter()
                        .map(|(sub, g, v, kind, verbs)| {
                            json!({"subresource": sub, "responseKind": {"group": g, "version": v, "kind": kind}, "verbs": verbs})
                        })
                        .collect();
                    json!({
                        "resource": s.plural,
                        "responseKind": {"group": s.group, "version": "v1", "kind": s.kind},
                        "scope": "Namespaced", "singularResource": s.singular,
                        "verbs": s.verbs, "shortNames": s.short, "categories": categories(s),
                        "subresources": subs
                    })
                })
                .collect();
            json!({
                "metadata": {"name": group, "creationTimestamp": null},
                "versions": [{"version": "v1", "resources": resources, "freshness": "Current"}]
            })
        })
        .collect();
    json!({"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2", "metadata": {}, "items": items})
}
