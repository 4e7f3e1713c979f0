//! The file shares of the sandbox, as local folders with realistic, deterministic content:
//! the application share (`web/repository`, `recovery`, `reprocessing`) and the RabbitMQ volume.
//! PROD holds the full set; DR holds an older copy (a subset, some files with older content), so
//! that a sync has real work to do. The same seed always gives the same bytes.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::Serialize;

use drscript_base::error::{Error, Result};

/// xorshift64*: small, deterministic, good enough to vary names and sizes.
struct Rng(u64);

impl Rng {
    fn new(seed: &str) -> Rng {
        Rng(seed.bytes().fold(0x9e37_79b9_7f4a_7c15, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)) | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// One file of the generated set.
struct File {
    path: PathBuf,
    size: usize,
    seed: u64,
}

const PROJECTS: &[&str] = &["Orders", "Invoices", "Claims", "Shipments", "HR_Onboarding", "EDI_850"];
const ACTIVITY_TYPES: &[(&str, &str)] = &[
    ("ProcessFlow", "xml"),
    ("Schema", "xsd"),
    ("DataMapping", "xml"),
    ("SourceActivity", "properties"),
    ("TargetActivity", "properties"),
    ("Template", "json"),
];

/// The full (PROD) set of one share kind: `app` or `rabbitmq`.
fn files(kind: &str) -> Vec<File> {
    let mut rng = Rng::new(kind);
    let mut out = Vec::new();
    let mut push = |path: PathBuf, size: usize, rng: &mut Rng| out.push(File { path, size, seed: rng.next() });
    if kind == "app" {
        for project in PROJECTS {
            for (activity, ext) in ACTIVITY_TYPES {
                for _ in 0..(6 + rng.below(6)) {
                    let id = 1_000_000_000_000u64 + rng.below(9_000_000_000_000);
                    let size = 512 + rng.below(12 * 1024) as usize;
                    push(PathBuf::from(format!("web/repository/{project}/{activity}/{id}.{ext}")), size, &mut rng);
                }
            }
        }
        for day in 1..=6 {
            for _ in 0..(8 + rng.below(8)) {
                let txn = rng.below(u64::MAX >> 16);
                let size = 2048 + rng.below(18 * 1024) as usize;
                push(PathBuf::from(format!("recovery/2026-11-{day:02}/{txn:012x}.rcv")), size, &mut rng);
            }
        }
        for queue in ["failed", "pending", "retry"] {
            for _ in 0..(10 + rng.below(10)) {
                let id = rng.below(u64::MAX >> 20);
                let size = 1024 + rng.below(15 * 1024) as usize;
                push(PathBuf::from(format!("reprocessing/{queue}/{id:010x}.dat")), size, &mut rng);
            }
        }
    } else {
        let base = "mnesia/rabbit@ac-ac-rabbitmq-0.ac-ac-rabbitmq-headless";
        for file in [
            "cluster_nodes.config",
            "nodes_running_at_shutdown",
            "rabbit_durable_queue.DCD",
            "rabbit_durable_exchange.DCD",
            "schema.DAT",
        ] {
            let size = 256 + rng.below(8 * 1024) as usize;
            push(PathBuf::from(format!("{base}/{file}")), size, &mut rng);
        }
        for vhost in ["628WB79CIFDYO9LJI6DKMI09L", "BV6NLHD3VK1XR3LJ9AJ2HMP1R"] {
            for store in ["msg_store_persistent", "msg_store_transient"] {
                for n in 0..(6 + rng.below(6)) {
                    let size = 16 * 1024 + rng.below(48 * 1024) as usize;
                    push(PathBuf::from(format!("{base}/msg_stores/vhosts/{vhost}/{store}/{n}.rdq")), size, &mut rng);
                }
            }
            for _ in 0..(6 + rng.below(6)) {
                let q = rng.below(u64::MAX >> 8);
                let size = 4096 + rng.below(16 * 1024) as usize;
                push(
                    PathBuf::from(format!("{base}/msg_stores/vhosts/{vhost}/queues/{q:X}/journal.jif")),
                    size,
                    &mut rng,
                );
            }
        }
    }
    out
}

/// `age`: how long ago the file was last modified (DR's copy is older than PROD's, as after the
/// last sync, so that a size-and-time sync sees PROD's files as newer).
fn write_file(root: &Path, file: &File, variant: u64, age: Duration) -> Result<()> {
    let path = root.join(&file.path);
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(|e| Error::io(format!("cannot create {}", parent.display()), e))?;
    }
    let mut rng = Rng(file.seed ^ variant | 1);
    let mut bytes = Vec::with_capacity(file.size);
    // Text-like content: header line and printable filler, as exported repository objects are.
    bytes.extend_from_slice(format!("# {} (variant {variant})\n", file.path.display()).as_bytes());
    while bytes.len() < file.size {
        const FILLER: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789 <>/=\"\n";
        let c = FILLER[rng.below(FILLER.len() as u64) as usize];
        bytes.push(c);
    }
    bytes.truncate(file.size.max(1));
    let mut f = fs::File::create(&path).map_err(|e| Error::io(format!("cannot write {}", path.display()), e))?;
    f.write_all(&bytes).map_err(|e| Error::io(format!("cannot write {}", path.display()), e))?;
    let modified = SystemTime::now() - age;
    f.set_modified(modified).map_err(|e| Error::io(format!("cannot set the time of {}", path.display()), e))?;
    Ok(())
}

const PROD_AGE: Duration = Duration::from_secs(3600);
const DR_AGE: Duration = Duration::from_secs(2 * 86_400);

/// Counts of a share folder, for the status.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ShareStats {
    pub files: u64,
    pub bytes: u64,
}

