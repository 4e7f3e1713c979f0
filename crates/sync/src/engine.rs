//! The sync engine: lists both sides, merges the two sorted listings, and streams the files to
//! copy into a bounded queue of transfers while the listing goes on.
//!
//! Blob→Blob merges two flat listings page by page ([`super::flat`]); every other pair is walked
//! one directory at a time, breadth first, with a bounded pool of directory listings kept busy
//! across the whole tree (Azure Files has no flat listing; its listing carries the times, so no
//! file needs a request of its own).
//!
//! Memory stays bounded by the largest directory (or three listing pages a side), the
//! pending-directory queue (paths only) and the transfer queue; a tree of a million files is
//! never held at once. The only list that grows with the tree is the mirror's deletion
//! candidates, which must all be known before the guard (`max_delete`, empty source, any
//! failure) can allow the first deletion; the deletions then run as concurrently as copies.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::stream::{FuturesUnordered, StreamExt};

use super::azure_names;
use super::endpoint::{self, Endpoint, Remote};
use super::entry::{Entry, Kind, join};
use super::filter::Filter;
use super::flat;
use super::op_error::{OpError, retrying};
use super::options::{Compare, SyncMode, SyncOptions};
use super::progress::{Observer, Snapshot, SyncEvent};
use super::sas::{self, Sas};
use super::store::Store;
use super::summary::{Failure, Item, SyncSummary};
use drscript_base::error::{Error, Result};

/// Clock differences below this are noise (filesystem and service precisions differ).
const MTIME_WINDOW_MS: i64 = 1;
const QUEUE: usize = 1024;
/// The sync stops when more than a tenth of its last `WINDOW` operations (files copied, folders
/// listed) failed after every retry: the service is down or refuses, and trying each remaining
/// file through its own retries would only delay the error by hours. Fewer failures are listed
/// at the end and the copy carries on.
const WINDOW: usize = 50;
const MAX_FAILED_IN_WINDOW: usize = WINDOW / 10;
/// Files (copies, deletions) under way per request slot. `concurrency` bounds the requests in
/// flight ([`Run::slots`]); a file waiting out a retry (a throttled service's `Retry-After`) holds
/// no slot meanwhile, so that a 5 % rate of 503s with `Retry-After: 1` does not leave a sixteenth
/// of the transfers idle for a second each time. The waits themselves are the policy's.
const FILES_PER_SLOT: usize = 4;

#[derive(Default)]
struct Counters {
    listed_dirs: AtomicU64,
    listing_done: AtomicBool,
    source_files: AtomicU64,
    destination_files: AtomicU64,
    planned_files: AtomicU64,
    planned_bytes: AtomicU64,
    copied: AtomicU64,
    copied_bytes: AtomicU64,
    server_side: AtomicU64,
    skipped: AtomicU64,
    verified: AtomicU64,
    failed: AtomicU64,
    not_attempted: AtomicU64,
    /// Jobs queued and finished: a flat merge handing over to the directory walk waits for both
    /// to match before it recounts.
    jobs_sent: AtomicU64,
    jobs_done: AtomicU64,
    /// Files copied by a flat merge that handed over: the directory walk finds them unchanged,
    /// and they are not counted as skipped.
    recounted: AtomicU64,
}

struct Job {
    rel: String,
    entry: Entry,
    dst: Option<Entry>,
    reason: &'static str,
}

struct DirTask {
    rel: String,
    /// Known not to exist at the destination: no need to list it there.
    dst_missing: bool,
    /// Exists only at the destination: everything in it is a deletion candidate.
    extra: bool,
}

struct Run {
    src: Store,
    dst: Store,
    opts: SyncOptions,
    filter: Filter,
    live: bool,
    observer: Arc<dyn Observer>,
    c: Counters,
    failures: Mutex<Vec<Failure>>,
    extras: Mutex<Vec<Item>>,
    extra_dirs: Mutex<Vec<String>>,
    planned: Mutex<Vec<Item>>,
    /// Set once the sync gives up on an unresponsive endpoint.
    stopped: Mutex<Option<String>>,
    started: Instant,
    outcomes: Mutex<FailureWindow>,
    /// One permit per request in flight for a file (`concurrency` of them): held by an attempt,
    /// not by the waits between attempts.
    slots: tokio::sync::Semaphore,
}

/// The outcomes of the last [`WINDOW`] operations (true: failed after every retry).
#[derive(Default)]
struct FailureWindow(std::collections::VecDeque<bool>);

impl FailureWindow {
    /// Notes one outcome; `Some((failed, of))` when the failures in the window are too many.
    fn note(&mut self, failed: bool) -> Option<(usize, usize)> {
        self.0.push_back(failed);
        if self.0.len() > WINDOW {
            self.0.pop_front();
        }
        let n = self.0.iter().filter(|f| **f).count();
        (failed && n > MAX_FAILED_IN_WINDOW).then_some((n, self.0.len()))
    }
}

