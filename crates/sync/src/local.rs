//! A local folder as a sync endpoint.
//!
//! Writes go to a hidden temporary name in the target directory and are renamed into place
//! with the source's mtime already set, so a killed run never leaves a file that looks complete.
//! Stale temporaries of a killed run are removed when the directory is listed again.
//!
//! A local copy of a file the destination does not have yet is written under its own name
//! instead (one directory change, not a create and a rename): there is no old copy to keep
//! whole, and the source's mtime is set only after the last byte, so a killed copy leaves a
//! file whose size differs from the source's (copied again) or a complete one with a later
//! mtime (complete, so nothing is lost when the compare skips it).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use md5::Digest;

use drscript_base::sys;

use super::entry::{Entry, Kind};
use super::op_error::{OpError, OpResult};
use super::store::ByteStream;

/// Marks our temporary files; listings skip (and clean) them.
pub const TEMP_MARK: &str = ".drsync-tmp-";
const CHUNK: usize = 256 * 1024;

#[derive(Debug, Clone)]
pub struct Local {
    pub root: PathBuf,
}

fn to_utc(t: std::time::SystemTime) -> DateTime<Utc> {
    DateTime::<Utc>::from(t)
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> OpResult<T> + Send + 'static) -> OpResult<T> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| Err(OpError::new(format!("worker thread failed: {e}"), true)))
}

fn temp_path(target: &Path) -> PathBuf {
    let name = target.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let nonce: u64 = rand_nonce();
    target.with_file_name(format!("{TEMP_MARK}{nonce:016x}.{name}"))
}

fn rand_nonce() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    (t.as_nanos() as u64) ^ ((std::process::id() as u64) << 40) ^ COUNTER.fetch_add(1, Ordering::Relaxed)
}

impl Local {
    pub fn new(root: PathBuf) -> Local {
        Local { root }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        if rel.is_empty() { self.root.clone() } else { self.root.join(rel) }
    }

    /// The free space of the filesystem that holds the root (or, before it is created, its
    /// nearest existing parent).
    pub async fn space(&self) -> OpResult<super::store::Space> {
        let root = self.root.clone();
        blocking(move || {
            let at = root.ancestors().find(|p| p.exists()).unwrap_or(&root).to_path_buf();
            let free = drscript_base::sys::free_bytes(&at)
                .map_err(|e| OpError::io(&format!("cannot read the free space of {}", at.display()), &e))?;
            // The path stays out of messages: they name shares as the config does.
            Ok(super::store::Space { free_bytes: free, limit: "free space of its filesystem".to_string() })
        })
        .await
    }

