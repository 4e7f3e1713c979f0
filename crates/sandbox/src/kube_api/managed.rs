//! `metadata.managedFields`: who last set which field, as the API server's field manager records
//! it for Update operations (server-side apply is not served). A write names its manager with the
//! `fieldManager` query parameter, or else by its User-Agent's prefix before the first `/`
//! (`kubectl/v1.32.4 (linux/amd64) …` is `kubectl`; `kubectl create` and `kubectl set` send
//! `kubectl-create` and `kubectl-set` as `fieldManager`). A write that changes fields moves them
//! to its manager's entry (manager, operation `Update`, subresource) with the time of the write;
//! other entries lose them, and an entry left with no field is dropped. Writes through the
//! `scale` subresource are entries with `subresource: scale` and the parent's `apiVersion`
//! (`apps/v1`), owning `f:spec.f:replicas` — the HPA controller's are the
//! `kube-controller-manager`'s, as on a real cluster.
//!
//! Tracked here: `spec.replicas`, labels and annotations of deployments and statefulsets (their
//! pod template is not tracked); every field of config maps, secrets and HPA specs (lists are
//! atomic, as the HPA's `metrics`); `.` marks a map the manager created (`f:data: {.: {}}`).
//! Status writes by the controllers are not recorded.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value, json};

use super::store::{Res, now};

/// The longest field manager name the API server keeps.
const MAX_MANAGER: usize = 128;

/// Who writes, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Writer {
    pub manager: String,
    /// `Update` (every write this emulation accepts; `Apply` is server-side apply).
    pub operation: &'static str,
    /// `scale` or `status`, for a write through a subresource.
    pub subresource: Option<&'static str>,
}

impl Writer {
    pub fn update(manager: &str) -> Writer {
        Writer { manager: manager.to_string(), operation: "Update", subresource: None }
    }

    pub fn on(mut self, subresource: &'static str) -> Writer {
        self.subresource = Some(subresource);
        self
    }

    /// The manager of a request: its `fieldManager`, or its User-Agent up to the first `/`
    /// without unprintable characters, cut at 128 bytes (the API server's `prefixFromUserAgent`).
    pub fn of_request(field_manager: Option<&str>, user_agent: &str) -> Writer {
        if let Some(m) = field_manager.filter(|m| !m.is_empty()) {
            return Writer::update(m);
        }
        let mut manager = String::new();
        for c in user_agent.split('/').next().unwrap_or_default().chars().filter(|c| !c.is_control()) {
            if manager.len() + c.len_utf8() > MAX_MANAGER {
                break;
            }
            manager.push(c);
        }
        Writer::update(&manager)
    }
}

/// A path in a `fieldsV1` tree, as its keys (`f:spec`, `f:replicas`, `.`).
type Path = Vec<String>;

/// How a tracked part of an object is owned.
enum Part {
    /// One field (`spec.replicas`).
    Leaf(&'static [&'static str]),
    /// A map whose keys are owned one by one, plus `.` for the map itself (labels, data).
    Map(&'static [&'static str]),
    /// A struct owned field by field, recursively; lists are atomic.
    Struct(&'static [&'static str]),
}

const LABELS: Part = Part::Map(&["metadata", "labels"]);
const ANNOTATIONS: Part = Part::Map(&["metadata", "annotations"]);

fn parts(res: Res) -> &'static [Part] {
    match res {
        Res::Deployment | Res::StatefulSet => &[LABELS, ANNOTATIONS, Part::Leaf(&["spec", "replicas"])],
        Res::ConfigMap => {
            &[LABELS, ANNOTATIONS, Part::Map(&["data"]), Part::Map(&["binaryData"]), Part::Leaf(&["immutable"])]
        }
        Res::Secret => &[LABELS, ANNOTATIONS, Part::Map(&["data"]), Part::Leaf(&["type"]), Part::Leaf(&["immutable"])],
        Res::HorizontalPodAutoscaler => &[LABELS, ANNOTATIONS, Part::Struct(&["spec"])],
        Res::Pod | Res::ReplicaSet | Res::Event => &[],
    }
}

fn key(name: &str) -> String {
    format!("f:{name}")
}

fn at<'a>(object: &'a Value, path: &[&str]) -> &'a Value {
    path.iter().fold(object, |v, k| &v[*k])
}

