//! One interface over the three kinds of endpoint, so the engine compares and copies without
//! knowing which services it talks to. Dispatch is a plain enum: the set of services is closed.

use std::pin::Pin;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::Stream;

use super::blob::Blob;
use super::endpoint::Endpoint;
use super::entry::Entry;
use super::files::Files;
use super::local::Local;
use super::op_error::{OpError, OpResult};

/// File content on its way from one endpoint to another, in chunks; never a whole file.
pub type ByteStream = Pin<Box<dyn Stream<Item = std::io::Result<Bytes>> + Send>>;

/// Room left at an endpoint for a copy into it: the share's quota less its usage (Azure Files),
/// the free space of the filesystem (a local folder).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Space {
    /// Bytes that can still be written.
    pub free_bytes: u64,
    /// What limits it, for messages: `quota 100 GiB, 93.1 GiB used`, `free space of its filesystem`.
    pub limit: String,
}

#[derive(Debug, Clone)]
pub enum Store {
    Local(Local),
    Files(Files),
    Blob(Blob),
}

impl Store {
    pub fn open(endpoint: &Endpoint) -> crate::Result<Store> {
        match endpoint {
            Endpoint::Local(p) => Ok(Store::Local(Local::new(p.clone()))),
            Endpoint::Files(r) => Ok(Store::Files(Files::new(crate::azure_files::FilesClient::new(r.clone())))),
            Endpoint::Blob(r) => Ok(Store::Blob(Blob::new(r)?)),
        }
    }

    /// Whether the root exists (a missing destination root is created; a missing source is an
    /// error).
    pub async fn root_exists(&self) -> OpResult<bool> {
        match self {
            Store::Local(l) => l.root_state().await,
            Store::Files(f) => f.root_exists().await,
            Store::Blob(b) => b.root_exists().await,
        }
    }

    /// How much can still be written to the endpoint; `None` where nothing limits it that can be
    /// read (a Blob container: an account holds petabytes).
    pub async fn space(&self) -> OpResult<Option<Space>> {
        match self {
            Store::Local(l) => l.space().await.map(Some),
            Store::Files(f) => f.space().await.map(Some),
            Store::Blob(_) => Ok(None),
        }
    }

    /// One directory's entries, `None` when the directory does not exist.
    pub async fn list(&self, rel: &str, clean: bool) -> OpResult<Option<Vec<Entry>>> {
        match self {
            Store::Local(l) => l.list(rel, clean).await,
            Store::Files(f) => f.list(rel).await,
            Store::Blob(b) => b.list(rel).await,
        }
    }

    pub async fn read(&self, rel: &str) -> OpResult<ByteStream> {
        match self {
            Store::Local(l) => l.read(rel).await,
            Store::Files(f) => f.read(rel).await,
            Store::Blob(b) => b.read(rel).await,
        }
    }

    pub async fn write(&self, rel: &str, size: u64, mtime: Option<DateTime<Utc>>, data: ByteStream) -> OpResult<u64> {
        match self {
            Store::Local(l) => l.write(rel, mtime, data).await,
            Store::Files(f) => f.write(rel, size, mtime, data).await,
            Store::Blob(b) => b.write(rel, size, mtime, data).await,
        }
    }

    /// Copies without streaming through a generic reader when the pair allows it: kernel copy
    /// between local folders, server-side from URL between services. `None`: not possible here.
    /// `fresh`: the destination has no file of that name.
    pub async fn copy_direct(
        &self,
        src: &Store,
        rel: &str,
        entry: &Entry,
        fresh: bool,
        server_side: bool,
    ) -> Option<OpResult<u64>> {
        match (self, src) {
            (Store::Local(d), Store::Local(s)) => Some(d.copy_from(s, rel, entry.mtime, fresh).await),
            (Store::Files(d), Store::Files(s)) if server_side => d.copy_from(s, rel, entry).await,
            (Store::Blob(d), Store::Blob(s)) if server_side => d.copy_from(s, rel, entry).await,
            _ => None,
        }
    }

    /// Whether `copy_direct` from `src` runs server-side (counted in the summary).
    pub fn server_side_from(&self, src: &Store, allowed: bool) -> bool {
        match (self, src) {
            (Store::Files(_), Store::Files(s)) => allowed && s.client.can_share_reads(),
            (Store::Blob(d), Store::Blob(s)) => allowed && d.server_side_possible(s),
            _ => false,
        }
    }

    pub async fn mkdir(&self, rel: &str) -> OpResult<()> {
        match self {
            Store::Local(l) => l.mkdir(rel).await,
            Store::Files(f) => f.mkdir(rel).await,
            Store::Blob(b) => b.mkdir(rel),
        }
    }

    pub async fn delete_file(&self, rel: &str) -> OpResult<()> {
        match self {
            Store::Local(l) => l.delete_file(rel).await,
            Store::Files(f) => f.delete_file(rel).await,
            Store::Blob(b) => b.delete_file(rel).await,
        }
    }

    pub async fn delete_dir(&self, rel: &str) -> OpResult<()> {
        match self {
            Store::Local(l) => l.delete_dir(rel).await,
            Store::Files(f) => f.delete_dir(rel).await,
            Store::Blob(_) => Ok(()),
        }
    }

    /// The content MD5: stored by the service when it has one, computed otherwise.
    pub async fn md5(&self, rel: &str, entry: &Entry) -> OpResult<[u8; 16]> {
        if let Some(m) = entry.md5 {
            return Ok(m);
        }
        match self {
            Store::Local(l) => l.md5(rel).await,
            Store::Files(f) => f.md5(rel).await,
            Store::Blob(b) => b.md5(rel).await,
        }
    }

    /// The MD5 of what `rel` holds now, for `verify`: the service's own figure where it computes
    /// one (Blob's Put Blob), the content read back where a stored MD5 is only what the writer
    /// claimed (Azure Files does not check it).
    pub async fn content_md5(&self, rel: &str) -> OpResult<[u8; 16]> {
        match self {
            Store::Local(l) => l.md5(rel).await,
            Store::Files(f) => md5_of(f.read(rel).await?, rel).await,
            Store::Blob(b) => b.md5(rel).await,
        }
    }

    /// Whether directories exist on their own (Files, local) or only as name prefixes (Blob).
    pub fn has_dirs(&self) -> bool {
        !matches!(self, Store::Blob(_))
    }
}

/// Computes the MD5 of a stream.
pub async fn md5_of(mut data: ByteStream, what: &str) -> OpResult<[u8; 16]> {
    use futures::StreamExt;
    use md5::Digest;
    let mut h = md5::Md5::new();
    while let Some(chunk) = data.next().await {
        let chunk = chunk.map_err(|e| OpError::from_stream(&format!("cannot read {what}"), &e))?;
        h.update(&chunk);
    }
    Ok(h.finalize().into())
}
