//! What one environment looks like right now, read without changing anything: the cluster and
//! the workloads, the gateway and the scheduler, the shares, the storage account. Every part is
//! read at the same time and within a time budget, and a part that cannot be read is a fact
//! (with its reason), never an error: an unreachable region is exactly what this must describe.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde::Serialize;

use crate::config::{Config, Environment, Share};
use crate::kube::{Cluster, Kind};
use drscript_sync::sas::Sas;
use drscript_sync::store::Store;

/// The Adeptia components a switch moves, with their kind. The workload is
/// `RELEASE-ac-COMPONENT` (as in the stdlib's `workload_name`).
pub const COMPONENTS: [(&str, Kind); 3] =
    [("runtime", Kind::Deployment), ("listener", Kind::Deployment), ("rabbitmq", Kind::StatefulSet)];

/// Whether a service answered, and why not.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Reach {
    pub reachable: bool,
    pub error: Option<String>,
}

impl Reach {
    fn ok() -> Reach {
        Reach { reachable: true, error: None }
    }
    fn failed(error: impl Into<String>) -> Reach {
        Reach { reachable: false, error: Some(drscript_base::redact::redacted(error.into())) }
    }
}

/// One workload: `spec.replicas`, ready pods, and the count the config restores.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Workload {
    pub name: String,
    pub desired: i32,
    pub ready: i32,
    /// The count this side serves at: the config's, or what the workload's HPA keeps of it.
    pub configured: i32,
    /// The workload's HorizontalPodAutoscaler.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hpa: Option<crate::kube::controllers::Hpa>,
    /// A controller that would undo a scale (a GitOps owner, KEDA): who, and the command that
    /// pauses it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub undone_by: Option<crate::kube::controllers::GitOps>,
}

/// Why a share cannot be read. Only `outage` is a reason a regional outage causes, and so a
/// reason to fail a storage account over.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ShareProblem {
    /// Connection refused or timed out, DNS failure, 5xx/503 from the service.
    Outage,
    /// 401/403: a bad or expired SAS, a firewall rule, a wrong key.
    Denied,
    /// The share or folder does not exist.
    Missing,
    /// Anything else (a local I/O error, a malformed answer).
    Other,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ShareFacts {
    pub name: String,
    pub reachable: bool,
    pub problem: Option<ShareProblem>,
    pub error: Option<String>,
    /// Whole days until the SAS expires (negative once expired).
    pub sas_days_left: Option<i64>,
    /// Seconds until the SAS expires (negative once expired): a switch refuses a SAS that
    /// expires before it can end.
    pub sas_seconds_left: Option<i64>,
    /// The SAS's permission letters (`sp`), when it says: a copy into the share needs `rwdlc`.
    pub sas_permissions: Option<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct StorageFacts {
    pub account: String,
    pub primary_location: Option<String>,
    pub last_sync_time: Option<String>,
    pub failover_in_progress: bool,
    /// Why the account cannot be failed over now (it already failed over and has no secondary
    /// left, it is not geo-redundant, Azure says `canFailover = false`); `None` when it can, or
    /// when a failover is running (it is followed).
    pub cannot_fail_over: Option<String>,
    pub error: Option<String>,
}

/// The scheduler as the gateway reports it.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Scheduler {
    Running,
    Paused,
    /// The gateway answered but did not say (its `query=Status` is an assumption of drscript's,
    /// not part of the documented procedure), or could not be asked.
    Unknown,
}

/// One environment right now.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SiteState {
    pub name: String,
    pub cluster: Reach,
    /// Keyed by component (`runtime`, `listener`, `rabbitmq`); empty when the cluster is unreachable.
    pub workloads: BTreeMap<String, Workload>,
    pub version: Option<String>,
    pub gateway: Reach,
    pub scheduler: Scheduler,
    pub scheduler_note: Option<String>,
    /// The gateway answered but refused drscript's credentials (or answered a login page): the
    /// scheduler could not be paused or resumed, so a switch touching this side is refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credentials_refused: Option<String>,
    /// The API server answered but the identity may not scale here (a `SelfSubjectAccessReview`
    /// said no): a switch touching this side is refused before anything changes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster_refused: Option<String>,
    pub shares: BTreeMap<String, ShareFacts>,
    pub storage: Option<StorageFacts>,
}

