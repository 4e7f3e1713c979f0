//! What a sync run is asked to do, validated once so that the engine never sees a half-valid
//! option.

use std::time::Duration;

use serde::Serialize;

use drscript_base::error::{Error, Result};

/// Live changes the destination; DryRun lists both sides and reports what would change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SyncMode {
    Live,
    DryRun,
}

/// How "changed" is decided for a file present on both sides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Compare {
    /// Missing, size differs, or the source is newer (azcopy sync's rule).
    #[default]
    SizeTime,
    /// Missing, or the content MD5 differs (computed where the service stores none).
    Hash,
    /// Missing, or size or last-modified differs in either direction: a newer destination file
    /// is replaced too (the RabbitMQ pre-copy: what the final copy then rewrites is the delta).
    Differs,
    /// Every file present on both sides is copied, whatever its size and time: azcopy's
    /// `--mirror-mode` exactly (its sync comparator skips no file it finds at the destination), for
    /// a copy that must end byte-identical even where a file changed with its size and time kept.
    MirrorMode,
}

impl Compare {
    pub fn parse(text: &str) -> Result<Compare> {
        match text.trim().to_ascii_lowercase().as_str() {
            "size-time" | "size_time" | "sizetime" | "time" | "" => Ok(Compare::SizeTime),
            "hash" | "md5" => Ok(Compare::Hash),
            "differs" => Ok(Compare::Differs),
            "mirror-mode" | "mirror_mode" | "overwrite" => Ok(Compare::MirrorMode),
            other => Err(Error::Usage(format!(
                "sync: compare must be \"size-time\", \"differs\", \"mirror-mode\" or \"hash\", not \"{other}\""
            ))),
        }
    }
}

/// The ceiling on deletions of a mirror run.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum MaxDelete {
    Count(u64),
    /// Percent of the destination's files (0–100).
    Percent(f64),
}

impl Default for MaxDelete {
    fn default() -> Self {
        MaxDelete::Percent(50.0)
    }
}

impl MaxDelete {
    /// `"25"` is a count, `"25%"` a percentage of the destination's files.
    pub fn parse(text: &str) -> Result<MaxDelete> {
        let t = text.trim();
        let bad = || {
            Error::Usage(format!("sync: max_delete must be a count (\"100\") or a percentage (\"10%\"), not \"{t}\""))
        };
        if let Some(p) = t.strip_suffix('%') {
            let v: f64 = p.trim().parse().map_err(|_| bad())?;
            if !(0.0..=100.0).contains(&v) {
                return Err(bad());
            }
            Ok(MaxDelete::Percent(v))
        } else {
            Ok(MaxDelete::Count(t.parse().map_err(|_| bad())?))
        }
    }

    /// The number of deletions allowed out of `dest_files`.
    pub fn limit(&self, dest_files: u64) -> u64 {
        match *self {
            MaxDelete::Count(n) => n,
            MaxDelete::Percent(p) => ((dest_files as f64) * p / 100.0).floor() as u64,
        }
    }

    pub fn describe(&self) -> String {
        match self {
            MaxDelete::Count(n) => format!("{n}"),
            MaxDelete::Percent(p) => format!("{p}%"),
        }
    }
}

/// A share copy's deadline by default: a copy still retrying after 6 hours waits for a service
/// that an operator should be told about.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(6 * 3600);

#[derive(Debug, Clone)]
pub struct SyncOptions {
    /// Also delete destination files and folders that the source lacks (guarded).
    pub mirror: bool,
    pub compare: Compare,
    pub max_delete: MaxDelete,
    /// Globs on the path relative to the endpoint (`*.xml`, `web/**`); a pattern without `/`
    /// also matches the file name anywhere.
    pub include: Vec<String>,
    pub exclude: Vec<String>,
    /// Requests for files (copies, deletions) in flight at once; a file waiting out a retry
    /// holds none.
    pub concurrency: usize,
    /// Directory listings in flight at once.
    pub list_concurrency: usize,
    /// Tries per request (1 = no retry): azcopy's 20 by default.
    pub attempts: u32,
    /// First retry delay; doubles each try up to `retry_max_delay` (±20 % jitter). A server's
    /// `Retry-After` is waited at least.
    pub retry_delay: Duration,
    pub retry_max_delay: Duration,
    /// The whole sync's time: no try starts after it, and the sync stops with what is left
    /// listed (a rerun copies only that).
    pub deadline: Duration,
    /// Compare content hashes of every copied file afterwards.
    pub verify: bool,
    /// Copy server-side (from URL) where both endpoints allow it.
    pub server_side: bool,
    /// Names per page of a flat Blob listing (1–5,000; smaller only to test paging).
    pub list_page_size: usize,
}

impl Default for SyncOptions {
    fn default() -> Self {
        SyncOptions {
            mirror: false,
            compare: Compare::SizeTime,
            max_delete: MaxDelete::default(),
            include: Vec::new(),
            exclude: Vec::new(),
            concurrency: 16,
            list_concurrency: 16,
            attempts: drscript_base::retry::Policy::AZCOPY.tries,
            retry_delay: drscript_base::retry::Policy::AZCOPY.first_delay,
            retry_max_delay: drscript_base::retry::Policy::AZCOPY.max_delay,
            deadline: DEFAULT_DEADLINE,
            verify: false,
            server_side: true,
            list_page_size: super::flat::PAGE,
        }
    }
}

impl SyncOptions {
    /// The retry policy of each request of the sync; its deadline counts from the sync's start.
    pub fn retry_policy(&self) -> drscript_base::retry::Policy {
        drscript_base::retry::Policy::new(self.attempts, self.retry_delay, self.retry_max_delay.max(self.retry_delay))
            .with_deadline(self.deadline)
            .scalable()
    }

    pub fn validate(&self) -> Result<()> {
        if self.concurrency == 0 || self.list_concurrency == 0 {
            return Err(Error::Usage("sync: concurrency must be at least 1".to_string()));
        }
        if !(1..=super::flat::PAGE).contains(&self.list_page_size) {
            return Err(Error::Usage(format!("sync: list_page_size must be 1 to {}", super::flat::PAGE)));
        }
        if self.attempts == 0 {
            return Err(Error::Usage("sync: attempts must be at least 1".to_string()));
        }
        if self.deadline.is_zero() {
            return Err(Error::Usage("sync: the deadline must be longer than 0 s".to_string()));
        }
        Ok(())
    }
}
