//! `drscript sync SRC DST [...]`: the engine from the shell, with azcopy/rclone-style flags.
//!
//! The lead wires [`SyncArgs`] as one subcommand variant and calls [`run_cli`].

use std::sync::Arc;

use clap::Args;

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use drscript_base::error::{Error, Result};
use drscript_core::config::Config;
use drscript_sync::engine;
use drscript_sync::progress::{Observer, SyncEvent, status_line};
use drscript_sync::summary::bytes;
use drscript_sync::{Compare, Endpoint, MaxDelete, SyncMode, SyncOptions, SyncSummary};

#[derive(Debug, Clone, Args)]
pub struct SyncArgs {
    /// Source: a folder, an Azure Files or Blob URL with SAS, or a config share `ENV.shares.NAME[/PATH]`.
    pub src: String,
    /// Destination, in the same forms.
    pub dst: String,
    /// Also delete destination files the source lacks (guarded by --max-delete).
    #[arg(long)]
    pub mirror: bool,
    /// List every copy and deletion with sizes and totals; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Only files matching this glob (repeatable); `*.xml` matches at any depth.
    #[arg(long, value_name = "GLOB")]
    pub include: Vec<String>,
    /// Leave files matching this glob alone (repeatable), on both sides.
    #[arg(long, value_name = "GLOB")]
    pub exclude: Vec<String>,
    /// `size-time` (missing, size differs, source newer), `hash` (content MD5), `differs` (size or
    /// time differ either way) or `mirror-mode` (every file present on both sides, as azcopy).
    #[arg(long, default_value = "size-time", value_name = "HOW")]
    pub compare: String,
    /// Most deletions a mirror may make: a count (`100`) or a percentage (`10%`).
    #[arg(long, default_value = "50%", value_name = "N|N%")]
    pub max_delete: String,
    /// Requests for files (copies, deletions) in flight at once; a file waiting out a retry holds none.
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
    /// Directories listed at once (both sides of each; Blob→Blob lists flat and ignores it).
    #[arg(long, default_value_t = SyncOptions::default().list_concurrency)]
    pub list_concurrency: usize,
    /// Compare MD5 of every copied file afterwards.
    #[arg(long)]
    pub verify: bool,
    /// Always stream through this machine, even where a server-side copy is possible.
    #[arg(long)]
    pub no_server_side: bool,
    /// Longest wait, in seconds, for a storage service to connect or to send the next bytes of an
    /// answer before the request counts as failed (and is retried).
    #[arg(long, default_value_t = 120, value_name = "SECS")]
    pub timeout: u64,
    /// Tries per request (listing, file copy, deletion) on a timeout, a lost connection or a
    /// 408/429/500/502/503/504, 1 s to 60 s apart (a service's `Retry-After` honoured).
    #[arg(long, default_value_t = SyncOptions::default().attempts, value_name = "N")]
    pub attempts: u32,
    /// Time for the whole sync, in seconds: no try starts after it (the rerun copies what is
    /// left).
    #[arg(long, default_value_t = SyncOptions::default().deadline.as_secs(), value_name = "SECS")]
    pub deadline: u64,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
}

impl SyncArgs {
    pub fn options(&self) -> Result<SyncOptions> {
        Ok(SyncOptions {
            mirror: self.mirror,
            compare: Compare::parse(&self.compare)?,
            max_delete: MaxDelete::parse(&self.max_delete)?,
            include: self.include.clone(),
            exclude: self.exclude.clone(),
            concurrency: self.concurrency,
            list_concurrency: self.list_concurrency,
            verify: self.verify,
            server_side: !self.no_server_side,
            attempts: self.attempts,
            deadline: std::time::Duration::from_secs(self.deadline),
            ..SyncOptions::default()
        })
    }
}

