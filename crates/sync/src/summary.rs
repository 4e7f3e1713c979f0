//! The result of a sync run: what an operator and a report need, serializable to JSON.

use serde::Serialize;

use super::options::SyncMode;

/// One file or folder that was (or, in a dry run, would be) copied or deleted.
#[derive(Debug, Clone, Serialize)]
pub struct Item {
    pub path: String,
    pub size: u64,
    /// Why it is copied (`missing`, `size`, `newer`, `hash`) or deleted (`extra`, `extra-dir`).
    pub reason: String,
    /// For a copy over an existing file: that file's size, which the copy frees (what the
    /// destination grows by is `size - replaces`).
    #[serde(skip_serializing_if = "is_zero")]
    pub replaces: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

#[derive(Debug, Clone, Serialize)]
pub struct Failure {
    pub path: String,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct SyncSummary {
    pub source: String,
    pub destination: String,
    pub mode: SyncMode,
    pub mirror: bool,
    /// Files in the source that take part (after include/exclude).
    pub source_files: u64,
    /// Files in the destination that take part.
    pub destination_files: u64,
    /// Copied, or in a dry run to be copied.
    pub copied: u64,
    pub copied_bytes: u64,
    /// Of `copied`, done server-side (from URL).
    pub server_side: u64,
    pub skipped: u64,
    /// Files deleted (or to be deleted) by a mirror.
    pub deleted: u64,
    pub deleted_bytes: u64,
    pub deleted_dirs: u64,
    pub verified: u64,
    pub seconds: f64,
    pub failures: Vec<Failure>,
    /// Why a mirror deleted nothing although the destination has extra files.
    pub deletion_refused: Option<String>,
    /// Why the sync stopped before the end (an endpoint stopped answering).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped: Option<String>,
    /// Files found to copy but not tried, once the sync had stopped.
    pub not_attempted: u64,
    /// Dry run: every copy and deletion.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub planned_copies: Vec<Item>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub planned_deletions: Vec<Item>,
}

impl SyncSummary {
    /// A summary of nothing done yet: what a plan returns, with the shape of a real one.
    pub fn empty(source: String, destination: String, mode: SyncMode, mirror: bool) -> SyncSummary {
        SyncSummary {
            source,
            destination,
            mode,
            mirror,
            source_files: 0,
            destination_files: 0,
            copied: 0,
            copied_bytes: 0,
            server_side: 0,
            skipped: 0,
            deleted: 0,
            deleted_bytes: 0,
            deleted_dirs: 0,
            verified: 0,
            seconds: 0.0,
            failures: Vec::new(),
            deletion_refused: None,
            stopped: None,
            not_attempted: 0,
            planned_copies: Vec::new(),
            planned_deletions: Vec::new(),
        }
    }

    /// True when everything that had to happen happened.
    pub fn ok(&self) -> bool {
        self.failures.is_empty() && self.deletion_refused.is_none() && self.stopped.is_none()
    }

    /// The human summary, one paragraph; failures listed one per line.
    pub fn render(&self) -> String {
        format!("sync {} → {}: {}", self.source, self.destination, self.outcome())
    }

    /// The summary without the endpoints, for a message that names them already.
    pub fn outcome(&self) -> String {
        let verb = if self.mode == SyncMode::DryRun { "would copy" } else { "copied" };
        let del = if self.mode == SyncMode::DryRun { "would delete" } else { "deleted" };
        let mut s = format!(
            "{verb} {} files ({}), skipped {}, {del} {} files ({}) and {} folders, {} failures, {:.1} s",
            self.copied,
            bytes(self.copied_bytes),
            self.skipped,
            self.deleted,
            bytes(self.deleted_bytes),
            self.deleted_dirs,
            self.failures.len(),
            self.seconds
        );
        if self.server_side > 0 {
            s.push_str(&format!("; {} copied server-side", self.server_side));
        }
        if self.verified > 0 {
            s.push_str(&format!("; {} verified by MD5", self.verified));
        }
        if let Some(why) = &self.stopped {
            s.push_str(&format!(
                "\nstopped early: {why}; {} file(s) found to copy were not tried and the folders not yet \
                 listed were left alone. Run the sync again once the service answers: it copies only \
                 what is still missing or different.",
                self.not_attempted
            ));
        }
        if let Some(why) = &self.deletion_refused {
            s.push_str(&format!("\nmirror deleted nothing: {why}"));
        }
        for f in &self.failures {
            s.push_str(&format!("\nfailed: {}: {}", f.path, f.reason));
        }
        drscript_base::redact::redacted(s)
    }

    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }
}

/// `1.5 MiB`-style sizes.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 { format!("{n} B") } else { format!("{v:.1} {}", UNITS[u]) }
}
