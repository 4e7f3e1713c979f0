//! The deployment controller's bookkeeping: one ReplicaSet per pod template (named
//! `<deployment>-<pod-template-hash>`, numbered by `deployment.kubernetes.io/revision`, so that
//! `kubectl rollout history` lists them), `spec.paused` (a paused deployment scales its current
//! ReplicaSet but does not roll out a new template), and the `Progressing` and `Available`
//! conditions with the reasons the real controller gives them, `ProgressDeadlineExceeded`
//! included.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::events::{Level, Recorder};
use super::selector::{Selector, selector_string};
use super::store::{Res, Store, now};

pub const REVISION: &str = "deployment.kubernetes.io/revision";
const HASH: &str = "pod-template-hash";

fn revision_of(rs: &Value) -> i64 {
    rs["metadata"]["annotations"][REVISION].as_str().and_then(|r| r.parse().ok()).unwrap_or(0)
}

/// The ReplicaSets a deployment owns.
pub fn owned(store: &Store, deployment: &Value) -> Vec<Value> {
    let ns = deployment["metadata"]["namespace"].as_str().unwrap_or_default();
    let uid = &deployment["metadata"]["uid"];
    store
        .list(Res::ReplicaSet, Some(ns))
        .0
        .into_iter()
        .filter(|rs| rs["metadata"]["ownerReferences"].as_array().is_some_and(|o| o.iter().any(|r| &r["uid"] == uid)))
        .collect()
}

/// The template to run and its hash: the spec's, or, when paused, the newest ReplicaSet's (no
/// rollout while paused). `None`: paused before any ReplicaSet existed, so nothing runs.
pub fn current_template(store: &Store, deployment: &Value, spec_hash: &str) -> Option<(String, Value)> {
    if deployment["spec"]["paused"] != true {
        return Some((spec_hash.to_string(), deployment["spec"]["template"].clone()));
    }
    let newest = owned(store, deployment).into_iter().max_by_key(revision_of)?;
    let hash = newest["metadata"]["labels"][HASH].as_str().unwrap_or_default().to_string();
    Some((hash, newest["spec"]["template"].clone()))
}

/// Makes sure the ReplicaSet of `hash` exists and is the newest revision. Returns it and
/// whether it was created now.
pub fn ensure(store: &Store, events: &Recorder, deployment: &Value, hash: &str, template: &Value) -> (Value, bool) {
    let meta = &deployment["metadata"];
    let (ns, name) = (meta["namespace"].as_str().unwrap_or_default(), meta["name"].as_str().unwrap_or_default());
    let rs_name = format!("{name}-{hash}");
    let all = owned(store, deployment);
    let max = all.iter().map(revision_of).max().unwrap_or(0);
    if let Some(rs) = store.get(Res::ReplicaSet, ns, &rs_name) {
        if revision_of(&rs) < max {
            // A rollback to an earlier template: that ReplicaSet becomes the newest revision.
            let bumped = store.update(Res::ReplicaSet, ns, &rs_name, None, |o| {
                o["metadata"]["annotations"][REVISION] = json!((max + 1).to_string());
                Ok(())
            });
            return (bumped.unwrap_or(rs), false);
        }
        return (rs, false);
    }
    let mut labels = template["metadata"]["labels"].clone();
    if !labels.is_object() {
        labels = json!({});
    }
    labels[HASH] = json!(hash);
    let mut rs_template = template.clone();
    rs_template["metadata"]["labels"] = labels.clone();
    let mut selector = deployment["spec"]["selector"].clone();
    selector["matchLabels"][HASH] = json!(hash);
    let rs = json!({
        "metadata": {
            "name": rs_name, "namespace": ns, "labels": labels,
            "annotations": {
                REVISION: (max + 1).to_string(),
                "deployment.kubernetes.io/desired-replicas": deployment["spec"]["replicas"].as_i64().unwrap_or(1).to_string(),
            },
            "ownerReferences": [{
                "apiVersion": "apps/v1", "kind": "Deployment", "name": name, "uid": meta["uid"],
                "controller": true, "blockOwnerDeletion": true
            }]
        },
        "spec": {"replicas": 0, "selector": selector, "template": rs_template},
        "status": {"replicas": 0, "observedGeneration": 1}
    });
    match store.create(Res::ReplicaSet, rs) {
        Ok(created) => {
            events.record(
                deployment,
                Level::Normal,
                "ScalingReplicaSet",
                &format!("Created new replica set \"{rs_name}\""),
                "deployment-controller",
            );
            (created, true)
        }
        Err(_) => (store.get(Res::ReplicaSet, ns, &rs_name).unwrap_or(Value::Null), false),
    }
}

