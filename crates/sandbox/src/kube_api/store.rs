//! The object store of the Kubernetes API emulation: objects as JSON, one resourceVersion counter
//! for the whole cluster (as etcd's revision), and a bounded history of watch events so that a
//! watch started from a list's resourceVersion sees every change after it — the contract kube-rs'
//! `watcher` and kubectl's `--watch` rely on.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use tokio::sync::broadcast;

/// The resources this emulation serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Res {
    Deployment,
    StatefulSet,
    Pod,
    /// Read-only through the API: written by the deployment controller (`rollout history`).
    ReplicaSet,
    /// Read-only through the API: written by the controllers (`kubectl get events`).
    Event,
    ConfigMap,
    /// `data` holds base64 values; `stringData` is folded into it on write, as the API server does.
    Secret,
    /// `autoscaling/v2`, the storage version; `autoscaling/v1` is served by conversion (`hpa.rs`).
    HorizontalPodAutoscaler,
}

impl Res {
    pub fn plural(self) -> &'static str {
        match self {
            Res::Deployment => "deployments",
            Res::StatefulSet => "statefulsets",
            Res::Pod => "pods",
            Res::ReplicaSet => "replicasets",
            Res::Event => "events",
            Res::ConfigMap => "configmaps",
            Res::Secret => "secrets",
            Res::HorizontalPodAutoscaler => "horizontalpodautoscalers",
        }
    }

    pub fn kind(self) -> &'static str {
        match self {
            Res::Deployment => "Deployment",
            Res::StatefulSet => "StatefulSet",
            Res::Pod => "Pod",
            Res::ReplicaSet => "ReplicaSet",
            Res::Event => "Event",
            Res::ConfigMap => "ConfigMap",
            Res::Secret => "Secret",
            Res::HorizontalPodAutoscaler => "HorizontalPodAutoscaler",
        }
    }

    /// The version objects are stored and written in (and served in, but for HPAs asked for as
    /// `autoscaling/v1`).
    pub fn api_version(self) -> &'static str {
        match self {
            Res::Pod | Res::Event | Res::ConfigMap | Res::Secret => "v1",
            Res::HorizontalPodAutoscaler => "autoscaling/v2",
            Res::Deployment | Res::StatefulSet | Res::ReplicaSet => "apps/v1",
        }
    }

    /// `deployments.apps`, as the API server names a resource in messages.
    pub fn qualified(self) -> &'static str {
        match self {
            Res::Deployment => "deployments.apps",
            Res::StatefulSet => "statefulsets.apps",
            Res::Pod => "pods",
            Res::ReplicaSet => "replicasets.apps",
            Res::Event => "events",
            Res::ConfigMap => "configmaps",
            Res::Secret => "secrets",
            Res::HorizontalPodAutoscaler => "horizontalpodautoscalers.autoscaling",
        }
    }

    /// The API group: `""` for the core group.
    pub fn group(self) -> &'static str {
        match self.api_version().split_once('/') {
            Some((group, _)) => group,
            None => "",
        }
    }

    pub fn from_plural(plural: &str) -> Option<Res> {
        match plural {
            "deployments" => Some(Res::Deployment),
            "statefulsets" => Some(Res::StatefulSet),
            "pods" => Some(Res::Pod),
            "replicasets" => Some(Res::ReplicaSet),
            "events" => Some(Res::Event),
            "configmaps" => Some(Res::ConfigMap),
            "secrets" => Some(Res::Secret),
            "horizontalpodautoscalers" => Some(Res::HorizontalPodAutoscaler),
            _ => None,
        }
    }

    /// What clients create, replace and delete through the API (the rest is seeded or written by
    /// the controllers).
    pub fn is_object(self) -> bool {
        matches!(self, Res::ConfigMap | Res::Secret | Res::HorizontalPodAutoscaler)
    }

    /// Deployments and statefulsets: what has a scale subresource and a controller.
    pub fn is_workload(self) -> bool {
        matches!(self, Res::Deployment | Res::StatefulSet)
    }
}

/// `ADDED`, `MODIFIED`, `DELETED`: the event types of the watch protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    pub fn name(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

#[derive(Debug, Clone)]
pub struct WatchEvent {
    pub rv: u64,
    pub res: Res,
    pub kind: EventType,
    pub object: Arc<Value>,
}

/// Why a store operation failed; the server maps these to `Status` replies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreError {
    NotFound,
    AlreadyExists,
    /// The caller's resourceVersion is not the current one.
    Conflict,
    Invalid(String),
}

/// Key of an object: resource, namespace, name.
pub type Key = (Res, String, String);

const HISTORY: usize = 20_000;

struct Inner {
    rv: u64,
    objects: BTreeMap<Key, Value>,
    history: VecDeque<WatchEvent>,
    uid_counter: u64,
}

pub struct Store {
    inner: Mutex<Inner>,
    events: broadcast::Sender<WatchEvent>,
}