    /// Whether the root exists and is a directory.
    pub async fn root_state(&self) -> OpResult<bool> {
        let root = self.root.clone();
        blocking(move || match std::fs::metadata(&root) {
            Ok(m) if m.is_dir() => Ok(true),
            Ok(_) => Err(OpError::new(format!("{} is a file, not a folder", root.display()), false)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(OpError::io(&format!("cannot read {}", root.display()), &e)),
        })
        .await
    }

    /// The entries of one directory, `None` when it does not exist. `clean` removes stale
    /// temporaries of a killed run.
    pub async fn list(&self, rel: &str, clean: bool) -> OpResult<Option<Vec<Entry>>> {
        let dir = self.path(rel);
        blocking(move || {
            let rd = match std::fs::read_dir(&dir) {
                Ok(rd) => rd,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(OpError::io(&format!("cannot list {}", dir.display()), &e)),
            };
            let mut out = Vec::new();
            for item in rd {
                let item = item.map_err(|e| OpError::io(&format!("cannot list {}", dir.display()), &e))?;
                let name = item.file_name().to_string_lossy().into_owned();
                if name.starts_with(TEMP_MARK) {
                    if clean {
                        let _ = std::fs::remove_file(item.path());
                    }
                    continue;
                }
                // The entry's own stat (relative to the open folder, no path lookup) unless it
                // is a symlink, which is followed like every other tool here does.
                let is_link = item.file_type().is_ok_and(|t| t.is_symlink());
                let meta = match if is_link { std::fs::metadata(item.path()) } else { item.metadata() } {
                    Ok(m) => m,
                    // A dangling symlink or a file deleted while listing: nothing to copy.
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(e) => {
                        return Err(OpError::io(&format!("cannot stat {}", item.path().display()), &e));
                    }
                };
                if meta.is_dir() {
                    out.push(Entry::dir(name));
                } else if meta.is_file() {
                    out.push(Entry::file(name, meta.len(), meta.modified().ok().map(to_utc)));
                }
            }
            Ok(Some(out))
        })
        .await
    }

    pub async fn read(&self, rel: &str) -> OpResult<ByteStream> {
        let path = self.path(rel);
        let file = tokio::fs::File::open(&path)
            .await
            .map_err(|e| OpError::io(&format!("cannot open {}", path.display()), &e))?;
        let stream = tokio_util::io::ReaderStream::with_capacity(file, CHUNK);
        Ok(stream.boxed())
    }

    /// Writes `data` to `rel` through a temporary file, sets `mtime`, renames into place.
    pub async fn write(&self, rel: &str, mtime: Option<DateTime<Utc>>, mut data: ByteStream) -> OpResult<u64> {
        let target = self.path(rel);
        let tmp = temp_path(&target);
        let result: OpResult<u64> = async {
            let std_file = {
                let (tmp, target) = (tmp.clone(), target.clone());
                blocking(move || create_temp(&tmp, &target)).await?
            };
            let mut file = tokio::fs::File::from_std(std_file);
            let mut written = 0u64;
            while let Some(chunk) = data.next().await {
                let chunk = chunk.map_err(|e| OpError::from_stream(&format!("cannot read the source of {rel}"), &e))?;
                tokio::io::AsyncWriteExt::write_all(&mut file, &chunk)
                    .await
                    .map_err(|e| OpError::io(&format!("cannot write {}", tmp.display()), &e))?;
                written += chunk.len() as u64;
            }
            tokio::io::AsyncWriteExt::flush(&mut file)
                .await
                .map_err(|e| OpError::io(&format!("cannot write {}", tmp.display()), &e))?;
            let std_file = file.into_std().await;
            let (tmp2, target2) = (tmp.clone(), target.clone());
            blocking(move || finish(std_file, &tmp2, &target2, mtime)).await?;
            Ok(written)
        }
        .await;
        if result.is_err() {
            let _ = tokio::fs::remove_file(&tmp).await;
        }
        result
    }

    /// Local to local: the kernel copies (`kernel_copy`) into a temporary file that is renamed
    /// into place with the mtime and permissions set; a file the destination lacks (`fresh`) is
    /// written under its own name, its mtime set last (see the module's head).
    pub async fn copy_from(&self, src: &Local, rel: &str, mtime: Option<DateTime<Utc>>, fresh: bool) -> OpResult<u64> {
        let from = src.path(rel);
        let target = self.path(rel);
        blocking(move || {
            let input =
                std::fs::File::open(&from).map_err(|e| OpError::io(&format!("cannot open {}", from.display()), &e))?;
            let meta = input.metadata().map_err(|e| OpError::io(&format!("cannot stat {}", from.display()), &e))?;
            // O_EXCL: a file that appeared meanwhile is replaced through a temporary, like any.
            let direct = if fresh { create_new(&target).ok() } else { None };
            let (out, tmp) = match direct {
                Some(out) => (out, None),
                None => {
                    let tmp = temp_path(&target);
                    (create_temp(&tmp, &target)?, Some(tmp))
                }
            };
            let written = tmp.as_deref().unwrap_or(&target);
            let result = (|| {
                // Before the bytes: a killed copy that got them all has its permissions too.
                out.set_permissions(meta.permissions())
                    .map_err(|e| OpError::io(&format!("cannot set the permissions of {}", written.display()), &e))?;
                let n = kernel_copy(&input, &out, meta.len()).map_err(|e| {
                    OpError::io(&format!("cannot copy {} to {}", from.display(), written.display()), &e)
                })?;
                match &tmp {
                    Some(tmp) => finish(out, tmp, &target, mtime)?,
                    None => set_mtime(&out, &target, mtime)?,
                }
                Ok(n)
            })();
            if result.is_err() {
                let _ = std::fs::remove_file(written);
            }
            result
        })
        .await
    }

    pub async fn mkdir(&self, rel: &str) -> OpResult<()> {
        let p = self.path(rel);
        tokio::fs::create_dir_all(&p).await.map_err(|e| OpError::io(&format!("cannot create {}", p.display()), &e))
    }

    pub async fn delete_file(&self, rel: &str) -> OpResult<()> {
        let p = self.path(rel);
        match tokio::fs::remove_file(&p).await {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(OpError::io(&format!("cannot delete {}", p.display()), &e))
            }
            _ => Ok(()),
        }
    }

