//! Waiting until a scale is real, driven by watches (no polling, no fixed sleeps):
//! for N, until N replicas are ready and the controller has observed the new generation; for 0,
//! until no pod matching the workload's selector is left, terminating pods included.
//!
//! `watcher` never gives up on its own, so each wait runs under `tokio::time::timeout`; what was
//! last observed is kept outside the timed future so that a timeout can say what it saw.

use std::collections::BTreeMap;
use std::pin::pin;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::runtime::watcher::{self, Event};

use super::cluster::Cluster;
use super::failure::{Class, backoff, classify, describe};
use super::kind::Kind;
use super::view::{Scalable, View};
use crate::error::{Error, Result};

/// Consecutive watch failures tolerated before giving up (each followed by a backoff).
const MAX_WATCH_ERRORS: u32 = 4;

/// Server-side length of one watch call; the watcher re-watches from where it was. Kept below
/// the client's read timeout (see `Cluster::connect`) so that a quiet watch is never mistaken
/// for a hung server.
pub const WATCH_SECONDS: u32 = 50;

fn inner(e: &watcher::Error) -> Option<&kube::Error> {
    match e {
        watcher::Error::InitialListFailed(k) | watcher::Error::WatchStartFailed(k) | watcher::Error::WatchFailed(k) => {
            Some(k)
        }
        _ => None,
    }
}

/// Decides whether a watch error ends the wait; sleeps the backoff when it does not.
async fn tolerate(cluster: &Cluster, kind: Kind, name: &str, e: &watcher::Error, errors: &mut u32) -> Result<()> {
    *errors += 1;
    let fatal = inner(e).is_some_and(|k| classify(k) == Class::Fatal);
    if fatal || *errors >= MAX_WATCH_ERRORS {
        let message = match inner(e) {
            Some(k) => describe(cluster, kind, name, k),
            None => e.to_string(),
        };
        return Err(Error::action("scale", cluster.target(kind, name), format!("while waiting: {message}")));
    }
    tokio::time::sleep(backoff(*errors)).await;
    Ok(())
}

fn ready_for(v: &View, replicas: i32) -> bool {
    v.observed_generation >= v.generation && v.desired == replicas && v.ready == replicas && v.replicas == replicas
}

/// Waits until the workload has `replicas` ready pods and its status is current.
pub async fn until_ready<K: Scalable>(
    cluster: &Cluster,
    kind: Kind,
    name: &str,
    replicas: i32,
    deadline: tokio::time::Instant,
    timeout: Duration,
) -> Result<View> {
    let mut last: Option<View> = None;
    let watch = async {
        let config = watcher::Config::default().fields(&format!("metadata.name={name}")).timeout(WATCH_SECONDS);
        let mut stream = pin!(watcher::watcher(cluster.api::<K>(), config));
        let (mut errors, mut seen) = (0, false);
        while let Some(event) = stream.next().await {
            match event {
                Ok(Event::Apply(o) | Event::InitApply(o)) => {
                    errors = 0;
                    seen = true;
                    let view = o.view();
                    let done = ready_for(&view, replicas);
                    last = Some(view.clone());
                    if done {
                        return Ok(view);
                    }
                }
                Ok(Event::InitDone) if !seen => {
                    return Err(Error::action(
                        "scale",
                        cluster.target(kind, name),
                        format!(
                            "404 Not Found: {kind} `{name}` does not exist in namespace `{}` (context `{}`)",
                            cluster.namespace, cluster.context
                        ),
                    ));
                }
                Ok(Event::Delete(_)) => {
                    return Err(Error::action(
                        "scale",
                        cluster.target(kind, name),
                        "the workload was deleted while waiting",
                    ));
                }
                Ok(Event::Init | Event::InitDone) => errors = 0,
                Err(e) => tolerate(cluster, kind, name, &e, &mut errors).await?,
            }
        }
        Err(Error::action("scale", cluster.target(kind, name), "the watch ended unexpectedly"))
    };
    match tokio::time::timeout_at(deadline, watch).await {
        Ok(result) => result,
        Err(_) => {
            let observed = match &last {
                Some(v) => format!(
                    "observed {} ready of {} wanted ({} existing), spec.replicas {}, observedGeneration {} of generation {}",
                    v.ready, replicas, v.replicas, v.desired, v.observed_generation, v.generation
                ),
                None => "nothing observed: the watch never delivered the workload".to_string(),
            };
            Err(Error::action(
                "scale",
                cluster.target(kind, name),
                format!("timed out after {} waiting for {replicas} ready replicas: {observed}", human(timeout)),
            ))
        }
    }
}

/// Waits until no pod matches `selector` in the namespace, terminating ones included.
/// `deadline` ends the wait; `timeout` is the operator's setting, for the message.
pub async fn until_gone(
    cluster: &Cluster,
    kind: Kind,
    name: &str,
    selector: &str,
    deadline: tokio::time::Instant,
    timeout: Duration,
) -> Result<()> {
    if selector.is_empty() {
        return Err(Error::action(
            "scale",
            cluster.target(kind, name),
            "the workload has an empty selector; refusing to wait on every pod of the namespace",
        ));
    }
    let mut pods: BTreeMap<String, Pod> = BTreeMap::new();
    let watch = async {
        let config = watcher::Config::default().labels(selector).timeout(WATCH_SECONDS);
        let mut stream = pin!(watcher::watcher(cluster.api::<Pod>(), config));
        let mut listing: BTreeMap<String, Pod> = BTreeMap::new();
        let mut errors = 0;
        let mut initialised = false;
        while let Some(event) = stream.next().await {
            match event {
                Ok(Event::Init) => listing.clear(),
                Ok(Event::InitApply(p)) => {
                    listing.insert(pod_name(&p), p);
                }
                Ok(Event::InitDone) => {
                    errors = 0;
                    initialised = true;
                    pods = std::mem::take(&mut listing);
                }
                Ok(Event::Apply(p)) => {
                    pods.insert(pod_name(&p), p);
                }
                Ok(Event::Delete(p)) => {
                    pods.remove(&pod_name(&p));
                }
                Err(e) => {
                    tolerate(cluster, kind, name, &e, &mut errors).await?;
                    continue;
                }
            }
            if initialised && pods.is_empty() {
                return Ok(());
            }
        }
        Err(Error::action("scale", cluster.target(kind, name), "the watch ended unexpectedly"))
    };
    match tokio::time::timeout_at(deadline, watch).await {
        Ok(result) => result,
        Err(_) => {
            let left: Vec<String> = pods.iter().map(|(n, p)| format!("{n} ({})", pod_state(p))).collect();
            Err(Error::action(
                "scale",
                cluster.target(kind, name),
                format!(
                    "timed out after {} waiting for all pods to be gone; {} still present: {}",
                    human(timeout),
                    left.len(),
                    left.join(", ")
                ),
            ))
        }
    }
}

fn pod_name(p: &Pod) -> String {
    p.metadata.name.clone().unwrap_or_default()
}

fn pod_state(p: &Pod) -> String {
    if let Some(t) = &p.metadata.deletion_timestamp {
        return format!("terminating since {}", t.0);
    }
    p.status.as_ref().and_then(|s| s.phase.clone()).unwrap_or_else(|| "unknown".to_string()).to_lowercase()
}

pub fn human(d: Duration) -> String {
    let ms = d.as_millis();
    if ms.is_multiple_of(1000) { format!("{}s", ms / 1000) } else { format!("{:.1}s", d.as_secs_f64()) }
}
