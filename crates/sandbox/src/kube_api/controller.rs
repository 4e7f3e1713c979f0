//! The controllers of the emulated cluster, reduced to what DR cares about: a deployment or
//! statefulset gets as many pods as its `spec.replicas`; each pod goes through what a kubelet
//! shows — `Pending` with `ContainerCreating`, then `Running` but not ready, then ready — over a
//! simulated start delay plus a seeded jitter, unless its workload is set stuck
//! (`CrashLoopBackOff`, `ImagePullBackOff`: never ready). A surplus pod is marked terminating
//! (`deletionTimestamp`, not ready, still listed) and disappears after a simulated termination
//! delay, and the workload's status (`replicas`, `readyReplicas`, `availableReplicas`,
//! `observedGeneration`, a deployment's conditions) follows. A change of the pod template
//! replaces the pods (recreate strategy, no surge) unless the deployment is paused. StatefulSet
//! pods are handled in parallel (`podManagementPolicy: Parallel`), highest ordinal removed first.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::events::{Level, Recorder};
use super::rollout;
use super::selector::{Selector, selector_string};
use super::store::{Key, Res, Store, now};
use super::stuck::Stuck;
use crate::hash::fnv;

/// How long simulated pods take to become ready and to go away.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delays {
    #[serde(with = "millis")]
    pub start: Duration,
    #[serde(with = "millis")]
    pub terminate: Duration,
}

impl Default for Delays {
    fn default() -> Self {
        Delays { start: Duration::from_secs(2), terminate: Duration::from_secs(1) }
    }
}

/// The spread of pod start times: each pod takes the start delay plus up to `fraction` of it
/// more, drawn from `seed` and the pod's name, so that a run is repeatable with the same seed.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Jitter {
    pub fraction: f64,
    pub seed: u64,
}

impl Default for Jitter {
    fn default() -> Self {
        Jitter { fraction: 0.1, seed: 0 }
    }
}

impl Jitter {
    fn of(&self, start: Duration, pod: &str) -> Duration {
        let unit = (fnv(&format!("{}/{pod}", self.seed)) % 10_000) as f64 / 10_000.0;
        start.mul_f64(self.fraction.max(0.0) * unit)
    }
}

mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_millis(u64::deserialize(d)?))
    }
}

const SAFE: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

fn encode(mut n: u64, len: usize) -> String {
    (0..len)
        .map(|_| {
            let c = SAFE[(n % SAFE.len() as u64) as usize] as char;
            n /= SAFE.len() as u64;
            c
        })
        .collect()
}