/// Runs a sync and fails when anything failed or a mirror refused to delete; the error lists
/// the failures and the reason.
pub async fn sync(
    src: &Endpoint,
    dst: &Endpoint,
    opts: &SyncOptions,
    mode: SyncMode,
    observer: Arc<dyn Observer>,
) -> Result<SyncSummary> {
    let summary = sync_report(src, dst, opts, mode, observer).await?;
    if summary.ok() { Ok(summary) } else { Err(failed(&summary)) }
}

/// The error for a summary that is not ok.
pub fn failed(summary: &SyncSummary) -> Error {
    Error::action("sync_share", format!("{} → {}", summary.source, summary.destination), summary.outcome())
}

fn check_sas(ep: &Endpoint, role: &str, needs: &[sas::Need]) -> Result<()> {
    if let Endpoint::Files(r) | Endpoint::Blob(r) = ep
        && let Some(q) = r.sas()
    {
        Sas::parse(q).check(role, &r.location(), needs, chrono::Utc::now())?;
    }
    Ok(())
}

fn remote(ep: &Endpoint) -> Option<&Remote> {
    match ep {
        Endpoint::Files(r) | Endpoint::Blob(r) => Some(r),
        Endpoint::Local(_) => None,
    }
}

/// Checks the input before anything runs: options, globs, overlap, SAS expiry and permissions.
pub fn preflight(src: &Endpoint, dst: &Endpoint, opts: &SyncOptions) -> Result<Filter> {
    opts.validate()?;
    let filter = Filter::new(&opts.include, &opts.exclude)?;
    endpoint::check_overlap(src, dst, opts.mirror)?;
    check_sas(src, "source", &[sas::READ, sas::LIST])?;
    let mut needs = vec![sas::LIST, sas::WRITE, sas::CREATE];
    if opts.compare == Compare::Hash || opts.verify {
        needs.push(sas::READ);
    }
    if opts.mirror {
        needs.push(sas::DELETE);
    }
    check_sas(dst, "destination", &needs)?;
    let _ = remote;
    Ok(filter)
}

/// Runs a sync and returns its summary, failures included; errs only on bad input found before
/// anything was copied (unparsable options, missing source, expired SAS...).
pub async fn sync_report(
    src_ep: &Endpoint,
    dst_ep: &Endpoint,
    opts: &SyncOptions,
    mode: SyncMode,
    observer: Arc<dyn Observer>,
) -> Result<SyncSummary> {
    let started = Instant::now();
    let filter = preflight(src_ep, dst_ep, opts)?;
    let src = Store::open(src_ep)?;
    let dst = Store::open(dst_ep)?;
    let live = mode == SyncMode::Live;

    // Both roots at once: one round trip instead of two before the listing starts.
    let (src_root, dst_root) = futures::join!(root_exists(&src, opts, started), root_exists(&dst, opts, started));
    match src_root {
        Ok(true) => {}
        Ok(false) => {
            return Err(Error::Usage(format!("sync: the source {} does not exist", src_ep.location())));
        }
        Err(e) => {
            return Err(Error::action("sync_share", src_ep.location(), format!("cannot read the source: {e}")));
        }
    }
    // Azure Files cannot hold every local (or Blob) name: say which before copying anything.
    if matches!(dst, Store::Files(_)) && !matches!(src, Store::Files(_)) {
        let problems = azure_names::check_tree(&src, &filter).await;
        if !problems.is_empty() {
            return Err(Error::Usage(format!(
                "sync: {} → {}: {}",
                src_ep.location(),
                dst_ep.location(),
                azure_names::describe(&problems)
            )));
        }
    }
    let dst_exists = dst_root
        .map_err(|e| Error::action("sync_share", dst_ep.location(), format!("cannot read the destination: {e}")))?;
    if !dst_exists && live {
        let retry = opts.retry_policy().start_at(started);
        retrying(retry, "the destination's root", || false, || dst.mkdir("")).await.0.map_err(|e| {
            Error::action("sync_share", dst_ep.location(), format!("cannot create the destination: {e}"))
        })?;
    }

    let run = Arc::new(Run {
        src,
        dst,
        opts: opts.clone(),
        filter,
        live,
        observer,
        c: Counters::default(),
        failures: Mutex::default(),
        extras: Mutex::default(),
        extra_dirs: Mutex::default(),
        planned: Mutex::default(),
        stopped: Mutex::default(),
        started,
        outcomes: Mutex::default(),
        slots: tokio::sync::Semaphore::new(opts.concurrency.max(1)),
    });

    let (tx, rx) = tokio::sync::mpsc::channel::<Job>(QUEUE);
    let walker = {
        let run = run.clone();
        async move {
            run.walk(tx, !dst_exists).await;
            run.c.listing_done.store(true, Relaxed);
        }
    };
    let workers = {
        let run = run.clone();
        let jobs = futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|j| (j, rx)) });
        jobs.for_each_concurrent(run.opts.concurrency * FILES_PER_SLOT, move |job| {
            let run = run.clone();
            async move {
                run.transfer(job).await;
                run.c.jobs_done.fetch_add(1, Relaxed);
            }
        })
    };
    let ticker = {
        let run = run.clone();
        async move {
            loop {
                tokio::time::sleep(Duration::from_millis(250)).await;
                run.observer.on(&SyncEvent::Progress(run.snapshot()));
            }
        }
    };
    tokio::select! {
        _ = futures::future::join(walker, workers) => {}
        () = ticker => {}
    }
    run.observer.on(&SyncEvent::Progress(run.snapshot()));

    let (deleted, deleted_bytes, deleted_dirs, refused, planned_deletions) = run.mirror().await;
    let c = &run.c;
    let mut planned_copies = std::mem::take(&mut *run.planned.lock().unwrap());
    planned_copies.sort_by(|a, b| a.path.cmp(&b.path));
    let mut failures = std::mem::take(&mut *run.failures.lock().unwrap());
    failures.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(SyncSummary {
        source: src_ep.location(),
        destination: dst_ep.location(),
        mode,
        mirror: opts.mirror,
        source_files: c.source_files.load(Relaxed),
        destination_files: c.destination_files.load(Relaxed),
        copied: c.copied.load(Relaxed),
        copied_bytes: c.copied_bytes.load(Relaxed),
        server_side: c.server_side.load(Relaxed),
        skipped: c.skipped.load(Relaxed).saturating_sub(c.recounted.load(Relaxed)),
        deleted,
        deleted_bytes,
        deleted_dirs,
        verified: c.verified.load(Relaxed),
        seconds: started.elapsed().as_secs_f64(),
        failures,
        deletion_refused: refused,
        stopped: run.stopped.lock().unwrap().take(),
        not_attempted: c.not_attempted.load(Relaxed),
        planned_copies,
        planned_deletions,
    })
}