/// Sets each owned ReplicaSet's replicas (the current one `desired`, older ones 0) and its
/// status from the pods carrying its hash.
pub fn sync(store: &Store, events: &Recorder, deployment: &Value, current_hash: &str, desired: usize) {
    let ns = deployment["metadata"]["namespace"].as_str().unwrap_or_default();
    let pods = store.list(Res::Pod, Some(ns)).0;
    for rs in owned(store, deployment) {
        let rs_name = rs["metadata"]["name"].as_str().unwrap_or_default().to_string();
        let hash = rs["metadata"]["labels"][HASH].as_str().unwrap_or_default();
        let want = if hash == current_hash { desired } else { 0 };
        let selector = Selector::parse(&selector_string(&rs["spec"]["selector"])).unwrap_or_default();
        let mine: Vec<&Value> = pods
            .iter()
            .filter(|p| p["metadata"]["deletionTimestamp"].is_null() && selector.matches(&p["metadata"]["labels"]))
            .collect();
        let ready = mine.iter().filter(|p| super::controller::is_ready(p)).count();
        let before = rs["spec"]["replicas"].as_i64().unwrap_or(0);
        let _ = store.update(Res::ReplicaSet, ns, &rs_name, None, |o| {
            o["spec"]["replicas"] = json!(want);
            o["metadata"]["annotations"]["deployment.kubernetes.io/desired-replicas"] = json!(desired.to_string());
            let mut status = json!({"replicas": mine.len(), "fullyLabeledReplicas": mine.len(), "observedGeneration": o["metadata"]["generation"]});
            if ready > 0 {
                status["readyReplicas"] = json!(ready);
                status["availableReplicas"] = json!(ready);
            }
            o["status"] = status;
            Ok(())
        });
        if before != want as i64 {
            let verb = if (want as i64) > before { "up" } else { "down" };
            events.record(
                deployment,
                Level::Normal,
                "ScalingReplicaSet",
                &format!("Scaled {verb} replica set {rs_name} from {before} to {want}"),
                "deployment-controller",
            );
        }
    }
}

/// `maxUnavailable` of the rolling update strategy (default 25%, rounded down), as a count.
fn max_unavailable(deployment: &Value, desired: usize) -> usize {
    match &deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] {
        Value::Number(n) => n.as_u64().unwrap_or(0) as usize,
        Value::String(p) => p.trim_end_matches('%').parse::<usize>().map_or(0, |p| desired * p / 100),
        _ => desired / 4,
    }
}

/// What the status counts are, for the conditions.
pub struct Counts {
    pub desired: usize,
    pub updated: usize,
    pub ready: usize,
    pub total: usize,
}

fn condition(kind: &str, status: &str, reason: &str, message: &str, old: Option<&Value>, progressed: bool) -> Value {
    let stamp = now();
    let same_status = old.is_some_and(|o| o["status"] == status);
    let same = old.is_some_and(|o| o["status"] == status && o["reason"] == reason && o["message"] == message);
    json!({
        "type": kind, "status": status, "reason": reason, "message": message,
        "lastUpdateTime": if same && !progressed { old.map_or(json!(stamp), |o| o["lastUpdateTime"].clone()) } else { json!(stamp) },
        "lastTransitionTime": if same_status { old.map_or(json!(stamp), |o| o["lastTransitionTime"].clone()) } else { json!(stamp) },
    })
}

