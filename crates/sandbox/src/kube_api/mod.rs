//! A Kubernetes API server emulation over real HTTP/JSON on 127.0.0.1: discovery, deployments,
//! statefulsets, their scale subresource, pods that take a simulated time to start and to
//! terminate, the read-only replicasets and events the controllers write, and config maps,
//! secrets and HorizontalPodAutoscalers (`autoscaling/v2`, and `v1` by conversion) that clients
//! create, replace, patch and delete. Enough of the real protocol for kubectl, the Python client
//! and kube-rs (paged lists, JSON-lines watches from a resourceVersion, merge/strategic/JSON
//! patches, optimistic concurrency, server-side dry run, `managedFields` of Update operations),
//! refusing what the API server refuses (malformed selectors, immutable selectors, a name that
//! differs from the URL, bad continue tokens, invalid HPAs and secrets). Served over HTTPS with a
//! private CA and bearer tokens (an admin whose token rotates through an `exec` credential, a
//! read-only identity with the `view` role: 403 on writes and on secrets) or, as an option, over
//! plain HTTP. Besides the workload controllers, an HPA controller ([`hpa`]) keeps HPA targets in
//! their bounds, and a GitOps controller ([`gitops`], Argo CD with self-heal) can be started to
//! revert replica changes. Deliberately no persistence, admission webhooks or server-side apply.
//! docs/sandbox-kubernetes.md lists the rest.

mod auth;
mod controller;
mod discovery;
mod events;
mod field_selector;
pub mod gitops;
pub mod hpa;
mod managed;
mod objects;
mod paging;
mod patch;
mod protobuf;
mod rollout;
pub mod seed;
mod selector;
mod server;
mod store;
mod stuck;
mod table;
mod tls;
mod validate;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

pub use auth::{Identity, Rotation};
pub use controller::{Delays, Jitter};
pub use hpa::HpaSeed;
pub use seed::Seed;
pub use store::Res;
pub use stuck::{Stuck, StuckWorkload};
pub use tls::{SandboxCa, ServerTls, TlsPeer};

use controller::Controller;
use drscript_base::error::{Error, Result};
use server::Api;
use store::Store;

/// How a server authenticates and encrypts (`KubeApiServer::start_secure`).
#[derive(Clone, Default)]
pub struct Security {
    /// HTTPS with this CA and certificate; plain HTTP without.
    pub tls: Option<ServerTls>,
    /// A fixed admin token.
    pub admin_token: Option<String>,
    /// An admin token re-minted before it expires, published for the `exec` plugin.
    pub admin_rotation: Option<Rotation>,
    /// The token of the read-only identity.
    pub viewer_token: Option<String>,
}

