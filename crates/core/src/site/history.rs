//! The runs of a state directory as an operator or an auditor asks about them: which runbook,
//! which direction, when, how it ended, how long it took (the RTO), the RPO, and the runs that did
//! not finish with the command that continues them.

use std::path::Path;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::journal::{self, Event};
use crate::state::StateDir;
use drscript_base::error::Result;

/// The journal metric a switch writes once it has read the situation (see `switch_check`).
pub const SWITCH_METRIC: &str = "switch";

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RunSummary {
    pub run_id: String,
    /// The runbook's file name (`failover.rhai`).
    pub runbook: String,
    pub mode: String,
    pub started: DateTime<Utc>,
    /// `ok`, `failed`, `stopped`, `refused`, or `unfinished` (no end record: killed or running).
    pub outcome: String,
    pub exit_code: Option<i32>,
    /// Time spent running, over all attempts (the RTO evidence of a switch).
    pub total_seconds: f64,
    pub downtime_seconds: Option<f64>,
    pub attempts: u32,
    pub from: Option<String>,
    pub to: Option<String>,
    /// What the switch decided from the situation (`switch`, `done`, `source_down`, ...).
    pub decision: Option<String>,
    pub rpo: Option<String>,
    /// Environments a region-down switch could not quiesce: to be fenced when they return.
    pub unfenced: Vec<String>,
    /// `drscript resume RUN-ID` for a live run that did not finish.
    pub resume: Option<String>,
    /// The switch made its first change (the `downtime` start): before it, a stopped run left
    /// everything as it was.
    pub started_changes: bool,
}

impl RunSummary {
    /// A live switch that started changing things and has not finished successfully.
    pub fn is_unfinished_switch(&self) -> bool {
        self.mode == "live"
            && self.resume.is_some()
            && self.started_changes
            && self.decision.as_deref().is_some_and(|d| CHANGING.contains(&d))
    }

    /// A live switch that finished successfully.
    pub fn is_finished_switch(&self) -> bool {
        self.mode == "live" && self.outcome == "ok" && self.decision.is_some()
    }
}

/// Decisions after which the switch changes things.
pub const CHANGING: &[&str] = &["switch", "source_down", "keep_from", "keep_to", "fence_to"];

/// Every run of the state directory, newest first.
pub fn runs(state_dir: &Path) -> Result<Vec<RunSummary>> {
    journals(state_dir)?.map(|run| run.map(|(summary, _)| summary)).collect()
}

/// Every run of the state directory with its journal, newest first; a journal is read only when
/// the iteration reaches it, so a caller that stops early reads none older. Empty journals are
/// left out.
pub fn journals(state_dir: &Path) -> Result<impl Iterator<Item = Result<(RunSummary, Vec<journal::Record>)>>> {
    let (state, ids) = if state_dir.join("runs").is_dir() {
        let state = StateDir::open(state_dir)?;
        let ids = state.runs()?;
        (Some(state), ids)
    } else {
        (None, Vec::new())
    };
    Ok(ids.into_iter().rev().filter_map(move |id| {
        let state = state.as_ref()?;
        match journal::read(&state.run_dir(&id).join("journal.jsonl")) {
            Ok(records) => summarise(&id, &records).map(|summary| Ok((summary, records))),
            Err(e) => Some(Err(e)),
        }
    }))
}