impl Default for Store {
    fn default() -> Self {
        Self::new()
    }
}

pub fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

impl Store {
    pub fn new() -> Store {
        let (events, _) = broadcast::channel(4096);
        Store {
            inner: Mutex::new(Inner { rv: 1000, objects: BTreeMap::new(), history: VecDeque::new(), uid_counter: 0 }),
            events,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn resource_version(&self) -> u64 {
        self.lock().rv
    }

    pub fn get(&self, res: Res, ns: &str, name: &str) -> Option<Value> {
        self.lock().objects.get(&(res, ns.to_string(), name.to_string())).cloned()
    }

    /// Objects of `res` in `ns` (all namespaces when `None`), with the list's resourceVersion.
    pub fn list(&self, res: Res, ns: Option<&str>) -> (Vec<Value>, u64) {
        let inner = self.lock();
        let items = inner
            .objects
            .iter()
            .filter(|((r, n, _), _)| *r == res && ns.is_none_or(|ns| ns == n))
            .map(|(_, v)| v.clone())
            .collect();
        (items, inner.rv)
    }

    /// Everything, for the sandbox's status.
    pub fn all(&self) -> Vec<(Key, Value)> {
        self.lock().objects.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }

    pub fn create(&self, res: Res, mut object: Value) -> Result<Value, StoreError> {
        let mut inner = self.lock();
        let (ns, name) = key_of(&object)?;
        let key = (res, ns, name);
        if inner.objects.contains_key(&key) {
            return Err(StoreError::AlreadyExists);
        }
        inner.rv += 1;
        inner.uid_counter += 1;
        let rv = inner.rv;
        let uid = format!("{:08x}-5a4d-4c1e-9d2b-{:012x}", rv, inner.uid_counter);
        object["apiVersion"] = json!(res.api_version());
        object["kind"] = json!(res.kind());
        let meta = &mut object["metadata"];
        meta["uid"] = json!(uid);
        meta["resourceVersion"] = json!(rv.to_string());
        if meta.get("creationTimestamp").is_none_or(Value::is_null) {
            meta["creationTimestamp"] = json!(now());
        }
        if has_generation(res) {
            meta["generation"] = json!(1);
        }
        inner.objects.insert(key, object.clone());
        self.emit(&mut inner, res, EventType::Added, &object);
        Ok(object)
    }

    /// Applies `change` to the stored object. `expected_rv` is the caller's resourceVersion
    /// (optimistic concurrency). A change that leaves the object as it was writes nothing.
    /// Workloads get their `metadata.generation` bumped when the spec changes.
    pub fn update(
        &self,
        res: Res,
        ns: &str,
        name: &str,
        expected_rv: Option<&str>,
        change: impl FnOnce(&mut Value) -> Result<(), StoreError>,
    ) -> Result<Value, StoreError> {
        self.write(res, ns, name, expected_rv, true, change)
    }

    /// `update`, or with `dry_run` what it would store, checked the same way, with nothing
    /// stored and no event (a server-side dry run; the resourceVersion stays the current one).
    pub fn apply(
        &self,
        dry_run: bool,
        res: Res,
        ns: &str,
        name: &str,
        expected_rv: Option<&str>,
        change: impl FnOnce(&mut Value) -> Result<(), StoreError>,
    ) -> Result<Value, StoreError> {
        self.write(res, ns, name, expected_rv, !dry_run, change)
    }

    fn write(
        &self,
        res: Res,
        ns: &str,
        name: &str,
        expected_rv: Option<&str>,
        persist: bool,
        change: impl FnOnce(&mut Value) -> Result<(), StoreError>,
    ) -> Result<Value, StoreError> {
        let mut inner = self.lock();
        let key = (res, ns.to_string(), name.to_string());
        let old = inner.objects.get(&key).cloned().ok_or(StoreError::NotFound)?;
        let current_rv = old["metadata"]["resourceVersion"].as_str().unwrap_or("").to_string();
        if let Some(expected) = expected_rv.filter(|e| !e.is_empty())
            && expected != current_rv
        {
            return Err(StoreError::Conflict);
        }
        let mut new = old.clone();
        change(&mut new)?;
        // Identity fields are the server's, whatever the caller sent.
        for field in ["uid", "name", "namespace", "creationTimestamp", "generation"] {
            match old["metadata"].get(field) {
                Some(v) => new["metadata"][field] = v.clone(),
                None => {
                    new["metadata"].as_object_mut().map(|m| m.remove(field));
                }
            }
        }
        new["metadata"]["resourceVersion"] = json!(current_rv);
        new["apiVersion"] = json!(res.api_version());
        new["kind"] = json!(res.kind());
        if new == old {
            return Ok(old);
        }
        if has_generation(res) && new["spec"] != old["spec"] {
            let generation = old["metadata"]["generation"].as_i64().unwrap_or(1);
            new["metadata"]["generation"] = json!(generation + 1);
        }
        if !persist {
            return Ok(new);
        }
        inner.rv += 1;
        new["metadata"]["resourceVersion"] = json!(inner.rv.to_string());
        inner.objects.insert(key, new.clone());
        self.emit(&mut inner, res, EventType::Modified, &new);
        Ok(new)
    }

    pub fn delete(&self, res: Res, ns: &str, name: &str) -> Result<Value, StoreError> {
        let mut inner = self.lock();
        let key = (res, ns.to_string(), name.to_string());
        let mut old = inner.objects.remove(&key).ok_or(StoreError::NotFound)?;
        inner.rv += 1;
        old["metadata"]["resourceVersion"] = json!(inner.rv.to_string());
        self.emit(&mut inner, res, EventType::Deleted, &old);
        Ok(old)
    }

    fn emit(&self, inner: &mut Inner, res: Res, kind: EventType, object: &Value) {
        let event = WatchEvent { rv: inner.rv, res, kind, object: Arc::new(object.clone()) };
        if inner.history.len() >= HISTORY {
            inner.history.pop_front();
        }
        inner.history.push_back(event.clone());
        // No receiver is not an error: nobody is watching.
        let _ = self.events.send(event);
    }

    /// Starts a watch of `res`: the events after `since` (or, with no resourceVersion, the
    /// current objects as ADDED) and a receiver for what follows. `None` in the first slot means
    /// `since` is older than the history kept (the API server's 410 Gone).
    pub fn watch(
        &self,
        res: Res,
        since: Option<u64>,
    ) -> (Option<Vec<WatchEvent>>, u64, broadcast::Receiver<WatchEvent>) {
        let inner = self.lock();
        let rx = self.events.subscribe();
        let backlog = match since {
            None => Some(
                inner
                    .objects
                    .iter()
                    .filter(|((r, _, _), _)| *r == res)
                    .map(|(_, v)| WatchEvent { rv: inner.rv, res, kind: EventType::Added, object: Arc::new(v.clone()) })
                    .collect(),
            ),
            Some(rv) => {
                let oldest = inner.history.front().map_or(inner.rv, |e| e.rv.saturating_sub(1));
                if rv < oldest {
                    None
                } else {
                    Some(inner.history.iter().filter(|e| e.res == res && e.rv > rv).cloned().collect())
                }
            }
        };
        (backlog, inner.rv, rx)
    }
}

/// Objects whose spec changes bump `metadata.generation`.
fn has_generation(res: Res) -> bool {
    res.is_workload() || matches!(res, Res::ReplicaSet | Res::HorizontalPodAutoscaler)
}

fn key_of(object: &Value) -> Result<(String, String), StoreError> {
    let meta = &object["metadata"];
    let ns = meta["namespace"].as_str().unwrap_or("default").to_string();
    let name = meta["name"]
        .as_str()
        .filter(|n| !n.is_empty())
        .ok_or_else(|| StoreError::Invalid("metadata.name: Required value".to_string()))?
        .to_string();
    Ok((ns, name))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployment(name: &str) -> Value {
        json!({"metadata": {"name": name, "namespace": "ns"}, "spec": {"replicas": 1}})
    }

    #[test]
    fn spec_change_bumps_generation_and_version_status_change_only_version() {
        let store = Store::new();
        let created = store.create(Res::Deployment, deployment("a")).unwrap();
        let rv0 = created["metadata"]["resourceVersion"].as_str().unwrap().to_string();
        let changed = store
            .update(Res::Deployment, "ns", "a", Some(&rv0), |o| {
                o["spec"]["replicas"] = json!(0);
                Ok(())
            })
            .unwrap();
        assert_eq!(changed["metadata"]["generation"], 2);
        let status = store
            .update(Res::Deployment, "ns", "a", None, |o| {
                o["status"]["replicas"] = json!(0);
                Ok(())
            })
            .unwrap();
        assert_eq!(status["metadata"]["generation"], 2);
        assert_ne!(status["metadata"]["resourceVersion"], changed["metadata"]["resourceVersion"]);
    }

    #[test]
    fn stale_resource_version_conflicts() {
        let store = Store::new();
        store.create(Res::Deployment, deployment("a")).unwrap();
        let err = store.update(Res::Deployment, "ns", "a", Some("1"), |_| Ok(())).unwrap_err();
        assert_eq!(err, StoreError::Conflict);
    }

    #[test]
    fn watch_from_a_version_replays_later_events_only() {
        let store = Store::new();
        store.create(Res::Deployment, deployment("a")).unwrap();
        let rv = store.resource_version();
        store.create(Res::Deployment, deployment("b")).unwrap();
        store.create(Res::Pod, deployment("p")).unwrap();
        let (backlog, _, _) = store.watch(Res::Deployment, Some(rv));
        let backlog = backlog.unwrap();
        assert_eq!(backlog.len(), 1);
        assert_eq!(backlog[0].object["metadata"]["name"], "b");
    }
}