/// Whether the endpoint's root exists, retrying transient failures as listings are: one 503 on
/// the first request must not fail the whole sync.
async fn root_exists(store: &Store, opts: &SyncOptions, started: Instant) -> std::result::Result<bool, OpError> {
    let retry = opts.retry_policy().start_at(started);
    retrying(retry, "the first request", || false, || store.root_exists()).await.0
}

fn newer(src: &Entry, dst: &Entry) -> bool {
    match (src.mtime, dst.mtime) {
        (Some(s), Some(d)) => (s - d).num_milliseconds() >= MTIME_WINDOW_MS,
        (Some(_), None) => true,
        _ => false,
    }
}

impl Run {
    fn snapshot(&self) -> Snapshot {
        let c = &self.c;
        Snapshot {
            listed_dirs: c.listed_dirs.load(Relaxed),
            listing_done: c.listing_done.load(Relaxed),
            copied: c.copied.load(Relaxed),
            copied_bytes: c.copied_bytes.load(Relaxed),
            planned_bytes: c.planned_bytes.load(Relaxed),
            planned_files: c.planned_files.load(Relaxed),
            skipped: c.skipped.load(Relaxed),
            failed: c.failed.load(Relaxed),
            elapsed: self.started.elapsed(),
        }
    }

    fn is_stopped(&self) -> bool {
        self.stopped.lock().unwrap().is_some()
    }

    /// Notes the outcome of one operation for the give-up rule ([`WINDOW`]): a fatal failure
    /// (a refused credential, the share gone) stops the sync at once, a rate of failures over
    /// the last operations stops it too.
    fn note_result(&self, result: std::result::Result<(), &OpError>) {
        let too_many = self.outcomes.lock().unwrap().note(result.is_err());
        let Err(e) = result else { return };
        if e.fatal {
            self.stop(format!("{e}; every other file would fail the same way"));
        } else if let Some((failed, of)) = too_many {
            self.stop(format!(
                "{failed} of the last {of} operations failed after up to {} tries each (last: {e})",
                self.opts.attempts
            ));
        }
    }

    /// Stops the sync (the first reason stays): nothing new is started, what is in flight ends.
    fn stop(&self, why: String) {
        let mut stopped = self.stopped.lock().unwrap();
        if stopped.is_none() {
            let why = drscript_base::redact::redacted(why);
            tracing::warn!("sync: stopping early: {why}");
            *stopped = Some(why);
        }
    }

    /// True once the share's deadline has passed; stops the sync then.
    fn past_deadline(&self) -> bool {
        if self.started.elapsed() < self.opts.deadline {
            return false;
        }
        self.stop(format!("the sync's deadline of {} passed", human_duration(self.opts.deadline)));
        true
    }

    /// The tries of one operation under the sync's policy and deadline.
    async fn retrying<T, Fut>(&self, what: &str, op: impl FnMut() -> Fut) -> (std::result::Result<T, OpError>, u32)
    where
        Fut: std::future::Future<Output = std::result::Result<T, OpError>>,
    {
        let retry = self.opts.retry_policy().start_at(self.started);
        retrying(retry, what, || self.is_stopped(), op).await
    }

