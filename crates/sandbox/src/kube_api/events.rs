//! The events the emulated kubelet and controllers record (`Scheduled`, `Started`, `BackOff`,
//! `ScalingReplicaSet`, the HPA controller's `SuccessfulRescale`, ...), so that `kubectl get events` and `kubectl describe` show what a
//! stuck start looks like. Read-only through the API, as far as this emulation goes; the oldest
//! are dropped beyond a bound per namespace (the real server drops them after an hour).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{Value, json};

use super::store::{Res, Store, now};

const KEEP_PER_NAMESPACE: usize = 500;

/// The suffix of event names, shared by every recorder (the workload controllers' and the HPA
/// controller's write events about objects of the same name).
static COUNTER: AtomicU64 = AtomicU64::new(0x17a0_0000);

pub struct Recorder {
    store: Arc<Store>,
}

/// `Normal` or `Warning`, the two event types.
#[derive(Debug, Clone, Copy)]
pub enum Level {
    Normal,
    Warning,
}

impl Recorder {
    pub fn new(store: Arc<Store>) -> Recorder {
        Recorder { store }
    }

    /// Records one event about `object` (a stored object: its kind, name, uid are read from it).
    pub fn record(&self, object: &Value, level: Level, reason: &str, message: &str, component: &str) {
        let meta = &object["metadata"];
        let ns = meta["namespace"].as_str().unwrap_or("default");
        let name = meta["name"].as_str().unwrap_or_default();
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let at = now();
        let event = json!({
            "metadata": {"name": format!("{name}.{n:x}"), "namespace": ns},
            "involvedObject": {
                "kind": object["kind"], "namespace": ns, "name": name, "uid": meta["uid"],
                "apiVersion": object["apiVersion"], "resourceVersion": meta["resourceVersion"]
            },
            "reason": reason,
            "message": message,
            "source": {"component": component, "host": "sandbox-node-1"},
            "firstTimestamp": at, "lastTimestamp": at, "count": 1,
            "type": match level { Level::Normal => "Normal", Level::Warning => "Warning" },
            "eventTime": null, "reportingComponent": component, "reportingInstance": "sandbox-node-1"
        });
        let _ = self.store.create(Res::Event, event);
        let events = self.store.list(Res::Event, Some(ns)).0;
        if events.len() > KEEP_PER_NAMESPACE {
            let mut names: Vec<(String, String)> = events
                .iter()
                .map(|e| {
                    let rv = e["metadata"]["resourceVersion"].as_str().unwrap_or("0");
                    (format!("{rv:0>20}"), e["metadata"]["name"].as_str().unwrap_or_default().to_string())
                })
                .collect();
            names.sort();
            for (_, old) in names.iter().take(events.len() - KEEP_PER_NAMESPACE) {
                let _ = self.store.delete(Res::Event, ns, old);
            }
        }
    }
}
