//! Shared helpers of the sync tests: building trees, hashing trees, running syncs.
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

pub mod azurite;

/// A config with a local share `app` in `prod` at `source` and a remote one in `dr` at `dr_url`
/// (Azure Files or Blob), its SAS in `DR_SAS`.
pub fn two_share_config(source: &Path, dr_url: &str) -> String {
    format!(
        r#"
[environments.prod]
namespace = "adeptia"
release = "ac"
gateway = "https://prod.example.com"
[environments.prod.shares]
app = {{ path = "{}" }}

[environments.dr]
namespace = "adeptia"
release = "ac"
gateway = "https://dr.example.com"
[environments.dr.shares]
app = {{ url = "{dr_url}", sas_env = "DR_SAS" }}
"#,
        source.display()
    )
}

use drscript_sync::{Endpoint, Quiet, SyncMode, SyncOptions, SyncSummary};
use md5::Digest;

/// Writes `files` (relative path → content) under `root` with the given mtime offset.
pub fn write_tree(root: &Path, files: &[(&str, &[u8])]) {
    for (rel, content) in files {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, content).unwrap();
    }
}

/// A deterministic tree of `n` files in nested folders, sizes varying.
pub fn generate(root: &Path, n: usize, seed: u64) {
    for i in 0..n {
        let rel = format!("d{}/e{}/f{i}.dat", i % 7, i % 3);
        let size = (i * 37 + seed as usize) % 3000 + 1;
        let content: Vec<u8> = (0..size).map(|k| ((k as u64 * 31 + i as u64 + seed) % 251) as u8).collect();
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }
}

/// Relative path → (size, md5 hex, mtime in ms) of every file under `root`.
pub fn tree(root: &Path) -> BTreeMap<String, (u64, String, i64)> {
    let mut out = BTreeMap::new();
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, (u64, String, i64)>) {
        let Ok(rd) = std::fs::read_dir(dir) else { return };
        for e in rd {
            let e = e.unwrap();
            let p = e.path();
            // A run stopped mid-way may still be renaming its temporaries: skip what vanishes.
            if e.file_name().to_string_lossy().starts_with(".drsync-tmp-") {
                continue;
            }
            let Ok(m) = std::fs::metadata(&p) else { continue };
            if m.is_dir() {
                walk(root, &p, out);
            } else {
                let Ok(content) = std::fs::read(&p) else { continue };
                let rel = p.strip_prefix(root).unwrap().to_string_lossy().replace('\\', "/");
                let mtime = chrono::DateTime::<chrono::Utc>::from(m.modified().unwrap()).timestamp_millis();
                out.insert(rel, (m.len(), hex::encode(md5::Md5::digest(&content)), mtime));
            }
        }
    }
    walk(root, root, &mut out);
    out
}

/// Content only (size, hash): what "the destination equals the source" means.
pub fn contents(root: &Path) -> BTreeMap<String, (u64, String)> {
    tree(root).into_iter().map(|(k, (s, h, _))| (k, (s, h))).collect()
}

pub fn dirs(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                out.push(p.strip_prefix(root).unwrap().to_string_lossy().into_owned());
                walk(root, &p, out);
            }
        }
    }
    walk(root, root, &mut out);
    out.sort();
    out
}

pub fn set_mtime(path: &Path, secs_ago: u64) {
    let f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    f.set_modified(std::time::SystemTime::now() - std::time::Duration::from_secs(secs_ago)).unwrap();
}

pub fn local(p: &Path) -> Endpoint {
    Endpoint::parse(p.to_str().unwrap()).unwrap()
}

pub async fn run(src: &Endpoint, dst: &Endpoint, opts: &SyncOptions) -> drscript_base::Result<SyncSummary> {
    drscript_sync::sync(src, dst, opts, SyncMode::Live, Arc::new(Quiet)).await
}

pub async fn report(src: &Endpoint, dst: &Endpoint, opts: &SyncOptions, mode: SyncMode) -> SyncSummary {
    drscript_sync::sync_report(src, dst, opts, mode, Arc::new(Quiet)).await.unwrap()
}

pub fn mirror() -> SyncOptions {
    SyncOptions { mirror: true, ..SyncOptions::default() }
}
