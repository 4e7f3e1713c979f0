//! The fields of a deployment or statefulset that DR cares about, read the same way for both.

use std::collections::BTreeMap;
use std::fmt::Debug;

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{Container, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// What a wait condition and `workload()` look at.
#[derive(Debug, Clone, Default)]
pub struct View {
    pub generation: i64,
    pub observed_generation: i64,
    /// `spec.replicas`.
    pub desired: i32,
    /// `status.replicas`: pods that exist and are not terminating.
    pub replicas: i32,
    pub ready: i32,
    pub available: i32,
    pub selector: String,
    pub containers: Vec<Container>,
    /// A deployment's `Progressing` condition when it is not plainly true
    /// (`Progressing=False ProgressDeadlineExceeded: ...`), for messages.
    pub progress: Option<String>,
    /// Who last wrote `spec.replicas` and when (`managedFields`).
    pub replicas_manager: Option<(String, String)>,
    /// The GitOps controller that owns the object, from its labels and annotations.
    pub gitops: Option<super::controllers::GitOps>,
}

/// A kind that can be scaled and waited for.
pub trait Scalable:
    kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
    + Clone
    + DeserializeOwned
    + Debug
    + Send
    + Sync
    + 'static
{
    fn view(&self) -> View;
}

fn containers(template: &PodTemplateSpec) -> Vec<Container> {
    template.spec.as_ref().map(|s| s.containers.clone()).unwrap_or_default()
}

impl Scalable for Deployment {
    fn view(&self) -> View {
        let status = self.status.clone().unwrap_or_default();
        View {
            generation: self.metadata.generation.unwrap_or(0),
            observed_generation: status.observed_generation.unwrap_or(0),
            desired: self.spec.replicas.unwrap_or(1),
            replicas: status.replicas.unwrap_or(0),
            ready: status.ready_replicas.unwrap_or(0),
            available: status.available_replicas.unwrap_or(0),
            selector: selector_string(&self.spec.selector),
            containers: containers(&self.spec.template),
            replicas_manager: super::controllers::replicas_manager(&self.metadata),
            gitops: super::controllers::gitops_of(
                &self.metadata,
                self.metadata.namespace.as_deref().unwrap_or_default(),
            ),
            progress: status
                .conditions
                .iter()
                .flatten()
                .find(|c| c.type_.as_deref() == Some("Progressing") && c.status.as_deref() != Some("True"))
                .map(|c| {
                    let reason = c.reason.clone().unwrap_or_default();
                    let message = c.message.clone().unwrap_or_default().trim_end_matches('.').to_string();
                    format!("Progressing={} {reason}: {message}", c.status.as_deref().unwrap_or("Unknown"))
                }),
        }
    }
}

impl Scalable for StatefulSet {
    fn view(&self) -> View {
        let status = self.status.clone().unwrap_or_default();
        View {
            generation: self.metadata.generation.unwrap_or(0),
            observed_generation: status.observed_generation.unwrap_or(0),
            desired: self.spec.replicas.unwrap_or(1),
            replicas: status.replicas,
            ready: status.ready_replicas.unwrap_or(0),
            available: status.available_replicas.unwrap_or(0),
            selector: selector_string(&self.spec.selector),
            containers: containers(&self.spec.template),
            replicas_manager: super::controllers::replicas_manager(&self.metadata),
            gitops: super::controllers::gitops_of(
                &self.metadata,
                self.metadata.namespace.as_deref().unwrap_or_default(),
            ),
            progress: None,
        }
    }
}

/// A label selector in the `?labelSelector=` form.
pub fn selector_string(selector: &LabelSelector) -> String {
    let mut parts: Vec<String> = selector.match_labels.iter().flatten().map(|(k, v)| format!("{k}={v}")).collect();
    for e in selector.match_expressions.iter().flatten() {
        let values = e.values.clone().unwrap_or_default().join(",");
        parts.push(match e.operator.as_str() {
            "In" => format!("{} in ({values})", e.key),
            "NotIn" => format!("{} notin ({values})", e.key),
            "Exists" => e.key.clone(),
            _ => format!("!{}", e.key),
        });
    }
    parts.join(",")
}

/// `workload()`'s answer: counts, images (the application version) and environment variables.
#[derive(Debug, Clone, Serialize)]
pub struct WorkloadInfo {
    pub kind: String,
    pub name: String,
    pub namespace: String,
    /// `spec.replicas`.
    pub replicas: i32,
    pub ready: i32,
    pub available: i32,
    pub images: Vec<String>,
    /// Each image's version without the registry it was pulled from (`image_version`): the
    /// same release pulled from two regional registries compares equal.
    pub versions: Vec<String>,
    /// The version of the first image (`4.2.1`), the application version.
    pub version: String,
    /// Environment variables of all containers, as the pods see them: literal `value`s,
    /// `valueFrom` references to a ConfigMap or Secret key and `envFrom` ConfigMaps and Secrets
    /// (with their prefix) resolved by reading those objects; `env` wins over `envFrom`, a later
    /// `envFrom` source over an earlier one, as in the kubelet. A reference that cannot be read
    /// reads `<from secret NAME: ERROR>`; a field reference `<from field>`.
    pub env: BTreeMap<String, String>,
    /// Where each variable that is not a literal came from (`configMap quartz key
    /// QUARTZ_STATUS_ONBOOTUP`, `secret event-env (envFrom)`). A runbook never prints a value
    /// whose source is a Secret (`preflight.rhai` shows `***`).
    pub env_source: BTreeMap<String, String>,
    /// The GitOps controller that owns the object (Argo CD, Flux), with the command that pauses it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gitops: Option<super::controllers::GitOps>,
}

/// A reference in a pod template that the API server must be asked about.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum EnvRef {
    ConfigMap(String),
    Secret(String),
}