impl SiteState {
    /// What refuses drscript's credentials on this side, with the config key that fixes it:
    /// (what, why, fix). A switch touching this side is refused while any is there.
    pub fn refusals(&self) -> Vec<(&'static str, &str, String)> {
        let mut out = Vec::new();
        if let Some(why) = &self.credentials_refused {
            out.push((
                "the gateway",
                why.as_str(),
                format!(
                    "fix environments.{}.gateway_auth (the user, or the secret its password_env/password_file names)",
                    self.name
                ),
            ));
        }
        if let Some(why) = &self.cluster_refused {
            out.push((
                "the cluster",
                why.as_str(),
                format!(
                    "grant that identity `update` on deployments/scale and statefulsets/scale in the namespace (a Role and RoleBinding), or point environments.{}.kube_context at one that has it; `kubectl auth can-i update deployments/scale -n NAMESPACE` checks",
                    self.name
                ),
            ));
        }
        out
    }

    fn workload(&self, component: &str) -> Option<&Workload> {
        self.workloads.get(component)
    }

    /// Something in it takes work in: the listener wanted or running, or the scheduler running.
    /// The runtime does not count: it only executes what the listener and the scheduler hand it,
    /// and the DR document deploys the standby with its runtime up (only the listener at 0 and
    /// the scheduler paused at boot). `None` when that cannot be known (the listener cannot be
    /// read, or it is at 0 and the scheduler state is unknown).
    pub fn processing(&self) -> Option<bool> {
        let listener = self.workload("listener");
        let listening = listener.is_some_and(|w| w.desired > 0 || w.ready > 0);
        if listening || self.scheduler == Scheduler::Running {
            return Some(true);
        }
        if !self.cluster.reachable || listener.is_none() || self.scheduler == Scheduler::Unknown {
            return None;
        }
        Some(false)
    }

    /// A standby: the listener at 0 with no pod left and the scheduler paused (the runtime and
    /// RabbitMQ may run, as the document deploys DR).
    pub fn quiesced(&self) -> bool {
        self.processing() == Some(false)
    }

    /// Serving at the configured counts: every component ready, the scheduler running.
    pub fn serving(&self) -> bool {
        self.cluster.reachable
            && self.scheduler == Scheduler::Running
            && COMPONENTS
                .iter()
                .all(|(c, _)| self.workload(c).is_some_and(|w| w.ready >= w.configured && w.desired > 0))
    }

    /// Controllers that would undo a switch's scales here: (component, who, how to pause it).
    pub fn controllers(&self) -> Vec<(&str, &crate::kube::controllers::GitOps)> {
        self.workloads.iter().filter_map(|(c, w)| w.undone_by.as_ref().map(|g| (c.as_str(), g))).collect()
    }

    /// Cluster and gateway both answer.
    pub fn reachable(&self) -> bool {
        self.cluster.reachable && self.gateway.reachable
    }

    /// What about it stands in the way of serving, for the verdict's reasons.
    pub fn shortfalls(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(e) = &self.cluster.error {
            out.push(format!("{}: cluster unreachable: {e}", self.name));
        }
        if let Some(e) = &self.gateway.error {
            out.push(format!("{}: gateway unreachable: {e}", self.name));
        }
        for (c, _) in COMPONENTS {
            if let Some(w) = self.workload(c)
                && w.ready < w.configured
            {
                out.push(format!("{}: {c} {}/{} ready (wanted {})", self.name, w.ready, w.configured, w.desired));
            }
        }
        if self.scheduler != Scheduler::Running {
            out.push(format!("{}: scheduler {}", self.name, self.scheduler.name()));
        }
        out
    }

