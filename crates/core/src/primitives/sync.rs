//! `sync_share(src, dst [, opts])`: the sync engine ([`drscript_sync`]) for scripts.
//!
//! In a plan nothing is contacted: the call is described. In a dry run both sides are listed for
//! real and the summary says what would be copied and deleted. Live, it syncs.

use std::sync::Arc;

use rhai::plugin::*;
use rhai::{Dynamic, EvalAltResult, Map, NativeCallContext};

use super::environment::ShareRef;
use super::{exec_of, to_rhai};
use crate::exec::{Exec, Mode, Outcome};
use drscript_base::error::{Error, Result};
use drscript_sync::progress::{Observer, SyncEvent};
use drscript_sync::summary::bytes;
use drscript_sync::{Compare, Endpoint, MaxDelete, Quiet, SyncMode, SyncOptions, SyncSummary};

#[export_module]
pub mod sync_api {
    /// Makes `dst` like `src`, azcopy-sync style but safe: recursive; copies files that are
    /// missing, differ in size, or are newer at the source; keeps last-modified times.
    /// `src` and `dst` are shares (`prod.shares.app`, `prod.shares.app.sub("web/repository")`),
    /// local paths, or Azure Files/Blob URLs. Returns a summary map: `copied`, `copied_bytes`,
    /// `skipped`, `deleted`, `seconds`, `failures`, ... Fails if any file failed.
    #[rhai_fn(return_raw)]
    pub fn sync_share(ctx: NativeCallContext, src: Dynamic, dst: Dynamic) -> Result<Map, Box<EvalAltResult>> {
        super::run(&exec_of(&ctx), &src, &dst, &Map::new()).map_err(to_rhai)
    }

    /// `sync_share(src, dst)` with options: `mirror` (also delete what the source lacks; refused
    /// after any failure, for an empty source, or beyond `max_delete`), `max_delete` (count or
    /// `"10%"`, default `"50%"`), `compare` (`"size-time"` or `"hash"`), `include`/`exclude`
    /// (glob or array of globs), `concurrency`, `verify` (MD5 of every copied file),
    /// `server_side` (default true), `deadline` (seconds for the whole copy, default 6 h; shown
    /// in the plan), `attempts` (tries per request). Each request is tried up to 20 times (1–60 s apart, a server's
    /// `Retry-After` honoured); the copy carries on past failed files and stops only when more
    /// than a tenth of its last 50 operations failed, or on a refused credential or a missing
    /// share; every failure is listed, one line each.
    #[rhai_fn(name = "sync_share", return_raw)]
    pub fn sync_share_with(
        ctx: NativeCallContext,
        src: Dynamic,
        dst: Dynamic,
        opts: Map,
    ) -> Result<Map, Box<EvalAltResult>> {
        super::run(&exec_of(&ctx), &src, &dst, &opts).map_err(to_rhai)
    }
}

fn strings(v: &Dynamic) -> Vec<String> {
    match v.clone().try_cast::<rhai::Array>() {
        Some(a) => a.iter().map(|d| d.to_string()).collect(),
        None => vec![v.to_string()],
    }
}

/// Validated options from a script map; unknown keys are mistakes.
pub fn options(opts: &Map) -> Result<SyncOptions> {
    let mut o = SyncOptions::default();
    for (k, v) in opts {
        let bad = |what: &str| Error::Usage(format!("sync_share: option `{k}` must be {what}"));
        match k.as_str() {
            "mirror" => o.mirror = v.as_bool().map_err(|_| bad("true or false"))?,
            "verify" => o.verify = v.as_bool().map_err(|_| bad("true or false"))?,
            "server_side" => o.server_side = v.as_bool().map_err(|_| bad("true or false"))?,
            "compare" => o.compare = Compare::parse(&v.to_string())?,
            "max_delete" => o.max_delete = MaxDelete::parse(&v.to_string())?,
            "include" => o.include = strings(v),
            "exclude" => o.exclude = strings(v),
            "concurrency" => {
                o.concurrency = v.as_int().ok().filter(|n| *n > 0).ok_or_else(|| bad("a positive number"))? as usize
            }
            "attempts" => {
                let n = v.as_int().ok().filter(|n| *n > 0).ok_or_else(|| bad("a positive number"))?;
                o.attempts = u32::try_from(n).map_err(|_| bad("a positive number"))?;
            }
            "deadline" => {
                let secs = v.as_int().ok().filter(|n| *n > 0).ok_or_else(|| bad("a positive number of seconds"))?;
                o.deadline = std::time::Duration::from_secs(secs as u64);
            }
            other => {
                return Err(Error::Usage(format!(
                    "sync_share: unknown option `{other}` (known: mirror, max_delete, compare, include, exclude, \
                     concurrency, verify, server_side, attempts, deadline)"
                )));
            }
        }
    }
    o.validate()?;
    Ok(o)
}