/// The ConfigMaps and Secrets the containers' environment refers to.
pub fn env_refs(view: &View) -> Vec<EnvRef> {
    let mut refs = Vec::new();
    for c in &view.containers {
        for var in c.env.iter().flatten() {
            if let Some(from) = &var.value_from {
                if let Some(s) = &from.secret_key_ref {
                    refs.push(EnvRef::Secret(s.name.clone()));
                }
                if let Some(m) = &from.config_map_key_ref {
                    refs.push(EnvRef::ConfigMap(m.name.clone()));
                }
            }
        }
        for source in c.env_from.iter().flatten() {
            if let Some(s) = &source.secret_ref {
                refs.push(EnvRef::Secret(s.name.clone()));
            }
            if let Some(m) = &source.config_map_ref {
                refs.push(EnvRef::ConfigMap(m.name.clone()));
            }
        }
    }
    refs.sort();
    refs.dedup();
    refs
}

/// The data of the referenced objects (string values; a Secret's decoded), or why it could not
/// be read.
pub type EnvObjects = BTreeMap<EnvRef, Result<BTreeMap<String, String>, String>>;

/// Resolves the containers' environment against `objects`: (values, sources).
fn resolve_env(view: &View, objects: &EnvObjects) -> (BTreeMap<String, String>, BTreeMap<String, String>) {
    let mut env = BTreeMap::new();
    let mut sources = BTreeMap::new();
    let lookup = |r: &EnvRef, key: Option<&str>| -> Result<Option<String>, String> {
        match objects.get(r) {
            Some(Ok(data)) => Ok(key.and_then(|k| data.get(k).cloned())),
            Some(Err(e)) => Err(e.clone()),
            None => Err("not read".to_string()),
        }
    };
    let register = |name: &str, value: &str, from_secret: bool| {
        // A short value from a Secret (`pause`) would blank every log line it appears in: only
        // credentials-looking names and long values are masked everywhere; drscript's own
        // messages never print a Secret's value (`shown`).
        if looks_secret(name) || (from_secret && value.len() >= 8) {
            drscript_base::redact::register(value);
        }
    };
    for c in &view.containers {
        // envFrom first: `env` entries override them.
        for source in c.env_from.iter().flatten() {
            let prefix = source.prefix.clone().unwrap_or_default();
            let (r, what) = match (&source.config_map_ref, &source.secret_ref) {
                (Some(m), _) => (EnvRef::ConfigMap(m.name.clone()), format!("configMap {} (envFrom)", m.name)),
                (_, Some(s)) => (EnvRef::Secret(s.name.clone()), format!("secret {} (envFrom)", s.name)),
                _ => continue,
            };
            if let Some(Ok(data)) = objects.get(&r) {
                for (k, v) in data {
                    let name = format!("{prefix}{k}");
                    register(&name, v, matches!(r, EnvRef::Secret(_)));
                    env.insert(name.clone(), v.clone());
                    sources.insert(name, what.clone());
                }
            }
        }
        for var in c.env.iter().flatten() {
            let (value, source) = match (&var.value, &var.value_from) {
                (Some(v), _) => {
                    register(&var.name, v, false);
                    (v.clone(), None)
                }
                (None, Some(from)) => {
                    let keyed = match (&from.config_map_key_ref, &from.secret_key_ref) {
                        (Some(m), _) => Some((EnvRef::ConfigMap(m.name.clone()), "configMap", &m.name, &m.key)),
                        (_, Some(s)) => Some((EnvRef::Secret(s.name.clone()), "secret", &s.name, &s.key)),
                        _ => None,
                    };
                    match keyed {
                        Some((r, kind, object, key)) => {
                            let source = format!("{kind} {object} key {key}");
                            match lookup(&r, Some(key)) {
                                Ok(Some(v)) => {
                                    register(&var.name, &v, kind == "secret");
                                    (v, Some(source))
                                }
                                Ok(None) => (format!("<from {kind} {object}: no key {key}>"), Some(source)),
                                Err(e) => (format!("<from {kind} {object}: {e}>"), Some(source)),
                            }
                        }
                        None => ("<from field>".to_string(), Some("a field of the pod".to_string())),
                    }
                }
                (None, None) => (String::new(), None),
            };
            env.insert(var.name.clone(), value);
            match source {
                Some(s) => sources.insert(var.name.clone(), s),
                None => sources.remove(&var.name),
            };
        }
    }
    (env, sources)
}

