//! The shared state (`[state] backend = "azure-blob"`): one lock and one run history for every
//! operator's drscript, in a Blob container.
//!
//! The local state directory stays the working copy — the journal is written there first, and
//! the readers (`site::history`, `StateDir`, `resume`) read only it. The container holds:
//!
//! - `lock`: an empty blob whose **lease** is the lock. A run acquires it for `lease_seconds`
//!   (60 by default) and a thread renews it four times a lease while the run lives; its metadata
//!   names the holder (who, run, runbook, direction, started, last renewal). A second run is
//!   refused naming it. A run whose lease cannot be renewed in time (the network is cut, someone
//!   broke it) raises a flag that [`crate::exec::Exec`] checks before every change: it stops
//!   before its next change and says so.
//! - `runs/RUN/journal.jsonl`: each run's journal, uploaded whole within a second of every
//!   write and at the end (a journal is small; a whole upload is idempotent, so an upload that
//!   failed is simply made again later).
//! - `events/TIME-lock-broken.json`: who broke the lock with `drscript unlock --force`, and whose
//!   lock it was.
//!
//! Before a run (and `resume`) the two sides are reconciled journal by journal: a journal is only
//! ever appended to, so the longer copy wins — a shorter local copy is replaced, a longer one
//! (a run made with `--state local`, or one whose uploads failed mid-run) is uploaded. `status`
//! and `runs` pull only. A journal this version cannot read (another drscript version) is never
//! overwritten nor dropped: it stays in the container and a copy is kept beside the state
//! directory, named in a warning.

mod blob;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use chrono::Utc;
use serde::Serialize;

use crate::config::{Config, StateBackend};
use crate::journal;
use crate::state::{self, StateDir};
use drscript_base::error::{Error, Result};
use drscript_sync::StorageCredential;

pub use blob::{BlobError, Container};

const LOCK: &str = "lock";
const DEFAULT_LEASE: u32 = 60;

/// An open shared state.
#[derive(Debug, Clone)]
pub struct Shared {
    container: Container,
    lease_seconds: u32,
}

/// Who holds (or last held) the lock, from the lock blob's metadata.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Holder {
    pub by: String,
    pub run: String,
    pub runbook: String,
    pub from: String,
    pub to: String,
    pub started: String,
    pub renewed: String,
    pub pid: String,
    pub version: String,
}

impl Holder {
    fn from_metadata(m: &BTreeMap<String, String>) -> Holder {
        let get = |k: &str| m.get(k).cloned().unwrap_or_default();
        Holder {
            by: get("by"),
            run: get("run"),
            runbook: get("runbook"),
            from: get("from"),
            to: get("to"),
            started: get("started"),
            renewed: get("renewed"),
            pid: get("pid"),
            version: get("version"),
        }
    }

    fn metadata(&self) -> BTreeMap<String, String> {
        [
            ("by", &self.by),
            ("run", &self.run),
            ("runbook", &self.runbook),
            ("from", &self.from),
            ("to", &self.to),
            ("started", &self.started),
            ("renewed", &self.renewed),
            ("pid", &self.pid),
            ("version", &self.version),
        ]
        .into_iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
    }

    /// `run R of failover.rhai (prod → dr) by alice@laptop1, started T, last renewed T`.
    pub fn describe(&self) -> String {
        let direction = match (self.from.as_str(), self.to.as_str()) {
            ("", "") => String::new(),
            (from, to) => format!(" ({} → {})", or_q(from), or_q(to)),
        };
        format!(
            "run {} of {}{direction} by {}{}, started {}, last renewed {}",
            or_q(&self.run),
            or_q(&self.runbook),
            or_q(&self.by),
            if self.pid.is_empty() { String::new() } else { format!(" (pid {})", self.pid) },
            or_q(&self.started),
            or_q(&self.renewed)
        )
    }
}

fn or_q(s: &str) -> &str {
    if s.is_empty() { "?" } else { s }
}

fn now() -> String {
    Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// A lock broken with `drscript unlock --force`.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct Broken {
    pub by: String,
    pub at: String,
    pub holder: String,
}

/// What `status` and `runs` show of the shared state.
#[derive(Debug, Clone, Serialize, Default)]
pub struct View {
    pub location: String,
    /// The lock's holder while its lease lives.
    pub holder: Option<Holder>,
    /// The last locks broken by force, newest first.
    pub broken: Vec<Broken>,
    /// Journals this version cannot read, with where their copy is kept.
    pub unreadable: Vec<String>,
    /// Why the shared state could not be read (then only this machine's runs are shown).
    pub error: Option<String>,
}

