//! Where service is, over all environments: one verdict with its reasons.
//!
//! A side *processes* when its listener runs or its scheduler runs; it is a *standby* (quiesced)
//! when its listener is at 0 and its scheduler paused, whatever its runtime does (the DR
//! document deploys the standby's runtime running). See `docs/decisions.md` #22.
//!
//! `ACTIVE x` — one side processes, the others are quiesced; `SWITCHING` — a switch in this state
//! directory started changing things and did not finish; `SPLIT` — more than one side processes;
//! `NONE` — no side processes; `DNS MISMATCH` — the application record points at a side that
//! does not process.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::facts::SiteState;
use super::history::RunSummary;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "side", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Verdict {
    Active(String),
    Switching(String),
    Split(Vec<String>),
    None,
    DnsMismatch(String),
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Verdict::Active(side) => write!(f, "ACTIVE {side}"),
            Verdict::Switching(run) => write!(f, "SWITCHING ({run})"),
            Verdict::Split(sides) => write!(f, "SPLIT ({})", sides.join(" + ")),
            Verdict::None => write!(f, "NONE"),
            Verdict::DnsMismatch(side) => write!(f, "DNS MISMATCH (points at {side})"),
        }
    }
}

/// The application record: what the provider holds and which environment that is.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct DnsFacts {
    pub record: String,
    pub fqdn: String,
    pub values: Vec<String>,
    /// The environment whose target the record holds; `None` when it holds none of them.
    pub points_at: Option<String>,
    pub error: Option<String>,
    /// What the resolvers clients use (`[dns] resolvers`) answer, each against the authority.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub resolvers: Vec<crate::dns::resolvers::ResolverAnswer>,
}

/// Everything `drscript status` shows and a switch decides on.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Situation {
    pub verdict: Verdict,
    /// `ACTIVE prod`, `SPLIT (prod + dr)`, ...
    pub summary: String,
    /// One side active and serving at its configured counts, every side reachable, nothing to
    /// fence (`drscript status` exits 0 only then).
    pub healthy: bool,
    pub reasons: Vec<String>,
    pub dns: Option<DnsFacts>,
    pub environments: Vec<SiteState>,
    /// Environments a region-down switch could not quiesce and that are not quiesced yet.
    pub fencing_pending: Vec<String>,
    pub unfinished_run: Option<RunSummary>,
    pub read_at: DateTime<Utc>,
}

impl Situation {
    pub fn env(&self, name: &str) -> Option<&SiteState> {
        self.environments.iter().find(|e| e.name == name)
    }

    /// Where the application record points, when that is known.
    pub fn dns_points_at(&self) -> Option<&str> {
        self.dns.as_ref().and_then(|d| d.points_at.as_deref())
    }
}

