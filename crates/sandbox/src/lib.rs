//! The sandbox: a simulated PROD and DR pair on 127.0.0.1, the embedded default every newcomer,
//! demo and end-to-end test runs against. Per environment it runs a Kubernetes API server
//! emulation and an Adeptia gateway emulation on ephemeral ports, seeds file shares as local
//! folders, and writes `kubeconfig`, `drscript.toml` and `sandbox.json` into its folder so that
//! the shipped runbooks, kubectl and other drscript processes find it.
//!
//! The initial state is the document's DR model: PROD active; DR deployed as its prerequisites
//! say — the listener at 0, the runtime and RabbitMQ at their counts,
//! the event service booting with `QUARTZ_STATUS_ONBOOTUP=pause`, and its scheduler paused.
//! Options add what a customer's cluster may have besides: HorizontalPodAutoscalers on workloads
//! ([`SandboxOptions::hpa`]) and, as the `gitops:revert` kube fault, Argo CD reverting replica
//! changes ([`faults::GitopsFault`]).
//!
//! It runs in-process ([`Sandbox::start`]) or in the foreground of `drscript sandbox up`
//! ([`cli_up`]); [`cli_status`] and [`cli_down`] reach a running one through `sandbox.json`.

pub mod arm;
pub mod azure_files;
pub mod components;
mod control;
pub mod databases;
pub mod db_certs;
pub mod dns_resolver;
pub mod entra;
pub mod faults;
pub mod folder;
pub mod gateway;
mod hash;
pub mod kube_api;
pub mod like;
pub mod outage;
pub mod shared_state;
pub mod shares;
pub mod zone;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};

use drscript_base::error::{Error, Result};
use folder::{EnvEndpoints, SandboxFile};
use gateway::{GatewayAuthMode, GatewayServer, SchedulerState};
use kube_api::{Delays, KubeApiServer, Seed};

/// How to build the sandbox.
#[derive(Debug, Clone)]
pub struct SandboxOptions {
    /// Environment names; the first is the active one (PROD), the others standbys.
    pub environments: Vec<String>,
    pub namespace: String,
    pub release: String,
    /// Application version: the tag of every image.
    pub version: String,
    pub delays: Delays,
    /// Make the API servers demand a fixed bearer token (written into the kubeconfig) instead of
    /// the rotating one of the `exec` plugin. Note that kubectl does not send tokens to a
    /// plain-http server.
    pub kube_token: bool,
    /// Serve the Kubernetes APIs over HTTPS with a private CA, an admin whose token rotates
    /// through the kubeconfig's `exec` plugin, and a read-only `ENV-viewer` context (the
    /// default); false: plain HTTP, no authentication (`sandbox up --insecure-http`).
    pub kube_tls: bool,
    /// How long an admin token of the `exec` plugin lives (re-minted at half its life).
    pub kube_token_lifetime: Duration,
    /// Seed the share folders (a few MB per environment).
    pub shares: bool,
    /// How long a storage account failover takes in the ARM emulation.
    pub storage_failover: Duration,
    /// A customer's shape (`sandbox up --like FILE`): per-environment namespace, release and
    /// replica counts, and the DNS records; the defaults above when absent.
    pub like: Option<like::Shape>,
    /// Random faults of the servers (`sandbox up --faults`); none by default.
    pub faults: Option<faults::FaultSpec>,
    /// The seed of the faults' RNG (`sandbox up --seed`), also the seed of the pods' start jitter.
    pub seed: u64,
    /// The longest time the sandbox's DNS resolvers keep an answer (`sandbox up --dns-cache`);
    /// 0 by default, so that a switch is seen at once.
    pub dns_cache: Duration,
    /// Serve each environment's shares through an Azure Files emulator of its own (account =
    /// the environment's name, the same folders on disk), so that a storage outage can be
    /// simulated; local folders otherwise.
    pub remote_shares: bool,
    /// Outages in force from the start (`sandbox up --outage ENV:PART[+PART]`).
    pub outages: Vec<(String, Vec<outage::Part>)>,
    /// Workloads whose pods never become ready (`sandbox up --stuck`).
    pub stuck: Vec<kube_api::StuckWorkload>,
    /// HorizontalPodAutoscalers on workloads at start (`ENV/WORKLOAD=MIN:MAX`, named after the
    /// workload, 80% CPU): the HPA controller keeps their `spec.replicas` within the bounds, and
    /// leaves a workload scaled to 0 alone.
    pub hpa: Vec<kube_api::HpaSeed>,
    /// Start real PostgreSQL servers for `[databases]` (`sandbox up` and the demo do; off by
    /// default so that embedding the sandbox costs no database servers).
    pub databases: bool,
    /// Microsoft Entra ID (`sandbox up --entra`): an Entra ID emulator (token endpoint over
    /// HTTPS, managed-identity endpoint), Files emulators over HTTPS that take bearer tokens and
    /// refuse the account key (`allowSharedKeyAccess: false`), an ARM emulator that takes the
    /// emulator's tokens, and a config that signs in with workload identity.
    pub entra: bool,
}