    /// [`Run::retrying`] for the requests of one file: each attempt holds a request slot, the
    /// waits between attempts do not. `first` is the slot for the first attempt when the caller
    /// already holds one.
    async fn retrying_in_slot<'a, T, Fut>(
        &'a self,
        what: &str,
        first: Option<tokio::sync::SemaphorePermit<'a>>,
        mut op: impl FnMut() -> Fut,
    ) -> (std::result::Result<T, OpError>, u32)
    where
        Fut: std::future::Future<Output = std::result::Result<T, OpError>>,
    {
        let mut first = first;
        self.retrying(what, || {
            let held = first.take();
            let attempt = op();
            async move {
                let _slot = match held {
                    Some(slot) => Some(slot),
                    None => self.slots.acquire().await.ok(),
                };
                attempt.await
            }
        })
        .await
    }

    fn fail(&self, path: &str, reason: impl std::fmt::Display) {
        let reason = drscript_base::redact::redacted(reason.to_string());
        self.c.failed.fetch_add(1, Relaxed);
        self.observer.on(&SyncEvent::Failed { path: path.to_string(), reason: reason.clone() });
        self.failures
            .lock()
            .unwrap()
            .push(Failure { path: if path.is_empty() { "/".into() } else { path.into() }, reason });
    }

    async fn walk(self: &Arc<Self>, tx: tokio::sync::mpsc::Sender<Job>, dst_missing: bool) {
        if matches!((&self.src, &self.dst), (Store::Blob(_), Store::Blob(_))) {
            match self.walk_flat(&tx, dst_missing).await {
                Ok(()) => return,
                Err(why) => {
                    tracing::info!("sync: comparing folder by folder instead of flat: {why}");
                    self.recount().await;
                }
            }
        }
        // Breadth first: the pool of listings stays full across the tree instead of draining
        // into one deep branch.
        let mut pending = std::collections::VecDeque::from([DirTask { rel: String::new(), dst_missing, extra: false }]);
        let mut inflight = FuturesUnordered::new();
        loop {
            while inflight.len() < self.opts.list_concurrency
                && let Some(task) = pending.pop_front()
            {
                let tx = tx.clone();
                inflight.push(async move { self.dir(task, &tx).await });
            }
            match inflight.next().await {
                Some(more) => pending.extend(more),
                None => break,
            }
        }
    }

    /// Blob→Blob: merges the two flat listings as their pages arrive. `Err`: the flat order
    /// cannot be trusted (why); nothing has been deleted, and the caller walks folder by folder.
    async fn walk_flat(&self, tx: &tokio::sync::mpsc::Sender<Job>, dst_missing: bool) -> Result<(), String> {
        let (Store::Blob(src), Store::Blob(dst)) = (&self.src, &self.dst) else {
            return Err("not two blob endpoints".into());
        };
        let note = |r: std::result::Result<(), &OpError>| {
            self.c.listed_dirs.fetch_add(1, Relaxed);
            self.note_result(r);
        };
        let paging = flat::Paging {
            page_size: self.opts.list_page_size,
            policy: self.opts.retry_policy(),
            origin: self.started,
            note: &note,
        };
        let (stx, srx) = tokio::sync::mpsc::channel(1);
        let (dtx, drx) = tokio::sync::mpsc::channel(1);
        let (_, _, merged) = futures::join!(
            flat::produce(src, &paging, stx),
            async {
                if !dst_missing {
                    flat::produce(dst, &paging, dtx).await;
                }
            },
            self.merge_flat(flat::Pages::new(Some(srx)), flat::Pages::new((!dst_missing).then_some(drx)), tx)
        );
        merged
    }

    async fn merge_flat(
        &self,
        mut src: flat::Pages,
        mut dst: flat::Pages,
        tx: &tokio::sync::mpsc::Sender<Job>,
    ) -> Result<(), String> {
        use std::cmp::Ordering::{Equal, Greater, Less};
        let mut dirs = DirFilter::default();
        let (mut s, mut d) = futures::join!(src.next(), dst.next());
        loop {
            if self.is_stopped() {
                return Ok(());
            }
            for (head, side) in [(&s, "source"), (&d, "destination")] {
                match head {
                    flat::Next::Broken(why) => return Err(why.clone()),
                    flat::Next::Failed(e) => {
                        self.fail("", format!("cannot list the {side}: {e}"));
                        return Ok(());
                    }
                    _ => {}
                }
            }
            let order = match (&s, &d) {
                (flat::Next::File(a, _), flat::Next::File(b, _)) => flat::name_order(a, b),
                (flat::Next::File(..), _) => Less,
                (_, flat::Next::File(..)) => Greater,
                _ => return Ok(()),
            };
            if order != Greater {
                let flat::Next::File(rel, se) = std::mem::replace(&mut s, src.next().await) else { unreachable!() };
                let de = if order == Equal {
                    let flat::Next::File(_, de) = std::mem::replace(&mut d, dst.next().await) else { unreachable!() };
                    Some(de)
                } else {
                    None
                };
                if dirs.allows(&self.filter, &rel) {
                    self.source_entry("", se, de, tx).await;
                }
            } else {
                let flat::Next::File(rel, de) = std::mem::replace(&mut d, dst.next().await) else { unreachable!() };
                if dirs.allows(&self.filter, &rel) {
                    self.extra_entry("", de);
                }
            }
        }
    }

    /// After a flat merge handed over: waits for the copies it queued, then forgets what it
    /// counted, so that the directory walk counts every file once. What it copied stays copied
    /// (the walk finds those files unchanged); a dry run forgets its plan too.
    async fn recount(&self) {
        while self.c.jobs_done.load(Relaxed) < self.c.jobs_sent.load(Relaxed) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let c = &self.c;
        for n in [&c.source_files, &c.destination_files, &c.skipped] {
            n.store(0, Relaxed);
        }
        self.extras.lock().unwrap().clear();
        if self.live {
            c.recounted.store(c.copied.load(Relaxed), Relaxed);
        } else {
            self.planned.lock().unwrap().clear();
            for n in [&c.copied, &c.copied_bytes, &c.planned_files, &c.planned_bytes] {
                n.store(0, Relaxed);
            }
        }
    }

    /// Compares one directory; returns the subdirectories to walk.
    async fn dir(&self, task: DirTask, tx: &tokio::sync::mpsc::Sender<Job>) -> Vec<DirTask> {
        if self.is_stopped() || self.past_deadline() {
            return Vec::new();
        }
        self.c.listed_dirs.fetch_add(1, Relaxed);
        let rel = task.rel.as_str();
        if task.extra {
            return self.extra_dir(rel).await;
        }
        let (s, d) = futures::join!(self.list(&self.src, rel, false), async {
            if task.dst_missing { Ok(None) } else { self.list(&self.dst, rel, self.live).await }
        });
        let mut s = match s {
            Ok(Some(s)) => s,
            Ok(None) => {
                self.fail(rel, "the source folder disappeared while listing");
                return Vec::new();
            }
            Err(e) => {
                self.fail(rel, format!("cannot list the source: {e}"));
                return Vec::new();
            }
        };
        let mut d = match d {
            Ok(d) => d.unwrap_or_default(),
            Err(e) => {
                self.fail(rel, format!("cannot list the destination: {e}"));
                return Vec::new();
            }
        };
        // Azure Files finds `case.txt` under `Case.txt`: match names as the destination does,
        // so that a file whose case differs is updated in place, not copied and then deleted.
        let fold = matches!(self.dst, Store::Files(_));
        let key = |e: &Entry| (if fold { azure_names::fold(&e.name) } else { e.name.clone() }, e.kind == Kind::File);
        s.sort_by_key(key);
        d.sort_by_key(key);
        let mut subdirs = Vec::new();
        let (mut si, mut di) = (s.into_iter().peekable(), d.into_iter().peekable());
        loop {
            let (se, de) = match (si.peek(), di.peek()) {
                (None, None) => break,
                (Some(_), None) => (si.next(), None),
                (None, Some(_)) => (None, di.next()),
                (Some(a), Some(b)) => match key(a).cmp(&key(b)) {
                    std::cmp::Ordering::Less => (si.next(), None),
                    std::cmp::Ordering::Greater => (None, di.next()),
                    std::cmp::Ordering::Equal => (si.next(), di.next()),
                },
            };
            match (se, de) {
                (Some(se), de) => {
                    // A name that is a folder on one side and a file on the other sorts apart
                    // (kind is part of the key); catch it here.
                    let clash = de.is_none() && di.peek().is_some_and(|n| key(n).0 == key(&se).0 && n.kind != se.kind);
                    if clash {
                        let other = di.next();
                        let p = join(rel, &se.name);
                        self.fail(&p, "a file on one side and a folder on the other");
                        drop(other);
                        continue;
                    }
                    if let Some(t) = self.source_entry(rel, se, de, tx).await {
                        subdirs.push(t);
                    }
                }
                (None, Some(de)) => {
                    let clash = si.peek().is_some_and(|n| key(n).0 == key(&de).0 && n.kind != de.kind);
                    if clash {
                        si.next();
                        self.fail(&join(rel, &de.name), "a file on one side and a folder on the other");
                        continue;
                    }
                    if let Some(t) = self.extra_entry(rel, de) {
                        subdirs.push(t);
                    }
                }
                (None, None) => break,
            }
        }
        subdirs
    }

    async fn source_entry(
        &self,
        dir: &str,
        se: Entry,
        de: Option<Entry>,
        tx: &tokio::sync::mpsc::Sender<Job>,
    ) -> Option<DirTask> {
        let rel = join(dir, &se.name);
        if se.is_dir() {
            if !self.filter.dir(&rel) {
                return None;
            }
            let dst_missing = de.is_none();
            if dst_missing
                && self.live
                && self.dst.has_dirs()
                && let (Err(e), _) = self.retrying(&rel, || self.dst.mkdir(&rel)).await
            {
                self.fail(&rel, format!("cannot create the folder: {e}"));
                return None;
            }
            return Some(DirTask { rel, dst_missing, extra: false });
        }
        if !self.filter.file(&rel) {
            return None;
        }
        self.c.source_files.fetch_add(1, Relaxed);
        if de.is_some() {
            self.c.destination_files.fetch_add(1, Relaxed);
        }
        let reason = match &de {
            None => Some("missing"),
            Some(_) if self.opts.compare == Compare::MirrorMode => Some("mirror-mode"),
            Some(d) if d.size != se.size => Some("size"),
            Some(_) if self.opts.compare == Compare::Hash => Some("hash?"),
            Some(d) if newer(&se, d) => Some("newer"),
            Some(d) if self.opts.compare == Compare::Differs && newer(d, &se) => Some("differs"),
            Some(_) => None,
        };
        match reason {
            None => {
                self.c.skipped.fetch_add(1, Relaxed);
            }
            Some(reason) => {
                self.c.jobs_sent.fetch_add(1, Relaxed);
                if tx.send(Job { rel, entry: se, dst: de, reason }).await.is_err() {
                    self.c.jobs_done.fetch_add(1, Relaxed);
                }
            }
        }
        None
    }

    fn extra_entry(&self, dir: &str, de: Entry) -> Option<DirTask> {
        let rel = join(dir, &de.name);
        if de.is_dir() {
            if !self.filter.dir(&rel) {
                return None;
            }
            return Some(DirTask { rel, dst_missing: false, extra: true });
        }
        if !self.filter.file(&rel) {
            return None;
        }
        self.c.destination_files.fetch_add(1, Relaxed);
        if self.opts.mirror {
            self.extras.lock().unwrap().push(Item { path: rel, size: de.size, reason: "extra".into(), replaces: 0 });
        }
        None
    }

    /// Lists `rel` of `store`, retrying transient failures as copies are: one 500 on a listing
    /// must not fail the whole sync.
    async fn list(&self, store: &Store, rel: &str, clean: bool) -> std::result::Result<Option<Vec<Entry>>, OpError> {
        let (result, tries) = self.retrying(&format!("the listing of /{rel}"), || store.list(rel, clean)).await;
        self.note_result(result.as_ref().map(|_| ()));
        result.map_err(|mut e| {
            if tries > 1 {
                e.message.push_str(&format!(" (after {tries} attempts)"));
            }
            e
        })
    }

    /// A folder only the destination has: count its files; with mirror, all are candidates.
    async fn extra_dir(&self, rel: &str) -> Vec<DirTask> {
        let entries = match self.list(&self.dst, rel, self.live).await {
            Ok(e) => e.unwrap_or_default(),
            Err(e) => {
                self.fail(rel, format!("cannot list the destination: {e}"));
                return Vec::new();
            }
        };
        let mut excluded_inside = false;
        let mut subdirs = Vec::new();
        for e in entries {
            let p = join(rel, &e.name);
            if (e.is_dir() && !self.filter.dir(&p)) || (!e.is_dir() && !self.filter.file(&p)) {
                excluded_inside = true;
            }
            if let Some(t) = self.extra_entry(rel, e) {
                subdirs.push(t);
            }
        }
        // A folder holding excluded files stays, and so do its parents (deletion would fail).
        if self.opts.mirror && !excluded_inside && self.dst.has_dirs() {
            self.extra_dirs.lock().unwrap().push(rel.to_string());
        }
        subdirs
    }

    async fn transfer(&self, mut job: Job) {
        // The first request's slot is taken before the stop is looked at: a file that waited for
        // a slot while the copy stopped is not attempted.
        let slot = self.slots.acquire().await.ok();
        if self.is_stopped() || self.past_deadline() {
            self.c.not_attempted.fetch_add(1, Relaxed);
            return;
        }
        if job.reason == "hash?" {
            let Some(d) = &job.dst else { return };
            let (a, b) = futures::join!(self.src.md5(&job.rel, &job.entry), self.dst.md5(&job.rel, d));
            match (a, b) {
                (Ok(a), Ok(b)) if a == b => {
                    self.c.skipped.fetch_add(1, Relaxed);
                    return;
                }
                (Ok(_), Ok(_)) => job.reason = "hash",
                (Err(e), _) | (_, Err(e)) => {
                    self.fail(&job.rel, format!("cannot compute the MD5: {e}"));
                    return;
                }
            }
        }
        let size = job.entry.size;
        self.c.planned_files.fetch_add(1, Relaxed);
        self.c.planned_bytes.fetch_add(size, Relaxed);
        self.observer.on(&SyncEvent::Copy { path: job.rel.clone(), size, reason: job.reason, done: false });
        if !self.live {
            self.planned.lock().unwrap().push(Item {
                path: job.rel,
                size,
                reason: job.reason.into(),
                replaces: job.dst.as_ref().map_or(0, |d| d.size),
            });
            self.c.copied.fetch_add(1, Relaxed);
            self.c.copied_bytes.fetch_add(size, Relaxed);
            return;
        }
        match self.retrying_in_slot(&job.rel, slot, || self.copy_once(&job)).await {
            (Ok(server_side), _) => {
                self.note_result(Ok(()));
                if server_side {
                    self.c.server_side.fetch_add(1, Relaxed);
                }
                self.c.copied.fetch_add(1, Relaxed);
                self.c.copied_bytes.fetch_add(size, Relaxed);
                self.observer.on(&SyncEvent::Copy { path: job.rel.clone(), size, reason: job.reason, done: true });
            }
            (Err(e), tries) => {
                self.note_result(Err(&e));
                let tries = if tries > 1 { format!(" (after {tries} attempts)") } else { String::new() };
                self.fail(&job.rel, format!("{e}{tries}"));
            }
        }
    }

    /// One attempt: copies, then verifies when asked. Ok(true) when done server-side.
    async fn copy_once(&self, job: &Job) -> Result<bool, OpError> {
        let fresh = job.dst.is_none();
        let direct = self.dst.copy_direct(&self.src, &job.rel, &job.entry, fresh, self.opts.server_side).await;
        let server_side = match direct {
            Some(r) => {
                r?;
                // Asked after the copy: a service may have just said it cannot copy from URL.
                self.dst.server_side_from(&self.src, self.opts.server_side)
            }
            None => {
                let data = self.src.read(&job.rel).await?;
                self.dst.write(&job.rel, job.entry.size, job.entry.mtime, data).await?;
                false
            }
        };
        if self.opts.verify {
            let (a, b) = futures::join!(self.src.md5(&job.rel, &job.entry), self.dst.content_md5(&job.rel));
            let (a, b) = (a?, b?);
            if a != b {
                return Err(OpError::new(
                    format!(
                        "verification failed: MD5 {} at the source, {} at the destination",
                        hex::encode(a),
                        hex::encode(b)
                    ),
                    true,
                ));
            }
            self.c.verified.fetch_add(1, Relaxed);
        }
        Ok(server_side)
    }

    /// Applies the mirror's deletions if every guard allows it.
    async fn mirror(&self) -> (u64, u64, u64, Option<String>, Vec<Item>) {
        if !self.opts.mirror {
            return (0, 0, 0, None, Vec::new());
        }
        let mut extras = std::mem::take(&mut *self.extras.lock().unwrap());
        let mut dirs = std::mem::take(&mut *self.extra_dirs.lock().unwrap());
        if extras.is_empty() && dirs.is_empty() {
            return (0, 0, 0, None, Vec::new());
        }
        extras.sort_by(|a, b| a.path.cmp(&b.path));
        // Deepest first, so each folder is empty when its turn comes.
        dirs.sort_by(|a, b| b.matches('/').count().cmp(&a.matches('/').count()).then(a.cmp(b)));
        let failures = self.failures.lock().unwrap().len();
        let stopped = self.is_stopped();
        let source_files = self.c.source_files.load(Relaxed);
        let dest_files = self.c.destination_files.load(Relaxed);
        let limit = self.opts.max_delete.limit(dest_files);
        let n = extras.len() as u64;
        let refused = if stopped {
            Some(format!(
                "the sync stopped early; a mirror deletes only after a complete pass ({n} extra file(s) left in place)"
            ))
        } else if failures > 0 {
            Some(format!(
                "{failures} listing(s) or copies failed; a mirror deletes only after every copy succeeded \
                 ({n} extra file(s) left in place)"
            ))
        } else if source_files == 0 && n > 0 {
            Some(format!(
                "the source has no files (empty, or everything excluded); refusing to delete the \
                 destination's {n} file(s)"
            ))
        } else if n > limit {
            Some(format!(
                "{n} deletion(s) exceed max_delete {} (= {limit} of the destination's {dest_files} files); \
                 raise max_delete if this is intended",
                self.opts.max_delete.describe()
            ))
        } else {
            None
        };
        let planned: Vec<Item> = extras
            .iter()
            .cloned()
            .chain(dirs.iter().map(|d| Item {
                path: format!("{d}/"),
                size: 0,
                reason: "extra-dir".into(),
                replaces: 0,
            }))
            .collect();
        for item in &planned {
            self.observer.on(&SyncEvent::Delete {
                path: item.path.trim_end_matches('/').to_string(),
                size: item.size,
                dir: item.reason == "extra-dir",
                done: false,
            });
        }
        if let Some(why) = refused {
            tracing::warn!("sync: mirror deletes nothing: {why}");
            return (0, 0, 0, Some(why), if self.live { Vec::new() } else { planned });
        }
        let bytes: u64 = extras.iter().map(|e| e.size).sum();
        if !self.live {
            return (n, bytes, dirs.len() as u64, None, planned);
        }
        let deleted = AtomicU64::new(0);
        let deleted_bytes = AtomicU64::new(0);
        futures::stream::iter(extras.iter())
            .for_each_concurrent(self.opts.concurrency * FILES_PER_SLOT, |item| {
                let (deleted, deleted_bytes) = (&deleted, &deleted_bytes);
                async move {
                    // A deletion is idempotent (a file already gone counts as deleted): retried
                    // like a copy.
                    match self.retrying_in_slot(&item.path, None, || self.dst.delete_file(&item.path)).await.0 {
                        Ok(()) => {
                            deleted.fetch_add(1, Relaxed);
                            deleted_bytes.fetch_add(item.size, Relaxed);
                            self.observer.on(&SyncEvent::Delete {
                                path: item.path.clone(),
                                size: item.size,
                                dir: false,
                                done: true,
                            });
                        }
                        Err(e) => self.fail(&item.path, format!("cannot delete: {e}")),
                    }
                }
            })
            .await;
        // Folders level by level, deepest first (each is empty when its turn comes), the folders
        // of one level at once.
        let deleted_dirs = AtomicU64::new(0);
        for level in dirs.chunk_by(|a, b| a.matches('/').count() == b.matches('/').count()) {
            futures::stream::iter(level)
                .for_each_concurrent(self.opts.concurrency * FILES_PER_SLOT, |d| {
                    let deleted_dirs = &deleted_dirs;
                    async move {
                        match self.retrying_in_slot(d, None, || self.dst.delete_dir(d)).await.0 {
                            Ok(()) => {
                                deleted_dirs.fetch_add(1, Relaxed);
                            }
                            Err(e) => self.fail(d, format!("cannot delete the folder: {e}")),
                        }
                    }
                })
                .await;
        }
        (deleted.into_inner(), deleted_bytes.into_inner(), deleted_dirs.into_inner(), None, Vec::new())
    }
}

