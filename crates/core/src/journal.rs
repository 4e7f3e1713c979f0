//! The run journal: one JSON object per line, appended as things happen, redacted on the way out.
//!
//! The journal is the source of truth for `resume` and for the report, so every line is written
//! whole and flushed before the run goes on; a line cut short by a crash is ignored when reading.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use drscript_base::error::{Error, Result};
use drscript_base::redact;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    RunStarted {
        run_id: String,
        attempt: u32,
        script: String,
        script_hash: String,
        config: Option<String>,
        mode: String,
        vars: BTreeMap<String, String>,
        pid: u32,
        /// The drscript version that ran this attempt.
        #[serde(default, skip_serializing_if = "String::is_empty")]
        version: String,
    },
    StepStarted {
        id: String,
        number: String,
        title: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        parent: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        lane: Option<String>,
    },
    StepFinished {
        id: String,
        outcome: StepOutcome,
        duration_ms: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        result: Option<serde_json::Value>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
    StepSkipped {
        id: String,
        number: String,
        title: String,
    },
    Action {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        step: Option<String>,
        primitive: String,
        target: String,
        #[serde(default, skip_serializing_if = "String::is_empty")]
        detail: String,
        outcome: String,
        duration_ms: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
    Log {
        level: String,
        message: String,
    },
    /// A figure for the report: bytes synced, a storage account's last sync time, ...
    Metric {
        name: String,
        value: serde_json::Value,
    },
    RunFinished {
        outcome: String,
        exit_code: i32,
        duration_ms: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum StepOutcome {
    Ok,
    Failed,
    Interrupted,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Record {
    pub ts: DateTime<Utc>,
    /// Who wrote it: `user@host` (see `identity`); absent in journals of older versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    #[serde(flatten)]
    pub event: Event,
}

/// Told after every record written, with whether it was a durable one (a step or the run
/// finished): the shared state's mirror uploads it.
pub type AfterWrite = Box<dyn Fn(bool) + Send + Sync>;

/// An open journal, shared by every thread of a run.
pub struct Journal {
    path: PathBuf,
    file: Mutex<File>,
    after_write: Option<AfterWrite>,
}

impl Journal {
    pub fn open(path: &Path) -> Result<Journal> {
        let mut options = OpenOptions::new();
        options.create(true).append(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let file = options.open(path).map_err(|e| Error::io(format!("cannot open journal {}", path.display()), e))?;
        Ok(Journal { path: path.to_path_buf(), file: Mutex::new(file), after_write: None })
    }

    /// Calls `hook` after every record written (see [`AfterWrite`]).
    pub fn after_write(mut self, hook: Option<AfterWrite>) -> Journal {
        self.after_write = hook;
        self
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one event. A journal that cannot be written stops the run: without it, resume
    /// could repeat a destructive step.
    pub fn write(&self, event: Event) -> Result<()> {
        let record = Record { ts: Utc::now(), by: Some(crate::identity::by().to_string()), event };
        let durable = matches!(record.event, Event::StepFinished { .. } | Event::RunFinished { .. });
        let line = serde_json::to_string(&record).expect("journal events serialize");
        let mut line = redact::redacted(line);
        line.push('\n');
        {
            let mut file = self.file.lock().unwrap_or_else(|e| e.into_inner());
            file.write_all(line.as_bytes())
                .and_then(|()| if durable { file.sync_data() } else { Ok(()) })
                .map_err(|e| Error::io(format!("cannot write journal {}", self.path.display()), e))?;
        }
        if let Some(hook) = &self.after_write {
            hook(durable);
        }
        Ok(())
    }
}

/// Reads a journal; a last line cut short by a crash is ignored, any other bad line is an error.
pub fn read(path: &Path) -> Result<Vec<Record>> {
    let file = File::open(path).map_err(|e| Error::io(format!("cannot read journal {}", path.display()), e))?;
    let lines: Vec<String> = BufReader::new(file)
        .lines()
        .collect::<std::io::Result<_>>()
        .map_err(|e| Error::io(format!("cannot read journal {}", path.display()), e))?;
    parse(&lines, &path.display().to_string())
}

/// Parses journal lines (`origin` names them in errors); see [`read`].
pub fn parse(lines: &[String], origin: &str) -> Result<Vec<Record>> {
    let mut records = Vec::with_capacity(lines.len());
    let last = lines.len().saturating_sub(1);
    for (i, line) in lines.iter().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Record>(line) {
            Ok(r) => records.push(r),
            Err(_) if i == last => break,
            Err(e) => {
                return Err(Error::Resume(format!("journal {origin} line {}: {e}", i + 1)));
            }
        }
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_tolerates_a_torn_last_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.jsonl");
        let j = Journal::open(&path).unwrap();
        j.write(Event::Log { level: "info".into(), message: "hello".into() }).unwrap();
        j.write(Event::StepFinished {
            id: "a#1".into(),
            outcome: StepOutcome::Ok,
            duration_ms: 5,
            result: None,
            error: None,
        })
        .unwrap();
        std::fs::OpenOptions::new().append(true).open(&path).unwrap().write_all(b"{\"ts\":\"2026-").unwrap();
        let records = read(&path).unwrap();
        assert_eq!(records.len(), 2);
        assert!(matches!(records[1].event, Event::StepFinished { .. }));
    }

    #[test]
    fn a_bad_line_in_the_middle_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.jsonl");
        std::fs::write(
            &path,
            "garbage\n{\"ts\":\"2026-11-25T00:00:00Z\",\"event\":\"log\",\"level\":\"info\",\"message\":\"x\"}\n",
        )
        .unwrap();
        assert!(read(&path).is_err());
    }
}
