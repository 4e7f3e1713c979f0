//! One run per state directory at a time.
//!
//! The lock is a file created with `O_EXCL` holding the owner's pid, run id, who (`user@host`)
//! and when it started, so that a second run is refused naming its holder. A lock whose
//! process is gone (crash, SIGKILL, reboot) is taken over with a warning, so that `resume` after
//! a kill never needs manual clean-up.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

use drscript_base::error::{Error, Result};

pub struct Lock {
    path: PathBuf,
}

impl Lock {
    pub fn acquire(state_dir: &Path, run_id: &str) -> Result<Lock> {
        let path = state_dir.join("lock");
        for _ in 0..3 {
            let mut options = OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            match options.open(&path) {
                Ok(mut file) => {
                    writeln!(
                        file,
                        "{} {run_id} {} {}",
                        std::process::id(),
                        crate::identity::by(),
                        chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                    )
                    .map_err(|e| Error::io(format!("cannot write lock {}", path.display()), e))?;
                    return Ok(Lock { path });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let text = std::fs::read_to_string(&path).unwrap_or_default();
                    let mut parts = text.split_whitespace();
                    let pid: Option<u32> = parts.next().and_then(|p| p.parse().ok());
                    let holder = parts.next().unwrap_or("?").to_string();
                    let by = parts.next().map(|b| format!(" by {b}")).unwrap_or_default();
                    let since = parts.next().map(|t| format!(", started {t}")).unwrap_or_default();
                    match pid {
                        Some(pid) if drscript_base::sys::process_alive(pid) => {
                            return Err(Error::LockHeld(format!(
                                "another drscript run ({holder}{by}{since}, pid {pid}) holds the lock {}; wait for it to finish",
                                path.display()
                            )));
                        }
                        _ => {
                            tracing::warn!(
                                "taking over the lock {} left by run {holder} (pid {}), whose process is gone",
                                path.display(),
                                pid.map_or("?".to_string(), |p| p.to_string())
                            );
                            let _ = std::fs::remove_file(&path);
                        }
                    }
                }
                Err(e) => {
                    return Err(Error::io(format!("cannot create lock {}", path.display()), e));
                }
            }
        }
        Err(Error::LockHeld(format!("cannot take the lock {}", path.display())))
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_is_refused_and_released_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let first = Lock::acquire(dir.path(), "run-a").unwrap();
        let err = Lock::acquire(dir.path(), "run-b").err().unwrap();
        assert_eq!(err.exit_code(), drscript_base::error::exit::LOCKED);
        assert!(err.to_string().contains("run-a"));
        assert!(err.to_string().contains(&format!("by {}", crate::identity::by())), "{err}");
        drop(first);
        Lock::acquire(dir.path(), "run-c").unwrap();
    }

    #[test]
    fn stale_lock_is_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        // pid 0x7ffffffe is never a live process here.
        std::fs::write(dir.path().join("lock"), "2147483646 run-dead\n").unwrap();
        Lock::acquire(dir.path(), "run-new").unwrap();
    }
}