pub struct Controller {
    store: Arc<Store>,
    delays: Mutex<Delays>,
    jitter: Mutex<Jitter>,
    /// `(namespace, workload)` whose pods never become ready.
    stuck: Mutex<BTreeMap<(String, String), Stuck>>,
    /// When each deployment last made progress (for `progressDeadlineSeconds`).
    progress: Mutex<HashMap<(String, String), Instant>>,
    events: Recorder,
    queue: mpsc::UnboundedSender<Key>,
    names: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Controller {
    /// Starts the control loop on the current tokio runtime.
    pub fn spawn(store: Arc<Store>, delays: Delays) -> (Arc<Controller>, tokio::task::JoinHandle<()>) {
        let (queue, mut rx) = mpsc::unbounded_channel::<Key>();
        let controller = Arc::new(Controller {
            events: Recorder::new(Arc::clone(&store)),
            store,
            delays: Mutex::new(delays),
            jitter: Mutex::new(Jitter::default()),
            stuck: Mutex::new(BTreeMap::new()),
            progress: Mutex::new(HashMap::new()),
            queue,
            names: AtomicU64::new(1),
        });
        let c = Arc::clone(&controller);
        let task = tokio::spawn(async move {
            while let Some(key) = rx.recv().await {
                c.reconcile(&key);
            }
        });
        (controller, task)
    }

    pub fn delays(&self) -> Delays {
        *lock(&self.delays)
    }

    pub fn set_delays(&self, delays: Delays) {
        *lock(&self.delays) = delays;
    }

    pub fn jitter(&self) -> Jitter {
        *lock(&self.jitter)
    }

    pub fn set_jitter(&self, jitter: Jitter) {
        *lock(&self.jitter) = jitter;
    }

    /// Makes the pods of a workload started from now on never ready (`None`: normal again).
    pub fn set_stuck(&self, ns: &str, workload: &str, stuck: Option<Stuck>) {
        let key = (ns.to_string(), workload.to_string());
        match stuck {
            Some(s) => lock(&self.stuck).insert(key, s),
            None => lock(&self.stuck).remove(&key),
        };
    }

    pub fn stuck(&self) -> BTreeMap<(String, String), Stuck> {
        lock(&self.stuck).clone()
    }

    /// Asks the controller to look at a workload again.
    pub fn enqueue(&self, res: Res, ns: &str, name: &str) {
        let _ = self.queue.send((res, ns.to_string(), name.to_string()));
    }

    /// Re-examines every workload of a namespace (after a pod went away).
    fn enqueue_namespace(&self, ns: &str) {
        for res in [Res::Deployment, Res::StatefulSet] {
            for w in self.store.list(res, Some(ns)).0 {
                self.enqueue(res, ns, w["metadata"]["name"].as_str().unwrap_or_default());
            }
        }
    }

    fn reconcile(self: &Arc<Self>, (res, ns, name): &Key) {
        let Some(workload) = self.store.get(*res, ns, name) else { return };
        let desired = workload["spec"]["replicas"].as_i64().unwrap_or(1).max(0) as usize;
        // Selectors are validated on write; one that is empty or unparsable selects nothing here
        // rather than every pod of the namespace.
        let selector_text = selector_string(&workload["spec"]["selector"]);
        let Ok(selector) = Selector::parse(&selector_text) else { return };
        if selector_text.is_empty() {
            return;
        }
        let spec_hash = encode(fnv(&normalized(&workload["spec"]["template"]).to_string()), 10);
        let (revision, template, owner) = match res {
            Res::Deployment => {
                let Some((hash, template)) = rollout::current_template(&self.store, &workload, &spec_hash) else {
                    return;
                };
                (hash, template, None)
            }
            _ => (spec_hash, workload["spec"]["template"].clone(), Some(workload.clone())),
        };
        let (owner, created_rs) = match owner {
            Some(o) => (o, false),
            None => rollout::ensure(&self.store, &self.events, &workload, &revision, &template),
        };
        let revision_label = if *res == Res::Deployment { "pod-template-hash" } else { "controller-revision-hash" };
        let pods: Vec<Value> = self
            .store
            .list(Res::Pod, Some(ns))
            .0
            .into_iter()
            .filter(|p| selector.matches(&p["metadata"]["labels"]))
            .collect();
        let (mut current, mut stale): (Vec<&Value>, Vec<&Value>) =
            pods.iter().filter(|p| p["metadata"]["deletionTimestamp"].is_null()).partition(|p| {
                p["metadata"]["labels"][revision_label].as_str()
                    == Some(revision_label_value(&revision, name, *res).as_str())
            });
        if current.len() > desired {
            // Not-ready pods first, then the newest (deployment) or the highest ordinal (statefulset).
            current.sort_by_key(|p| {
                (
                    is_ready(p),
                    std::cmp::Reverse(ordinal(p).unwrap_or(0)),
                    std::cmp::Reverse(p["metadata"]["creationTimestamp"].as_str().unwrap_or("").to_string()),
                )
            });
            let surplus = current.len() - desired;
            stale.extend(current.drain(..surplus));
        }
        for pod in &stale {
            self.terminate(ns, pod["metadata"]["name"].as_str().unwrap_or_default());
        }
        let mut created = 0;
        if current.len() < desired {
            let missing = desired - current.len();
            match res {
                Res::Deployment => {
                    for _ in 0..missing {
                        let suffix = encode(fnv(&format!("{name}/{}", self.names.fetch_add(1, Ordering::Relaxed))), 5);
                        let pod_name = format!("{name}-{revision}-{suffix}");
                        self.create_pod(&workload, &owner, &template, &pod_name, revision_label, &revision, None);
                        created += 1;
                    }
                }
                _ => {
                    let taken: Vec<i64> = pods.iter().filter_map(ordinal).collect();
                    for i in (0..desired as i64).filter(|i| !taken.contains(i)).take(missing) {
                        let pod_name = format!("{name}-{i}");
                        let rev = revision_label_value(&revision, name, *res);
                        self.create_pod(&workload, &owner, &template, &pod_name, revision_label, &rev, Some(i));
                        created += 1;
                    }
                }
            }
        }
        let active = current.len() + created;
        let ready = current.iter().filter(|p| is_ready(p)).count();
        if *res == Res::Deployment {
            rollout::sync(&self.store, &self.events, &workload, &revision, desired);
        }
        let rs_name = owner["metadata"]["name"].as_str().unwrap_or_default().to_string();
        self.write_status(*res, ns, name, &workload, desired, active, ready, &revision, (&rs_name, created_rs));
    }

    #[allow(clippy::too_many_arguments)]
    fn write_status(
        self: &Arc<Self>,
        res: Res,
        ns: &str,
        name: &str,
        workload: &Value,
        desired: usize,
        active: usize,
        ready: usize,
        revision: &str,
        (rs_name, created_rs): (&str, bool),
    ) {
        let generation = workload["metadata"]["generation"].clone();
        let mut status = json!({"observedGeneration": generation, "replicas": active});
        let set = |status: &mut Value, key: &str, n: usize| {
            if n > 0 {
                status[key] = json!(n);
            }
        };
        set(&mut status, "readyReplicas", ready);
        set(&mut status, "availableReplicas", ready);
        set(&mut status, "updatedReplicas", active);
        let mut revision_annotation = None;
        match res {
            Res::Deployment => {
                if active == 0 {
                    status.as_object_mut().map(|s| s.remove("replicas"));
                }
                set(&mut status, "unavailableReplicas", desired.saturating_sub(ready));
                let counts = rollout::Counts { desired, updated: active, ready, total: active };
                let key = (ns.to_string(), name.to_string());
                let mut clock = lock(&self.progress).get(&key).copied();
                let (conditions, recheck) = rollout::conditions(workload, &counts, rs_name, created_rs, &mut clock);
                match clock {
                    Some(c) => lock(&self.progress).insert(key, c),
                    None => lock(&self.progress).remove(&key),
                };
                status["conditions"] = conditions;
                if let Some(after) = recheck {
                    let this = Arc::clone(self);
                    let (ns, name) = (ns.to_string(), name.to_string());
                    tokio::spawn(async move {
                        tokio::time::sleep(after + Duration::from_millis(20)).await;
                        this.enqueue(Res::Deployment, &ns, &name);
                    });
                }
                revision_annotation = self
                    .store
                    .get(Res::ReplicaSet, ns, rs_name)
                    .and_then(|rs| rs["metadata"]["annotations"][rollout::REVISION].as_str().map(str::to_string));
            }
            _ => {
                set(&mut status, "currentReplicas", active);
                let rev = revision_label_value(revision, name, res);
                status["currentRevision"] = json!(rev);
                status["updateRevision"] = json!(rev);
                status["collisionCount"] = json!(0);
            }
        }
        let _ = self.store.update(res, ns, name, None, |o| {
            o["status"] = status;
            if let Some(r) = revision_annotation {
                o["metadata"]["annotations"][rollout::REVISION] = json!(r);
            }
            Ok(())
        });
    }

    #[allow(clippy::too_many_arguments)]
    fn create_pod(
        self: &Arc<Self>,
        workload: &Value,
        owner: &Value,
        template: &Value,
        pod_name: &str,
        revision_label: &str,
        revision: &str,
        ordinal: Option<i64>,
    ) {
        let ns = workload["metadata"]["namespace"].as_str().unwrap_or("default").to_string();
        let mut labels = template["metadata"]["labels"].clone();
        if !labels.is_object() {
            labels = json!({});
        }
        labels[revision_label] = json!(revision);
        if ordinal.is_some() {
            labels["statefulset.kubernetes.io/pod-name"] = json!(pod_name);
        }
        let wname = workload["metadata"]["name"].as_str().unwrap_or_default().to_string();
        let res = if workload["kind"] == "Deployment" { Res::Deployment } else { Res::StatefulSet };
        let mut spec = template["spec"].clone();
        spec["nodeName"] = json!("sandbox-node-1");
        let containers = spec["containers"].as_array().cloned().unwrap_or_default();
        let statuses: Vec<Value> = containers
            .iter()
            .map(|c| {
                json!({
                    "name": c["name"], "image": c["image"], "imageID": "", "ready": false,
                    "restartCount": 0, "started": false,
                    "state": {"waiting": {"reason": "ContainerCreating"}}
                })
            })
            .collect();
        let pod = json!({
            "metadata": {
                "name": pod_name,
                "namespace": ns,
                "labels": labels,
                "annotations": template["metadata"]["annotations"],
                "ownerReferences": [{
                    "apiVersion": "apps/v1", "kind": owner["kind"], "name": owner["metadata"]["name"],
                    "uid": owner["metadata"]["uid"], "controller": true, "blockOwnerDeletion": true
                }]
            },
            "spec": spec,
            "status": {
                "phase": "Pending",
                "hostIP": "10.240.0.4",
                "startTime": now(),
                "qosClass": "BestEffort",
                "conditions": [
                    {"type": "PodScheduled", "status": "True", "lastTransitionTime": now()},
                    {"type": "Initialized", "status": "True", "lastTransitionTime": now()},
                    {"type": "ContainersReady", "status": "False", "reason": "ContainersNotReady", "lastTransitionTime": now()},
                    {"type": "Ready", "status": "False", "reason": "ContainersNotReady", "lastTransitionTime": now()}
                ],
                "containerStatuses": statuses
            }
        });
        let Ok(created) = self.store.create(Res::Pod, pod) else { return };
        if res == Res::StatefulSet {
            self.events.record(
                workload,
                Level::Normal,
                "SuccessfulCreate",
                &format!("create Pod {pod_name} in StatefulSet {wname} successful"),
                "statefulset-controller",
            );
        }
        self.events.record(
            &created,
            Level::Normal,
            "Scheduled",
            &format!("Successfully assigned {ns}/{pod_name} to sandbox-node-1"),
            "default-scheduler",
        );
        let delays = self.delays();
        let stuck = lock(&self.stuck).get(&(ns.clone(), wname.clone())).copied();
        let ready_after = delays.start + self.jitter().of(delays.start, pod_name);
        let this = Arc::clone(self);
        let pod_name = pod_name.to_string();
        tokio::spawn(async move {
            let lifecycle = PodLifecycle { controller: &this, ns: &ns, pod: &pod_name, res, workload: &wname };
            lifecycle.run(ready_after, stuck).await;
        });
    }

    /// Marks a pod terminating and removes it after the termination delay.
    pub fn terminate(self: &Arc<Self>, ns: &str, pod_name: &str) {
        let marked = self.store.update(Res::Pod, ns, pod_name, None, |p| {
            if p["metadata"]["deletionTimestamp"].is_null() {
                p["metadata"]["deletionTimestamp"] = json!(now());
                p["metadata"]["deletionGracePeriodSeconds"] = json!(30);
            }
            for c in p["status"]["conditions"].as_array_mut().into_iter().flatten() {
                if c["type"] == "Ready" || c["type"] == "ContainersReady" {
                    c["status"] = json!("False");
                }
            }
            for s in p["status"]["containerStatuses"].as_array_mut().into_iter().flatten() {
                s["ready"] = json!(false);
            }
            Ok(())
        });
        let Ok(marked) = marked else { return };
        for c in marked["spec"]["containers"].as_array().into_iter().flatten() {
            let name = c["name"].as_str().unwrap_or_default();
            self.events.record(&marked, Level::Normal, "Killing", &format!("Stopping container {name}"), "kubelet");
        }
        let delay = self.delays().terminate;
        let this = Arc::clone(self);
        let (owned_ns, pod_name) = (ns.to_string(), pod_name.to_string());
        tokio::spawn(async move {
            let ns = owned_ns;
            tokio::time::sleep(delay).await;
            if this.store.delete(Res::Pod, &ns, &pod_name).is_ok() {
                this.enqueue_namespace(&ns);
            }
        });
        self.enqueue_namespace(ns);
    }
}

/// One pod's way from `Pending` to ready (or to stuck), as the kubelet reports it.
struct PodLifecycle<'a> {
    controller: &'a Arc<Controller>,
    ns: &'a str,
    pod: &'a str,
    res: Res,
    workload: &'a str,
}