/// Names whose values are credentials: registered for redaction when read.
fn looks_secret(name: &str) -> bool {
    let n = name.to_ascii_uppercase();
    ["PASSWORD", "SECRET", "TOKEN", "CREDENTIAL", "_KEY", "APIKEY"].iter().any(|s| n.contains(s))
}

/// What identifies an image's build wherever it was pulled from: its digest (`sha256:…`) when it
/// is pinned by one, else its tag (`4.2.1`), else `latest` (what a registry serves for no tag).
/// The registry host and the repository path are left out.
pub fn image_version(image: &str) -> String {
    if let Some((_, digest)) = image.split_once('@') {
        return digest.to_string();
    }
    let last = image.rsplit('/').next().unwrap_or(image);
    last.split_once(':').map_or_else(|| "latest".to_string(), |(_, tag)| tag.to_string())
}

pub fn info(kind: &str, name: &str, namespace: &str, view: &View, objects: &EnvObjects) -> WorkloadInfo {
    let images: Vec<String> = view.containers.iter().filter_map(|c| c.image.clone()).collect();
    let versions: Vec<String> = images.iter().map(|i| image_version(i)).collect();
    let version = versions.first().cloned().unwrap_or_default();
    let (env, env_source) = resolve_env(view, objects);
    WorkloadInfo {
        kind: kind.to_string(),
        name: name.to_string(),
        namespace: namespace.to_string(),
        replicas: view.desired,
        ready: view.ready,
        available: view.available,
        images,
        versions,
        version,
        env,
        env_source,
        gitops: view.gitops.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{
        ConfigMapEnvSource, ConfigMapKeySelector, EnvFromSource, EnvVar, EnvVarSource, SecretEnvSource,
    };

    #[test]
    fn the_environment_is_resolved_through_config_maps_and_secrets_as_the_kubelet_does() {
        let var = |name: &str, value: Option<&str>, from: Option<EnvVarSource>| EnvVar {
            name: name.into(),
            value: value.map(str::to_string),
            value_from: from,
        };
        let container = Container {
            name: "event".into(),
            env_from: Some(vec![
                EnvFromSource {
                    config_map_ref: Some(ConfigMapEnvSource { name: "defaults".into(), ..Default::default() }),
                    ..Default::default()
                },
                EnvFromSource {
                    prefix: Some("DB_".into()),
                    secret_ref: Some(SecretEnvSource { name: "db".into(), ..Default::default() }),
                    ..Default::default()
                },
            ]),
            env: Some(vec![
                var(
                    "QUARTZ_STATUS_ONBOOTUP",
                    None,
                    Some(EnvVarSource {
                        config_map_key_ref: Some(ConfigMapKeySelector {
                            name: "quartz".into(),
                            key: "boot".into(),
                            ..Default::default()
                        }),
                        ..Default::default()
                    }),
                ),
                var("MODE", Some("literal"), None),
            ]),
            ..Default::default()
        };
        let view = View { containers: vec![container], ..Default::default() };
        assert_eq!(
            env_refs(&view),
            [EnvRef::ConfigMap("defaults".into()), EnvRef::ConfigMap("quartz".into()), EnvRef::Secret("db".into())]
        );
        let data = |pairs: &[(&str, &str)]| Ok(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect());
        let objects: EnvObjects = [
            (EnvRef::ConfigMap("defaults".into()), data(&[("MODE", "from-envfrom"), ("REGION", "weu")])),
            (EnvRef::ConfigMap("quartz".into()), data(&[("boot", "pause")])),
            (EnvRef::Secret("db".into()), data(&[("PASSWORD", "S3cretDbPassw0rd")])),
        ]
        .into_iter()
        .collect();
        let (env, sources) = resolve_env(&view, &objects);
        assert_eq!(env["QUARTZ_STATUS_ONBOOTUP"], "pause");
        assert_eq!(sources["QUARTZ_STATUS_ONBOOTUP"], "configMap quartz key boot");
        assert_eq!(env["MODE"], "literal", "env wins over envFrom");
        assert!(!sources.contains_key("MODE"));
        assert_eq!(env["REGION"], "weu");
        assert_eq!(sources["DB_PASSWORD"], "secret db (envFrom)");
        assert_eq!(drscript_base::redact::redacted("pw S3cretDbPassw0rd"), "pw ***", "a secret's value is masked");
        // A reference that cannot be read says why instead of passing for a value.
        let forbidden: EnvObjects =
            [(EnvRef::ConfigMap("quartz".into()), Err("403 Forbidden".to_string()))].into_iter().collect();
        let (env, _) = resolve_env(&view, &forbidden);
        assert_eq!(env["QUARTZ_STATUS_ONBOOTUP"], "<from configMap quartz: 403 Forbidden>");
    }

    #[test]
    fn an_image_version_is_its_digest_or_tag_whatever_the_registry() {
        assert_eq!(image_version("westeurope.azurecr.io/adeptia/runtime:4.2.1"), "4.2.1");
        assert_eq!(image_version("northeurope.azurecr.io/adeptia/runtime:4.2.1"), "4.2.1");
        assert_eq!(image_version("registry:5000/adeptia/runtime:4.2.1"), "4.2.1");
        assert_eq!(image_version("registry:5000/adeptia/runtime"), "latest");
        assert_eq!(image_version("adeptia/runtime:4.2.1@sha256:abc"), "sha256:abc");
    }
}
