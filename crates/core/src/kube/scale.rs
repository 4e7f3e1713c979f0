//! `scale`, `replicas` and `workload`: through the scale subresource, with optimistic
//! concurrency (read the Scale, replace it with its resourceVersion, re-read on conflict), the
//! `current` precondition, and no write at all when the workload is already at the target.

use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::autoscaling::v1::{Scale, ScaleSpec};
use kube::api::PostParams;
use serde::Serialize;

use super::cluster::Cluster;
use super::failure::{CallError, retrying};
use super::kind::Kind;
use super::observed::{Scalable, View, WorkloadInfo, info};
use super::wait;
use drscript_base::error::{Error, Result};

/// Options of `scale(env, kind, name, replicas, opts)`.
#[derive(Debug, Clone)]
pub struct ScaleOptions {
    /// Wait until the change is real (default true).
    pub wait: bool,
    /// How long to wait (default 5 minutes).
    pub timeout: Duration,
    /// Precondition: the current replica count must be this (`kubectl scale --current-replicas`).
    pub current: Option<i32>,
    /// When an HPA's bounds exclude the count: raise them (and restore them when the workload
    /// is next scaled to 0) instead of scaling to the count the HPA keeps.
    pub raise_hpa: bool,
}

impl Default for ScaleOptions {
    fn default() -> Self {
        ScaleOptions { wait: true, timeout: Duration::from_secs(300), current: None, raise_hpa: false }
    }
}

/// What a scale did.
#[derive(Debug, Clone, Serialize)]
pub struct ScaleReport {
    pub target: String,
    pub from: i32,
    pub to: i32,
    /// False when the workload was already at the target (nothing written).
    pub changed: bool,
    /// Whether the call waited for the pods.
    pub waited: bool,
    /// Ready replicas at the end (as far as observed).
    pub ready: i32,
    pub duration_ms: u64,
    /// The count asked for, when an HPA keeps another one (`to` is what it keeps).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub asked: Option<i32>,
    /// What the HPA of the workload made of the scale, in words.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hpa: Option<String>,
}

const CONFLICT_ATTEMPTS: u32 = 5;

/// Checks a replica count from a script: an integer, not negative.
pub fn check_replicas(replicas: i64) -> Result<i32> {
    if replicas < 0 {
        return Err(Error::Usage(format!("replicas must be 0 or more, got {replicas}")));
    }
    i32::try_from(replicas).map_err(|_| Error::Usage(format!("replicas {replicas} is too large")))
}

pub async fn scale(
    cluster: &Cluster,
    kind: Kind,
    name: &str,
    replicas: i32,
    opts: &ScaleOptions,
) -> Result<ScaleReport> {
    match kind {
        Kind::Deployment => scale_kind::<Deployment>(cluster, kind, name, replicas, opts).await,
        Kind::StatefulSet => scale_kind::<StatefulSet>(cluster, kind, name, replicas, opts).await,
    }
}