/// Writes the share `kind` into `root` unless `root` exists already (a restarted sandbox keeps
/// what runbooks did to its shares). `full` is PROD's copy; otherwise the older DR copy.
pub fn seed(root: &Path, kind: &str, full: bool) -> Result<()> {
    if root.exists() {
        return Ok(());
    }
    fs::create_dir_all(root).map_err(|e| Error::io(format!("cannot create {}", root.display()), e))?;
    let mut pick = Rng::new(&format!("{kind}/dr"));
    for file in files(kind) {
        if full {
            write_file(root, &file, 0, PROD_AGE)?;
        } else {
            // DR: about 70 % of the files, one in seven of those with older content.
            match pick.below(10) {
                0..=5 => write_file(root, &file, 0, DR_AGE)?,
                6 => write_file(root, &file, 1, DR_AGE)?,
                _ => {}
            }
        }
    }
    if !full {
        // Leftovers PROD no longer has (consumed queue segments, old recovery files): a mirrored
        // copy deletes them, a plain copy leaves them.
        for n in 0..3u64 {
            let stale = File {
                path: PathBuf::from(match kind {
                    "app" => format!("recovery/2026-10-0{}/stale{n}.rcv", n + 1),
                    _ => format!(
                        "mnesia/rabbit@ac-ac-rabbitmq-0.ac-ac-rabbitmq-headless/msg_stores/vhosts/628WB79CIFDYO9LJI6DKMI09L/msg_store_persistent/9{n}.rdq"
                    ),
                }),
                size: 2048,
                seed: n + 7,
            };
            write_file(root, &stale, 2, DR_AGE)?;
        }
    }
    Ok(())
}

/// The document's folders of the application share, which [`seed`] fills.
const DOCUMENT_FOLDERS: &[&str] = &["web/repository", "recovery", "reprocessing", "web/reprocessing"];

/// Seeds the customer's own folders of the application share (an `archive/` beside
/// `web/repository`) with a few files: on the active side (`full`) all of them, on a standby
/// none, so that a switch has something to copy. Folders that exist are left as they are.
pub fn seed_folders(root: &Path, folders: &[String], full: bool) -> Result<()> {
    for folder in folders.iter().filter(|f| !DOCUMENT_FOLDERS.contains(&f.as_str())) {
        let dir = root.join(folder);
        if dir.exists() {
            continue;
        }
        fs::create_dir_all(&dir).map_err(|e| Error::io(format!("cannot create {}", dir.display()), e))?;
        if !full {
            continue;
        }
        for n in 0..5u64 {
            let file = File {
                path: PathBuf::from(format!("{folder}/item{n}.dat")),
                size: 1024 + n as usize * 100,
                seed: n + 31,
            };
            write_file(root, &file, 0, PROD_AGE)?;
        }
    }
    Ok(())
}

pub fn stats(root: &Path) -> ShareStats {
    let mut stats = ShareStats::default();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = fs::read_dir(&dir) else { continue };
        for entry in entries.flatten() {
            match entry.metadata() {
                Ok(m) if m.is_dir() => stack.push(entry.path()),
                Ok(m) => {
                    stats.files += 1;
                    stats.bytes += m.len();
                }
                Err(_) => {}
            }
        }
    }
    stats
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_shares_are_deterministic_and_sized_as_promised() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        seed(&a, "app", true).unwrap();
        seed(&b, "app", true).unwrap();
        let sa = stats(&a);
        assert!(sa.files > 200, "{sa:?}");
        assert!(sa.bytes > 2_000_000, "{sa:?}");
        let sample = files("app").into_iter().nth(17).unwrap().path;
        assert_eq!(fs::read(a.join(&sample)).unwrap(), fs::read(b.join(&sample)).unwrap());
        let prod_time = fs::metadata(a.join(&sample)).unwrap().modified().unwrap();
        assert!(a.join("web/repository").is_dir() && a.join("recovery").is_dir() && a.join("reprocessing").is_dir());
        let dr = dir.path().join("dr");
        seed(&dr, "app", false).unwrap();
        let sd = stats(&dr);
        assert!(sd.files < sa.files && sd.files > sa.files / 2, "{sd:?} vs {sa:?}");
        // Every DR file is older than PROD's, as after a sync some time ago.
        let any_dr = files("app").into_iter().map(|f| dr.join(f.path)).find(|p| p.exists()).unwrap();
        assert!(fs::metadata(any_dr).unwrap().modified().unwrap() < prod_time);
        let rabbit = dir.path().join("r");
        seed(&rabbit, "rabbitmq", true).unwrap();
        assert!(stats(&rabbit).files > 20);
    }
}