    /// This state as a dry run pictures it: workloads it scaled at their new counts and ready,
    /// schedulers it paused or resumed in their new state (nothing changes outside a dry run).
    pub fn picture(&mut self, pictured: &crate::exec::Pictured) {
        for w in self.workloads.values_mut() {
            if let Some(&n) = pictured.replicas.get(&(self.name.clone(), w.name.clone())) {
                (w.desired, w.ready) = (n, n);
            }
        }
        match pictured.schedulers.get(&self.name).map(String::as_str) {
            Some("RUNNING") => self.scheduler = Scheduler::Running,
            Some("PAUSED") => self.scheduler = Scheduler::Paused,
            _ => {}
        }
    }

    /// The share problem that matters for the storage decision (the application share first).
    pub fn share_problem(&self) -> Option<(&str, ShareProblem, &str)> {
        let mut shares: Vec<&ShareFacts> = self.shares.values().collect();
        shares.sort_by_key(|s| s.name != "app");
        shares.into_iter().find_map(|s| Some((s.name.as_str(), s.problem?, s.error.as_deref().unwrap_or(""))))
    }
}

impl Scheduler {
    pub fn name(self) -> &'static str {
        match self {
            Scheduler::Running => "running",
            Scheduler::Paused => "paused",
            Scheduler::Unknown => "unknown",
        }
    }
}

/// The replicas of `component` that the config restores when `env` becomes active; `None` when
/// the config omits it (then the live count stands in: see [`Workload::configured`]).
pub fn configured(env: &Environment, component: &str) -> Option<i32> {
    env.replicas_of(component).map(|n| i32::try_from(n).unwrap_or(i32::MAX))
}

/// How long each part may take before it counts as unreachable ("timed out after …").
#[derive(Debug, Clone, Copy)]
pub struct Budget(pub Duration);

impl Default for Budget {
    fn default() -> Self {
        Budget(Duration::from_secs(8))
    }
}

async fn within<T>(budget: Budget, what: &str, f: impl Future<Output = crate::Result<T>>) -> Result<T, String> {
    match tokio::time::timeout(budget.0, f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("{what}: no answer within {:.0}s (timed out)", budget.0.as_secs_f64())),
    }
}

/// Reads `env` (all parts at once).
pub async fn read(config: &Config, env: &Environment, budget: Budget) -> SiteState {
    let base = config.path.parent().unwrap_or(Path::new("."));
    let (cluster, (gateway, scheduler, note, credentials_refused), shares, storage) =
        tokio::join!(read_cluster(env, budget), read_scheduler(env, base, budget), read_shares(env, budget), async {
            match &env.storage_account {
                Some(account) => Some(read_storage(config, account, budget).await),
                None => None,
            }
        });
    let (cluster, workloads, version, cluster_refused) = cluster;
    SiteState {
        name: env.name.clone(),
        cluster,
        workloads,
        version,
        gateway,
        scheduler,
        scheduler_note: note,
        credentials_refused,
        cluster_refused,
        shares,
        storage,
    }
}

type ClusterReading = (Reach, BTreeMap<String, Workload>, Option<String>, Option<String>);

async fn read_cluster(env: &Environment, budget: Budget) -> ClusterReading {
    // An API server that listens but answered errors (a busy or flaky server, not a lost region)
    // is asked again while the budget lasts, as the gateway is: one bad answer must not read as
    // a region down. A server that does not listen, or never answers, is down at once.
    let started = std::time::Instant::now();
    let mut reading = read_cluster_once(env, budget).await;
    for _ in 0..2 {
        let left = budget.0.saturating_sub(started.elapsed());
        if reading.0.reachable || left < Duration::from_millis(500) {
            break;
        }
        let listens = match Cluster::connect(env).await {
            Ok(c) => listening("the API server", &c.server).await.is_ok(),
            Err(_) => false,
        };
        if !listens {
            break;
        }
        tracing::debug!("{}: the API server answered errors; asking again", env.name);
        reading = read_cluster_once(env, Budget(left)).await;
    }
    reading
}

