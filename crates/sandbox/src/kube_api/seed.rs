//! The Adeptia Connect objects of a Helm release, as the document describes them: the runtime,
//! listener, web gateway, event service (with `QUARTZ_STATUS_ONBOOTUP`), portal, configuration
//! and license deployments, and the RabbitMQ statefulset, each image tagged with the
//! application version.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec, StatefulSet, StatefulSetSpec};
use k8s_openapi::api::core::v1::{Container, ContainerPort, EnvVar, PodSpec, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::store::Res;

/// What one environment's cluster holds at the start.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Seed {
    pub namespace: String,
    pub release: String,
    /// The application version: the tag of every image.
    pub version: String,
    /// Replicas of the runtime and listener deployments (0 on a standby DR).
    pub runtime: i32,
    pub listener: i32,
    pub rabbitmq: i32,
    /// `QUARTZ_STATUS_ONBOOTUP` of the event service: `run` or `pause`.
    pub quartz_on_boot: String,
    /// Workload names by component where the customer's differ from the chart's
    /// `RELEASE-ac-COMPONENT`.
    #[serde(default)]
    pub names: BTreeMap<String, String>,
    /// The customer's own components beside Adeptia's (a web runner): at their counts on the
    /// active side, at 0 on a standby.
    #[serde(default)]
    pub extra: Vec<ExtraWorkload>,
}

/// How Adeptia's chart names the workload of `component` in `release`: `RELEASE-ac-COMPONENT`.
pub fn chart_name(release: &str, component: &str) -> String {
    format!("{release}-ac-{component}")
}

/// A component of the customer's own that a runbook scales.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExtraWorkload {
    pub component: String,
    /// `deployment` or `statefulset`.
    pub kind: String,
    pub replicas: i32,
}

impl Seed {
    pub fn active(namespace: &str, release: &str, version: &str) -> Seed {
        Seed {
            namespace: namespace.to_string(),
            release: release.to_string(),
            version: version.to_string(),
            runtime: 2,
            listener: 1,
            rabbitmq: 1,
            quartz_on_boot: "run".to_string(),
            names: BTreeMap::new(),
            extra: Vec::new(),
        }
    }

    /// The same seed with `rabbitmq` replicas.
    pub fn with_rabbitmq(mut self, rabbitmq: i32) -> Seed {
        self.rabbitmq = rabbitmq;
        self
    }

    /// The DR model's standby as its prerequisites deploy it: the listener at 0 and the
    /// scheduler paused on boot (`QUARTZ_STATUS_ONBOOTUP=pause`); the runtime and RabbitMQ at
    /// their normal counts.
    pub fn standby(namespace: &str, release: &str, version: &str) -> Seed {
        Seed { listener: 0, quartz_on_boot: "pause".to_string(), ..Seed::active(namespace, release, version) }
    }

    /// The workload of `component`: the customer's name, else the chart's.
    pub fn name_of(&self, component: &str) -> String {
        self.names.get(component).cloned().unwrap_or_else(|| chart_name(&self.release, component))
    }

    pub fn objects(&self) -> Vec<(Res, Value)> {
        let env = |pairs: &[(&str, &str)]| -> Vec<EnvVar> {
            pairs
                .iter()
                .map(|(k, v)| EnvVar { name: k.to_string(), value: Some(v.to_string()), ..Default::default() })
                .collect()
        };
        let common = [("SPRING_PROFILES_ACTIVE", "kubernetes"), ("JAVA_OPTS", "-Xms512m -Xmx2g")];
        let mut out = Vec::new();
        let deployments: [(&str, i32, u16, Vec<EnvVar>); 7] = [
            ("webapp-gateway", 1, 8080, env(&common)),
            ("portal", 1, 8080, env(&common)),
            ("configuration", 1, 8080, env(&common)),
            ("license", 1, 8080, env(&common)),
            ("event", 1, 8080, env(&[common[0], common[1], ("QUARTZ_STATUS_ONBOOTUP", self.quartz_on_boot.as_str())])),
            ("runtime", self.runtime, 8080, env(&[common[0], common[1], ("RUNTIME_MAX_THREADS", "40")])),
            ("listener", self.listener, 9091, env(&common)),
        ];
        let extra_deployments = self.extra.iter().filter(|x| x.kind == "deployment");
        let extra_deployments = extra_deployments.map(|x| (x.component.as_str(), x.replicas, 8080, env(&common)));
        for (component, replicas, port, env) in deployments.into_iter().chain(extra_deployments) {
            let (meta, selector, template) = self.parts(component, port, env);
            let d = Deployment {
                metadata: meta,
                spec: DeploymentSpec { replicas: Some(replicas), selector, template, ..Default::default() },
                status: None,
            };
            out.push((Res::Deployment, serde_json::to_value(d).unwrap_or_default()));
        }
        let rabbitmq = (
            "rabbitmq",
            self.rabbitmq,
            5672,
            env(&[("RABBITMQ_DEFAULT_VHOST", "/"), ("RABBITMQ_MNESIA_BASE", "/bitnami/rabbitmq/mnesia")]),
        );
        let extra_sets = self.extra.iter().filter(|x| x.kind == "statefulset");
        for (component, replicas, port, env) in
            std::iter::once(rabbitmq).chain(extra_sets.map(|x| (x.component.as_str(), x.replicas, 8080, env(&common))))
        {
            let (meta, selector, template) = self.parts(component, port, env);
            let s = StatefulSet {
                metadata: meta,
                spec: StatefulSetSpec {
                    replicas: Some(replicas),
                    selector,
                    template,
                    service_name: Some(format!("{}-headless", self.name_of(component))),
                    pod_management_policy: Some("Parallel".to_string()),
                    ..Default::default()
                },
                status: None,
            };
            out.push((Res::StatefulSet, serde_json::to_value(s).unwrap_or_default()));
        }
        out
    }

    fn parts(&self, component: &str, port: u16, env: Vec<EnvVar>) -> (ObjectMeta, LabelSelector, PodTemplateSpec) {
        let name = self.name_of(component);
        let labels: BTreeMap<String, String> = [
            ("app.kubernetes.io/name".to_string(), format!("ac-{component}")),
            ("app.kubernetes.io/instance".to_string(), self.release.clone()),
        ]
        .into();
        let mut all_labels = labels.clone();
        all_labels.insert("app.kubernetes.io/version".to_string(), self.version.clone());
        all_labels.insert("app.kubernetes.io/managed-by".to_string(), "Helm".to_string());
        let image = if component == "rabbitmq" {
            "docker.io/bitnami/rabbitmq:3.12.13".to_string()
        } else {
            format!("adeptia/ac-{component}:{}", self.version)
        };
        let meta = ObjectMeta {
            name: Some(name),
            namespace: Some(self.namespace.clone()),
            labels: Some(all_labels.clone()),
            annotations: Some([("meta.helm.sh/release-name".to_string(), self.release.clone())].into()),
            ..Default::default()
        };
        let selector = LabelSelector { match_labels: Some(labels), ..Default::default() };
        let template = PodTemplateSpec {
            metadata: Some(ObjectMeta { labels: Some(all_labels), ..Default::default() }),
            spec: Some(PodSpec {
                containers: vec![Container {
                    name: format!("ac-{component}"),
                    image: Some(image),
                    env: Some(env),
                    ports: Some(vec![ContainerPort { container_port: i32::from(port), ..Default::default() }]),
                    ..Default::default()
                }],
                ..Default::default()
            }),
        };
        (meta, selector, template)
    }
}