impl Default for SandboxOptions {
    fn default() -> Self {
        SandboxOptions {
            environments: vec!["prod".to_string(), "dr".to_string()],
            namespace: "adeptia".to_string(),
            release: "ac".to_string(),
            version: "4.2.1".to_string(),
            delays: Delays::default(),
            kube_token: false,
            kube_tls: true,
            kube_token_lifetime: Duration::from_secs(3600),
            shares: true,
            storage_failover: Duration::from_secs(5),
            like: None,
            faults: None,
            seed: 0,
            dns_cache: Duration::ZERO,
            remote_shares: false,
            outages: Vec::new(),
            stuck: Vec::new(),
            hpa: Vec::new(),
            databases: false,
            entra: false,
        }
    }
}

/// One simulated environment.
pub struct EnvSandbox {
    pub name: String,
    pub kube: KubeApiServer,
    pub gateway: GatewayServer,
    pub endpoints: EnvEndpoints,
    /// The outage gates in front of its servers.
    pub gates: std::sync::Arc<outage::EnvGates>,
    /// With `remote_shares`: the Azure Files emulator serving its shares.
    pub files: Option<azure_files::FilesEmulator>,
}

/// Another part of the simulated world (ARM emulator, Azure Files emulator, DNS zone): started
/// by [`Sandbox::start`] after the environments, kept alive by the handle, contributing its
/// `drscript.toml` sections and its part of the status.
pub trait Component: Send + Sync {
    /// The key of its status (`dns`, `arm`, `azure_files`).
    fn name(&self) -> &str;
    /// TOML sections appended to `drscript.toml` (e.g. `[dns]`, `[storage.x]`), complete with
    /// their headers; secrets as `*_file` paths relative to the sandbox folder.
    fn config_sections(&self) -> Vec<String>;
    /// Its simulated state, for `sandbox status --json`.
    fn status(&self) -> Value;
    /// A URL answering `status()` as JSON, for `sandbox status` from another process; without
    /// one, that status shows `null` for this component.
    fn state_url(&self) -> Option<String> {
        None
    }
}

/// A running sandbox; dropping it stops its servers (the folder stays).
pub struct SandboxHandle {
    pub dir: PathBuf,
    /// The environment that starts active (the first of the options).
    pub active: String,
    pub environments: BTreeMap<String, EnvSandbox>,
    pub components: Vec<Box<dyn Component>>,
    control: Option<control::Control>,
    /// The Entra ID emulator (`sandbox up --entra`).
    pub entra: Option<entra::Entra>,
}

/// A secret for a sandbox credential: unpredictable enough that a leak in output is noticed.
fn fresh_secret(label: &str) -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    let seed = format!("{label}/{nanos}/{}", std::process::id());
    let h = hash::fnv(&seed);
    let h2 = h.rotate_left(29).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    format!("sbx-{h:016x}{h2:016x}")
}

pub struct Sandbox;

impl Sandbox {
    /// Starts every environment in `dir` (created if missing) on the current tokio runtime.
    pub async fn start(dir: &Path, options: SandboxOptions) -> Result<SandboxHandle> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(format!("cannot create {}", dir.display()), e))?;
        let dir = dir.canonicalize().map_err(|e| Error::io(format!("cannot resolve {}", dir.display()), e))?;
        // Entra ID first: the Files emulators of the environments verify its tokens.
        let entra = if options.entra { Some(entra::Entra::start(&dir, &options.environments).await?) } else { None };
        let mut environments = BTreeMap::new();
        for (index, name) in options.environments.iter().enumerate() {
            environments.insert(name.clone(), start_environment(&dir, &options, index, name, entra.as_ref()).await?);
        }
        if let Some(h) = options.hpa.iter().find(|h| !environments.contains_key(&h.env)) {
            return Err(Error::Usage(format!(
                "--hpa {h}: no environment `{}` in the sandbox (environments: {})",
                h.env,
                options.environments.join(", ")
            )));
        }
        if let Some(s) = options.stuck.iter().find(|s| !environments.contains_key(&s.env)) {
            return Err(Error::Usage(format!(
                "--stuck {}/{}: no environment `{}` in the sandbox (environments: {})",
                s.env,
                s.workload,
                s.env,
                options.environments.join(", ")
            )));
        }
        let active = options.environments.first().cloned().unwrap_or_default();
        let dns = match &options.like {
            Some(shape) if !shape.records.is_empty() => components::DnsZone::create_like(&dir, shape, &active)?,
            _ => components::DnsZone::create(&dir)?,
        };
        let dns = dns.with_resolvers(2, options.dns_cache).await?;
        let mut components: Vec<Box<dyn Component>> = vec![Box::new(dns)];
        let arm = components::Arm::start(&dir, options.storage_failover, entra.as_ref()).await?;
        let arm_handle = arm.handle().clone();
        if let Some(e) = environments.get_mut(&active) {
            e.endpoints.storage_account = Some(arm.account_name().to_string());
        }
        components.push(Box::new(arm));
        if let Some(e) = &entra {
            components.push(Box::new(entra::EntraComponent(e.clone())));
        }
        if let Some(azurite) = shared_state::installed() {
            components.push(Box::new(shared_state::SharedStateAzurite::start(&dir, &azurite)?));
        }
        if let Some(spec) = options.faults.as_ref().filter(|s| s.get(faults::Service::Files).is_some()) {
            let injector = spec.injector(faults::Service::Files, options.seed, "sandbox");
            components.push(Box::new(crate::azure_files::FilesComponent::start(&dir, injector).await?));
        }
        let mut database_gates = BTreeMap::new();
        if options.databases {
            let specs = options.like.as_ref().map_or_else(databases::DbSpec::defaults, |l| l.databases.clone());
            if let Some(servers) = databases::Databases::start(&dir, specs.clone()).await? {
                for spec in &specs {
                    let database = servers.gate(&spec.name);
                    database_gates.insert(spec.name.clone(), outage::EnvGates { database, ..Default::default() });
                }
                components.push(Box::new(servers));
            }
        }
        for (env, parts) in &options.outages {
            let e = environments.get(env).ok_or_else(|| {
                Error::Usage(format!(
                    "--outage {env}: no such environment (known: {})",
                    options.environments.join(", ")
                ))
            })?;
            e.gates.outage(env, parts, false)?;
        }
        let mut gates: BTreeMap<String, std::sync::Arc<outage::EnvGates>> =
            environments.iter().map(|(n, e)| (n.clone(), e.gates.clone())).collect();
        for (name, g) in database_gates {
            gates.entry(name).or_insert_with(|| std::sync::Arc::new(g));
        }
        let mut control = control::Control::start(gates, arm_handle.clone(), entra.clone()).await?;
        if let Some(e) = environments.get(&active) {
            control.follow_storage_failover(arm_handle, e.gates.clone());
        }
        let handle = SandboxHandle { dir, active, environments, components, control: Some(control), entra };
        handle.write_files()?;
        Ok(handle)
    }
}