async fn read_cluster_once(env: &Environment, budget: Budget) -> ClusterReading {
    let read = async {
        let cluster = Cluster::connect(env).await?;
        listening("the API server", &cluster.server).await.map_err(|e| {
            crate::Error::action("site_state", format!("{} API server {}", env.name, cluster.server), e)
        })?;
        let reads = COMPONENTS.iter().map(|(component, kind)| {
            let cluster = &cluster;
            async move {
                let name = env.workload_name(component);
                crate::kube::workload(cluster, *kind, &name).await.map(|info| (*component, info))
            }
        });
        let (infos, rights, hpas) = tokio::join!(
            futures::future::try_join_all(reads),
            cluster.missing_scale_rights(),
            crate::kube::controllers::hpas(&cluster)
        );
        let hpas = hpas.unwrap_or_else(|e| {
            tracing::debug!("{}: cannot list the HPAs: {e}", env.name);
            Vec::new()
        });
        let refused = match rights {
            Ok(missing) if missing.is_empty() => None,
            Ok(missing) => Some(format!(
                "the identity of context {} may not {} in namespace {} (SelfSubjectAccessReview)",
                cluster.context,
                missing.join(", "),
                cluster.namespace
            )),
            // Not an answer about rights (an old server, a lost reply): the scale itself will say.
            Err(e) => {
                tracing::debug!("{}: cannot ask the API server what drscript may do: {e}", env.name);
                None
            }
        };
        let infos = infos?
            .into_iter()
            .map(|(c, info)| {
                let kind = COMPONENTS.iter().find(|(name, _)| *name == c).map_or(Kind::Deployment, |(_, k)| *k);
                let hpa = crate::kube::controllers::hpa_for(&hpas, kind, &info.name);
                (c, info, hpa)
            })
            .collect::<Vec<_>>();
        Ok((infos, refused))
    };
    match within(budget, "the API server", read).await {
        Err(e) => (Reach::failed(e), BTreeMap::new(), None, None),
        Ok((infos, refused)) => {
            let version = infos.iter().find(|(c, _, _)| *c == "runtime").map(|(_, i, _)| i.version.clone());
            let workloads = infos
                .into_iter()
                .map(|(c, info, hpa)| {
                    // A count the config omits: what the workload runs now stands in for it.
                    let configured = configured(env, c).unwrap_or(info.replicas);
                    let undone_by = info.gitops.clone().or_else(|| {
                        let h = hpa.as_ref()?;
                        let owner = h.keda.as_ref()?;
                        Some(crate::kube::controllers::GitOps {
                            owner: format!("KEDA ScaledObject {owner} (through HPA {})", h.name),
                            pause: format!(
                                "kubectl -n {} annotate scaledobject {owner} autoscaling.keda.sh/paused=true",
                                env.namespace
                            ),
                        })
                    });
                    let w = Workload {
                        name: info.name,
                        desired: info.replicas,
                        ready: info.ready,
                        configured: hpa.as_ref().map_or(configured, |h| h.keeps(configured)),
                        hpa,
                        undone_by,
                    };
                    (c.to_string(), w)
                })
                .collect();
            (Reach::ok(), workloads, version.filter(|v| !v.is_empty()), refused)
        }
    }
}

/// Whether anything listens at the URL's host and port: a refused connection is an answer in
/// milliseconds, where a client's retry budget for an unreachable server would take seconds.
async fn listening(what: &str, url: &str) -> Result<(), String> {
    let parsed = url::Url::parse(url).map_err(|e| format!("not a URL: {e}"))?;
    let host = parsed.host_str().ok_or("no host")?.trim_matches(['[', ']']).to_string();
    let port = parsed.port_or_known_default().ok_or("no port")?;
    match tokio::net::TcpStream::connect((host.as_str(), port)).await {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
            Err(format!("cannot reach {what}: connection refused ({host}:{port})"))
        }
        // Anything else (a slow network, a DNS hiccup) is for the real request to judge.
        Err(_) => Ok(()),
    }
}

/// What the gateway says of the scheduler: whether it answers, the state, a note on an unknown
/// state, and a refusal of drscript's credentials.
type SchedulerReading = (Reach, Scheduler, Option<String>, Option<String>);