/// One run from its journal; `None` for an empty journal.
fn summarise(run_id: &str, records: &[journal::Record]) -> Option<RunSummary> {
    let first = records.first()?;
    let mut s = RunSummary {
        run_id: run_id.to_string(),
        runbook: String::new(),
        mode: String::new(),
        started: first.ts,
        outcome: "unfinished".to_string(),
        exit_code: None,
        total_seconds: 0.0,
        downtime_seconds: None,
        attempts: 0,
        from: None,
        to: None,
        decision: None,
        rpo: None,
        unfenced: Vec::new(),
        resume: None,
        started_changes: false,
    };
    let mut attempt_start: Option<DateTime<Utc>> = None;
    let mut downtime_start: Option<DateTime<Utc>> = None;
    for r in records {
        match &r.event {
            Event::RunStarted { script, mode, .. } => {
                s.runbook = Path::new(script).file_name().map_or(script.clone(), |n| n.to_string_lossy().into_owned());
                s.mode.clone_from(mode);
                s.attempts += 1;
                s.outcome = "unfinished".to_string();
                s.exit_code = None;
                attempt_start = Some(r.ts);
            }
            Event::RunFinished { outcome, exit_code, duration_ms, .. } => {
                s.outcome.clone_from(outcome);
                s.exit_code = Some(*exit_code);
                s.total_seconds += *duration_ms as f64 / 1000.0;
                attempt_start = None;
            }
            Event::Metric { name, value } if name == SWITCH_METRIC => {
                let text = |k: &str| value[k].as_str().map(str::to_string);
                // A later attempt that was refused (or found nothing to do) does not undo what an
                // earlier attempt of the same run changed: the switch stays unfinished.
                let changing = |d: &Option<String>| d.as_deref().is_some_and(|d| CHANGING.contains(&d));
                let decision = text("decision");
                if !(s.started_changes && changing(&s.decision) && !changing(&decision)) {
                    s.from = text("from");
                    s.to = text("to");
                    s.decision = decision;
                }
            }
            // What a region-down switch could not quiesce (`{env, unfenced: [parts]}`).
            Event::Metric { name, value } if name == "fencing" => {
                let parts = value["unfenced"].as_array().map_or(0, Vec::len);
                s.unfenced = value["env"].as_str().filter(|_| parts > 0).map(str::to_string).into_iter().collect();
            }
            Event::Metric { name, value } if name == "rpo" => s.rpo = value.as_str().map(str::to_string),
            Event::Metric { name, value } if name == "downtime" => match value.as_str() {
                Some("start") if downtime_start.is_none() => {
                    downtime_start = Some(r.ts);
                    s.started_changes = true;
                }
                Some("end") => {
                    if let Some(start) = downtime_start {
                        s.downtime_seconds = Some((r.ts - start).num_milliseconds() as f64 / 1000.0);
                    }
                }
                _ => {}
            },
            _ => {}
        }
    }
    if let Some(start) = attempt_start {
        // Killed, or still running: count up to its last record.
        let last = records.last().map_or(start, |r| r.ts);
        s.total_seconds += (last - start).num_milliseconds().max(0) as f64 / 1000.0;
    }
    // A refused attempt changed nothing, but an earlier attempt of the same run may have.
    if s.mode == "live" && s.outcome != "ok" && (s.outcome != "refused" || s.started_changes) {
        s.resume = Some(format!("drscript resume {run_id}"));
    }
    Some(s)
}

/// Whether run `run_id` already copied the source's data to the target (its journal holds the
/// final copy's figure): a resume must then not let the source take new work unseen.
pub fn copied(state_dir: &Path, run_id: &str) -> bool {
    let Ok(state) = StateDir::open(state_dir) else { return false };
    journal::read(&state.run_dir(run_id).join("journal.jsonl")).is_ok_and(|records| {
        records.iter().any(|r| matches!(&r.event, Event::Metric { name, .. } if name == "final_copy_bytes"))
    })
}

/// The text table of `drscript runs`.
pub fn render(runs: &[RunSummary]) -> String {
    if runs.is_empty() {
        return "no runs in this state directory\n".to_string();
    }
    let mut rows = vec![[
        "RUN".to_string(),
        "RUNBOOK".to_string(),
        "DIRECTION".to_string(),
        "STARTED (UTC)".to_string(),
        "OUTCOME".to_string(),
        "TOTAL".to_string(),
        "DOWNTIME".to_string(),
        "RPO".to_string(),
    ]];
    for r in runs {
        let direction = match (&r.from, &r.to) {
            (Some(f), Some(t)) => format!("{f} → {t}"),
            _ => "-".to_string(),
        };
        let mut outcome = r.outcome.clone();
        if let Some(d) = r.decision.as_deref().filter(|d| *d != "switch") {
            outcome = format!("{outcome} ({d})");
        }
        if r.mode != "live" {
            outcome = format!("{outcome} [{}]", r.mode);
        }
        rows.push([
            r.run_id.clone(),
            r.runbook.clone(),
            direction,
            r.started.format("%Y-%m-%d %H:%M:%S").to_string(),
            outcome,
            format!("{:.1}s", r.total_seconds),
            r.downtime_seconds.map_or("-".to_string(), |d| format!("{d:.1}s")),
            r.rpo.clone().unwrap_or_else(|| "-".to_string()),
        ]);
    }
    let widths: Vec<usize> = (0..8).map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0)).collect();
    let mut out = String::new();
    for row in &rows {
        let line: Vec<String> = row.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    for r in runs.iter().filter(|r| r.resume.is_some()) {
        out.push_str(&format!(
            "unfinished: {} ({}) — continue with `{}`\n",
            r.run_id,
            r.runbook,
            r.resume.as_deref().unwrap_or_default()
        ));
    }
    out
}