/// What a script passed as an endpoint: a share or a string.
enum Side {
    Share(ShareRef),
    Text(String),
}

fn side(v: &Dynamic) -> Result<Side> {
    if let Some(s) = v.clone().try_cast::<ShareRef>() {
        return Ok(Side::Share(s));
    }
    if v.is_string() {
        return Ok(Side::Text(v.to_string()));
    }
    Err(Error::Usage(format!(
        "sync_share: an endpoint must be a share (prod.shares.app) or a path/URL string, not {}",
        v.type_name()
    )))
}

impl Side {
    /// With the share's location (full path or URL): the journal and `-v`.
    fn describe(&self) -> String {
        match self {
            Side::Share(s) => s.describe(),
            Side::Text(t) => drscript_base::redact::redacted(t),
        }
    }
    /// As the config names it (`prod.shares.app/web/repository`): the action's log line.
    fn name(&self) -> String {
        match self {
            Side::Share(s) if s.path.is_empty() => format!("{}.shares.{}", s.env, s.name),
            Side::Share(s) => format!("{}.shares.{}/{}", s.env, s.name, s.path),
            Side::Text(t) => drscript_base::redact::redacted(drscript_base::redact::strip_url_queries(t)),
        }
    }
    /// The folder a status line names (`web/repository`).
    fn label(&self) -> String {
        match self {
            Side::Share(s) if s.path.is_empty() => s.name.clone(),
            Side::Share(s) => s.path.clone(),
            Side::Text(t) => {
                let t = drscript_base::redact::strip_url_queries(t);
                t.trim_end_matches('/').rsplit('/').next().unwrap_or_default().to_string()
            }
        }
    }
    fn endpoint(&self) -> Result<Endpoint> {
        match self {
            Side::Share(s) => s.share.endpoint(&s.path),
            Side::Text(t) => Endpoint::parse(t),
        }
    }
}

fn to_map(summary: &SyncSummary) -> Map {
    rhai::serde::to_dynamic(summary.to_json()).ok().and_then(|d| d.try_cast::<Map>()).unwrap_or_default()
}

/// Shows a running sync's progress on its step's line: `copy web/repository 120/296 files,
/// 1.2 MiB/4.0 MiB` (a `+` while the source is still being listed).
struct StepProgress {
    status: crate::observer::Status,
    label: String,
}

impl Observer for StepProgress {
    fn on(&self, event: &SyncEvent) {
        if let SyncEvent::Progress(s) = event {
            self.status.set(format!(
                "copy {} {}/{}{} files, {}/{}",
                self.label,
                s.copied,
                s.planned_files,
                if s.listing_done { "" } else { "+" },
                bytes(s.copied_bytes),
                bytes(s.planned_bytes)
            ));
        }
    }
}

fn run(exec: &Arc<Exec>, src: &Dynamic, dst: &Dynamic, opts: &Map) -> Result<Map> {
    let o = options(opts)?;
    let (src, dst) = (side(src)?, side(dst)?);
    let target = format!("{} → {}", src.describe(), dst.describe());
    let shown = format!("{} → {}", src.name(), dst.name());
    let what = if o.mirror {
        format!("mirror (max_delete {})", o.max_delete.describe())
    } else {
        "copy new and changed files".to_string()
    };
    // The retry budget and the deadline are what a copy during a regional incident lives on.
    let detail = format!(
        "{what}; up to {} tries per request, deadline {}",
        o.attempts,
        drscript_sync::engine::human_duration(o.deadline)
    );
    let placeholder = || {
        let mut m = to_map(&SyncSummary::empty(src.describe(), dst.describe(), SyncMode::DryRun, o.mirror));
        m.insert("planned".into(), true.into());
        m
    };
    let sync = |mode: SyncMode| -> Result<SyncSummary> {
        let (s, d) = (src.endpoint()?, dst.endpoint()?);
        let progress = StepProgress { status: crate::observer::Status::here(), label: src.label() };
        let summary = exec.block_on(drscript_sync::sync_report(&s, &d, &o, mode, Arc::new(progress)))?;
        let _ = exec.metric("sync_share", summary.to_json());
        Ok(summary)
    };
    match exec.mode() {
        Mode::Plan => exec.change("sync_share", &target, &detail, placeholder, unreachable_in_plan),
        Mode::DryRun => exec.query("sync_share", &target, placeholder, || {
            let summary = sync(SyncMode::DryRun)?;
            for i in &summary.planned_copies {
                tracing::info!("sync_share would copy {} ({} bytes, {})", i.path, i.size, i.reason);
            }
            for i in &summary.planned_deletions {
                tracing::info!("sync_share would delete {} ({} bytes)", i.path, i.size);
            }
            if !summary.ok() {
                return Err(drscript_sync::engine::failed(&summary));
            }
            tracing::info!("sync_share {shown}: {}", summary.outcome());
            Ok(to_map(&summary))
        }),
        Mode::Live => exec.change_shown("sync_share", &target, &shown, &detail, placeholder, || {
            let summary = sync(SyncMode::Live)?;
            if !summary.ok() {
                return Err(drscript_sync::engine::failed(&summary));
            }
            let outcome = if summary.copied + summary.deleted + summary.deleted_dirs > 0 {
                Outcome::Changed
            } else {
                Outcome::Unchanged
            };
            Ok((to_map(&summary), outcome, Some(summary.outcome())))
        }),
    }
}

