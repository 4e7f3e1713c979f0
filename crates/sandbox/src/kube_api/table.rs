//! Server-side printing: the `meta.k8s.io/v1` Table kubectl asks for on `kubectl get`
//! (`Accept: application/json;as=Table;v=v1;g=meta.k8s.io`), with the columns a real API server
//! prints for deployments, statefulsets, pods, replicasets, events, config maps (NAME, DATA, AGE),
//! secrets (NAME, TYPE, DATA, AGE) and HPAs (NAME, REFERENCE, TARGETS, MINPODS, MAXPODS,
//! REPLICAS, AGE).

use serde_json::{Value, json};

use super::store::Res;

pub fn wants_table(accept: &str) -> bool {
    accept.contains("as=Table")
}

fn column(name: &str, kind: &str) -> Value {
    let format = if name == "Name" { "name" } else { "" };
    json!({"name": name, "type": kind, "format": format, "description": "", "priority": 0})
}

fn age(object: &Value) -> String {
    let Some(created) =
        object["metadata"]["creationTimestamp"].as_str().and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
    else {
        return "<unknown>".to_string();
    };
    let secs = (chrono::Utc::now() - created.with_timezone(&chrono::Utc)).num_seconds().max(0);
    match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 7200 => format!("{}m", s / 60),
        s if s < 172_800 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86400),
    }
}

fn n(v: &Value) -> i64 {
    v.as_i64().unwrap_or(0)
}

fn pod_status(pod: &Value) -> String {
    if !pod["metadata"]["deletionTimestamp"].is_null() {
        return "Terminating".to_string();
    }
    let waiting = pod["status"]["containerStatuses"]
        .as_array()
        .and_then(|cs| cs.iter().find_map(|c| c["state"]["waiting"]["reason"].as_str()));
    waiting.map_or_else(|| pod["status"]["phase"].as_str().unwrap_or("Unknown").to_string(), str::to_string)
}

fn count(map: &Value) -> usize {
    map.as_object().map_or(0, serde_json::Map::len)
}

/// The TARGETS column: `cpu: 80%/80%`, `cpu: <unknown>/80%` before the controller has read a
/// value; at most two metrics, then `+ N more...` (the API server's `formatHPAMetrics`).
fn hpa_targets(metrics: &Value, statuses: &Value) -> String {
    let specs = metrics.as_array().cloned().unwrap_or_default();
    if specs.is_empty() {
        return "<none>".to_string();
    }
    let shown = |v: &Value| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let list: Vec<String> = specs
        .iter()
        .enumerate()
        .map(|(i, spec)| {
            let status = &statuses[i];
            match spec["type"].as_str().unwrap_or_default() {
                kind @ ("Resource" | "ContainerResource") => {
                    let source = if kind == "Resource" { "resource" } else { "containerResource" };
                    let (target, current) = (&spec[source]["target"], &status[source]["current"]);
                    let name = spec[source]["name"].as_str().unwrap_or_default();
                    if !target["averageValue"].is_null() {
                        let now = if current["averageValue"].is_null() {
                            "<unknown>".to_string()
                        } else {
                            shown(&current["averageValue"])
                        };
                        format!("{name}: {now}/{}", shown(&target["averageValue"]))
                    } else {
                        let now =
                            current["averageUtilization"].as_i64().map_or("<unknown>".to_string(), |u| format!("{u}%"));
                        let goal =
                            target["averageUtilization"].as_i64().map_or("<auto>".to_string(), |u| format!("{u}%"));
                        format!("{name}: {now}/{goal}")
                    }
                }
                kind @ ("Pods" | "Object" | "External") => {
                    let source = kind.to_lowercase();
                    let target = &spec[&source]["target"];
                    let current = &status[&source]["current"];
                    let avg = !target["averageValue"].is_null();
                    let field = if avg { "averageValue" } else { "value" };
                    let now = if current[field].is_null() { "<unknown>".to_string() } else { shown(&current[field]) };
                    let suffix = if avg && kind != "Pods" { " (avg)" } else { "" };
                    format!("{now}/{}{suffix}", shown(&target[field]))
                }
                _ => "<unknown type>".to_string(),
            }
        })
        .collect();
    if list.len() > 2 { format!("{} + {} more...", list[..2].join(", "), list.len() - 2) } else { list.join(", ") }
}

