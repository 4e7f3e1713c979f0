//! The controllers of the emulated cluster, reduced to what DR cares about: a deployment or
//! statefulset gets as many pods as its `spec.replicas`, each pod becomes ready after a simulated
//! start delay, a surplus pod is marked terminating (`deletionTimestamp`, not ready, still
//! listed) and disappears after a simulated termination delay, and the workload's status
//! (`replicas`, `readyReplicas`, `availableReplicas`, `observedGeneration`) follows. A change of
//! the pod template replaces the pods (recreate strategy, no surge). StatefulSet pods are handled
//! in parallel (`podManagementPolicy: Parallel`), highest ordinal removed first.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::selector::{Selector, selector_string};
use super::store::{Key, Res, Store, now};
use crate::sandbox::hash::fnv;

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
    queue: mpsc::UnboundedSender<Key>,
    names: AtomicU64,
}

impl Controller {
    /// Starts the control loop on the current tokio runtime.
    pub fn spawn(store: Arc<Store>, delays: Delays) -> (Arc<Controller>, tokio::task::JoinHandle<()>) {
        let (queue, mut rx) = mpsc::unbounded_channel::<Key>();
        let controller = Arc::new(Controller { store, delays: Mutex::new(delays), queue, names: AtomicU64::new(1) });
        let c = Arc::clone(&controller);
        let task = tokio::spawn(async move {
            while let Some(key) = rx.recv().await {
                c.reconcile(&key);
            }
        });
        (controller, task)
    }

    pub fn delays(&self) -> Delays {
        *self.delays.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn set_delays(&self, delays: Delays) {
        *self.delays.lock().unwrap_or_else(|e| e.into_inner()) = delays;
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
        let selector = Selector::parse(&selector_string(&workload["spec"]["selector"])).unwrap_or_default();
        let template = &workload["spec"]["template"];
        let revision = encode(fnv(&template.to_string()), 10);
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
                        self.create_pod(&workload, *res, &pod_name, revision_label, &revision, None);
                        created += 1;
                    }
                }
                _ => {
                    let taken: Vec<i64> = pods.iter().filter_map(ordinal).collect();
                    for i in (0..desired as i64).filter(|i| !taken.contains(i)).take(missing) {
                        let pod_name = format!("{name}-{i}");
                        let rev = revision_label_value(&revision, name, *res);
                        self.create_pod(&workload, *res, &pod_name, revision_label, &rev, Some(i));
                        created += 1;
                    }
                }
            }
        }
        let active = current.len() + created;
        let ready = current.iter().filter(|p| is_ready(p)).count();
        self.write_status(*res, ns, name, &workload, desired, active, ready, &revision);
    }

    #[allow(clippy::too_many_arguments)]
    fn write_status(
        &self,
        res: Res,
        ns: &str,
        name: &str,
        workload: &Value,
        desired: usize,
        active: usize,
        ready: usize,
        revision: &str,
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
        match res {
            Res::Deployment => {
                if active == 0 {
                    status.as_object_mut().map(|s| s.remove("replicas"));
                }
                set(&mut status, "unavailableReplicas", desired.saturating_sub(ready));
                let available = ready >= desired;
                status["conditions"] = json!([{
                    "type": "Available",
                    "status": if available { "True" } else { "False" },
                    "reason": if available { "MinimumReplicasAvailable" } else { "MinimumReplicasUnavailable" },
                    "message": if available { "Deployment has minimum availability." } else { "Deployment does not have minimum availability." },
                    "lastUpdateTime": now(),
                    "lastTransitionTime": now(),
                }]);
                // Keep the previous timestamps when availability did not change, so that a
                // status that did not change writes nothing.
                if workload["status"]["conditions"][0]["status"] == status["conditions"][0]["status"] {
                    status["conditions"] = workload["status"]["conditions"].clone();
                }
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
            Ok(())
        });
    }

    fn create_pod(
        self: &Arc<Self>,
        workload: &Value,
        res: Res,
        pod_name: &str,
        revision_label: &str,
        revision: &str,
        ordinal: Option<i64>,
    ) {
        let ns = workload["metadata"]["namespace"].as_str().unwrap_or("default").to_string();
        let template = &workload["spec"]["template"];
        let mut labels = template["metadata"]["labels"].clone();
        if !labels.is_object() {
            labels = json!({});
        }
        labels[revision_label] = json!(revision);
        if ordinal.is_some() {
            labels["statefulset.kubernetes.io/pod-name"] = json!(pod_name);
        }
        let wname = workload["metadata"]["name"].as_str().unwrap_or_default();
        let (owner_kind, owner_name) = match res {
            Res::Deployment => ("ReplicaSet", format!("{wname}-{revision}")),
            _ => ("StatefulSet", wname.to_string()),
        };
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
                    "apiVersion": "apps/v1", "kind": owner_kind, "name": owner_name,
                    "uid": workload["metadata"]["uid"], "controller": true, "blockOwnerDeletion": true
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
                    {"type": "Ready", "status": "False", "reason": "ContainersNotReady", "lastTransitionTime": now()}
                ],
                "containerStatuses": statuses
            }
        });
        if self.store.create(Res::Pod, pod).is_err() {
            return;
        }
        let delay = self.delays().start;
        let this = Arc::clone(self);
        let (pod_name, wname) = (pod_name.to_string(), wname.to_string());
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let started = this.store.update(Res::Pod, &ns, &pod_name, None, |p| {
                if !p["metadata"]["deletionTimestamp"].is_null() {
                    return Ok(());
                }
                let n = fnv(&pod_name) % 250 + 2;
                p["status"]["phase"] = json!("Running");
                p["status"]["podIP"] = json!(format!("10.244.0.{n}"));
                p["status"]["conditions"] = json!([
                    {"type": "PodScheduled", "status": "True", "lastTransitionTime": now()},
                    {"type": "Initialized", "status": "True", "lastTransitionTime": now()},
                    {"type": "ContainersReady", "status": "True", "lastTransitionTime": now()},
                    {"type": "Ready", "status": "True", "lastTransitionTime": now()}
                ]);
                if let Some(statuses) = p["status"]["containerStatuses"].as_array_mut() {
                    for s in statuses {
                        s["ready"] = json!(true);
                        s["started"] = json!(true);
                        s["state"] = json!({"running": {"startedAt": now()}});
                    }
                }
                Ok(())
            });
            if started.is_ok() {
                this.enqueue(res, &ns, &wname);
            }
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
        if marked.is_err() {
            return;
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

/// StatefulSet revisions are named `<name>-<hash>` like ControllerRevisions.
fn revision_label_value(revision: &str, name: &str, res: Res) -> String {
    match res {
        Res::Deployment => revision.to_string(),
        _ => format!("{name}-{revision}"),
    }
}

fn is_ready(pod: &Value) -> bool {
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
