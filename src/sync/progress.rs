//! What a run tells its caller while it works: every planned or done copy and deletion, and a
//! periodic snapshot. The default printer draws one status line on a terminal and writes a log
//! line every few seconds otherwise.

use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::summary::bytes;

#[derive(Debug, Clone, Copy, Default)]
pub struct Snapshot {
    pub listed_dirs: u64,
    pub listing_done: bool,
    pub copied: u64,
    pub copied_bytes: u64,
    /// Bytes known to need copying so far (all of them once listing is done).
    pub planned_bytes: u64,
    pub planned_files: u64,
    pub skipped: u64,
    pub failed: u64,
    pub elapsed: Duration,
}

#[derive(Debug, Clone)]
pub enum SyncEvent {
    /// `done` false: found to need copying (dry run lists these); true: copied.
    Copy {
        path: String,
        size: u64,
        reason: &'static str,
        done: bool,
    },
    Delete {
        path: String,
        size: u64,
        dir: bool,
        done: bool,
    },
    Failed {
        path: String,
        reason: String,
    },
    Progress(Snapshot),
}

pub trait Observer: Send + Sync {
    fn on(&self, event: &SyncEvent);
}

/// Ignores everything (tests, the Rhai primitive).
pub struct Quiet;

impl Observer for Quiet {
    fn on(&self, _: &SyncEvent) {}
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

pub fn status_line(s: &Snapshot) -> String {
    let secs = s.elapsed.as_secs_f64().max(0.001);
    let rate = s.copied_bytes as f64 / secs;
    let eta = if s.listing_done && rate > 0.0 && s.planned_bytes > s.copied_bytes {
        format!(", ETA {:.0} s", (s.planned_bytes - s.copied_bytes) as f64 / rate)
    } else {
        String::new()
    };
    format!(
        "{} / {}{} files, {} / {}, {}/s, {} unchanged, {} failed{eta}",
        s.copied,
        s.planned_files,
        if s.listing_done { "" } else { "+" },
        bytes(s.copied_bytes),
        bytes(s.planned_bytes),
        bytes(rate as u64),
        s.skipped,
        s.failed
    )
}

impl Observer for Printer {
    fn on(&self, event: &SyncEvent) {
        match event {
            SyncEvent::Copy { path, size, reason, done: false } if self.list_items => {
                println!("copy   {path} ({}, {reason})", bytes(*size));
            }
            SyncEvent::Delete { path, size, dir, done: false } if self.list_items => {
                if *dir {
                    println!("delete {path}/");
                } else {
                    println!("delete {path} ({})", bytes(*size));
                }
            }
            SyncEvent::Failed { path, reason } => {
                let line = crate::redact::redacted(format!("failed {path}: {reason}"));
                if self.terminal {
                    eprint!("\r\x1b[2K");
                }
                eprintln!("{line}");
            }
            SyncEvent::Progress(s) => {
                if self.terminal {
                    eprint!("\r\x1b[2K{}", status_line(s));
                    if s.listing_done && s.copied + s.failed >= s.planned_files {
                        eprintln!();
                    }
                    let _ = std::io::stderr().flush();
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