async fn read_scheduler(env: &Environment, base: &Path, budget: Budget) -> SchedulerReading {
    if let Err(e) = listening("the gateway", &env.gateway).await {
        return (Reach::failed(format!("{} gateway {}: {e}", env.name, env.gateway)), Scheduler::Unknown, None, None);
    }
    // The gateway accepts connections: an answer lost on the way (a reset, a slow reply) is
    // asked again while the budget lasts, so that one lost packet never reads as a region down
    // (and sends a switch down the region-down branch). A black hole eats the budget at once.
    let started = std::time::Instant::now();
    let mut read = within(budget, "the gateway", crate::scheduler::read_scheduler(env, base)).await;
    for _ in 0..2 {
        let left = budget.0.saturating_sub(started.elapsed());
        match &read {
            Err(e) if gateway_unreachable(e) && left > Duration::from_millis(500) => {
                tracing::debug!("{} gateway: {e}; asking again", env.name);
                read = within(Budget(left), "the gateway", crate::scheduler::read_scheduler(env, base)).await;
            }
            _ => break,
        }
    }
    match read {
        Ok(reading) => match reading.state.as_deref() {
            Some("RUNNING") => (Reach::ok(), Scheduler::Running, None, None),
            Some("PAUSED") => (Reach::ok(), Scheduler::Paused, None, None),
            Some(other) => (Reach::ok(), Scheduler::Unknown, Some(format!("the gateway reports `{other}`")), None),
            None => (Reach::ok(), Scheduler::Unknown, reading.note, reading.denied),
        },
        Err(e) if gateway_unreachable(&e) => (Reach::failed(e), Scheduler::Unknown, None, None),
        Err(e) if crate::scheduler::credentials_refused(&e) => {
            (Reach::ok(), Scheduler::Unknown, Some(format!("drscript is not let in: {e}")), Some(e))
        }
        // The gateway answered, just not with a state: `query=Status` is not in Adeptia's
        // documented procedure, so a gateway that does not know it is not an outage.
        Err(e) => (
            Reach::ok(),
            Scheduler::Unknown,
            Some(format!("cannot read the scheduler state (query=Status is an assumption of drscript's): {e}")),
            None,
        ),
    }
}

fn gateway_unreachable(error: &str) -> bool {
    error.contains("cannot reach") || error.contains("timed out")
}

async fn read_shares(env: &Environment, budget: Budget) -> BTreeMap<String, ShareFacts> {
    let reads = env.shares.iter().map(|(name, share)| async move {
        let facts = read_share(name, share, "", budget).await;
        (name.clone(), facts)
    });
    futures::future::join_all(reads).await.into_iter().collect()
}

/// Whole days until the share's SAS expires, when it has one with an expiry.
pub fn sas_days_left(share: &Share) -> Option<i64> {
    sas_seconds_left(share).map(|s| s / 86_400)
}

/// Seconds until the share's SAS expires, when it has one with an expiry.
pub fn sas_seconds_left(share: &Share) -> Option<i64> {
    let sas = share.sas.as_ref()?.resolve().ok()?;
    Sas::parse(&sas).expiry.map(|expiry| (expiry - chrono::Utc::now()).num_seconds())
}

/// The share's SAS permission letters (`sp`), when it has a SAS that says.
pub fn sas_permissions(share: &Share) -> Option<String> {
    let sas = share.sas.as_ref()?.resolve().ok()?;
    Sas::parse(&sas).permissions
}

/// How a share read is asked again after a retryable answer: a few quick tries, inside the
/// part's budget.
const SHARE_READ: drscript_base::retry::Policy =
    drscript_base::retry::Policy::new(4, Duration::from_millis(200), Duration::from_secs(2));