pub fn table(res: Res, items: &[Value], resource_version: u64) -> Value {
    let (columns, rows): (Vec<Value>, Vec<Value>) = match res {
        Res::Deployment => (
            vec![
                column("Name", "string"),
                column("Ready", "string"),
                column("Up-to-date", "integer"),
                column("Available", "integer"),
                column("Age", "string"),
            ],
            items
                .iter()
                .map(|d| {
                    let s = &d["status"];
                    json!([
                        d["metadata"]["name"],
                        format!("{}/{}", n(&s["readyReplicas"]), n(&d["spec"]["replicas"])),
                        n(&s["updatedReplicas"]),
                        n(&s["availableReplicas"]),
                        age(d)
                    ])
                })
                .collect(),
        ),
        Res::StatefulSet => (
            vec![column("Name", "string"), column("Ready", "string"), column("Age", "string")],
            items
                .iter()
                .map(|s| {
                    json!([
                        s["metadata"]["name"],
                        format!("{}/{}", n(&s["status"]["readyReplicas"]), n(&s["spec"]["replicas"])),
                        age(s)
                    ])
                })
                .collect(),
        ),
        Res::Pod => (
            vec![
                column("Name", "string"),
                column("Ready", "string"),
                column("Status", "string"),
                column("Restarts", "string"),
                column("Age", "string"),
            ],
            items
                .iter()
                .map(|p| {
                    let cs = p["status"]["containerStatuses"].as_array().cloned().unwrap_or_default();
                    let ready = cs.iter().filter(|c| c["ready"] == true).count();
                    let restarts: i64 = cs.iter().map(|c| n(&c["restartCount"])).sum();
                    json!([
                        p["metadata"]["name"],
                        format!("{ready}/{}", cs.len()),
                        pod_status(p),
                        restarts.to_string(),
                        age(p)
                    ])
                })
                .collect(),
        ),
        Res::ReplicaSet => (
            vec![
                column("Name", "string"),
                column("Desired", "integer"),
                column("Current", "integer"),
                column("Ready", "integer"),
                column("Age", "string"),
            ],
            items
                .iter()
                .map(|r| {
                    let s = &r["status"];
                    json!([
                        r["metadata"]["name"],
                        n(&r["spec"]["replicas"]),
                        n(&s["replicas"]),
                        n(&s["readyReplicas"]),
                        age(r)
                    ])
                })
                .collect(),
        ),
        Res::Event => (
            vec![
                column("Last Seen", "string"),
                column("Type", "string"),
                column("Reason", "string"),
                column("Object", "string"),
                column("Message", "string"),
            ],
            items
                .iter()
                .map(|e| {
                    let object = format!(
                        "{}/{}",
                        e["involvedObject"]["kind"].as_str().unwrap_or_default().to_lowercase(),
                        e["involvedObject"]["name"].as_str().unwrap_or_default()
                    );
                    json!([age(e), e["type"], e["reason"], object, e["message"]])
                })
                .collect(),
        ),
        Res::ConfigMap => (
            vec![column("Name", "string"), column("Data", "integer"), column("Age", "string")],
            items
                .iter()
                .map(|c| json!([c["metadata"]["name"], count(&c["data"]) + count(&c["binaryData"]), age(c)]))
                .collect(),
        ),
        Res::Secret => (
            vec![
                column("Name", "string"),
                column("Type", "string"),
                column("Data", "integer"),
                column("Age", "string"),
            ],
            items.iter().map(|s| json!([s["metadata"]["name"], s["type"], count(&s["data"]), age(s)])).collect(),
        ),
        Res::HorizontalPodAutoscaler => (
            vec![
                column("Name", "string"),
                column("Reference", "string"),
                column("Targets", "string"),
                column("MinPods", "string"),
                column("MaxPods", "integer"),
                column("Replicas", "integer"),
                column("Age", "string"),
            ],
            items
                .iter()
                .map(|h| {
                    let spec = &h["spec"];
                    let reference = format!(
                        "{}/{}",
                        spec["scaleTargetRef"]["kind"].as_str().unwrap_or_default(),
                        spec["scaleTargetRef"]["name"].as_str().unwrap_or_default()
                    );
                    let min = spec["minReplicas"].as_i64().map_or_else(|| "<unset>".to_string(), |m| m.to_string());
                    json!([
                        h["metadata"]["name"],
                        reference,
                        hpa_targets(&spec["metrics"], &h["status"]["currentMetrics"]),
                        min,
                        n(&spec["maxReplicas"]),
                        n(&h["status"]["currentReplicas"]),
                        age(h)
                    ])
                })
                .collect(),
        ),
    };
    let rows: Vec<Value> = rows
        .into_iter()
        .zip(items)
        .map(|(cells, object)| {
            json!({
                "cells": cells,
                "object": {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": object["metadata"]}
            })
        })
        .collect();
    json!({
        "kind": "Table", "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": resource_version.to_string()},
        "columnDefinitions": columns,
        "rows": rows
    })
}