/// Starts one environment's servers (Kubernetes API, gateway, share folders, the gates in front
/// of them); the first of `options.environments` starts active, the others as standbys.
async fn start_environment(
    dir: &Path,
    options: &SandboxOptions,
    index: usize,
    name: &String,
    entra: Option<&entra::Entra>,
) -> Result<EnvSandbox> {
    let active = index == 0;
    let shape = options.like.as_ref().and_then(|l| l.environments.get(name));
    let namespace = shape.map_or(options.namespace.as_str(), |s| s.namespace.as_str());
    let release = shape.map_or(options.release.as_str(), |s| s.release.as_str());
    let mut active_seed = Seed::active(namespace, release, &options.version);
    if let Some(shape) = shape {
        [active_seed.runtime, active_seed.listener, active_seed.rabbitmq] = shape.replicas;
        active_seed.names = shape.names.clone();
        active_seed.extra = shape
            .extra
            .iter()
            .map(|(component, kind, replicas)| kube_api::seed::ExtraWorkload {
                component: component.clone(),
                kind: kind.clone(),
                replicas: *replicas,
            })
            .collect();
    }
    let seed = if active {
        active_seed.clone()
    } else {
        let extra =
            active_seed.extra.iter().map(|x| kube_api::seed::ExtraWorkload { replicas: 0, ..x.clone() }).collect();
        Seed {
            runtime: active_seed.runtime,
            names: active_seed.names.clone(),
            extra,
            ..Seed::standby(namespace, release, &options.version)
        }
        .with_rabbitmq(active_seed.rabbitmq)
    };
    let (security, kube_files) = kube_security(dir, name, options)?;
    let kube_token = security.admin_token.clone();
    let kube = KubeApiServer::start_secure(0, security, options.delays, std::slice::from_ref(&seed)).await?;
    kube.set_jitter(kube_api::Jitter { seed: options.seed, ..kube_api::Jitter::default() });
    for s in options.stuck.iter().filter(|s| &s.env == name) {
        kube.set_stuck_checked(namespace, &s.workload, s.reason)?;
    }
    for h in options.hpa.iter().filter(|h| &h.env == name) {
        kube.create_hpa(namespace, &h.workload, h.min, h.max)?;
    }
    if options.faults.as_ref().is_some_and(|f| f.gitops(name)) {
        // The Argo CD Application is named after the Helm release it deploys.
        kube.start_gitops(release, Some(namespace));
    }
    let password = fresh_secret(&format!("{name}-gateway"));
    drscript_base::redact::register(&password);
    folder::write_secret(&dir.join(folder::gateway_secret_path(name)), &password)?;
    let user = "drscript".to_string();
    let initial = if active { SchedulerState::Running } else { SchedulerState::Paused };
    let gateway =
        GatewayServer::start(0, GatewayAuthMode::AdeptiaLogin { username: user.clone(), password }, initial).await?;
    if let Some(spec) = &options.faults {
        kube.set_random_faults(spec.injector(faults::Service::Kube, options.seed, name));
        gateway.set_random_faults(spec.injector(faults::Service::Gateway, options.seed, name));
    }
    let mut share_paths = BTreeMap::new();
    for share in ["app", "rabbitmq"] {
        let relative = PathBuf::from(format!("shares/{name}/{share}"));
        if options.shares {
            shares::seed(&dir.join(&relative), share, active)?;
            if share == "app" {
                let folders = shape.and_then(|s| s.app_folders.as_deref()).unwrap_or_default();
                shares::seed_folders(&dir.join(&relative), folders, active)?;
            }
        } else {
            std::fs::create_dir_all(dir.join(&relative))
                .map_err(|e| Error::io(format!("cannot create {}", relative.display()), e))?;
        }
        share_paths.insert(share.to_string(), relative);
    }
    let cluster_gate = outage::Gate::front(kube.addr()).await?;
    let gateway_gate = outage::Gate::front(gateway.addr()).await?;
    let (files, share_gate, share_urls, share_key_file) = if options.remote_shares {
        // `--faults files=...` reaches these emulators too: a failover's copies meet them.
        let injector = options.faults.as_ref().and_then(|s| s.injector(faults::Service::Files, options.seed, name));
        let (emulator, gate, urls, key) = remote_shares(dir, name, &share_paths, injector, entra).await?;
        (Some(emulator), Some(gate), urls, Some(key))
    } else {
        (None, None, BTreeMap::new(), None)
    };
    let gates = std::sync::Arc::new(outage::EnvGates {
        cluster: Some(std::sync::Arc::new(cluster_gate)),
        gateway: Some(std::sync::Arc::new(gateway_gate)),
        share: share_gate.map(std::sync::Arc::new),
        database: None,
    });
    // The gates pass TCP through: TLS is between the client and the server behind them.
    let gate_url = |scheme: &str, g: &Option<std::sync::Arc<outage::Gate>>| {
        g.as_ref().map(|g| format!("{scheme}://{}", g.addr())).unwrap_or_default()
    };
    let kube_scheme = if kube.url().starts_with("https:") { "https" } else { "http" };
    let endpoints = EnvEndpoints {
        kube_api: gate_url(kube_scheme, &gates.cluster),
        gateway: gate_url("http", &gates.gateway),
        kube_state: Some(kube.url()),
        gateway_state: Some(gateway.url()),
        share_urls,
        share_key_file,
        share_auth: (options.remote_shares && entra.is_some()).then(|| "entra".to_string()),
        namespace: namespace.to_string(),
        release: release.to_string(),
        shares: share_paths,
        kube_token,
        kube_ca_file: kube_files.ca_file,
        kube_credential_plugin: kube_files.credential_plugin,
        kube_viewer_token: kube_files.viewer_token,
        gateway_user: user,
        replicas: [active_seed.runtime, active_seed.listener, active_seed.rabbitmq],
        storage_account: None,
        // Only the names the chart's pattern does not give.
        workload_names: shape
            .map(|s| {
                s.names
                    .iter()
                    .filter(|(c, n)| **n != kube_api::seed::chart_name(release, c))
                    .map(|(c, n)| (c.clone(), n.clone()))
                    .collect()
            })
            .unwrap_or_default(),
        extra: shape.map(|s| s.extra.clone()).unwrap_or_default(),
        app_folders: shape.and_then(|s| s.app_folders.clone()),
    };
    Ok(EnvSandbox { name: name.clone(), kube, gateway, endpoints, gates, files })
}