impl PodLifecycle<'_> {
    /// Applies `change` to the pod unless it is gone or terminating; false when it is.
    fn step(&self, change: impl FnOnce(&mut Value)) -> Option<Value> {
        let updated = self.controller.store.update(Res::Pod, self.ns, self.pod, None, |p| {
            if !p["metadata"]["deletionTimestamp"].is_null() {
                return Err(super::store::StoreError::Conflict);
            }
            change(p);
            Ok(())
        });
        let updated = updated.ok()?;
        self.controller.enqueue(self.res, self.ns, self.workload);
        Some(updated)
    }

    fn event(&self, pod: &Value, level: Level, reason: &str, message: &str) {
        self.controller.events.record(pod, level, reason, message, "kubelet");
    }

    /// The kubelet's events of a container that started: image present, created, started.
    fn container_started(&self, pod: &Value, image: &str, container: &str) {
        self.event(pod, Level::Normal, "Pulled", &format!("Container image \"{image}\" already present on machine"));
        self.event(pod, Level::Normal, "Created", &format!("Created container {container}"));
        self.event(pod, Level::Normal, "Started", &format!("Started container {container}"));
    }

    async fn run(&self, ready_after: Duration, stuck: Option<Stuck>) {
        // About 40% of the start goes to creating the containers, the rest to the readiness probe.
        let creating = ready_after.mul_f64(0.4);
        tokio::time::sleep(creating).await;
        let Some(pod) = self.controller.store.get(Res::Pod, self.ns, self.pod) else { return };
        let image = pod["spec"]["containers"][0]["image"].as_str().unwrap_or_default().to_string();
        let container = pod["spec"]["containers"][0]["name"].as_str().unwrap_or_default().to_string();
        match stuck {
            Some(Stuck::ImagePullBackOff) => {
                let message = format!("Back-off pulling image \"{image}\"");
                let Some(pod) = self.step(|p| {
                    for s in p["status"]["containerStatuses"].as_array_mut().into_iter().flatten() {
                        s["state"] = json!({"waiting": {"reason": "ImagePullBackOff", "message": message}});
                    }
                }) else {
                    return;
                };
                self.event(&pod, Level::Normal, "Pulling", &format!("Pulling image \"{image}\""));
                self.event(
                    &pod,
                    Level::Warning,
                    "Failed",
                    &format!("Failed to pull image \"{image}\": rpc error: code = NotFound desc = failed to pull and unpack image \"{image}\": not found"),
                );
                self.event(&pod, Level::Warning, "Failed", "Error: ImagePullBackOff");
                self.event(&pod, Level::Normal, "BackOff", &message);
            }
            Some(Stuck::CrashLoopBackOff) => {
                let uid = pod["metadata"]["uid"].as_str().unwrap_or_default().to_string();
                let message =
                    format!("back-off 10s restarting failed container={container} pod={}_{}({uid})", self.pod, self.ns);
                let n = fnv(self.pod) % 250 + 2;
                let Some(pod) = self.step(|p| {
                    p["status"]["phase"] = json!("Running");
                    p["status"]["podIP"] = json!(format!("10.244.0.{n}"));
                    for s in p["status"]["containerStatuses"].as_array_mut().into_iter().flatten() {
                        s["started"] = json!(false);
                        s["restartCount"] = json!(1);
                        s["state"] = json!({"waiting": {"reason": "CrashLoopBackOff", "message": message}});
                        s["lastState"] = json!({"terminated": {"exitCode": 1, "reason": "Error", "startedAt": now(), "finishedAt": now()}});
                    }
                }) else {
                    return;
                };
                self.container_started(&pod, &image, &container);
                self.event(&pod, Level::Warning, "BackOff", "Back-off restarting failed container");
            }
            None => {
                let n = fnv(self.pod) % 250 + 2;
                let Some(pod) = self.step(|p| {
                    p["status"]["phase"] = json!("Running");
                    p["status"]["podIP"] = json!(format!("10.244.0.{n}"));
                    for s in p["status"]["containerStatuses"].as_array_mut().into_iter().flatten() {
                        s["started"] = json!(true);
                        s["state"] = json!({"running": {"startedAt": now()}});
                    }
                }) else {
                    return;
                };
                self.container_started(&pod, &image, &container);
                tokio::time::sleep(ready_after.saturating_sub(creating)).await;
                self.step(|p| {
                    for c in p["status"]["conditions"].as_array_mut().into_iter().flatten() {
                        if c["type"] == "Ready" || c["type"] == "ContainersReady" {
                            *c = json!({"type": c["type"], "status": "True", "lastTransitionTime": now()});
                        }
                    }
                    for s in p["status"]["containerStatuses"].as_array_mut().into_iter().flatten() {
                        s["ready"] = json!(true);
                    }
                });
            }
        }
    }
}