/// One running API server. Dropping it stops it.
pub struct KubeApiServer {
    addr: SocketAddr,
    tls: Option<ServerTls>,
    api: Arc<Api>,
    faults: Arc<crate::faults::FaultSlot>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    /// The GitOps controller, while one runs.
    gitops: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl KubeApiServer {
    /// Binds 127.0.0.1:`port` (0: ephemeral), seeds the objects and waits until their pods are
    /// ready (the initial state does not pay the simulated start delay).
    pub async fn start(port: u16, token: Option<String>, delays: Delays, seed: &[Seed]) -> Result<KubeApiServer> {
        KubeApiServer::start_secure(port, Security { admin_token: token, ..Security::default() }, delays, seed).await
    }

    /// `start` with TLS and identities: a fixed or rotating admin token, a read-only one.
    pub async fn start_secure(port: u16, security: Security, delays: Delays, seed: &[Seed]) -> Result<KubeApiServer> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .map_err(|e| Error::io(format!("cannot bind the sandbox API server to 127.0.0.1:{port}"), e))?;
        let addr = listener.local_addr().map_err(|e| Error::io("sandbox API server address", e))?;
        let store = Arc::new(Store::new());
        let (controller, control_task) =
            Controller::spawn(Arc::clone(&store), Delays { start: Duration::ZERO, terminate: Duration::ZERO });
        let api = Arc::new(Api {
            store: Arc::clone(&store),
            controller: Arc::clone(&controller),
            auth: auth::Auth::default(),
            address: Mutex::new(addr.to_string()),
            log: Mutex::new(VecDeque::new()),
            faults: Mutex::new(VecDeque::new()),
            pages: Mutex::new(paging::Snapshots::default()),
        });
        for s in seed {
            for (res, mut object) in s.objects() {
                // What Helm's install leaves: its own entry in managedFields.
                managed::record(res, res.api_version(), None, &mut object, &managed::Writer::update("helm"));
                let created = store.create(res, object).map_err(|e| Error::Other(format!("sandbox seed: {e:?}")))?;
                let name = created["metadata"]["name"].as_str().unwrap_or_default();
                controller.enqueue(res, &s.namespace, name);
            }
        }
        let faults = Arc::new(crate::faults::FaultSlot::default());
        let router = axum::Router::new()
            .fallback(server::handle)
            .with_state(Arc::clone(&api))
            .layer(axum::middleware::from_fn_with_state(Arc::clone(&faults), crate::faults::layer));
        let serve_task = match &security.tls {
            Some(tls) => {
                let listener = tls.listener(listener)?;
                tokio::spawn(async move {
                    let _ = axum::serve(listener, router).await;
                })
            }
            None => tokio::spawn(async move {
                let _ = axum::serve(listener, router).await;
            }),
        };
        let hpa_task = hpa::HpaController::spawn(Arc::clone(&store), Arc::clone(&controller));
        let mut tasks = vec![control_task, serve_task, hpa_task];
        if let Some(token) = &security.admin_token {
            api.auth.add(token, Identity::admin(), None);
        }
        if let Some(token) = &security.viewer_token {
            api.auth.add(token, Identity::viewer(), None);
        }
        if let Some(rotation) = security.admin_rotation.clone() {
            api.auth.rotate(&Identity::admin(), &rotation)?;
            let api = Arc::clone(&api);
            tasks.push(tokio::spawn(async move {
                loop {
                    // Re-minted at half its life: the plugin always hands out a token with time left.
                    tokio::time::sleep(rotation.lifetime / 2).await;
                    if let Err(e) = api.auth.rotate(&Identity::admin(), &rotation) {
                        tracing::warn!("sandbox API server: cannot rotate the admin token: {e}");
                    }
                }
            }));
        }
        let server = KubeApiServer { addr, tls: security.tls.clone(), api, faults, tasks, gitops: Mutex::new(None) };
        server.settle().await?;
        controller.set_delays(delays);
        Ok(server)
    }