impl View {
    pub fn text(&self) -> String {
        let mut out = format!("Shared state: {}\n", self.location);
        if let Some(e) = &self.error {
            out.push_str(&format!("  not reachable ({e}): showing this machine's runs only\n"));
            return out;
        }
        match &self.holder {
            Some(h) => out.push_str(&format!("  Lock: held by {}\n", h.describe())),
            None => out.push_str("  Lock: free\n"),
        }
        for b in self.broken.iter().take(5) {
            out.push_str(&format!("  Lock broken by {} at {} (it was held by {})\n", b.by, b.at, b.holder));
        }
        for u in &self.unreadable {
            out.push_str(&format!("  {u}\n"));
        }
        out
    }
}

/// What a reconciliation moved.
#[derive(Debug, Default)]
pub struct Reconciled {
    pub pulled: Vec<String>,
    pub pushed: Vec<String>,
    pub unreadable: Vec<String>,
}

impl Shared {
    /// The shared state the config names; `None` for the local state directory alone. The
    /// credential is resolved here.
    pub fn open(config: &Config) -> Result<Option<Shared>> {
        let Some(state) = &config.state else { return Ok(None) };
        if state.backend == StateBackend::Local {
            return Ok(None);
        }
        let url = state.url.as_deref().unwrap_or_default();
        let credential = if state.auth == Some(crate::config::ShareAuth::Entra) {
            Some(StorageCredential::Token(std::sync::Arc::new(config.credential.get()?)))
        } else if let Some(sas) = &state.sas {
            Some(StorageCredential::Sas(sas.resolve()?.trim_start_matches('?').to_string()))
        } else if let Some(key) = &state.account_key {
            Some(StorageCredential::SharedKey(key.resolve()?))
        } else {
            None
        };
        Ok(Some(Shared {
            container: Container::new(url, credential, config.azure.as_ref().and_then(|a| a.extra_roots.clone()))?,
            lease_seconds: state.lease_seconds.unwrap_or(DEFAULT_LEASE),
        }))
    }

    pub fn location(&self) -> String {
        self.container.location()
    }

    /// The refusal of a run whose shared state does not answer (exit 2).
    pub fn unreachable(&self, e: &BlobError) -> Error {
        Error::Refused(format!(
            "the shared state {} cannot be used: {e}; nothing was changed. Retry when it answers, or run on this machine's state alone with --state local (recorded in the journal, and uploaded by the next run that reaches the shared state)",
            self.location()
        ))
    }

    /// Checks that the container answers (creating it when missing) and reconciles the runs
    /// with `state` (both ways); any failure refuses the run.
    pub fn connect(&self, state: &StateDir) -> Result<Reconciled> {
        self.container.ensure().map_err(|e| self.unreachable(&e))?;
        let reconciled = self.reconcile(state, true).map_err(|e| self.unreachable(&e))?;
        for id in &reconciled.pushed {
            tracing::info!("run {id} uploaded to the shared state {}", self.location());
        }
        for u in &reconciled.unreadable {
            tracing::warn!("{u}");
        }
        Ok(reconciled)
    }