/// A pod template without its nulls and empty objects and lists, so that the same template sent
/// by a typed client (Go's `creationTimestamp: null`, `resources: {}`) hashes the same: the API
/// server hashes the decoded object, in which those are absent.
fn normalized(v: &Value) -> Value {
    match v {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), normalized(v)))
                .filter(|(_, v)| {
                    !(v.is_null()
                        || v.as_object().is_some_and(|o| o.is_empty())
                        || v.as_array().is_some_and(|a| a.is_empty()))
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(normalized).collect()),
        other => other.clone(),
    }
}

/// StatefulSet revisions are named `<name>-<hash>` like ControllerRevisions.
fn revision_label_value(revision: &str, name: &str, res: Res) -> String {
    match res {
        Res::Deployment => revision.to_string(),
        _ => format!("{name}-{revision}"),
    }
}

pub fn is_ready(pod: &Value) -> bool {
    pod["metadata"]["deletionTimestamp"].is_null()
        && pod["status"]["conditions"]
            .as_array()
            .is_some_and(|cs| cs.iter().any(|c| c["type"] == "Ready" && c["status"] == "True"))
}

fn ordinal(pod: &Value) -> Option<i64> {
    pod["metadata"]["labels"]["statefulset.kubernetes.io/pod-name"]
        .as_str()
        .and_then(|n| n.rsplit('-').next())
        .and_then(|o| o.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_is_bounded_and_repeatable_with_the_same_seed() {
        let start = Duration::from_secs(2);
        let a = Jitter { fraction: 0.1, seed: 7 };
        let spread: Vec<Duration> = (0..20).map(|i| a.of(start, &format!("pod-{i}"))).collect();
        assert!(spread.iter().all(|d| *d <= Duration::from_millis(200)), "{spread:?}");
        assert!(spread.iter().any(|d| *d != spread[0]), "pods do not all start at once: {spread:?}");
        assert_eq!(spread[3], a.of(start, "pod-3"), "same seed, same pod, same delay");
        let b = Jitter { fraction: 0.1, seed: 8 };
        assert_ne!((0..20).map(|i| b.of(start, &format!("pod-{i}"))).collect::<Vec<_>>(), spread);
        assert_eq!(Jitter { fraction: 0.0, seed: 7 }.of(start, "pod-1"), Duration::ZERO);
    }
}