async fn scale_kind<K: Scalable>(
    cluster: &Cluster,
    kind: Kind,
    name: &str,
    replicas: i32,
    opts: &ScaleOptions,
) -> Result<ScaleReport> {
    let started = Instant::now();
    let deadline = tokio::time::Instant::now() + opts.timeout;
    let target = cluster.target(kind, name);
    if replicas < 0 {
        return Err(Error::Usage(format!("scale {target}: replicas must be 0 or more, got {replicas}")));
    }
    // An HPA keeps the workload within its bounds: scale to what it keeps, or raise its bounds
    // when asked; at 0 it leaves the workload alone (and bounds drscript raised are put back).
    // (Asked before a scale up; after a scale to 0, which an HPA leaves alone, see below.)
    let hpa = if replicas > 0 { hpa_of(cluster, kind, name, &target).await } else { None };
    let (asked, replicas, mut hpa_note) = match &hpa {
        Some(h) if h.keeps(replicas) != replicas && opts.raise_hpa => {
            super::controllers::raise(cluster, h, replicas).await?;
            let note = format!(
                "HPA {}: bounds {}..{} raised to keep {replicas} (put back when {name} is next scaled to 0)",
                h.name, h.min, h.max
            );
            tracing::warn!("{target}: {note}");
            (replicas, replicas, Some(note))
        }
        Some(h) if h.keeps(replicas) != replicas => {
            let keeps = h.keeps(replicas);
            let note = format!(
                "HPA {} keeps {name} between {} and {}: scaled to {keeps} instead of {replicas} (the scale option raise_hpa, or --var raise_hpa=true in the runbooks, raises its bounds)",
                h.name, h.min, h.max
            );
            tracing::warn!("{target}: {note}");
            (replicas, keeps, Some(note))
        }
        _ => (replicas, replicas, None),
    };
    let api = cluster.api::<K>();
    let write = async {
        let mut conflicts = 0;
        loop {
            let current: Scale = retrying("scale", cluster, kind, name, || api.get_scale(name))
                .await
                .map_err(|e| e.into_error("scale", target.clone()))?;
            let from = current.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0);
            if let Some(expected) = opts.current
                && expected != from
            {
                return Err(Error::action(
                    "scale",
                    &target,
                    format!("precondition failed: expected {expected} current replicas, found {from}; nothing changed"),
                ));
            }
            if from == replicas {
                return Ok((from, false));
            }
            let desired = Scale {
                metadata: current.metadata.clone(),
                spec: Some(ScaleSpec { replicas: Some(replicas) }),
                status: None,
            };
            let post =
                PostParams { field_manager: Some(super::controllers::FIELD_MANAGER.into()), ..Default::default() };
            match retrying("scale", cluster, kind, name, || api.replace_scale(name, &post, &desired)).await {
                Ok(_) => return Ok((from, true)),
                Err(CallError::Conflict) if conflicts + 1 < CONFLICT_ATTEMPTS => {
                    conflicts += 1;
                    tracing::debug!("scale {target}: conflict, re-reading (attempt {conflicts})");
                }
                Err(e) => return Err(e.into_error("scale", target.clone())),
            }
        }
    };
    // A server that accepts connections but never answers must not outlive the timeout either.
    let (from, changed) = tokio::time::timeout_at(deadline, write).await.map_err(|_| {
        Error::action(
            "scale",
            &target,
            format!(
                "timed out after {} before the scale was written: the API server {} did not answer",
                wait::human(opts.timeout),
                cluster.server
            ),
        )
    })??;
    let mut ready = -1;
    if opts.wait {
        let wait = async {
            if replicas == 0 {
                let view = read_view::<K>(cluster, kind, name, "scale").await?;
                wait::until_gone(cluster, kind, name, &view.selector, deadline, opts.timeout).await?;
                Ok(0)
            } else {
                Ok(wait::until_ready::<K>(cluster, kind, name, replicas, deadline, opts.timeout).await?.ready)
            }
        };
        // A scale undone while it is awaited (a GitOps controller, a person) ends the wait at
        // once, naming who undid it, instead of at the timeout. `until_ready` watches the
        // workload itself and sees that; the wait for a scale to 0 watches pods, so only then is
        // the workload read beside it.
        let undone = async {
            if replicas > 0 {
                return std::future::pending().await;
            }
            let mut pause = Duration::from_millis(200);
            loop {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(2));
                if let Ok(view) = read_view::<K>(cluster, kind, name, "scale").await
                    && view.desired != replicas
                {
                    return Err::<i32, Error>(Error::action("scale", &target, wait::changed_back(&view, replicas)));
                }
            }
        };
        ready = tokio::select! {
            r = wait => r?,
            r = undone => r?,
        };
    }
    if replicas == 0
        && let Some(h) = hpa_of(cluster, kind, name, &target).await.filter(|h| h.raised_from.is_some())
    {
        super::controllers::restore(cluster, &h).await?;
        let (min, max) = h.raised_from.unwrap_or_default();
        hpa_note = Some(format!("HPA {}: bounds {}..{} put back to {min}..{max}", h.name, h.min, h.max));
    }
    Ok(ScaleReport {
        target,
        from,
        to: replicas,
        changed,
        waited: opts.wait,
        ready,
        duration_ms: started.elapsed().as_millis() as u64,
        asked: (asked != replicas).then_some(asked),
        hpa: hpa_note,
    })
}

