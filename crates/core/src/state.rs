//! The state directory: one folder per run (`runs/RUN-ID/`) with its journal and reports.

use std::path::{Path, PathBuf};

use crate::journal::{self, Event};
use drscript_base::error::{Error, Result};

/// The state directory when neither `--state-dir` nor the config's `settings.state_dir` names one.
pub const DEFAULT_DIR: &str = ".drscript";

pub struct StateDir {
    root: PathBuf,
}

impl StateDir {
    /// Opens (and creates, readable by its owner only) the state directory.
    pub fn open(root: &Path) -> Result<StateDir> {
        create_private_dir(&root.join("runs"))?;
        create_private_dir(root)?;
        Ok(StateDir { root: root.to_path_buf() })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn run_dir(&self, run_id: &str) -> PathBuf {
        self.root.join("runs").join(run_id)
    }

    /// A new run id: UTC time (sortable) and a short random suffix.
    pub fn new_run(&self) -> Result<(String, PathBuf)> {
        let now = chrono::Utc::now();
        let nanos = now.timestamp_subsec_nanos() ^ std::process::id().rotate_left(16);
        let id = format!("{}-{:04x}", now.format("%Y%m%d-%H%M%S"), nanos & 0xffff);
        let dir = self.run_dir(&id);
        create_private_dir(&dir)?;
        Ok((id, dir))
    }

    /// Run ids, oldest first. Ids only sort to the second (the suffix is random), so runs started
    /// within one second are ordered by the time of their journal's first record.
    pub fn runs(&self) -> Result<Vec<String>> {
        let dir = self.root.join("runs");
        let mut ids: Vec<(String, Option<chrono::DateTime<chrono::FixedOffset>>)> = std::fs::read_dir(&dir)
            .map_err(|e| Error::io(format!("cannot list {}", dir.display()), e))?
            .filter_map(|e| e.ok())
            .filter(|e| e.path().join("journal.jsonl").exists())
            .filter_map(|e| e.file_name().into_string().ok())
            .map(|id| {
                let started = first_timestamp(&self.run_dir(&id).join("journal.jsonl"));
                (id, started)
            })
            .collect();
        ids.sort_by(|(a, ta), (b, tb)| a[..a.len().min(15)].cmp(&b[..b.len().min(15)]).then(ta.cmp(tb)).then(a.cmp(b)));
        Ok(ids.into_iter().map(|(id, _)| id).collect())
    }

    /// The newest live run that did not finish successfully.
    pub fn last_unfinished(&self) -> Result<Option<String>> {
        for id in self.runs()?.into_iter().rev() {
            let records = journal::read(&self.run_dir(&id).join("journal.jsonl"))?;
            let live = records.iter().any(|r| matches!(&r.event, Event::RunStarted { mode, .. } if mode == "live"));
            if !live {
                continue;
            }
            // How the last attempt ended, if it did.
            let end = records.iter().rev().find_map(|r| match &r.event {
                Event::RunFinished { exit_code, outcome, .. } => Some((*exit_code, outcome.as_str())),
                _ => None,
            });
            match end {
                // A refused run changed nothing: look further back.
                Some((_, "refused")) => continue,
                Some((0, _)) => return Ok(None),
                // Stopped before its first change (at its first confirmation, say): there is
                // nothing to continue, and resuming it later would act on a stale decision.
                Some((_, "stopped")) if !changed_something(&records) => continue,
                _ => return Ok(Some(id)),
            }
        }
        Ok(None)
    }
}

/// Primitives whose success changes nothing outside drscript: answered questions, messages.
const NOT_CHANGES: &[&str] = &["confirm", "manual", "notify"];

/// Whether any attempt of the run may have changed something: a change that succeeded, or one
/// that failed or was interrupted part-way (a scale whose patch went out before Ctrl-C).
pub fn changed_something(records: &[journal::Record]) -> bool {
    records.iter().any(|r| {
        matches!(&r.event, Event::Action { primitive, outcome, .. }
            if matches!(outcome.as_str(), "ok" | "failed") && !NOT_CHANGES.contains(&primitive.as_str()))
    })
}

/// The `ts` of a journal's first record, read without reading the whole journal.
fn first_timestamp(journal: &Path) -> Option<chrono::DateTime<chrono::FixedOffset>> {
    use std::io::BufRead;
    let mut line = String::new();
    std::io::BufReader::new(std::fs::File::open(journal).ok()?).read_line(&mut line).ok()?;
    let record: serde_json::Value = serde_json::from_str(&line).ok()?;
    chrono::DateTime::parse_from_rfc3339(record["ts"].as_str()?).ok()
}

pub fn create_private_dir(path: &Path) -> Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(path).map_err(|e| Error::io(format!("cannot create {}", path.display()), e))
}

/// Writes a file readable by its owner only.
pub fn write_private(path: &Path, contents: &str) -> Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
        .open(path)
        .and_then(|mut f| f.write_all(contents.as_bytes()))
        .map_err(|e| Error::io(format!("cannot write {}", path.display()), e))
}