    /// Journals: the longer copy wins; `push` uploads the longer local ones.
    pub fn reconcile(&self, state: &StateDir, push: bool) -> std::result::Result<Reconciled, BlobError> {
        let mut done = Reconciled::default();
        let remote: BTreeMap<String, u64> = self
            .container
            .list("runs/")?
            .into_iter()
            .filter_map(|(name, size)| {
                let id = name.strip_prefix("runs/")?.strip_suffix("/journal.jsonl")?;
                (!id.contains('/')).then(|| (id.to_string(), size))
            })
            .collect();
        let local: BTreeMap<String, u64> = state
            .runs()
            .unwrap_or_default()
            .into_iter()
            .map(|id| {
                let size = std::fs::metadata(state.run_dir(&id).join("journal.jsonl")).map_or(0, |m| m.len());
                (id, size)
            })
            .collect();
        for (id, &size) in &remote {
            if local.get(id).is_some_and(|&l| l >= size) {
                continue;
            }
            let name = format!("runs/{id}/journal.jsonl");
            let Some(bytes) = self.container.get(&name)? else { continue };
            let text = String::from_utf8_lossy(&bytes).into_owned();
            let lines: Vec<String> = text.lines().map(str::to_string).collect();
            match journal::parse(&lines, &self.container.blob_url(&name)) {
                Ok(records) => {
                    let dir = state.run_dir(id);
                    let written = state::create_private_dir(&dir)
                        .and_then(|()| state::write_private(&dir.join("journal.jsonl"), &text))
                        .and_then(|()| crate::runner::write_reports(&dir, &records));
                    match written {
                        Ok(()) => done.pulled.push(id.clone()),
                        Err(e) => tracing::warn!("run {id} from the shared state: {e}"),
                    }
                }
                Err(e) => {
                    let version = lines
                        .iter()
                        .find_map(|l| {
                            let v: serde_json::Value = serde_json::from_str(l).ok()?;
                            v["version"].as_str().map(str::to_string)
                        })
                        .unwrap_or_else(|| "unknown".to_string());
                    let keep = unreadable_dir(state).join(format!("{id}.jsonl"));
                    let _ = state::create_private_dir(&unreadable_dir(state));
                    let _ = state::write_private(&keep, &text);
                    done.unreadable.push(format!(
                        "run {id} was journaled by drscript {version} and this drscript {} cannot read it ({e}); it is kept unchanged in {} and copied to {}: read it with that version",
                        crate::identity::VERSION,
                        self.container.blob_url(&name),
                        keep.display()
                    ));
                }
            }
        }
        if push {
            for (id, &size) in &local {
                if remote.get(id).is_some_and(|&r| r >= size) || size == 0 {
                    continue;
                }
                let bytes = std::fs::read(state.run_dir(id).join("journal.jsonl")).unwrap_or_default();
                self.container.put(&format!("runs/{id}/journal.jsonl"), bytes)?;
                done.pushed.push(id.clone());
            }
        }
        Ok(done)
    }

    /// What `status` and `runs` show, after pulling the runs into `state` (read-only otherwise:
    /// an unreachable shared state is shown, not an error).
    pub fn view(&self, state_dir: &Path) -> View {
        let mut view = View { location: self.location(), ..View::default() };
        let result = (|| -> std::result::Result<(), BlobError> {
            if let Ok(state) = StateDir::open(state_dir) {
                view.unreadable = self.reconcile(&state, false)?.unreadable;
            }
            view.holder = self.holder()?;
            view.broken = self.broken()?;
            Ok(())
        })();
        if let Err(e) = result {
            view.error = Some(e.to_string());
        }
        view
    }

    /// The holder while the lock's lease lives.
    pub fn holder(&self) -> std::result::Result<Option<Holder>, BlobError> {
        let Some(props) = self.container.properties(LOCK)? else { return Ok(None) };
        let leased = props.header("x-ms-lease-state") == Some("leased");
        Ok(leased.then(|| Holder::from_metadata(&props.metadata())))
    }

    /// The locks broken by force, newest first.
    pub fn broken(&self) -> std::result::Result<Vec<Broken>, BlobError> {
        let mut names: Vec<String> = self.container.list("events/")?.into_iter().map(|(n, _)| n).collect();
        names.sort();
        names.reverse();
        let mut out = Vec::new();
        for name in names.iter().filter(|n| n.ends_with("-lock-broken.json")).take(10) {
            if let Some(bytes) = self.container.get(name)?
                && let Ok(b) = serde_json::from_slice::<Broken>(&bytes)
            {
                out.push(b);
            }
        }
        Ok(out)
    }

    /// Takes the lock for `run`: refused (exit 4) naming the holder while another run's lease
    /// lives.
    pub fn lock(&self, run: &str, runbook: &str, vars: &BTreeMap<String, String>) -> Result<SharedLock> {
        self.container.create_if_missing(LOCK).map_err(|e| self.unreachable(&e))?;
        let lease_id = lease_id();
        let acquired = self
            .container
            .lease(
                LOCK,
                "acquire",
                &[
                    ("x-ms-lease-duration", self.lease_seconds.to_string()),
                    ("x-ms-proposed-lease-id", lease_id.clone()),
                ],
                &[409],
            )
            .map_err(|e| self.unreachable(&e))?;
        if acquired.status == 409 {
            let holder = self.holder().ok().flatten().map_or_else(|| "another run".to_string(), |h| h.describe());
            return Err(Error::LockHeld(format!(
                "the shared lock {} is held by {holder}; wait for it to finish, or, if its holder is gone, break it with `drscript unlock --force` (recorded)",
                self.container.blob_url(LOCK)
            )));
        }
        let started = now();
        let holder = Holder {
            by: crate::identity::by().to_string(),
            run: run.to_string(),
            runbook: runbook.to_string(),
            from: vars.get("from").cloned().unwrap_or_default(),
            to: vars.get("to").cloned().unwrap_or_default(),
            started: started.clone(),
            renewed: started,
            pid: std::process::id().to_string(),
            version: crate::identity::VERSION.to_string(),
        };
        if let Err(e) = self.container.set_metadata(LOCK, &lease_id, &holder.metadata()) {
            let _ = self.container.lease(LOCK, "release", &[("x-ms-lease-id", lease_id.clone())], &[409]);
            return Err(self.unreachable(&e));
        }
        tracing::debug!("shared lock {} taken for run {run}", self.container.blob_url(LOCK));
        Ok(SharedLock::start(self.clone(), lease_id, holder))
    }