/// The files a client needs to reach an environment's Kubernetes API (besides its URL).
#[derive(Default)]
struct KubeFiles {
    ca_file: Option<PathBuf>,
    credential_plugin: Option<PathBuf>,
    viewer_token: Option<String>,
}

/// How an environment's Kubernetes API admits clients: a fixed admin token, or TLS with a
/// private CA, a rotating admin token behind the kubeconfig's `exec` plugin and a read-only
/// viewer.
fn kube_security(dir: &Path, name: &str, options: &SandboxOptions) -> Result<(kube_api::Security, KubeFiles)> {
    let kube_token = options.kube_token.then(|| fresh_secret(&format!("{name}-kube")));
    if let Some(token) = &kube_token {
        drscript_base::redact::register(token);
    }
    let mut security = kube_api::Security { admin_token: kube_token.clone(), ..Default::default() };
    let (mut kube_ca_file, mut kube_credential_plugin, mut kube_viewer_token) = (None, None, None);
    if options.kube_tls {
        let tls = kube_api::ServerTls::generate()?;
        let ca = folder::kube_ca_path(name);
        std::fs::write(dir.join(&ca), &tls.ca_pem)
            .map_err(|e| Error::io(format!("cannot write {}", ca.display()), e))?;
        kube_ca_file = Some(ca);
        security.tls = Some(tls);
        let viewer = fresh_secret(&format!("{name}-kube-viewer"));
        drscript_base::redact::register(&viewer);
        security.viewer_token = Some(viewer.clone());
        kube_viewer_token = Some(viewer);
        if kube_token.is_none() {
            let credential = dir.join(folder::kube_credential_path(name));
            let plugin = dir.join(format!("bin/kube-credential-{name}"));
            folder::write_credential_plugin(&plugin, &credential)?;
            security.admin_rotation =
                Some(kube_api::Rotation { credential_file: credential, lifetime: options.kube_token_lifetime });
            kube_credential_plugin = Some(plugin);
        }
    }
    Ok((
        security,
        KubeFiles { ca_file: kube_ca_file, credential_plugin: kube_credential_plugin, viewer_token: kube_viewer_token },
    ))
}

impl SandboxHandle {
    pub fn env(&self, name: &str) -> Option<&EnvSandbox> {
        self.environments.get(name)
    }

    /// Adds a component to a running sandbox and rewrites its files with the component's config
    /// sections (for components started outside [`Sandbox::start`], e.g. by tests).
    pub fn add_component(&mut self, component: Box<dyn Component>) -> Result<()> {
        self.components.push(component);
        self.write_files()
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.join("drscript.toml")
    }

