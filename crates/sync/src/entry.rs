//! One listed item of an endpoint: a file or a directory, with what the comparison needs.

use chrono::{DateTime, Utc};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    File,
    Dir,
}

#[derive(Debug, Clone)]
pub struct Entry {
    /// The name inside its directory (no `/`).
    pub name: String,
    pub kind: Kind,
    pub size: u64,
    /// Last-modified (local mtime, Azure Files last-write-time, blob `mtime` metadata).
    pub mtime: Option<DateTime<Utc>>,
    /// Content-MD5 when the listing carries it.
    pub md5: Option<[u8; 16]>,
}

impl Entry {
    pub fn file(name: impl Into<String>, size: u64, mtime: Option<DateTime<Utc>>) -> Entry {
        Entry { name: name.into(), kind: Kind::File, size, mtime, md5: None }
    }

    pub fn dir(name: impl Into<String>) -> Entry {
        Entry { name: name.into(), kind: Kind::Dir, size: 0, mtime: None, md5: None }
    }

    pub fn is_dir(&self) -> bool {
        self.kind == Kind::Dir
    }
}

/// `dir/name`, or `name` at the root.
pub fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() { name.to_string() } else { format!("{dir}/{name}") }
}