/// Resolves an endpoint: a URL, a config share (`prod.shares.app/sub`), or a local path.
pub fn resolve(text: &str, config: Option<&Config>) -> Result<Endpoint> {
    if !text.contains("://")
        && let Some((env, rest)) = text.split_once(".shares.")
        && !env.contains('/')
        && let Some(config) = config
    {
        let (name, sub) = rest.split_once('/').unwrap_or((rest, ""));
        let environment = config
            .environments
            .get(env)
            .ok_or_else(|| Error::Usage(format!("sync: no environment `{env}` in the config (from \"{text}\")")))?;
        let share = environment
            .shares
            .get(name)
            .ok_or_else(|| Error::Usage(format!("sync: environment `{env}` has no share `{name}`")))?;
        return share.endpoint(sub);
    }
    Endpoint::parse(text)
}

/// Runs `drscript sync`: prints dry-run items and the summary on stdout, progress on stderr.
/// Errs (after printing the summary) when anything failed.
pub fn run_cli(args: &SyncArgs, config: Option<&Config>) -> Result<SyncSummary> {
    let opts = args.options()?;
    if args.timeout == 0 {
        return Err(Error::Usage("sync: --timeout must be at least 1 second".to_string()));
    }
    let timeout = std::time::Duration::from_secs(args.timeout);
    let src = resolve(&args.src, config)?.with_timeout(timeout);
    let dst = resolve(&args.dst, config)?.with_timeout(timeout);
    let mode = if args.dry_run { SyncMode::DryRun } else { SyncMode::Live };
    let observer = Arc::new(Printer::new(args.dry_run && !args.json));
    let fut = engine::sync_report(&src, &dst, &opts, mode, observer);
    let summary = match tokio::runtime::Handle::try_current() {
        Ok(h) => tokio::task::block_in_place(|| h.block_on(fut)),
        // One thread: the sync is one future whose work is waiting on I/O, and local file work
        // goes to the blocking pool either way. On a worker pool every reply would be read by a
        // worker and handed to the thread polling the sync: two context switches per request.
        Err(_) => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::io("cannot start the async runtime", e))?
            .block_on(fut),
    }?;
    if args.json {
        let text = serde_json::to_string_pretty(&summary.to_json()).unwrap_or_default();
        crate::output::out(&format!("{text}\n"));
    } else {
        crate::output::out(&format!("{}\n", summary.render()));
    }
    if summary.ok() { Ok(summary) } else { Err(engine::failed(&summary)) }
}

/// Prints dry-run items on stdout and progress on stderr (a status line on a terminal, a log line
/// every `log_every` otherwise).
pub struct Printer {
    terminal: bool,
    list_items: bool,
    log_every: Duration,
    last_log: Mutex<Option<Instant>>,
}

impl Printer {
    pub fn new(list_items: bool) -> Printer {
        Printer {
            terminal: std::io::stderr().is_terminal(),
            list_items,
            log_every: Duration::from_secs(10),
            last_log: Mutex::new(None),
        }
    }
}

impl Observer for Printer {
    fn on(&self, event: &SyncEvent) {
        match event {
            SyncEvent::Copy { path, size, reason, done: false } if self.list_items => {
                crate::output::out(&format!("copy   {path} ({}, {reason})\n", bytes(*size)));
            }
            SyncEvent::Delete { path, size, dir, done: false } if self.list_items => {
                if *dir {
                    crate::output::out(&format!("delete {path}/\n"));
                } else {
                    crate::output::out(&format!("delete {path} ({})\n", bytes(*size)));
                }
            }
            SyncEvent::Failed { path, reason } => {
                if self.terminal {
                    crate::output::err_raw("\r\x1b[2K");
                }
                crate::output::err(&format!("failed {path}: {reason}"));
            }
            SyncEvent::Progress(s) => {
                if self.terminal {
                    crate::output::err_raw(&format!("\r\x1b[2K{}", status_line(s)));
                    if s.listing_done && s.copied + s.failed >= s.planned_files {
                        crate::output::err_raw("\n");
                    }
                } else {
                    let mut last = self.last_log.lock().unwrap();
                    if last.is_none_or(|l| l.elapsed() >= self.log_every) {
                        *last = Some(Instant::now());
                        tracing::info!("sync: {}", status_line(s));
                    }
                }
            }
            _ => {}
        }
    }
}
