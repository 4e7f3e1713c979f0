//! What a plan expects each step to take: the durations of the last finished run of the same
//! runbook in the state directory, so that the operator sees the likely RTO before starting.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use chrono::{DateTime, Utc};

use crate::journal::{Event, Record, StepOutcome};
use crate::site::history::{self, RunSummary};
use drscript_base::error::Result;

/// The figures of one earlier run.
#[derive(Debug, Clone, PartialEq)]
pub struct Estimate {
    pub run_id: String,
    pub started: DateTime<Utc>,
    /// Time spent running, over all its attempts.
    pub total_seconds: f64,
    pub downtime_seconds: Option<f64>,
    /// Step id (as journaled, stable between runs of one script) → seconds its last attempt took.
    pub steps: HashMap<String, f64>,
}

impl Estimate {
    /// The last live run of `runbook` (a file name, `failover.rhai`) that finished successfully
    /// and changed something, preferring one given the same `--var`s (a failover run as a
    /// failback takes other steps): a refused run or a switch that found the work already done
    /// took none of the time the plan is about. `None` when there is no such run.
    pub fn last_finished(state_dir: &Path, runbook: &str, vars: &BTreeMap<String, String>) -> Result<Option<Estimate>> {
        let mut fallback = None;
        for run in history::journals(state_dir)? {
            let (run, records) = run?;
            if !is_measure(&run, runbook) {
                continue;
            }
            let same_vars = records.iter().any(|r| matches!(&r.event, Event::RunStarted { vars: v, .. } if v == vars));
            let estimate = Estimate::from_records(run, &records);
            if same_vars {
                return Ok(Some(estimate));
            }
            fallback.get_or_insert(estimate);
        }
        Ok(fallback)
    }

    fn from_records(run: RunSummary, records: &[Record]) -> Estimate {
        let mut steps = HashMap::new();
        for record in records {
            if let Event::StepFinished { id, outcome: StepOutcome::Ok, duration_ms, .. } = &record.event {
                steps.insert(id.clone(), *duration_ms as f64 / 1000.0);
            }
        }
        Estimate {
            run_id: run.run_id,
            started: run.started,
            total_seconds: run.total_seconds,
            downtime_seconds: run.downtime_seconds,
            steps,
        }
    }

    /// The seconds a step took in that run, when it ran.
    pub fn step(&self, id: &str) -> Option<f64> {
        self.steps.get(id).copied()
    }
}

fn is_measure(run: &RunSummary, runbook: &str) -> bool {
    run.runbook == runbook
        && run.mode == "live"
        && run.outcome == "ok"
        && !matches!(run.decision.as_deref(), Some("done" | "refused"))
}
