//! A connection to one environment's cluster: kubeconfig (the environment's `kubeconfig` or the
//! standard search), its `kube_context` (or the current context), and its namespace. One run
//! holds one `Cluster` per environment, so PROD and DR are talked to at once.

use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client};

use super::kind::Kind;
use crate::config::Environment;
use drscript_base::error::{Error, Result};
use drscript_base::redact::redacted;

#[derive(Clone)]
pub struct Cluster {
    /// The environment's name (`prod`).
    pub env: String,
    /// The context used, for messages.
    pub context: String,
    pub namespace: String,
    /// Where the kubeconfig came from, for messages.
    pub kubeconfig: String,
    /// The API server URL, for messages.
    pub server: String,
    client: Client,
}

/// `prod (ctx prod-aks, ns adeptia) deployment/ac-ac-runtime`: how every action and error names
/// its object.
pub fn describe_target(env: &Environment, kind: Kind, name: &str) -> String {
    let ctx = env.kube_context.as_deref().unwrap_or("current context");
    format!("{} (ctx {ctx}, ns {}) {kind}/{name}", env.name, env.namespace)
}

impl Cluster {
    /// Loads the kubeconfig and builds a client; nothing is sent to the cluster yet.
    pub async fn connect(env: &Environment) -> Result<Cluster> {
        let fail = |message: String| {
            Error::action(
                "kube",
                format!("{} (ctx {})", env.name, env.kube_context.as_deref().unwrap_or("current context")),
                redacted(message),
            )
        };
        let (kubeconfig, source) = match &env.kubeconfig {
            Some(path) => (
                Kubeconfig::read_from(path)
                    .map_err(|e| fail(format!("cannot read kubeconfig {}: {e}", path.display())))?,
                path.display().to_string(),
            ),
            None => (
                Kubeconfig::read()
                    .map_err(|e| fail(format!("cannot load a kubeconfig ($KUBECONFIG or ~/.kube/config): {e}")))?,
                "$KUBECONFIG or ~/.kube/config".to_string(),
            ),
        };
        let context = match &env.kube_context {
            Some(c) => {
                if !kubeconfig.contexts.iter().any(|nc| &nc.name == c) {
                    let known: Vec<&str> = kubeconfig.contexts.iter().map(|c| c.name.as_str()).collect();
                    return Err(fail(format!(
                        "context `{c}` is not in kubeconfig {source} (known: {})",
                        known.join(", ")
                    )));
                }
                c.clone()
            }
            None => kubeconfig
                .current_context
                .clone()
                .ok_or_else(|| fail(format!("kubeconfig {source} has no current-context; set kube_context")))?,
        };
        let options = KubeConfigOptions { context: Some(context.clone()), ..Default::default() };
        let mut config = kube::Config::from_custom_kubeconfig(kubeconfig, &options)
            .await
            .map_err(|e| fail(format!("kubeconfig {source}, context `{context}`: {e}")))?;
        // A request that hangs must not eat the whole scale timeout; watches are long polls with
        // a shorter server-side timeout (`wait::WATCH_SECONDS`), so they stay within this one.
        config.connect_timeout = Some(std::time::Duration::from_secs(10));
        config.read_timeout = Some(std::time::Duration::from_secs(60));
        // kube-rs retries 429/503/504 by itself (up to 15 times, minutes in all); under
        // `failure::retrying` that stacks into a five-minute wait for one call to a busy server.
        // One retry budget, ours, which also counts and reports the attempts.
        config.default_retry = false;
        let server = config.cluster_url.to_string();
        let client = Client::try_from(config).map_err(|e| fail(format!("cannot build a client for {server}: {e}")))?;
        Ok(Cluster {
            env: env.name.clone(),
            context,
            namespace: env.namespace.clone(),
            kubeconfig: source,
            server,
            client,
        })
    }

    pub fn api<K>(&self) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
        <K as kube::Resource>::DynamicType: Default,
    {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    /// What this identity may not do of what a switch does here, asked the API server with a
    /// `SelfSubjectAccessReview` per right (`kubectl auth can-i update deployments/scale`):
    /// `update` on `deployments/scale` and `statefulsets/scale` (a scale is a PUT of the scale
    /// subresource). Empty when everything is allowed, else one line naming what is not.
    pub async fn missing_scale_rights(&self) -> Result<Vec<String>> {
        use k8s_openapi::api::authorization::v1::{
            ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
        };
        let api: Api<SelfSubjectAccessReview> = Api::all(self.client.clone());
        let mut missing = Vec::new();
        for resource in ["deployments", "statefulsets"] {
            let review = SelfSubjectAccessReview {
                spec: SelfSubjectAccessReviewSpec {
                    resource_attributes: Some(ResourceAttributes {
                        group: Some("apps".into()),
                        resource: Some(resource.into()),
                        subresource: Some("scale".into()),
                        verb: Some("update".into()),
                        namespace: Some(self.namespace.clone()),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
                ..Default::default()
            };
            let answer = api.create(&kube::api::PostParams::default(), &review).await.map_err(|e| {
                Error::action("kube", format!("{} (ctx {})", self.env, self.context), redacted(e.to_string()))
            })?;
            if !answer.status.as_ref().is_some_and(|s| s.allowed) {
                let why = answer.status.and_then(|s| s.reason).filter(|r| !r.is_empty());
                missing.push((format!("{resource}/scale"), why));
            }
        }
        // `update deployments/scale, statefulsets/scale (RBAC: ...)`: one reason said once.
        let mut reasons: Vec<&str> = missing.iter().filter_map(|(_, r)| r.as_deref()).collect();
        reasons.dedup();
        let resources: Vec<&str> = missing.iter().map(|(r, _)| r.as_str()).collect();
        Ok(if missing.is_empty() {
            Vec::new()
        } else {
            vec![format!(
                "update {}{}",
                resources.join(", "),
                if reasons.is_empty() { String::new() } else { format!(" ({})", reasons.join("; ")) }
            )]
        })
    }

    /// `prod (ctx prod, ns adeptia) deployment/ac-ac-runtime`.
    pub fn target(&self, kind: Kind, name: &str) -> String {
        format!("{} (ctx {}, ns {}) {kind}/{name}", self.env, self.context, self.namespace)
    }
}