    /// Waits (polling, bounded) until every workload has its desired pods ready.
    async fn settle(&self) -> Result<()> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let settled = self.api.store.all().iter().filter(|((r, _, _), _)| r.is_workload()).all(|(_, w)| {
                let desired = w["spec"]["replicas"].as_i64().unwrap_or(1);
                w["status"]["observedGeneration"] == w["metadata"]["generation"]
                    && w["status"]["readyReplicas"].as_i64().unwrap_or(0) == desired
            });
            if settled {
                return Ok(());
            }
            if tokio::time::Instant::now() > deadline {
                return Err(Error::Other("sandbox API server: seeded workloads did not settle".to_string()));
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// The CA certificate (PEM) clients must trust, when the server speaks HTTPS.
    pub fn ca_pem(&self) -> Option<&str> {
        self.tls.as_ref().map(|t| t.ca_pem.as_str())
    }

    /// How many different rotating admin tokens requests have used (refreshes seen).
    pub fn rotating_tokens_used(&self) -> usize {
        self.api.auth.rotating_tokens_used()
    }

    pub fn delays(&self) -> Delays {
        self.api.controller.delays()
    }

    pub fn set_delays(&self, delays: Delays) {
        self.api.controller.set_delays(delays);
    }

    /// The spread of pod start times (default: up to 10% of the start delay, seed 0).
    pub fn set_jitter(&self, jitter: Jitter) {
        self.api.controller.set_jitter(jitter);
    }

    /// Makes the pods of `workload` in `namespace` started from now on never ready, stuck in
    /// `reason` (`None`: they start normally again). Pods already running are left alone.
    pub fn set_stuck(&self, namespace: &str, workload: &str, reason: Option<Stuck>) {
        self.api.controller.set_stuck(namespace, workload, reason);
    }

    /// `set_stuck` for a workload that must exist (a typo in `sandbox up --stuck` is an error
    /// naming the workloads there are, not a fault that never fires).
    pub fn set_stuck_checked(&self, namespace: &str, workload: &str, reason: Stuck) -> Result<()> {
        self.workload_checked(namespace, workload, "--stuck")?;
        self.set_stuck(namespace, workload, Some(reason));
        Ok(())
    }

    /// Switches random faults on (or off with `None`) for the requests from now on.
    pub fn set_random_faults(&self, injector: Option<Arc<crate::faults::Injector>>) {
        self.faults.set(injector);
    }

    /// Makes the next requests fail with these status codes, one each (tests of retries).
    pub fn inject_faults(&self, codes: &[u16]) {
        self.api.faults.lock().unwrap_or_else(|e| e.into_inner()).extend(codes.iter().map(|c| (None, *c)));
    }

    /// Makes the next request of `method` (`PUT`, `PATCH`, ...) fail with `code`.
    pub fn inject_fault_on(&self, method: &str, code: u16) {
        self.api.faults.lock().unwrap_or_else(|e| e.into_inner()).push_back((Some(method.to_string()), code));
    }

    /// The requests served so far, `METHOD /path?query`.
    pub fn requests(&self) -> Vec<String> {
        self.api.log.lock().unwrap_or_else(|e| e.into_inner()).iter().cloned().collect()
    }

    /// A stored object, as a client would get it.
    pub fn object(&self, res: Res, namespace: &str, name: &str) -> Option<Value> {
        self.api.store.get(res, namespace, name)
    }

    /// Pods of a namespace (terminating ones included).
    pub fn pods(&self, namespace: &str) -> Vec<Value> {
        self.api.store.list(Res::Pod, Some(namespace)).0
    }

    /// Every object but events and secrets, for the sandbox's status.
    pub fn objects(&self) -> Vec<Value> {
        self.api
            .store
            .all()
            .into_iter()
            .filter(|((r, _, _), _)| !matches!(r, Res::Event | Res::Secret))
            .map(|(_, v)| v)
            .collect()
    }

    /// The deployment or statefulset `name` of `namespace`, or a usage error naming those there are.
    fn workload_checked(&self, namespace: &str, name: &str, flag: &str) -> Result<Res> {
        if let Some(res) =
            [Res::Deployment, Res::StatefulSet].into_iter().find(|r| self.api.store.get(*r, namespace, name).is_some())
        {
            return Ok(res);
        }
        let known: Vec<String> = self
            .api
            .store
            .all()
            .into_iter()
            .filter(|((r, n, _), _)| r.is_workload() && n == namespace)
            .map(|((_, _, name), _)| name)
            .collect();
        Err(Error::Usage(format!(
            "{flag}: no deployment or statefulset `{name}` in namespace `{namespace}` (there are: {})",
            known.join(", ")
        )))
    }

    /// Creates an HPA named after `workload` (a deployment or statefulset of `namespace`) keeping
    /// it within `min..=max`, as `kubectl autoscale` does; the HPA controller acts on it within
    /// a fraction of a second. A workload that does not exist or bounds the API server refuses
    /// are errors. Returns the HPA as stored.
    pub fn create_hpa(&self, namespace: &str, workload: &str, min: i32, max: i32) -> Result<Value> {
        let res = self.workload_checked(namespace, workload, "--hpa")?;
        let mut object = hpa::object(namespace, res.kind(), workload, min, max);
        hpa::validate(workload, &object).map_err(|r| Error::Usage(format!("--hpa: {}", r.message)))?;
        managed::record(
            Res::HorizontalPodAutoscaler,
            "autoscaling/v2",
            None,
            &mut object,
            &managed::Writer::update("kubectl-autoscale"),
        );
        self.api
            .store
            .create(Res::HorizontalPodAutoscaler, object)
            .map_err(|e| Error::Other(format!("--hpa {namespace}/{workload}: {e:?}")))
    }

    /// Starts a GitOps controller with self-heal (Argo CD) for Application `app`: it labels and
    /// annotates the deployments and statefulsets of `namespace` (all when `None`) as its own and
    /// sets their `spec.replicas` back to the present values whenever they change (see
    /// [`gitops`]). Replaces a controller already running. Returns the workloads adopted, as
    /// `(resource, namespace, name)`.
    pub fn start_gitops(&self, app: &str, namespace: Option<&str>) -> Vec<(Res, String, String)> {
        let (adopted, task) =
            gitops::start(Arc::clone(&self.api.store), Arc::clone(&self.api.controller), app, namespace);
        if let Some(old) = self.gitops.lock().unwrap_or_else(|e| e.into_inner()).replace(task) {
            old.abort();
        }
        adopted
    }

    /// Stops the GitOps controller (self-heal off); its labels stay.
    pub fn stop_gitops(&self) {
        if let Some(task) = self.gitops.lock().unwrap_or_else(|e| e.into_inner()).take() {
            task.abort();
        }
    }

    /// Events of a namespace, oldest first.
    pub fn events(&self, namespace: &str) -> Vec<Value> {
        let mut events = self.api.store.list(Res::Event, Some(namespace)).0;
        events.sort_by_key(|e| e["metadata"]["resourceVersion"].as_str().and_then(|v| v.parse::<u64>().ok()));
        events
    }
}

impl Drop for KubeApiServer {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
        self.stop_gitops();
    }
}