/// The owned paths of `object` with their values (`.` markers as `true`).
fn leaves(res: Res, object: &Value) -> BTreeMap<Path, Value> {
    let mut out = BTreeMap::new();
    for part in parts(res) {
        match part {
            Part::Leaf(path) => {
                let v = at(object, path);
                if !v.is_null() {
                    out.insert(path.iter().map(|k| key(k)).collect(), v.clone());
                }
            }
            Part::Map(path) => {
                if let Some(map) = at(object, path).as_object().filter(|m| !m.is_empty()) {
                    let base: Path = path.iter().map(|k| key(k)).collect();
                    out.insert([base.clone(), vec![".".to_string()]].concat(), Value::Bool(true));
                    for (k, v) in map {
                        out.insert([base.clone(), vec![key(k)]].concat(), v.clone());
                    }
                }
            }
            Part::Struct(path) => {
                let base: Path = path.iter().map(|k| key(k)).collect();
                flatten(at(object, path), base, &mut out);
            }
        }
    }
    out
}

fn flatten(value: &Value, path: Path, out: &mut BTreeMap<Path, Value>) {
    match value {
        Value::Null => {}
        Value::Object(map) => {
            for (k, v) in map {
                flatten(v, [path.clone(), vec![key(k)]].concat(), out);
            }
        }
        other => {
            out.insert(path, other.clone());
        }
    }
}

/// The paths of a `fieldsV1` tree: each ends at an empty object.
fn paths_of(fields: &Value) -> BTreeSet<Path> {
    fn walk(v: &Value, path: &mut Path, out: &mut BTreeSet<Path>) {
        match v.as_object() {
            Some(map) if !map.is_empty() => {
                for (k, child) in map {
                    path.push(k.clone());
                    walk(child, path, out);
                    path.pop();
                }
            }
            _ => {
                if !path.is_empty() {
                    out.insert(path.clone());
                }
            }
        }
    }
    let mut out = BTreeSet::new();
    walk(fields, &mut Vec::new(), &mut out);
    out
}

fn tree_of(paths: &BTreeSet<Path>) -> Value {
    let mut root = Value::Object(Map::new());
    for path in paths {
        let mut node = &mut root;
        for k in path {
            let Value::Object(map) = node else { break };
            node = map.entry(k.clone()).or_insert_with(|| json!({}));
        }
    }
    root
}

/// Whether `path` is one of `gone` or lies under one.
fn under(path: &Path, gone: &BTreeSet<Path>) -> bool {
    gone.iter().any(|g| path.starts_with(g))
}

/// Records a write of `after` (`before`: the stored object, `None` on create) by `writer` in
/// `after`'s `metadata.managedFields`. `api_version` is the version the field set is written in
/// (the stored one; the parent's for a subresource). A write that changes no tracked field
/// changes nothing.
pub fn record(res: Res, api_version: &str, before: Option<&Value>, after: &mut Value, writer: &Writer) {
    let old = before.map(|b| leaves(res, b)).unwrap_or_default();
    let new = leaves(res, after);
    let changed: BTreeSet<Path> = new.iter().filter(|(p, v)| old.get(*p) != Some(*v)).map(|(p, _)| p.clone()).collect();
    let removed: BTreeSet<Path> = old.keys().filter(|p| !new.contains_key(*p)).cloned().collect();
    // The entries as stored (a client's own managedFields are not taken on a write).
    let stored = before.map_or(Value::Null, |b| b["metadata"]["managedFields"].clone());
    if changed.is_empty() && removed.is_empty() {
        after["metadata"]["managedFields"] = stored;
        if after["metadata"]["managedFields"].is_null() {
            after["metadata"].as_object_mut().map(|m| m.remove("managedFields"));
        }
        return;
    }
    let touched: BTreeSet<Path> = changed.union(&removed).cloned().collect();
    let mut entries: Vec<Value> = Vec::new();
    let mut mine: Option<Value> = None;
    for entry in stored.as_array().cloned().unwrap_or_default() {
        let is_mine = entry["manager"] == writer.manager.as_str()
            && entry["operation"] == writer.operation
            && entry["subresource"].as_str() == writer.subresource;
        let kept: BTreeSet<Path> = paths_of(&entry["fieldsV1"]).into_iter().filter(|p| !under(p, &touched)).collect();
        let mut entry = entry;
        if is_mine {
            entry["fieldsV1"] = tree_of(&kept);
            mine = Some(entry);
        } else if !kept.is_empty() {
            entry["fieldsV1"] = tree_of(&kept);
            entries.push(entry);
        }
    }
    let mut owned = mine.as_ref().map(|e| paths_of(&e["fieldsV1"])).unwrap_or_default();
    owned.extend(changed);
    if !owned.is_empty() {
        let mut entry = json!({
            "manager": writer.manager, "operation": writer.operation, "apiVersion": api_version,
            "time": now(), "fieldsType": "FieldsV1", "fieldsV1": tree_of(&owned)
        });
        if let Some(sub) = writer.subresource {
            entry["subresource"] = json!(sub);
        }
        entries.push(entry);
    }
    // The API server's order: operation, then time, then manager, apiVersion, subresource.
    entries.sort_by_key(|e| {
        let s = |k: &str| e[k].as_str().unwrap_or_default().to_string();
        (s("operation"), s("time"), s("manager"), s("apiVersion"), s("subresource"))
    });
    if entries.is_empty() {
        after["metadata"].as_object_mut().map(|m| m.remove("managedFields"));
    } else {
        after["metadata"]["managedFields"] = json!(entries);
    }
}