/// Judges the environments. `history` is the state directory's runs, newest first; `current_run`
/// is left out of it (a resumed switch is not "another unfinished switch").
pub fn judge(
    environments: Vec<SiteState>,
    dns: Option<DnsFacts>,
    history: &[RunSummary],
    current_run: Option<&str>,
) -> Situation {
    let mut reasons = Vec::new();
    let processing: Vec<String> =
        environments.iter().filter(|e| e.processing() == Some(true)).map(|e| e.name.clone()).collect();
    for e in &environments {
        match e.processing() {
            Some(true) => reasons.push(format!("{} processes ({})", e.name, activity(e))),
            Some(false) => reasons.push(format!("{} is quiesced", e.name)),
            None if !e.reachable() => {
                reasons.push(format!("{} is unreachable: cannot tell whether it processes", e.name))
            }
            None => reasons.push(format!(
                "{}: listener at 0 but the scheduler state is unknown{}",
                e.name,
                e.scheduler_note.as_ref().map(|n| format!(" ({n})")).unwrap_or_default()
            )),
        }
    }
    for e in &environments {
        for (what, why, _) in e.refusals() {
            reasons.push(format!("{}: {what} refuses drscript's credentials: {why}", e.name));
        }
    }
    let relevant = history.iter().filter(|r| Some(r.run_id.as_str()) != current_run);
    let last_switch = relevant.clone().find(|r| r.is_unfinished_switch() || r.is_finished_switch()).cloned();
    let unfinished = last_switch.clone().filter(RunSummary::is_unfinished_switch);
    // Fencing: what the last finished region-down switch could not quiesce, until it is quiesced
    // — or until a later switch (that started changing things) moved service back to it on
    // purpose, a failback above all: then the side processes because it serves.
    // (A later run that found the switch done — a "nothing to do" — neither records nor
    // discharges an obligation.)
    let switched = |r: &&RunSummary| r.is_finished_switch() && r.decision.as_deref() != Some("done");
    let newer_than_last_switch: Vec<&RunSummary> = relevant.clone().take_while(|r| !switched(r)).collect();
    let fencing_pending: Vec<String> = relevant
        .clone()
        .find(switched)
        .map(|r| r.unfenced.clone())
        .unwrap_or_default()
        .into_iter()
        .filter(|name| !newer_than_last_switch.iter().any(|r| r.started_changes && r.to.as_deref() == Some(name)))
        .filter(|name| environments.iter().find(|e| &e.name == name).is_none_or(|e| !e.quiesced()))
        .collect();
    for name in &fencing_pending {
        let state = environments.iter().find(|e| &e.name == name);
        let what = match state {
            Some(e) if !e.reachable() => {
                format!("still unreachable; quiesce it as soon as it returns: {}", super::next::fence_command(name))
            }
            Some(e) if e.processing() == Some(true) => {
                format!("came back and processes: quiesce it now: {}", super::next::fence_command(name))
            }
            _ => format!("not confirmed quiesced: {}", super::next::fence_command(name)),
        };
        reasons.push(format!("fencing pending: {name} could not be quiesced when it was unreachable; {what}"));
    }
    let points_at = dns.as_ref().and_then(|d| d.points_at.clone());
    if let Some(d) = &dns {
        match (&d.points_at, &d.error) {
            (_, Some(e)) => reasons.push(format!("DNS {}: cannot read: {e}", d.fqdn)),
            (Some(side), None) => reasons.push(format!("DNS {} points at {side} ({})", d.fqdn, d.values.join(", "))),
            (None, None) => {
                reasons.push(format!("DNS {} holds {:?}: none of the configured targets", d.fqdn, d.values))
            }
        }
        for lag in d.resolvers.iter().filter(|r| !r.agrees) {
            reasons.push(format!("DNS {}: resolver {}: its clients are told otherwise", d.fqdn, lag.lag()));
        }
    }
    let verdict = if let Some(run) = &unfinished {
        reasons.insert(
            0,
            format!(
                "run {} ({}) did not finish: continue it with `drscript resume {}`",
                run.run_id, run.runbook, run.run_id
            ),
        );
        Verdict::Switching(run.run_id.clone())
    } else if processing.len() > 1 {
        Verdict::Split(processing.clone())
    } else if let Some(side) = processing.first() {
        match &points_at {
            Some(target) if target != side => Verdict::DnsMismatch(target.clone()),
            _ => Verdict::Active(side.clone()),
        }
    } else {
        Verdict::None
    };
    let healthy = match &verdict {
        Verdict::Active(side) => {
            let active = environments.iter().find(|e| &e.name == side);
            let serving = active.is_some_and(SiteState::serving);
            if !serving && let Some(a) = active {
                reasons.extend(a.shortfalls());
            }
            serving && environments.iter().all(SiteState::reachable) && fencing_pending.is_empty()
        }
        _ => false,
    };
    Situation {
        summary: verdict.to_string(),
        verdict,
        healthy,
        reasons,
        dns,
        environments,
        fencing_pending,
        unfinished_run: unfinished,
        read_at: Utc::now(),
    }
}

/// What makes a side process (see [`SiteState::processing`]): its listener and its scheduler.
fn activity(e: &SiteState) -> String {
    let mut parts = Vec::new();
    if let Some(w) = e.workloads.get("listener").filter(|w| w.desired > 0 || w.ready > 0) {
        parts.push(format!("listener {}/{}", w.ready, w.desired));
    }
    if e.scheduler == super::facts::Scheduler::Running {
        parts.push("scheduler running".to_string());
    }
    parts.join(", ")
}
