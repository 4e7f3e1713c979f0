//! An Azure Files directory as a sync endpoint, over [`crate::azure_files::FilesClient`].

use chrono::{DateTime, Utc};

use super::entry::Entry;
use super::op_error::{OpError, OpResult};
use super::store::{ByteStream, md5_of};
use crate::azure_files::{FilesClient, FilesError};

fn op(e: FilesError) -> OpError {
    OpError::http(e.message, e.status, e.code.as_deref(), e.retry_after)
}

#[derive(Clone)]
pub struct Files {
    pub client: FilesClient,
    /// Set once the service said it cannot read a copy source (`CannotVerifyCopySource`: the
    /// source account's firewall or private endpoint keeps the service out): from then on the
    /// files stream through this machine instead.
    pub no_copy_from_url: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Files {
    pub fn new(client: FilesClient) -> Files {
        Files { client, no_copy_from_url: Default::default() }
    }
}

impl std::fmt::Debug for Files {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Files({})", self.client.remote().location())
    }
}

impl Files {
    /// The share's quota less its usage.
    pub async fn space(&self) -> OpResult<super::store::Space> {
        let (quota_gib, used) = self.client.share_space().await.map_err(op)?;
        let quota = quota_gib.saturating_mul(1 << 30);
        Ok(super::store::Space {
            free_bytes: quota.saturating_sub(used),
            limit: format!("quota {quota_gib} GiB, {:.1} GiB used", used as f64 / (1u64 << 30) as f64),
        })
    }

    pub async fn root_exists(&self) -> OpResult<bool> {
        self.client.dir_exists("").await.map_err(op)
    }

    pub async fn list(&self, rel: &str) -> OpResult<Option<Vec<Entry>>> {
        self.client.list(rel).await.map_err(op)
    }

    pub async fn read(&self, rel: &str) -> OpResult<ByteStream> {
        self.client.get(rel).await.map_err(op)
    }

    pub async fn write(&self, rel: &str, size: u64, mtime: Option<DateTime<Utc>>, data: ByteStream) -> OpResult<u64> {
        self.client.upload(rel, size, mtime, data).await.map_err(op)
    }

    /// Server-side copy from `src`; `None` when it is not possible (no SAS for the source, or the
    /// service cannot reach the source), and the caller streams the file instead.
    pub async fn copy_from(&self, src: &Files, rel: &str, entry: &Entry) -> Option<OpResult<u64>> {
        use std::sync::atomic::Ordering::Relaxed;
        if self.no_copy_from_url.load(Relaxed) {
            return None;
        }
        let source = src.client.url_with_sas(rel)?;
        match self.client.copy_from_url(rel, entry.size, entry.mtime, &source).await {
            Err(e) if e.code.as_deref() == Some("CannotVerifyCopySource") => {
                if !self.no_copy_from_url.swap(true, Relaxed) {
                    tracing::warn!(
                        "the storage service cannot read the copy source ({}): copying through this machine instead",
                        e.message
                    );
                }
                None
            }
            r => Some(r.map_err(op)),
        }
    }

    /// Creates `rel` and, for the root, every missing parent of the endpoint's path.
    pub async fn mkdir(&self, rel: &str) -> OpResult<()> {
        if rel.is_empty() {
            let path = self.client.remote().path.clone();
            let mut remote = self.client.remote().clone();
            remote.path = String::new();
            let at_share = FilesClient::new(remote);
            let mut cur = String::new();
            for seg in path.split('/').filter(|s| !s.is_empty()) {
                cur = if cur.is_empty() { seg.to_string() } else { format!("{cur}/{seg}") };
                at_share.create_dir(&cur).await.map_err(op)?;
            }
            return Ok(());
        }
        self.client.create_dir(rel).await.map_err(op)
    }

    pub async fn delete_file(&self, rel: &str) -> OpResult<()> {
        self.client.delete_file(rel).await.map_err(op)
    }

    pub async fn delete_dir(&self, rel: &str) -> OpResult<()> {
        self.client.delete_dir(rel).await.map_err(op)
    }

    /// The stored Content-MD5 when the file has one; otherwise computed from the content.
    /// The content's MD5: the stored Content-MD5 when drscript set it for the content the file
    /// still has, else computed by reading the file (a missing MD5, or one that may be stale: the
    /// service keeps it through SMB writes and Put Range without checking it).
    pub async fn md5(&self, rel: &str) -> OpResult<[u8; 16]> {
        let props = self.client.properties(rel).await.map_err(op)?;
        if let Some(m) = props.md5.filter(|_| props.md5_current) {
            return Ok(m);
        }
        md5_of(self.read(rel).await?, rel).await
    }
}