    /// `drscript unlock`: a lock whose lease lives is broken only with `force`, and the break is
    /// recorded (who, when, whose lock). Returns what happened, for the operator.
    pub fn unlock(&self, force: bool) -> Result<String> {
        let props = self.container.properties(LOCK).map_err(|e| self.unreachable(&e))?;
        let Some(props) = props else {
            return Ok(format!("the shared lock {} was never taken: nothing to unlock", self.location()));
        };
        let holder = Holder::from_metadata(&props.metadata());
        let lease = props.header("x-ms-lease-state").unwrap_or("available").to_string();
        if lease != "leased" {
            return Ok(format!(
                "the shared lock {} is free (lease {lease}; last held by {}): the next run takes it",
                self.container.blob_url(LOCK),
                holder.describe()
            ));
        }
        if !force {
            return Err(Error::LockHeld(format!(
                "the shared lock {} is held by {}; if that run is gone, break it with `drscript unlock --force` (recorded)",
                self.container.blob_url(LOCK),
                holder.describe()
            )));
        }
        self.container
            .lease(LOCK, "break", &[("x-ms-lease-break-period", "0".to_string())], &[409])
            .map_err(|e| self.unreachable(&e))?;
        let at = now();
        let broken = Broken { by: crate::identity::by().to_string(), at: at.clone(), holder: holder.describe() };
        let name = format!("events/{}-lock-broken.json", Utc::now().format("%Y%m%dT%H%M%S%.3fZ"));
        self.container
            .put(&name, serde_json::to_vec_pretty(&broken).unwrap_or_default())
            .map_err(|e| self.unreachable(&e))?;
        tracing::warn!("shared lock broken by {} (it was held by {})", broken.by, broken.holder);
        Ok(format!(
            "broke the shared lock {} held by {}; recorded as broken by {} at {at}",
            self.container.blob_url(LOCK),
            broken.holder,
            broken.by
        ))
    }

    /// Uploads `journal` (run `run_id`) after each write — and before the run goes on after a
    /// step finished, while the shared state answers — and once more when the returned mirror is
    /// dropped. A failed upload is a warning: the journal is kept locally and the next run
    /// uploads it.
    pub fn mirror(&self, run_id: &str, journal: &Path) -> Mirror {
        let (tx, rx) = mpsc::channel::<Nudge>();
        let failing = Arc::new(AtomicBool::new(false));
        let shared = self.clone();
        let name = format!("runs/{run_id}/journal.jsonl");
        let path = journal.to_path_buf();
        let down = failing.clone();
        let thread = std::thread::spawn(move || {
            let mut sent: Option<u64> = None;
            loop {
                let (last, ack) = match rx.recv_timeout(Duration::from_secs(1)) {
                    Ok(Nudge::Written(ack)) => (false, ack),
                    Err(mpsc::RecvTimeoutError::Timeout) => (false, None),
                    Ok(Nudge::Stop) | Err(mpsc::RecvTimeoutError::Disconnected) => (true, None),
                };
                let size = std::fs::metadata(&path).map_or(0, |m| m.len());
                if sent != Some(size) {
                    match shared.container.put(&name, std::fs::read(&path).unwrap_or_default()) {
                        Ok(()) => {
                            sent = Some(size);
                            if down.swap(false, Ordering::SeqCst) {
                                tracing::info!(
                                    "the shared state {} answers again: journal uploaded",
                                    shared.location()
                                );
                            }
                        }
                        Err(e) => {
                            if !down.swap(true, Ordering::SeqCst) {
                                tracing::warn!(
                                    "cannot upload the journal to the shared state ({e}): it is kept in {} and uploaded by the next run",
                                    path.display()
                                );
                            }
                        }
                    }
                }
                if let Some(ack) = ack {
                    let _ = ack.send(());
                }
                if last {
                    return;
                }
            }
        });
        Mirror { tx, failing, thread: Some(thread) }
    }
}