    pub fn kubeconfig_path(&self) -> PathBuf {
        self.dir.join("kubeconfig")
    }

    fn sandbox_file(&self) -> SandboxFile {
        SandboxFile {
            pid: std::process::id(),
            started: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            active: self.active.clone(),
            environments: self.environments.iter().map(|(k, e)| (k.clone(), e.endpoints.clone())).collect(),
            components: self
                .components
                .iter()
                .map(|c| {
                    let url = c.state_url().or_else(|| {
                        // The ARM and Entra emulators' states are served by the control endpoint.
                        matches!(c.name(), "arm" | "entra")
                            .then(|| self.control.as_ref().map(|ctl| format!("{}/{}", ctl.url(), c.name())))
                            .flatten()
                    });
                    (c.name().to_string(), url)
                })
                .collect(),
            control: self.control.as_ref().map(control::Control::url),
            entra: self.entra.as_ref().map(|e| folder::EntraEndpoints {
                tenant_id: entra::TENANT_ID.to_string(),
                client_id: entra::CLIENT_ID.to_string(),
                authority: e.authority().to_string(),
                token_endpoint: format!("{}/{}/oauth2/v2.0/token", e.authority(), entra::TENANT_ID),
                identity_endpoint: e.identity_endpoint().to_string(),
                ca_file: e.ca_file(),
            }),
        }
    }

    fn write_files(&self) -> Result<()> {
        let sections: Vec<String> = self.components.iter().flat_map(|c| c.config_sections()).collect();
        folder::write_all(&self.dir, &self.sandbox_file(), &sections)
    }

    /// Changes the simulated start and termination delays of every environment.
    pub fn set_delays(&self, delays: Delays) {
        for e in self.environments.values() {
            e.kube.set_delays(delays);
        }
    }

    /// The whole simulated state as JSON (the same shape `sandbox status --json` prints).
    pub fn status(&self) -> Value {
        let envs: serde_json::Map<String, Value> = self
            .environments
            .iter()
            .map(|(name, e)| {
                let gateway_state = json!({"scheduler": e.gateway.state().name(), "calls": e.gateway.calls()});
                let mut summary = summarise(
                    &self.dir,
                    &e.endpoints,
                    &json!({"objects": e.kube.objects(), "delays": e.kube.delays()}),
                    &gateway_state,
                );
                summary["outage"] = e.gates.modes();
                (name.clone(), summary)
            })
            .collect();
        let components: serde_json::Map<String, Value> =
            self.components.iter().map(|c| (c.name().to_string(), c.status())).collect();
        json!({"dir": self.dir, "pid": std::process::id(), "environments": envs, "components": components})
    }
}

/// One environment's state from the raw state of its servers.
fn summarise(dir: &Path, endpoints: &EnvEndpoints, kube_state: &Value, gateway_state: &Value) -> Value {
    let objects = kube_state["objects"].as_array().cloned().unwrap_or_default();
    let mut workloads = serde_json::Map::new();
    let mut pods = Vec::new();
    // What keeps a workload's replicas: an HPA targeting it, a GitOps controller owning it.
    let hpas: BTreeMap<String, Value> = objects
        .iter()
        .filter(|o| o["kind"] == "HorizontalPodAutoscaler")
        .filter_map(|h| {
            let target = h["spec"]["scaleTargetRef"]["name"].as_str()?.to_string();
            let (min, max) = (&h["spec"]["minReplicas"], &h["spec"]["maxReplicas"]);
            Some((target, json!({"name": h["metadata"]["name"], "min": min, "max": max})))
        })
        .collect();
    for o in &objects {
        let name = o["metadata"]["name"].as_str().unwrap_or_default().to_string();
        match o["kind"].as_str() {
            Some(kind @ ("Deployment" | "StatefulSet")) => {
                let containers = o["spec"]["template"]["spec"]["containers"].as_array().cloned().unwrap_or_default();
                let images: Vec<Value> = containers.iter().map(|c| c["image"].clone()).collect();
                let env: serde_json::Map<String, Value> = containers
                    .iter()
                    .flat_map(|c| c["env"].as_array().cloned().unwrap_or_default())
                    .map(|v| (v["name"].as_str().unwrap_or_default().to_string(), v["value"].clone()))
                    .collect();
                let mut workload = json!({
                    "kind": kind.to_lowercase(),
                    "replicas": o["spec"]["replicas"],
                    "ready": o["status"]["readyReplicas"].as_i64().unwrap_or(0),
                    "generation": o["metadata"]["generation"],
                    "observedGeneration": o["status"]["observedGeneration"],
                    "images": images,
                    "env": env,
                });
                if let Some(hpa) = hpas.get(&name) {
                    workload["hpa"] = hpa.clone();
                }
                if let Some(tracking) = o["metadata"]["annotations"][kube_api::gitops::TRACKING_ANNOTATION].as_str() {
                    workload["gitops"] = json!(tracking.split(':').next().unwrap_or_default());
                }
                workloads.insert(name, workload);
            }
            Some("Pod") => {
                let ready = o["status"]["conditions"]
                    .as_array()
                    .is_some_and(|cs| cs.iter().any(|c| c["type"] == "Ready" && c["status"] == "True"));
                let phase = if !o["metadata"]["deletionTimestamp"].is_null() {
                    "Terminating".to_string()
                } else {
                    o["status"]["phase"].as_str().unwrap_or("Unknown").to_string()
                };
                pods.push(json!({"name": name, "phase": phase, "ready": ready}));
            }
            _ => {}
        }
    }
    let shares: serde_json::Map<String, Value> = endpoints
        .shares
        .iter()
        .map(|(n, p)| {
            let full = dir.join(p);
            let s = shares::stats(&full);
            (n.clone(), json!({"path": full, "files": s.files, "bytes": s.bytes}))
        })
        .collect();
    json!({
        "kube_api": endpoints.kube_api,
        "gateway": endpoints.gateway,
        "namespace": endpoints.namespace,
        "scheduler": gateway_state["scheduler"],
        "delays_ms": kube_state["delays"],
        "workloads": workloads,
        "pods": pods,
        "shares": shares,
    })
}