fn unreachable_in_plan() -> Result<(Map, Outcome)> {
    Err(Error::Other("sync_share: a plan never syncs".into()))
}

/// `sync_preview`: what `sync_share` would do, listed read-only (a plan returns zeros).
pub fn preview(exec: &Arc<Exec>, src: &Dynamic, dst: &Dynamic, opts: &Map) -> Result<Map> {
    let o = options(opts)?;
    let (src, dst) = (side(src)?, side(dst)?);
    let target = format!("{} → {}", src.describe(), dst.describe());
    let empty = || {
        let mut m = Map::new();
        for key in [
            "copied",
            "copied_bytes",
            "overwritten",
            "overwritten_bytes",
            "deleted",
            "deleted_bytes",
            "destination_files",
            "grows_bytes",
        ] {
            m.insert(key.into(), Dynamic::from(0_i64));
        }
        m.insert("max_delete".into(), o.max_delete.describe().into());
        m.insert("deletion_refused".into(), Dynamic::UNIT);
        m.insert("examples".into(), Dynamic::from(rhai::Array::new()));
        m.insert("planned".into(), true.into());
        m
    };
    exec.query("sync_preview", &target, empty, || {
        let (s, d) = (src.endpoint()?, dst.endpoint()?);
        let summary = exec.block_on(drscript_sync::sync_report(&s, &d, &o, SyncMode::DryRun, Arc::new(Quiet)))?;
        // A refused deletion is an answer, not a failure: the caller decides (and says which
        // option raises the guard); a failed listing or copy is a failure.
        if !summary.failures.is_empty() || summary.stopped.is_some() {
            return Err(drscript_sync::engine::failed(&summary));
        }
        let overwritten: Vec<_> = summary.planned_copies.iter().filter(|i| i.reason != "missing").collect();
        let mut m = empty();
        let n = |v: u64| Dynamic::from(v as i64);
        m.insert("copied".into(), n(summary.copied));
        m.insert("copied_bytes".into(), n(summary.copied_bytes));
        m.insert("overwritten".into(), n(overwritten.len() as u64));
        m.insert("overwritten_bytes".into(), n(overwritten.iter().map(|i| i.size).sum()));
        // What the mirror would delete, whether or not its guard lets it.
        let files: Vec<_> = summary.planned_deletions.iter().filter(|i| i.reason != "extra-dir").collect();
        m.insert("deleted".into(), n(files.len() as u64));
        m.insert("deleted_bytes".into(), n(files.iter().map(|i| i.size).sum()));
        m.insert("destination_files".into(), n(summary.destination_files));
        // What the destination grows by: the copies less the files they replace, less the
        // deletions when the guard lets them happen (negative when it shrinks).
        let deleting = if summary.deletion_refused.is_some() { 0 } else { files.iter().map(|i| i.size).sum::<u64>() };
        let grows =
            summary.planned_copies.iter().map(|i| i.size as i64 - i.replaces as i64).sum::<i64>() - deleting as i64;
        m.insert("grows_bytes".into(), Dynamic::from(grows));
        m.insert("max_delete".into(), o.max_delete.describe().into());
        m.insert(
            "deletion_refused".into(),
            summary.deletion_refused.clone().map_or(Dynamic::UNIT, |why| drscript_base::redact::redacted(why).into()),
        );
        let examples: rhai::Array = overwritten
            .iter()
            .map(|i| format!("overwrite {}", i.path))
            .chain(summary.planned_deletions.iter().map(|i| format!("delete {}", i.path)))
            .take(5)
            .map(Dynamic::from)
            .collect();
        m.insert("examples".into(), examples.into());
        m.insert("planned".into(), false.into());
        Ok(m)
    })
}
