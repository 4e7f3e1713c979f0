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
    /// Environment variables of all containers; a value taken from a secret or config map reads
    /// `<from secret NAME>` / `<from configMap NAME>`.
    pub env: BTreeMap<String, String>,
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

pub fn info(kind: &str, name: &str, namespace: &str, view: &View) -> WorkloadInfo {
    let images: Vec<String> = view.containers.iter().filter_map(|c| c.image.clone()).collect();
    let versions: Vec<String> = images.iter().map(|i| image_version(i)).collect();
    let version = versions.first().cloned().unwrap_or_default();
    let mut env = BTreeMap::new();
    for var in view.containers.iter().flat_map(|c| c.env.iter().flatten()) {
        let value = match (&var.value, &var.value_from) {
            (Some(v), _) => {
                if looks_secret(&var.name) {
                    drscript_base::redact::register(v);
                }
                v.clone()
            }
            (None, Some(from)) => match (&from.secret_key_ref, &from.config_map_key_ref) {
                (Some(s), _) => format!("<from secret {}>", s.name),
                (_, Some(c)) => format!("<from configMap {}>", c.name),
                _ => "<from field>".to_string(),
            },
            (None, None) => String::new(),
        };
        env.insert(var.name.clone(), value);
    }
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
    }
}

#[cfg(test)]
mod tests {
    use super::image_version;

    #[test]
    fn an_image_version_is_its_digest_or_tag_whatever_the_registry() {
        assert_eq!(image_version("westeurope.azurecr.io/adeptia/runtime:4.2.1"), "4.2.1");
        assert_eq!(image_version("northeurope.azurecr.io/adeptia/runtime:4.2.1"), "4.2.1");
        assert_eq!(image_version("registry:5000/adeptia/runtime:4.2.1"), "4.2.1");
        assert_eq!(image_version("registry:5000/adeptia/runtime"), "latest");
        assert_eq!(image_version("adeptia/runtime:4.2.1@sha256:abc"), "sha256:abc");
    }
}
