//! A GitOps controller with self-heal, played as Argo CD plays it (the `gitops:revert` kube fault
//! of `sandbox up --faults`): at start it adopts the deployments and statefulsets of a namespace
//! for an Application — the `app.kubernetes.io/instance` label and the
//! `argocd.argoproj.io/tracking-id` annotation (`APP:apps/KIND:NAMESPACE/NAME`, Argo CD's
//! `annotation+label` tracking) — and takes their `spec.replicas` then as what Git says. Whenever
//! a workload's `spec.replicas` differs from it, the controller sets it back within
//! [`PERIOD`] (Argo CD's self-heal waits `selfHealTimeout`, 5 s by default), writing as field
//! manager `argocd-controller`. This is the trap a DR runbook meets on a GitOps-managed cluster:
//! a `kubectl scale` that is undone a moment later. Only `spec.replicas` is healed; a deleted
//! workload is not recreated, and there is no Application object to suspend self-heal with.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use super::controller::Controller;
use super::managed::{self, Writer};
use super::store::{Res, Store};

/// How often the controller compares the live state with Git's.
pub const PERIOD: Duration = Duration::from_millis(250);

/// The field manager Argo CD's application controller writes as.
pub const MANAGER: &str = "argocd-controller";
pub const INSTANCE_LABEL: &str = "app.kubernetes.io/instance";
pub const TRACKING_ANNOTATION: &str = "argocd.argoproj.io/tracking-id";

/// Argo CD's tracking id of a namespaced resource: `APP:GROUP/KIND:NAMESPACE/NAME`.
pub fn tracking_id(app: &str, res: Res, ns: &str, name: &str) -> String {
    format!("{app}:{}/{}:{ns}/{name}", res.group(), res.kind())
}

/// One workload under the controller, with the replica count Git has for it.
#[derive(Debug, Clone)]
struct Managed {
    res: Res,
    ns: String,
    name: String,
    replicas: i64,
}

/// Adopts the workloads of `namespace` (all namespaces when `None`) for Application `app` and
/// starts healing them on the current tokio runtime. Returns the workloads adopted and the task.
pub(crate) fn start(
    store: Arc<Store>,
    workloads: Arc<Controller>,
    app: &str,
    namespace: Option<&str>,
) -> (Vec<(Res, String, String)>, tokio::task::JoinHandle<()>) {
    let writer = Writer::update(MANAGER);
    let mut managed = Vec::new();
    for res in [Res::Deployment, Res::StatefulSet] {
        for w in store.list(res, namespace).0 {
            let ns = w["metadata"]["namespace"].as_str().unwrap_or_default().to_string();
            let name = w["metadata"]["name"].as_str().unwrap_or_default().to_string();
            let tracking = tracking_id(app, res, &ns, &name);
            let adopted = store.update(res, &ns, &name, None, |o| {
                let before = o.clone();
                o["metadata"]["labels"][INSTANCE_LABEL] = json!(app);
                o["metadata"]["annotations"][TRACKING_ANNOTATION] = json!(tracking);
                managed::record(res, res.api_version(), Some(&before), o, &writer);
                Ok(())
            });
            if let Ok(o) = adopted {
                let replicas = o["spec"]["replicas"].as_i64().unwrap_or(1);
                managed.push(Managed { res, ns, name, replicas });
            }
        }
    }
    let adopted = managed.iter().map(|m| (m.res, m.ns.clone(), m.name.clone())).collect();
    let task = tokio::spawn(async move {
        let mut tick = tokio::time::interval(PERIOD);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            for m in &managed {
                heal(&store, &workloads, &writer, m);
            }
        }
    });
    (adopted, task)
}

/// Sets a drifted workload's replicas back to Git's.
fn heal(store: &Store, workloads: &Controller, writer: &Writer, m: &Managed) {
    let Some(live) = store.get(m.res, &m.ns, &m.name) else { return };
    if live["spec"]["replicas"].as_i64().unwrap_or(1) == m.replicas {
        return;
    }
    let rv: Option<&str> = live["metadata"]["resourceVersion"].as_str();
    let healed = store.update(m.res, &m.ns, &m.name, rv, |o: &mut Value| {
        let before = o.clone();
        o["spec"]["replicas"] = json!(m.replicas);
        managed::record(m.res, m.res.api_version(), Some(&before), o, writer);
        Ok(())
    });
    if healed.is_ok() {
        workloads.enqueue(m.res, &m.ns, &m.name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracking_ids_are_argo_cds() {
        assert_eq!(
            tracking_id("ac", Res::Deployment, "adeptia", "ac-ac-runtime"),
            "ac:apps/Deployment:adeptia/ac-ac-runtime"
        );
        assert_eq!(tracking_id("ac", Res::StatefulSet, "ns", "mq"), "ac:apps/StatefulSet:ns/mq");
    }
}