/// Whether a flat listing's file lies below folders the filter walks (an excluded folder prunes
/// everything inside it, as in the directory walk); remembers the last folder, since a flat
/// listing names the files of one folder in a row.
#[derive(Default)]
struct DirFilter {
    last: Option<(String, bool)>,
}

impl DirFilter {
    fn allows(&mut self, filter: &Filter, rel: &str) -> bool {
        let Some((parent, _)) = rel.rsplit_once('/') else { return true };
        match &self.last {
            Some((last, allowed)) if last == parent => *allowed,
            _ => {
                let allowed =
                    parent.match_indices('/').map(|(i, _)| &parent[..i]).chain([parent]).all(|d| filter.dir(d));
                self.last = Some((parent.to_string(), allowed));
                allowed
            }
        }
    }
}

/// `6 h`, `90 s`, `1 h 30 min`: a deadline as a plan shows it.
pub fn human_duration(d: Duration) -> String {
    let s = d.as_secs();
    match (s / 3600, s % 3600 / 60, s % 60) {
        (0, 0, s) => format!("{s} s"),
        (0, m, 0) => format!("{m} min"),
        (0, m, s) => format!("{m} min {s} s"),
        (h, 0, 0) => format!("{h} h"),
        (h, m, _) => format!("{h} h {m} min"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_copy_carries_on_past_scattered_failures_and_stops_on_a_rate_of_them() {
        let mut w = FailureWindow::default();
        // One file in twenty fails, over a thousand files: never more than a tenth.
        for i in 0..1000 {
            assert_eq!(w.note(i % 20 == 0), None, "operation {i}");
        }
        // Five failures among the last fifty are tolerated, the sixth stops.
        let mut w = FailureWindow::default();
        for _ in 0..44 {
            assert_eq!(w.note(false), None);
        }
        for _ in 0..5 {
            assert_eq!(w.note(true), None);
        }
        assert_eq!(w.note(true), Some((6, 50)));
        // A service down from the start: the sixth failure in a row stops, not the fiftieth.
        let mut w = FailureWindow::default();
        let stops = (1..=10).find(|_| w.note(true).is_some());
        assert_eq!(stops, Some(6));
    }

    #[test]
    fn deadlines_read_as_a_person_says_them() {
        assert_eq!(human_duration(Duration::from_secs(6 * 3600)), "6 h");
        assert_eq!(human_duration(Duration::from_secs(5400)), "1 h 30 min");
        assert_eq!(human_duration(Duration::from_secs(90)), "1 min 30 s");
        assert_eq!(human_duration(Duration::from_secs(45)), "45 s");
        assert_eq!(human_duration(Duration::from_secs(600)), "10 min");
    }
}