/// Prints the status in a few readable lines per environment.
fn render(status: &Value) -> String {
    let mut out = String::new();
    for (name, e) in status["environments"].as_object().into_iter().flatten() {
        out.push_str(&format!(
            "{name}: kube {}  gateway {}  scheduler {}\n",
            e["kube_api"].as_str().unwrap_or(""),
            e["gateway"].as_str().unwrap_or(""),
            e["scheduler"].as_str().unwrap_or("?")
        ));
        let down: Vec<String> = e["outage"]
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(_, mode)| mode.as_str() != Some("open"))
            .map(|(part, mode)| format!("{part} ({})", if mode == "hang" { "hangs" } else { "refuses connections" }))
            .collect();
        if !down.is_empty() {
            out.push_str(&format!("  OUTAGE: {} — `drscript sandbox restore {name}` ends it\n", down.join(", ")));
        }
        for (w, v) in e["workloads"].as_object().into_iter().flatten() {
            let image = v["images"][0].as_str().unwrap_or("");
            let quartz = v["env"]["QUARTZ_STATUS_ONBOOTUP"]
                .as_str()
                .map(|q| format!("  QUARTZ_STATUS_ONBOOTUP={q}"))
                .unwrap_or_default();
            let mut kept = String::new();
            if !v["hpa"].is_null() {
                kept.push_str(&format!("  hpa {}..{}", v["hpa"]["min"], v["hpa"]["max"]));
            }
            if let Some(app) = v["gitops"].as_str() {
                kept.push_str(&format!("  gitops (Argo CD app {app}, self-heal)"));
            }
            out.push_str(&format!(
                "  {:<12} {:<28} {}/{}  {image}{quartz}{kept}\n",
                v["kind"].as_str().unwrap_or(""),
                w,
                v["ready"],
                v["replicas"]
            ));
        }
        let terminating = e["pods"].as_array().map_or(0, |p| p.iter().filter(|p| p["phase"] == "Terminating").count());
        out.push_str(&format!("  pods: {} ({terminating} terminating)\n", e["pods"].as_array().map_or(0, Vec::len)));
        for (s, v) in e["shares"].as_object().into_iter().flatten() {
            out.push_str(&format!(
                "  share {s}: {} files, {} bytes  {}\n",
                v["files"],
                v["bytes"],
                v["path"].as_str().unwrap_or("")
            ));
        }
    }
    out
}

/// Runs `f` on a fresh multi-threaded runtime in its own thread, so that the CLI functions work
/// whether or not the caller is already inside a tokio runtime.
fn on_runtime<T: Send + 'static>(f: impl std::future::Future<Output = Result<T>> + Send + 'static) -> Result<T> {
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| Error::io("cannot start the async runtime", e))?;
        runtime.block_on(f)
    })
    .join()
    .map_err(|_| Error::Other("the sandbox thread panicked".to_string()))?
}