/// Can the share (or its folder `sub`) be listed, and if not, why: the test behind the storage
/// decision.
pub async fn read_share(name: &str, share: &Share, sub: &str, budget: Budget) -> ShareFacts {
    let sas_days_left = sas_days_left(share);
    let probe_once = || async {
        let endpoint = share.endpoint(sub).map_err(|e| (false, (ShareProblem::Other, e.to_string())))?;
        let store = Store::open(&endpoint).map_err(|e| (false, (ShareProblem::Other, e.to_string())))?;
        match store.root_exists().await {
            Ok(true) => store.list("", false).await.map(drop).map_err(|e| (answered_busy(&e), classify(&e))),
            Ok(false) => {
                let path = if sub.is_empty() { String::new() } else { format!("/{sub}") };
                let missing = format!("{}{path} does not exist", share.location().trim_end_matches('/'));
                Err((false, (ShareProblem::Missing, missing)))
            }
            Err(e) => Err((answered_busy(&e), classify(&e))),
        }
    };
    // A throttled answer (503 ServerBusy, 500 OperationTimedOut) is not an outage: asked again
    // within the budget, so that a busy service never proposes a storage account failover.
    let probe = async {
        let mut retry = SHARE_READ.start();
        loop {
            match probe_once().await {
                Ok(()) => return Ok(()),
                Err((true, problem)) => match retry.next(None) {
                    Some(wait) => tokio::time::sleep(wait).await,
                    None => return Err(problem),
                },
                Err((_, problem)) => return Err(problem),
            }
        }
    };
    let outcome = match tokio::time::timeout(budget.0, probe).await {
        Ok(r) => r,
        Err(_) => Err((ShareProblem::Outage, format!("no answer within {:.0}s (timed out)", budget.0.as_secs_f64()))),
    };
    match outcome {
        Ok(()) => ShareFacts {
            name: name.to_string(),
            reachable: true,
            problem: None,
            error: None,
            sas_days_left,
            sas_seconds_left: sas_seconds_left(share),
            sas_permissions: sas_permissions(share),
        },
        Err((problem, mut error)) => {
            if problem == ShareProblem::Denied
                && let Some(days) = sas_days_left.filter(|d| *d < 0)
            {
                error = format!("{error} (its SAS expired {} day(s) ago)", -days);
            }
            ShareFacts {
                name: name.to_string(),
                reachable: false,
                problem: Some(problem),
                error: Some(drscript_base::redact::redacted(error)),
                sas_days_left,
                sas_seconds_left: sas_seconds_left(share),
                sas_permissions: sas_permissions(share),
            }
        }
    }
}

/// Whether the service answered but was busy (a retryable status), as opposed to not answering
/// at all (refused, no DNS): only the first is asked again before it counts as an outage.
fn answered_busy(e: &drscript_sync::op_error::OpError) -> bool {
    e.retryable && !NO_ANSWER.iter().any(|m| e.message.contains(m))
}

/// How a client's error says that the service did not answer at all.
const NO_ANSWER: [&str; 4] = ["refused", "timed out", "dns error", "failed to lookup"];

/// The kind of problem behind a failed share operation.
pub fn classify(e: &drscript_sync::op_error::OpError) -> (ShareProblem, String) {
    let text = e.message.clone();
    let problem = if e.not_found {
        ShareProblem::Missing
    } else if [" 401", " 403", "401 ", "403 ", "AuthenticationFailed", "AuthorizationFailure"]
        .iter()
        .any(|m| text.contains(m))
    {
        ShareProblem::Denied
    } else if e.retryable || NO_ANSWER.iter().chain(&["Connection reset"]).any(|m| text.contains(m)) {
        ShareProblem::Outage
    } else {
        ShareProblem::Other
    };
    (problem, text)
}

async fn read_storage(config: &Config, name: &str, budget: Budget) -> StorageFacts {
    let read = async {
        let account = crate::azure::storage::account(config, name)?.clone();
        let client = crate::azure::ArmClient::from_config(config)?;
        crate::azure::storage::fetch_status(&client, name, &account).await
    };
    match within(budget, "Azure Resource Manager", read).await {
        Ok(s) => StorageFacts {
            cannot_fail_over: crate::azure::storage::cannot_fail_over(&s),
            account: name.to_string(),
            primary_location: Some(s.primary_location).filter(|l| !l.is_empty()),
            last_sync_time: s.last_sync_time,
            failover_in_progress: s.failover_in_progress,
            error: None,
        },
        Err(e) => StorageFacts {
            account: name.to_string(),
            primary_location: None,
            last_sync_time: None,
            failover_in_progress: false,
            cannot_fail_over: None,
            error: Some(drscript_base::redact::redacted(e)),
        },
    }
}