/// The manager owning `f:spec.f:replicas` (with its subresource), if any.
#[cfg(test)]
fn replicas_owner(object: &Value) -> Option<(String, Option<String>)> {
    let path: Path = vec![key("spec"), key("replicas")];
    object["metadata"]["managedFields"].as_array()?.iter().find_map(|e| {
        paths_of(&e["fieldsV1"]).contains(&path).then(|| {
            (e["manager"].as_str().unwrap_or_default().to_string(), e["subresource"].as_str().map(str::to_string))
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployment(replicas: i64) -> Value {
        json!({"metadata": {"name": "d", "labels": {"app": "a"}}, "spec": {"replicas": replicas}})
    }

    #[test]
    fn the_last_writer_of_replicas_owns_them_and_an_emptied_entry_goes() {
        let mut seeded = deployment(2);
        record(Res::Deployment, "apps/v1", None, &mut seeded, &Writer::update("helm"));
        assert_eq!(replicas_owner(&seeded), Some(("helm".to_string(), None)));
        assert_eq!(seeded["metadata"]["managedFields"][0]["fieldsV1"]["f:metadata"]["f:labels"]["."], json!({}));
        let mut scaled = seeded.clone();
        scaled["spec"]["replicas"] = json!(5);
        record(Res::Deployment, "apps/v1", Some(&seeded), &mut scaled, &Writer::update("kubectl").on("scale"));
        assert_eq!(replicas_owner(&scaled), Some(("kubectl".to_string(), Some("scale".to_string()))));
        let entries = scaled["metadata"]["managedFields"].as_array().unwrap();
        assert_eq!(entries.len(), 2, "helm keeps the labels: {entries:?}");
        assert!(entries[0]["fieldsV1"]["f:spec"].is_null() || entries[1]["fieldsV1"]["f:spec"].is_null());
        // Writing the same value again changes nothing.
        let mut again = scaled.clone();
        record(Res::Deployment, "apps/v1", Some(&scaled), &mut again, &Writer::update("other"));
        assert_eq!(again["metadata"]["managedFields"], scaled["metadata"]["managedFields"]);
    }

    #[test]
    fn the_manager_is_the_field_manager_or_the_user_agent_prefix() {
        assert_eq!(Writer::of_request(Some("kubectl-create"), "kubectl/v1.32").manager, "kubectl-create");
        assert_eq!(Writer::of_request(None, "kubectl/v1.32.4 (linux/amd64) kubernetes/abc").manager, "kubectl");
        assert_eq!(Writer::of_request(None, "").manager, "");
        assert_eq!(Writer::of_request(None, &"x".repeat(300)).manager.len(), 128);
    }

    #[test]
    fn config_map_keys_are_owned_one_by_one() {
        let before = json!({"metadata": {"name": "c"}, "data": {"a": "1"}});
        let mut created = before.clone();
        record(Res::ConfigMap, "v1", None, &mut created, &Writer::update("kubectl-create"));
        let mut changed = created.clone();
        changed["data"]["b"] = json!("2");
        record(Res::ConfigMap, "v1", Some(&created), &mut changed, &Writer::update("kubectl-patch"));
        let entries = changed["metadata"]["managedFields"].as_array().unwrap();
        let by = |m: &str| entries.iter().find(|e| e["manager"] == m).unwrap()["fieldsV1"].clone();
        assert_eq!(by("kubectl-create"), json!({"f:data": {".": {}, "f:a": {}}}));
        assert_eq!(by("kubectl-patch"), json!({"f:data": {"f:b": {}}}));
    }
}