async fn read_view<K: Scalable>(cluster: &Cluster, kind: Kind, name: &str, primitive: &str) -> Result<View> {
    let api = cluster.api::<K>();
    let object: K = retrying(primitive, cluster, kind, name, || api.get(name))
        .await
        .map_err(|e| e.into_error(primitive, cluster.target(kind, name)))?;
    Ok(object.view())
}

/// `spec.replicas` of the workload, read through the scale subresource.
pub async fn replicas(cluster: &Cluster, kind: Kind, name: &str) -> Result<i32> {
    let scale = match kind {
        Kind::Deployment => {
            let api = cluster.api::<Deployment>();
            retrying("replicas", cluster, kind, name, || api.get_scale(name)).await
        }
        Kind::StatefulSet => {
            let api = cluster.api::<StatefulSet>();
            retrying("replicas", cluster, kind, name, || api.get_scale(name)).await
        }
    }
    .map_err(|e| e.into_error("replicas", cluster.target(kind, name)))?;
    Ok(scale.spec.and_then(|s| s.replicas).unwrap_or(0))
}

/// Replicas, ready replicas, images and environment variables of the workload.
pub async fn workload(cluster: &Cluster, kind: Kind, name: &str) -> Result<WorkloadInfo> {
    let view = match kind {
        Kind::Deployment => read_view::<Deployment>(cluster, kind, name, "workload").await?,
        Kind::StatefulSet => read_view::<StatefulSet>(cluster, kind, name, "workload").await?,
    };
    let objects = env_objects(cluster, &view).await;
    Ok(info(kind.name(), name, &cluster.namespace, &view, &objects))
}

/// Reads the ConfigMaps and Secrets the workload's environment refers to, at the same time;
/// one that cannot be read is kept with its error (the variable then says why).
async fn env_objects(cluster: &Cluster, view: &super::observed::View) -> super::observed::EnvObjects {
    use super::observed::EnvRef;
    use k8s_openapi::api::core::v1::{ConfigMap, Secret};
    let reads = super::observed::env_refs(view).into_iter().map(|r| async move {
        let data = match &r {
            EnvRef::ConfigMap(name) => cluster
                .api::<ConfigMap>()
                .get(name)
                .await
                .map(|m| m.data.unwrap_or_default())
                .map_err(|e| short_error(&e)),
            EnvRef::Secret(name) => cluster
                .api::<Secret>()
                .get(name)
                .await
                .map(|s| {
                    s.data
                        .unwrap_or_default()
                        .into_iter()
                        .map(|(k, v)| (k, String::from_utf8_lossy(&v.0).into_owned()))
                        .collect()
                })
                .map_err(|e| short_error(&e)),
        };
        (r, data)
    });
    futures::future::join_all(reads).await.into_iter().collect()
}

/// The HPA that targets the workload; none when the HPAs cannot be listed (the scale then
/// goes as asked, and its wait names whoever undoes it).
async fn hpa_of(cluster: &Cluster, kind: Kind, name: &str, target: &str) -> Option<super::controllers::Hpa> {
    match super::controllers::hpas(cluster).await {
        Ok(list) => super::controllers::hpa_for(&list, kind, name),
        Err(e) => {
            tracing::debug!("{target}: cannot list the HPAs ({e}); scaling as asked");
            None
        }
    }
}

fn short_error(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(status) => format!("{} {}", status.code, status.reason),
        other => drscript_base::redact::redacted(other.to_string()),
    }
}
