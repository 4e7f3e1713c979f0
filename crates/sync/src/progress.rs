//! What a run tells its caller while it works: every planned or done copy and deletion, and a
//! periodic snapshot. Drawing them is the caller's business (the CLI's printer, a step's status
//! line); this crate prints nothing.

use std::time::Duration;

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
