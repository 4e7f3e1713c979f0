//! Who else sets a workload's replicas. A HorizontalPodAutoscaler (`autoscaling/v2`, on by
//! default in Adeptia Connect's chart) keeps a workload within its bounds; KEDA drives such an
//! HPA from a ScaledObject (which owns it); a GitOps controller (Argo CD with self-heal, Flux)
//! sets the replicas back to what Git says. A scale that one of them undoes never becomes ready:
//! drscript reads them first, scales within an HPA's bounds (or raises them on request), and
//! refuses a switch that a KEDA or GitOps controller would undo unless the operator acknowledged it.
//!
//! A scale to 0 works with an HPA present: the HPA controller treats a workload at 0 replicas
//! as "scaling disabled" and leaves it there.

use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{ListParams, Patch, PatchParams};
use serde::Serialize;

use super::cluster::Cluster;
use super::kind::Kind;
use drscript_base::error::{Error, Result};

/// The annotation that keeps an HPA's bounds from before drscript raised them (`MIN,MAX`):
/// the state lives with the object, so any later run (the way back) restores it.
pub const RAISED: &str = "drscript.io/raised-from";

/// The field manager drscript writes with (what `managedFields` names).
pub const FIELD_MANAGER: &str = "drscript";

/// The HPA that targets a workload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Hpa {
    pub name: String,
    pub min: i32,
    pub max: i32,
    /// The KEDA ScaledObject that owns this HPA, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keda: Option<String>,
    /// The bounds before drscript raised them (`RAISED`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub raised_from: Option<(i32, i32)>,
}

impl Hpa {
    /// The count the HPA lets a workload keep when it is scaled to `replicas`.
    pub fn keeps(&self, replicas: i32) -> i32 {
        if replicas == 0 { 0 } else { replicas.clamp(self.min, self.max) }
    }
}

/// A GitOps controller that owns a workload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GitOps {
    /// `Argo CD application adeptia`, `Flux Kustomization apps/adeptia`.
    pub owner: String,
    /// The command that stops it from undoing a scale.
    pub pause: String,
}

/// The HPAs of the cluster's namespace.
pub async fn hpas(cluster: &Cluster) -> Result<Vec<HorizontalPodAutoscaler>> {
    let api = cluster.api::<HorizontalPodAutoscaler>();
    api.list(&ListParams::default()).await.map(|l| l.items).map_err(|e| {
        Error::action(
            "kube",
            format!("{} (ns {}) horizontalpodautoscalers", cluster.env, cluster.namespace),
            e.to_string(),
        )
    })
}

/// The HPA among `hpas` whose `scaleTargetRef` is `kind/name`.
pub fn hpa_for(hpas: &[HorizontalPodAutoscaler], kind: Kind, name: &str) -> Option<Hpa> {
    let kind_name = match kind {
        Kind::Deployment => "Deployment",
        Kind::StatefulSet => "StatefulSet",
    };
    let h = hpas.iter().find(|h| h.spec.scale_target_ref.kind == kind_name && h.spec.scale_target_ref.name == name)?;
    let spec = &h.spec;
    let keda = h.metadata.owner_references.iter().flatten().find(|o| o.kind == "ScaledObject").map(|o| o.name.clone());
    let raised_from = h.metadata.annotations.as_ref().and_then(|a| a.get(RAISED)).and_then(|v| {
        let (min, max) = v.split_once(',')?;
        Some((min.trim().parse().ok()?, max.trim().parse().ok()?))
    });
    Some(Hpa {
        name: h.metadata.name.clone().unwrap_or_default(),
        min: spec.min_replicas.unwrap_or(1),
        max: spec.max_replicas,
        keda,
        raised_from,
    })
}

/// The GitOps controller that owns an object, from the labels and annotations Argo CD and Flux
/// write on what they apply.
pub fn gitops_of(meta: &ObjectMeta, namespace: &str) -> Option<GitOps> {
    let annotations = meta.annotations.clone().unwrap_or_default();
    let labels = meta.labels.clone().unwrap_or_default();
    // Argo CD: `argocd.argoproj.io/tracking-id: APP:GROUP/KIND:NS/NAME` (annotation tracking),
    // or the `argocd.argoproj.io/instance` label (label tracking). `app.kubernetes.io/instance`
    // alone is not Argo's: Helm writes it on every chart.
    let argo = annotations
        .get("argocd.argoproj.io/tracking-id")
        .and_then(|t| t.split(':').next())
        .or_else(|| labels.get("argocd.argoproj.io/instance").map(String::as_str));
    if let Some(app) = argo {
        let app = app.rsplit('_').next().unwrap_or(app);
        return Some(GitOps {
            owner: format!("Argo CD application {app}"),
            pause: format!(
                "argocd app set {app} --sync-policy none   (or: kubectl -n argocd patch application {app} --type merge -p '{{\"spec\":{{\"syncPolicy\":{{\"automated\":null}}}}}}')"
            ),
        });
    }
    for (label, kind, command) in [
        ("kustomize.toolkit.fluxcd.io/name", "Kustomization", "kustomization"),
        ("helm.toolkit.fluxcd.io/name", "HelmRelease", "helmrelease"),
    ] {
        if let Some(name) = labels.get(label) {
            let ns_label = label.replace("/name", "/namespace");
            let ns = labels.get(&ns_label).map_or(namespace, String::as_str);
            return Some(GitOps {
                owner: format!("Flux {kind} {ns}/{name}"),
                pause: format!("flux suspend {command} {name} -n {ns}"),
            });
        }
    }
    None
}