/// `drscript sandbox up --dir DIR`: starts the sandbox and serves until Ctrl-C or `sandbox down`;
/// what the operator should read goes to `say`, line by line.
pub fn cli_up(dir: &Path, options: SandboxOptions, say: impl Fn(&str) + Send + 'static) -> Result<()> {
    if let Ok(existing) = folder::read_sandbox_file(dir)
        && drscript_base::sys::process_alive(existing.pid)
    {
        return Err(Error::Usage(format!(
            "a sandbox is already running in {} (pid {}); stop it with `drscript sandbox down --dir {}`",
            dir.display(),
            existing.pid,
            dir.display()
        )));
    }
    let dir = dir.to_path_buf();
    on_runtime(async move {
        // Listen for the stop signals before anything announces the sandbox, so that a `down`
        // right after `sandbox.json` appears is caught rather than killing the process.
        let stop = stop_signal()?;
        if let Some(spec) = options.faults.as_ref().filter(|s| !s.is_empty()) {
            say(&format!(
                "faults: {spec} (seed {}; reproduce with --faults '{spec}' --seed {})",
                options.seed, options.seed
            ));
            if spec.get(faults::Service::Files).is_some() {
                say(
                    "files faults: an Azure Files emulator serves the account `sandbox` (see azure-files.json in the sandbox folder)",
                );
            }
        }
        for s in &options.stuck {
            say(&format!("stuck: the pods of {}/{} will never become ready ({})", s.env, s.workload, s.reason));
        }
        for h in &options.hpa {
            say(&format!(
                "hpa: {}/{} is kept within {}..{} replicas by a HorizontalPodAutoscaler (left alone at 0)",
                h.env, h.workload, h.min, h.max
            ));
        }
        if let Some(spec) = options.faults.as_ref() {
            for env in options.environments.iter().filter(|e| spec.gitops(e)) {
                say(&format!(
                    "gitops: Argo CD (self-heal) manages the workloads of {env}: a change of their replicas is reverted within a second"
                ));
            }
        }
        let handle = Sandbox::start(&dir, options).await?;
        say(render(&handle.status()).trim_end());
        if let Some(e) = &handle.entra {
            say(&format!(
                "entra: Entra ID emulator at {} (tenant {}, app {}; CA {}), managed identity at {}; `drscript sandbox role` changes a principal's Files role",
                e.authority(),
                entra::TENANT_ID,
                entra::CLIENT_ID,
                entra::CA_PATH,
                e.identity_endpoint()
            ));
        }
        say(&format!(
            "sandbox running in {} — try:\n  KUBECONFIG={} kubectl --context prod get deployments\n  drscript --config {} plan failover.rhai\nCtrl-C or `drscript sandbox down --dir {}` stops it.",
            handle.dir.display(),
            handle.kubeconfig_path().display(),
            handle.config_path().display(),
            handle.dir.display()
        ));
        stop.await;
        // Stop the servers (database processes included) before `down` is told we are gone.
        let sandbox_file = handle.dir.join(folder::SANDBOX_FILE);
        drop(handle);
        let _ = std::fs::remove_file(sandbox_file);
        say("sandbox stopped");
        Ok(())
    })
}

/// A future that completes on SIGINT or SIGTERM (Ctrl-C elsewhere), registered now.
fn stop_signal() -> Result<impl std::future::Future<Output = ()>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).map_err(|e| Error::io("cannot listen for SIGTERM", e))?;
        let mut int = signal(SignalKind::interrupt()).map_err(|e| Error::io("cannot listen for SIGINT", e))?;
        Ok(async move {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async {
            let _ = tokio::signal::ctrl_c().await;
        })
    }
}

/// The state of the sandbox running in `dir`, read from its servers.
pub fn status_of(dir: &Path) -> Result<Value> {
    let file = folder::read_sandbox_file(dir)?;
    if !drscript_base::sys::process_alive(file.pid) {
        return Err(Error::Usage(format!(
            "the sandbox of {} (pid {}) is not running any more; start it with `drscript sandbox up --dir {}`",
            dir.display(),
            file.pid,
            dir.display()
        )));
    }
    let dir = dir.to_path_buf();
    on_runtime(async move {
        let mut builder = reqwest::Client::builder().timeout(Duration::from_secs(10));
        for ca in file.environments.values().filter_map(|e| e.kube_ca_file.as_ref()) {
            let pem = std::fs::read(dir.join(ca)).map_err(|e| Error::io(format!("cannot read {}", ca.display()), e))?;
            let cert = reqwest::Certificate::from_pem(&pem)
                .map_err(|e| Error::Other(format!("{} is not a PEM certificate: {e}", ca.display())))?;
            builder = builder.add_root_certificate(cert);
        }
        let http = builder.build().map_err(|e| Error::Other(format!("cannot build an HTTP client: {e}")))?;
        let get = |url: String| {
            let http = http.clone();
            async move {
                let reply =
                    http.get(&url).send().await.map_err(|e| Error::action("sandbox status", &url, e.to_string()))?;
                reply.json::<Value>().await.map_err(|e| Error::action("sandbox status", &url, e.to_string()))
            }
        };
        let mut envs = serde_json::Map::new();
        for (name, e) in &file.environments {
            let kube = e.kube_state.as_deref().unwrap_or(&e.kube_api);
            let gateway = e.gateway_state.as_deref().unwrap_or(&e.gateway);
            let kube_state = get(format!("{kube}/_sandbox/state")).await?;
            let gateway_state = get(format!("{gateway}/_sandbox/state")).await?;
            envs.insert(name.clone(), summarise(&dir, e, &kube_state, &gateway_state));
        }
        if let Some(control) = &file.control {
            let outages = get(format!("{control}/outages")).await?;
            for (name, modes) in outages.as_object().into_iter().flatten() {
                if let Some(e) = envs.get_mut(name) {
                    e["outage"] = modes.clone();
                }
            }
        }
        let mut components = serde_json::Map::new();
        for (name, url) in &file.components {
            let state = match url.as_deref() {
                Some(url) if url.starts_with("file://") => {
                    let path = url.trim_start_matches("file://");
                    std::fs::read_to_string(path)
                        .ok()
                        .and_then(|t| serde_json::from_str(&t).ok())
                        .unwrap_or(Value::Null)
                }
                Some(url) => get(url.to_string()).await?,
                None => Value::Null,
            };
            components.insert(name.clone(), state);
        }
        Ok(json!({"dir": dir, "pid": file.pid, "environments": envs, "components": components}))
    })
}

/// `drscript sandbox status --dir DIR [--json]`: the text to show.
pub fn cli_status(dir: &Path, json: bool) -> Result<String> {
    let status = status_of(dir)?;
    Ok(if json { format!("{}\n", serde_json::to_string_pretty(&status).unwrap_or_default()) } else { render(&status) })
}

