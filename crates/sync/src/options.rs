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
    /// Missing, or size or last-modified differs in either direction: azcopy's `--mirror-mode`,
    /// for a copy that must end byte-identical (a newer destination file is replaced too).
    Differs,
}

impl Compare {
    pub fn parse(text: &str) -> Result<Compare> {
        match text.trim().to_ascii_lowercase().as_str() {
            "size-time" | "size_time" | "sizetime" | "time" | "" => Ok(Compare::SizeTime),
            "hash" | "md5" => Ok(Compare::Hash),
            "differs" | "mirror-mode" => Ok(Compare::Differs),
            other => Err(Error::Usage(format!(
                "sync: compare must be \"size-time\", \"differs\" or \"hash\", not \"{other}\""
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
    /// Transfers in flight at once.
    pub concurrency: usize,
    /// Directory listings in flight at once.
    pub list_concurrency: usize,
    /// Attempts per file (1 = no retry).
    pub attempts: u32,
    /// First retry delay; doubles each attempt.
    pub retry_delay: Duration,
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
            attempts: 4,
            retry_delay: Duration::from_millis(200),
            verify: false,
            server_side: true,
            list_page_size: super::flat::PAGE,
        }
    }
}

impl SyncOptions {
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
        Ok(())
    }
}