/// The deployment's `Available` and `Progressing` conditions. `clock` is when progress was last
/// made (kept by the controller); the answer says when to look again for the deadline.
pub fn conditions(
    deployment: &Value,
    counts: &Counts,
    rs_name: &str,
    created: bool,
    clock: &mut Option<Instant>,
) -> (Value, Option<Duration>) {
    let old_status = &deployment["status"];
    let old =
        |kind: &str| old_status["conditions"].as_array().and_then(|cs| cs.iter().find(|c| c["type"] == kind)).cloned();
    let min_available = counts.desired.saturating_sub(max_unavailable(deployment, counts.desired));
    let available = counts.ready >= min_available;
    let available_condition = if available {
        condition(
            "Available",
            "True",
            "MinimumReplicasAvailable",
            "Deployment has minimum availability.",
            old("Available").as_ref(),
            false,
        )
    } else {
        condition(
            "Available",
            "False",
            "MinimumReplicasUnavailable",
            "Deployment does not have minimum availability.",
            old("Available").as_ref(),
            false,
        )
    };
    let previous = old("Progressing");
    let deadline = Duration::from_secs(deployment["spec"]["progressDeadlineSeconds"].as_u64().unwrap_or(600));
    let n = |key: &str| old_status[key].as_u64().unwrap_or(0) as usize;
    let progressed = counts.updated > n("updatedReplicas")
        || counts.ready > n("readyReplicas")
        || (counts.total < n("replicas") && counts.updated == counts.total);
    let complete = counts.updated == counts.desired && counts.ready == counts.desired && counts.total == counts.desired;
    let mut recheck = None;
    let previous_reason = previous.as_ref().and_then(|p| p["reason"].as_str().map(str::to_string)).unwrap_or_default();
    let paused = deployment["spec"]["paused"] == true;
    let progressing = if paused {
        *clock = None;
        condition("Progressing", "Unknown", "DeploymentPaused", "Deployment is paused", previous.as_ref(), false)
    } else if previous_reason == "DeploymentPaused" {
        *clock = Some(Instant::now());
        recheck = Some(deadline);
        condition("Progressing", "Unknown", "DeploymentResumed", "Deployment is resumed", previous.as_ref(), false)
    } else if complete {
        *clock = None;
        let message = format!("ReplicaSet \"{rs_name}\" has successfully progressed.");
        condition("Progressing", "True", "NewReplicaSetAvailable", &message, previous.as_ref(), false)
    } else if created {
        *clock = Some(Instant::now());
        recheck = Some(deadline);
        condition(
            "Progressing",
            "True",
            "NewReplicaSetCreated",
            &format!("Created new replica set \"{rs_name}\""),
            previous.as_ref(),
            true,
        )
    } else if progressed || previous.is_none() {
        *clock = Some(Instant::now());
        recheck = Some(deadline);
        condition(
            "Progressing",
            "True",
            "ReplicaSetUpdated",
            &format!("ReplicaSet \"{rs_name}\" is progressing."),
            previous.as_ref(),
            true,
        )
    } else if previous_reason == "NewReplicaSetAvailable" || previous_reason == "ProgressDeadlineExceeded" {
        previous.clone().unwrap_or(Value::Null)
    } else {
        let since = *clock.get_or_insert_with(Instant::now);
        if since.elapsed() >= deadline {
            let message = format!("ReplicaSet \"{rs_name}\" has timed out progressing.");
            condition("Progressing", "False", "ProgressDeadlineExceeded", &message, previous.as_ref(), false)
        } else {
            recheck = Some(deadline.saturating_sub(since.elapsed()));
            previous.clone().unwrap_or(Value::Null)
        }
    };
    (json!([available_condition, progressing]), recheck)
}