/// Raises the HPA's bounds so that it keeps `replicas`, remembering the bounds it had (unless
/// an earlier raise already did).
pub async fn raise(cluster: &Cluster, hpa: &Hpa, replicas: i32) -> Result<()> {
    let (min, max) = hpa.raised_from.unwrap_or((hpa.min, hpa.max));
    let patch = serde_json::json!({
        "metadata": { "annotations": { RAISED: format!("{min},{max}") } },
        "spec": { "minReplicas": hpa.min.min(replicas), "maxReplicas": hpa.max.max(replicas) },
    });
    patch_hpa(cluster, &hpa.name, &patch).await
}

/// Puts back the bounds drscript raised, and forgets them.
pub async fn restore(cluster: &Cluster, hpa: &Hpa) -> Result<()> {
    let Some((min, max)) = hpa.raised_from else { return Ok(()) };
    let patch = serde_json::json!({
        "metadata": { "annotations": { RAISED: null } },
        "spec": { "minReplicas": min, "maxReplicas": max },
    });
    patch_hpa(cluster, &hpa.name, &patch).await
}

async fn patch_hpa(cluster: &Cluster, name: &str, patch: &serde_json::Value) -> Result<()> {
    let api = cluster.api::<HorizontalPodAutoscaler>();
    let params = PatchParams { field_manager: Some(FIELD_MANAGER.into()), ..Default::default() };
    api.patch(name, &params, &Patch::Merge(patch)).await.map(|_| ()).map_err(|e| {
        Error::action(
            "scale",
            format!("{} (ns {}) horizontalpodautoscaler/{name}", cluster.env, cluster.namespace),
            e.to_string(),
        )
    })
}

/// Who last wrote `spec.replicas`, from the object's `managedFields`: (manager, time).
pub fn replicas_manager(meta: &ObjectMeta) -> Option<(String, String)> {
    meta.managed_fields
        .iter()
        .flatten()
        .filter(|m| m.fields_v1.as_ref().is_some_and(|f| f.0.get("f:spec").and_then(|s| s.get("f:replicas")).is_some()))
        .max_by_key(|m| m.time.as_ref().map(|t| t.0))
        .map(|m| {
            (
                m.manager.clone().unwrap_or_else(|| "an unnamed manager".into()),
                m.time.as_ref().map(|t| t.0.to_string()).unwrap_or_default(),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn meta(labels: &[(&str, &str)], annotations: &[(&str, &str)]) -> ObjectMeta {
        let map = |pairs: &[(&str, &str)]| {
            Some(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<BTreeMap<_, _>>())
        };
        ObjectMeta { labels: map(labels), annotations: map(annotations), ..Default::default() }
    }

    #[test]
    fn argo_and_flux_owners_are_named_with_the_command_that_pauses_them_and_helm_alone_is_not_gitops() {
        let argo = gitops_of(
            &meta(&[], &[("argocd.argoproj.io/tracking-id", "adeptia:apps/Deployment:adeptia/ac-ac-runtime")]),
            "adeptia",
        )
        .unwrap();
        assert_eq!(argo.owner, "Argo CD application adeptia");
        assert!(argo.pause.starts_with("argocd app set adeptia --sync-policy none"), "{}", argo.pause);
        let flux = gitops_of(
            &meta(
                &[
                    ("kustomize.toolkit.fluxcd.io/name", "apps"),
                    ("kustomize.toolkit.fluxcd.io/namespace", "flux-system"),
                ],
                &[],
            ),
            "adeptia",
        )
        .unwrap();
        assert_eq!(flux.pause, "flux suspend kustomization apps -n flux-system");
        assert_eq!(gitops_of(&meta(&[("app.kubernetes.io/instance", "ac")], &[]), "adeptia"), None);
    }

    #[test]
    fn an_hpa_keeps_its_bounds_except_at_zero() {
        let hpa = Hpa { name: "h".into(), min: 1, max: 1, keda: None, raised_from: None };
        assert_eq!((hpa.keeps(2), hpa.keeps(0), hpa.keeps(1)), (1, 0, 1));
    }
}