    pub async fn delete_dir(&self, rel: &str) -> OpResult<()> {
        let p = self.path(rel);
        match tokio::fs::remove_dir(&p).await {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(OpError::io(&format!("cannot delete folder {}", p.display()), &e))
            }
            _ => Ok(()),
        }
    }

    pub async fn md5(&self, rel: &str) -> OpResult<[u8; 16]> {
        let path = self.path(rel);
        blocking(move || {
            let mut f =
                std::fs::File::open(&path).map_err(|e| OpError::io(&format!("cannot open {}", path.display()), &e))?;
            let mut h = md5::Md5::new();
            let mut buf = vec![0u8; CHUNK];
            loop {
                let n = f.read(&mut buf).map_err(|e| OpError::io(&format!("cannot read {}", path.display()), &e))?;
                if n == 0 {
                    break;
                }
                h.update(&buf[..n]);
            }
            Ok(h.finalize().into())
        })
        .await
    }

    pub fn kind_of(meta: &std::fs::Metadata) -> Kind {
        if meta.is_dir() { Kind::Dir } else { Kind::File }
    }
}

/// Creates the temporary file of `target`. The engine creates a folder before the files inside
/// it, so the parent normally exists: it is created here only when it does not (a folder
/// removed meanwhile, or a writer that does not walk), which spares a lookup per file.
fn create_temp(tmp: &Path, target: &Path) -> OpResult<std::fs::File> {
    create_in(tmp, target).map_err(|e| OpError::io(&format!("cannot create {}", tmp.display()), &e))
}

/// Creates `target` itself, failing if it exists.
fn create_new(target: &Path) -> std::io::Result<std::fs::File> {
    create_in(target, target)
}

/// Creates the new file `path` in `target`'s folder, creating the folder when it is missing.
fn create_in(path: &Path, target: &Path) -> std::io::Result<std::fs::File> {
    match std::fs::File::create_new(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::File::create_new(path)
        }
        other => other,
    }
}

/// Set once a clone was refused: the filesystem cannot share extents, and asking again for
/// every file would only cost a system call each.
static NO_REFLINK: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Copies `input` into the empty `out` without the bytes passing through this process where
/// the kernel allows: a reflink (FICLONE: Btrfs, XFS, bcachefs share the extents), else
/// `copy_file_range` (in-kernel; server-side on NFS 4.2 and SMB), else a read/write loop (another
/// filesystem, `EXDEV` on older kernels, or a kernel without it).
#[cfg(target_os = "linux")]
fn kernel_copy(input: &std::fs::File, out: &std::fs::File, len: u64) -> std::io::Result<u64> {
    use std::sync::atomic::Ordering::Relaxed;
    if len > 0 && !NO_REFLINK.load(Relaxed) {
        if sys::reflink(input, out) {
            return Ok(len);
        }
        NO_REFLINK.store(true, Relaxed);
    }
    let mut copied = 0u64;
    loop {
        let e = match sys::copy_file_range(input, out, 1 << 30) {
            Ok(0) => return Ok(copied),
            Ok(n) => {
                copied += n as u64;
                continue;
            }
            Err(e) => e,
        };
        match e.raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(libc::EXDEV | libc::ENOSYS | libc::EOPNOTSUPP | libc::EINVAL | libc::EPERM) if copied == 0 => {
                return read_write(input, out);
            }
            _ => return Err(e),
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn kernel_copy(input: &std::fs::File, out: &std::fs::File, _len: u64) -> std::io::Result<u64> {
    read_write(input, out)
}

fn read_write(mut input: &std::fs::File, mut out: &std::fs::File) -> std::io::Result<u64> {
    let mut buf = vec![0u8; CHUNK];
    let mut copied = 0u64;
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) => return Ok(copied),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        out.write_all(&buf[..n])?;
        copied += n as u64;
    }
}

fn finish(f: std::fs::File, tmp: &Path, target: &Path, mtime: Option<DateTime<Utc>>) -> OpResult<()> {
    set_mtime(&f, tmp, mtime)?;
    drop(f);
    std::fs::rename(tmp, target)
        .map_err(|e| OpError::io(&format!("cannot rename {} to {}", tmp.display(), target.display()), &e))
}

/// Flushes `f` (written as `path`) and sets its mtime.
fn set_mtime(mut f: &std::fs::File, path: &Path, mtime: Option<DateTime<Utc>>) -> OpResult<()> {
    f.flush().map_err(|e| OpError::io(&format!("cannot write {}", path.display()), &e))?;
    if let Some(t) = mtime {
        f.set_modified(t.into())
            .map_err(|e| OpError::io(&format!("cannot set the mtime of {}", path.display()), &e))?;
    }
    Ok(())
}

/// A stream over one in-memory chunk (tests and small bodies).
pub fn once(bytes: Bytes) -> ByteStream {
    futures::stream::once(async move { Ok(bytes) }).boxed()
}