/// `drscript sandbox down --dir DIR`: stops the sandbox running there and waits until it is gone;
/// says what happened.
pub fn cli_down(dir: &Path) -> Result<String> {
    let file = folder::read_sandbox_file(dir)?;
    let sandbox_file = dir.join(folder::SANDBOX_FILE);
    if !drscript_base::sys::process_alive(file.pid) {
        let _ = std::fs::remove_file(&sandbox_file);
        return Ok(format!(
            "the sandbox of {} was not running (stale {} removed)",
            dir.display(),
            folder::SANDBOX_FILE
        ));
    }
    drscript_base::sys::signal(file.pid, drscript_base::sys::Signal::Terminate);
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    let mut pause = Duration::from_millis(10);
    while drscript_base::sys::process_alive(file.pid) && sandbox_file.exists() {
        if std::time::Instant::now() > deadline {
            return Err(Error::Other(format!("the sandbox (pid {}) did not stop within 15 s", file.pid)));
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(100));
    }
    Ok(format!("sandbox in {} stopped", dir.display()))
}

/// Serves `name`'s share folders through an Azure Files emulator of its own behind a gate: the
/// account is the environment's name, the shares are the folders `DIR/shares/NAME/SHARE`.
async fn remote_shares(
    dir: &Path,
    name: &str,
    share_paths: &BTreeMap<String, PathBuf>,
    faults: Option<std::sync::Arc<faults::Injector>>,
    entra: Option<&entra::Entra>,
) -> Result<(azure_files::FilesEmulator, outage::Gate, BTreeMap<String, String>, PathBuf)> {
    use base64::Engine;
    let key = base64::engine::general_purpose::STANDARD.encode(rand::random::<[u8; 32]>());
    drscript_base::redact::register(&key);
    let key_file = PathBuf::from(format!("secrets/{name}-files.key"));
    folder::write_secret(&dir.join(&key_file), &key)?;
    // With Entra ID: HTTPS under the sandbox CA, bearer tokens, and no account key (the key
    // file stays, so that a rehearsal can see a key refused).
    let security = match entra {
        Some(e) => azure_files::Security {
            tls: Some(e.server_tls("files.sandbox")?),
            entra: Some(azure_files::EntraAuth { verifier: e.verifier(), roles: e.roles(), allow_shared_key: false }),
        },
        None => azure_files::Security::default(),
    };
    let emulator =
        azure_files::start_with(dir.join("shares"), &[(name, &key)], "127.0.0.1:0", faults, security).await?;
    let gate = outage::Gate::front(emulator.addr).await?;
    let scheme = if entra.is_some() { "https" } else { "files+http" };
    let urls =
        share_paths.keys().map(|share| (share.clone(), format!("{scheme}://{}/{name}/{share}", gate.addr()))).collect();
    Ok((emulator, gate, urls, key_file))
}

/// The control endpoint of the sandbox running in `dir`, or why there is none.
fn running_control(dir: &Path) -> Result<String> {
    let file = folder::read_sandbox_file(dir)?;
    if !drscript_base::sys::process_alive(file.pid) {
        return Err(Error::Usage(format!("the sandbox of {} is not running", dir.display())));
    }
    file.control
        .clone()
        .ok_or_else(|| Error::Usage(format!("the sandbox of {} has no control endpoint (restart it)", dir.display())))
}

/// `drscript sandbox outage ENV PART... [--hang]` and `drscript sandbox restore ENV`: says what
/// is now out.
pub fn cli_outage(dir: &Path, env: &str, parts: &[String], hang: bool, restore: bool) -> Result<String> {
    let control = running_control(dir)?;
    let (path, body) = if restore {
        ("/restore", json!({"env": env}))
    } else {
        if parts.is_empty() {
            return Err(Error::Usage(
                "sandbox outage ENV PART...: name at least one of cluster, gateway, share, region".into(),
            ));
        }
        ("/outage", json!({"env": env, "parts": parts, "hang": hang}))
    };
    let reply = on_runtime(async move { control::request(&control, path, body).await })?;
    let modes: Vec<String> = reply["parts"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(part, mode)| format!("{part} {}", mode.as_str().unwrap_or("?")))
        .collect();
    Ok(format!("{env}: {}", modes.join(", ")))
}

/// `drscript sandbox role ACCOUNT PRINCIPAL ROLE`: assigns a Files data role (`reader`,
/// `contributor`, a role's full name, or `none`) to a principal's object id on an account of a
/// sandbox started with `--entra`; says what the principal now holds.
pub fn cli_role(dir: &Path, account: &str, principal: &str, role: &str) -> Result<String> {
    let control = running_control(dir)?;
    let role = if role.eq_ignore_ascii_case("none") {
        None
    } else {
        Some(entra::Role::parse(role).ok_or_else(|| {
            Error::Usage(format!("sandbox role: unknown role `{role}` (reader, contributor or none)"))
        })?)
    };
    let body = json!({"account": account, "principal": principal, "role": role.map(entra::Role::name)});
    let reply = on_runtime(async move { control::request(&control, "/roles", body).await })?;
    let now = reply[account][principal.to_ascii_lowercase()].as_str().unwrap_or("no role").to_string();
    Ok(format!("{principal} on {account}: {now}"))
}