enum Nudge {
    /// A record was written; the sender, when there is one, waits for the upload.
    Written(Option<mpsc::Sender<()>>),
    Stop,
}

fn unreadable_dir(state: &StateDir) -> PathBuf {
    state.root().join("shared-unreadable")
}

/// A random lease id (a version-4 UUID, as Lease Blob requires a GUID).
fn lease_id() -> String {
    let b: [u8; 16] = rand::random();
    let h = hex::encode(b);
    format!("{}-{}-4{}-8{}-{}", &h[0..8], &h[8..12], &h[13..16], &h[17..20], &h[20..32])
}

/// The journal's uploader; see [`Shared::mirror`].
pub struct Mirror {
    tx: mpsc::Sender<Nudge>,
    failing: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Mirror {
    /// The journal's [`journal::AfterWrite`]: a durable record waits (at most a few seconds)
    /// for its upload while the shared state answers, so that a laptop that dies right after a
    /// step leaves that step finished in the container too.
    pub fn hook(&self) -> journal::AfterWrite {
        let tx = self.tx.clone();
        let failing = self.failing.clone();
        Box::new(move |durable| {
            if durable && !failing.load(Ordering::SeqCst) {
                let (ack, acked) = mpsc::channel();
                if tx.send(Nudge::Written(Some(ack))).is_ok() {
                    let _ = acked.recv_timeout(Duration::from_secs(3));
                }
            } else {
                let _ = tx.send(Nudge::Written(None));
            }
        })
    }
}

impl Drop for Mirror {
    fn drop(&mut self) {
        let _ = self.tx.send(Nudge::Stop);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The shared lock, renewed by a thread while it lives and released when dropped.
pub struct SharedLock {
    lost: Arc<AtomicBool>,
    stop: Option<mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    shared: Shared,
    lease_id: String,
}

impl SharedLock {
    fn start(shared: Shared, lease_id: String, mut holder: Holder) -> SharedLock {
        let lost = Arc::new(AtomicBool::new(false));
        let (stop, stopped) = mpsc::channel::<()>();
        let lease = Duration::from_secs(u64::from(shared.lease_seconds));
        let every = lease / 4;
        let (s, id, flag) = (shared.clone(), lease_id.clone(), lost.clone());
        let thread = std::thread::spawn(move || {
            let mut renewed = Instant::now();
            loop {
                match stopped.recv_timeout(every) {
                    Err(mpsc::RecvTimeoutError::Timeout) => {}
                    _ => return,
                }
                match s.container.lease(LOCK, "renew", &[("x-ms-lease-id", id.clone())], &[]) {
                    Ok(_) => {
                        renewed = Instant::now();
                        holder.renewed = now();
                        if let Err(e) = s.container.set_metadata(LOCK, &id, &holder.metadata()) {
                            tracing::debug!("shared lock: cannot record the renewal: {e}");
                        }
                    }
                    // Broken, or taken by another run after it expired.
                    Err(e) if e.status.is_some_and(|st| st == 409 || st == 412) => {
                        tracing::error!(
                            "the shared lock's lease was lost ({e}): this run stops before its next change"
                        );
                        flag.store(true, Ordering::SeqCst);
                        return;
                    }
                    Err(e) => {
                        // The next renewal would come after the lease ends: from now on another
                        // run may take the lock.
                        if renewed.elapsed() + every >= lease {
                            tracing::error!(
                                "the shared lock's lease could not be renewed for {}s ({e}): this run stops before its next change",
                                renewed.elapsed().as_secs()
                            );
                            flag.store(true, Ordering::SeqCst);
                            return;
                        }
                        tracing::warn!("cannot renew the shared lock's lease ({e}); trying again");
                    }
                }
            }
        });
        SharedLock { lost, stop: Some(stop), thread: Some(thread), shared, lease_id }
    }

    /// Raised when the lease is lost: [`crate::exec::Exec`] refuses every change after it.
    pub fn lost_flag(&self) -> Arc<AtomicBool> {
        self.lost.clone()
    }
}

impl Drop for SharedLock {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        if !self.lost.load(Ordering::SeqCst)
            && let Err(e) =
                self.shared.container.lease(LOCK, "release", &[("x-ms-lease-id", self.lease_id.clone())], &[])
        {
            tracing::warn!("cannot release the shared lock ({e}); it frees itself when its lease ends");
        }
    }
}
