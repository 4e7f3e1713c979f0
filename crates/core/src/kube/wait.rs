//! Waiting until a scale is real, driven by watches (no polling, no fixed sleeps):
//! for N, until N replicas are ready and the controller has observed the new generation; for 0,
//! until no pod matching the workload's selector is left, terminating pods included.
//!
//! `watcher` never gives up on its own, so each wait runs under `tokio::time::timeout`; what was
//! last observed is kept outside the timed future so that a timeout can say what it saw. A scale
//! up that times out also says why the pods are not ready (their containers' waiting reasons,
//! `CrashLoopBackOff`, `ImagePullBackOff`, ...) and whether the deployment controller gave up
//! (`ProgressDeadlineExceeded`): what an operator needs to decide between waiting and acting.

use std::collections::BTreeMap;
use std::pin::pin;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::ListParams;
use kube::runtime::watcher::{self, Event};

use super::cluster::Cluster;
use super::failure::{Class, backoff, classify, describe};
use super::kind::Kind;
use super::observed::{Scalable, View};
use drscript_base::error::{Error, Result};

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
                    crate::observer::waiting(format!("{} {name} {}/{replicas} ready", cluster.env, view.ready));
                    let done = ready_for(&view, replicas);
                    last = Some(view.clone());
                    if done {
                        return Ok(view);
                    }
                    // Someone set the replicas back (a GitOps controller, an HPA, a person): the
                    // wait cannot end well, and the operator needs to know who, now.
                    if view.desired != replicas {
                        return Err(Error::action("scale", cluster.target(kind, name), changed_back(&view, replicas)));
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
            let mut observed = match &last {
                Some(v) => format!(
                    "observed {} ready of {} wanted ({} existing), spec.replicas {}, observedGeneration {} of generation {}",
                    v.ready, replicas, v.replicas, v.desired, v.observed_generation, v.generation
                ),
                None => "nothing observed: the watch never delivered the workload".to_string(),
            };
            if let Some(v) = &last {
                if let Some(p) = &v.progress {
                    observed.push_str(&format!("; {p}"));
                }
                if let Some(pods) = not_ready_pods(cluster, &v.selector).await {
                    observed.push_str(&format!("; {pods}"));
                }
            }
            Err(Error::action(
                "scale",
                cluster.target(kind, name),
                format!("timed out after {} waiting for {replicas} ready replicas: {observed}", human(timeout)),
            ))
        }
    }
}

/// "spec.replicas was set back to 2 by argocd-controller at ... (managedFields)", with the
/// command that pauses the controller when the object names one.
pub fn changed_back(view: &View, replicas: i32) -> String {
    let by = match &view.replicas_manager {
        Some((manager, at)) => format!(" by {manager} at {at} (managedFields)"),
        None => String::new(),
    };
    let mut message =
        format!("while waiting for {replicas} ready replicas, spec.replicas was set to {}{by}", view.desired);
    if let Some(g) = &view.gitops {
        message.push_str(&format!("; the object is owned by {}: pause it first: {}", g.owner, g.pause));
    }
    message
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
            if initialised {
                let left = pods.len();
                crate::observer::waiting(format!(
                    "{} {name} {left} pod{} left",
                    cluster.env,
                    if left == 1 { "" } else { "s" }
                ));
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

/// At most this many pods are described one by one in a timeout message.
const PODS_SHOWN: usize = 5;

/// Why the workload's pods are not ready, read once after a timeout (bounded: the API server may
/// be the reason for the timeout): pods grouped by phase and waiting reason, each group with its
/// pods' names, the most restarts and one container message. `None` when nothing can be said.
async fn not_ready_pods(cluster: &Cluster, selector: &str) -> Option<String> {
    if selector.is_empty() {
        return None;
    }
    let api = cluster.api::<Pod>();
    let params = ListParams::default().labels(selector);
    let list = tokio::time::timeout(Duration::from_secs(5), api.list(&params)).await.ok()?.ok()?;
    let mut groups: BTreeMap<String, (Vec<String>, i32, Option<String>)> = BTreeMap::new();
    for p in list.items.iter().filter(|p| p.metadata.deletion_timestamp.is_none() && !is_ready(p)) {
        let w = waiting(p);
        let key = match &w {
            Some((reason, _, _)) => format!("{}: {reason}", phase(p)),
            None => phase(p),
        };
        let group = groups.entry(key).or_default();
        group.0.push(pod_name(p));
        if let Some((_, message, restarts)) = w {
            group.1 = group.1.max(restarts);
            group.2 = group.2.take().or(message);
        }
    }
    if groups.is_empty() {
        return None;
    }
    let described: Vec<String> = groups
        .into_iter()
        .map(|(state, (names, restarts, message))| {
            let mut text = format!("{} pod{} {state}", names.len(), if names.len() == 1 { "" } else { "s" });
            if restarts > 0 {
                text.push_str(&format!(" ({restarts} restart{})", if restarts == 1 { "" } else { "s" }));
            }
            let more = names.len().saturating_sub(PODS_SHOWN);
            text.push_str(&format!(
                " [{}{}]",
                names[..names.len().min(PODS_SHOWN)].join(", "),
                if more > 0 { format!(" and {more} more") } else { String::new() }
            ));
            if let Some(m) = message.filter(|m| !m.is_empty()) {
                let short: String = m.chars().take(MESSAGE_CHARS).collect();
                text.push_str(&format!(": {short}{}", if m.chars().count() > MESSAGE_CHARS { "…" } else { "" }));
            }
            text
        })
        .collect();
    Some(format!("not ready: {}", described.join("; ")))
}

/// Longest container message quoted in a timeout.
const MESSAGE_CHARS: usize = 160;

/// The first waiting container's reason, message and restart count.
fn waiting(p: &Pod) -> Option<(String, Option<String>, i32)> {
    let containers = p.status.as_ref()?.container_statuses.as_ref()?;
    containers.iter().find_map(|c| {
        let w = c.state.as_ref()?.waiting.as_ref()?;
        Some((w.reason.clone().unwrap_or_default(), w.message.clone(), c.restart_count))
    })
}

/// `pending`, `running, not ready`, ...: the phase as an operator reads it.
fn phase(p: &Pod) -> String {
    let phase = p.status.as_ref().and_then(|s| s.phase.clone()).unwrap_or_else(|| "unknown".to_string()).to_lowercase();
    if phase == "running" && !is_ready(p) { "running, not ready".to_string() } else { phase }
}

fn is_ready(p: &Pod) -> bool {
    p.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

fn pod_name(p: &Pod) -> String {
    p.metadata.name.clone().unwrap_or_default()
}

/// `pending: ImagePullBackOff`, `running, not ready: CrashLoopBackOff`, `terminating since T`.
fn pod_state(p: &Pod) -> String {
    if let Some(t) = &p.metadata.deletion_timestamp {
        return format!("terminating since {}", t.0);
    }
    match waiting(p) {
        Some((reason, _, _)) => format!("{}: {reason}", phase(p)),
        None => phase(p),
    }
}

pub fn human(d: Duration) -> String {
    let ms = d.as_millis();
    if ms.is_multiple_of(1000) { format!("{}s", ms / 1000) } else { format!("{:.1}s", d.as_secs_f64()) }
}
