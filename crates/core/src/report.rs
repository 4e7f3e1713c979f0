//! The run report, rendered from the journal so that it covers every attempt of a resumed run:
//! timeline, per-step durations, total time (RTO evidence), figures, failures and deviations.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use crate::journal::{Event, Record, StepOutcome};
use drscript_base::redact;

/// One step as the report sees it.
#[derive(Debug, Clone)]
pub struct StepRow {
    pub id: String,
    pub number: String,
    pub title: String,
    pub lane: Option<String>,
    /// The attempt (1, then one more per `drscript resume`) that ran it.
    pub attempt: u32,
    pub start: DateTime<Utc>,
    pub end: Option<DateTime<Utc>>,
    pub outcome: String,
    pub error: Option<String>,
}

/// Everything the report needs, derived from the journal.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    pub run_id: String,
    pub script: String,
    pub script_hash: String,
    pub config: Option<String>,
    pub mode: String,
    pub attempts: u32,
    pub started: Option<DateTime<Utc>>,
    pub finished: Option<DateTime<Utc>>,
    pub active_ms: u64,
    pub outcome: String,
    pub exit_code: Option<i32>,
    pub error: Option<String>,
    pub steps: Vec<StepRow>,
    pub skipped: Vec<(String, String)>,
    pub actions: Vec<Record>,
    pub metrics: Vec<(String, serde_json::Value)>,
    pub warnings: Vec<String>,
}

pub fn summarize(records: &[Record]) -> Summary {
    let mut s = Summary { outcome: "unfinished".into(), ..Summary::default() };
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut attempt_start: Option<DateTime<Utc>> = None;
    for record in records {
        match &record.event {
            Event::RunStarted { run_id, attempt, script, script_hash, config, mode, .. } => {
                s.run_id.clone_from(run_id);
                s.attempts = *attempt;
                s.script.clone_from(script);
                s.script_hash.clone_from(script_hash);
                s.config.clone_from(config);
                s.mode.clone_from(mode);
                s.started.get_or_insert(record.ts);
                attempt_start = Some(record.ts);
            }
            Event::StepStarted { id, number, title, lane, .. } => {
                index.insert(id.clone(), s.steps.len());
                s.steps.push(StepRow {
                    id: id.clone(),
                    number: number.clone(),
                    title: title.clone(),
                    lane: lane.clone(),
                    attempt: s.attempts,
                    start: record.ts,
                    end: None,
                    outcome: "unfinished".into(),
                    error: None,
                });
            }
            Event::StepFinished { id, outcome, error, .. } => {
                if let Some(row) = index.get(id).and_then(|i| s.steps.get_mut(*i)) {
                    row.end = Some(record.ts);
                    row.outcome = match outcome {
                        StepOutcome::Ok => "ok",
                        StepOutcome::Failed => "failed",
                        StepOutcome::Interrupted => "interrupted",
                    }
                    .into();
                    row.error.clone_from(error);
                }
            }
            Event::StepSkipped { number, title, .. } => s.skipped.push((number.clone(), title.clone())),
            Event::Action { .. } => s.actions.push(record.clone()),
            Event::Metric { name, value } => s.metrics.push((name.clone(), value.clone())),
            Event::Log { level, message } if level == "warn" => s.warnings.push(message.clone()),
            Event::Log { .. } => {}
            Event::RunFinished { outcome, exit_code, error, .. } => {
                s.outcome.clone_from(outcome);
                s.exit_code = Some(*exit_code);
                s.error.clone_from(error);
                s.finished = Some(record.ts);
                if let Some(start) = attempt_start.take() {
                    s.active_ms += (record.ts - start).num_milliseconds().max(0) as u64;
                }
            }
        }
    }
    // Script order within each attempt: parallel branches start together, so the journal can
    // hold step 2's start between 1.1's and 1.2's.
    s.steps.sort_by_key(|row| (row.attempt, crate::exec::step_order(&row.number).unwrap_or_else(|| vec![u32::MAX])));
    s
}

pub(crate) fn secs(ms: i64) -> String {
    format!("{:.1} s", ms as f64 / 1000.0)
}

/// The Markdown report.
pub fn markdown(records: &[Record]) -> String {
    let s = summarize(records);
    let mut out = String::new();
    let start = s.started.unwrap_or_else(Utc::now);
    out.push_str(&format!("# drscript run {}\n\n", s.run_id));
    out.push_str(&format!(
        "| | |\n|---|---|\n| Script | `{}` (sha256 `{}`) |\n",
        s.script,
        &s.script_hash[..s.script_hash.len().min(12)]
    ));
    if let Some(c) = &s.config {
        out.push_str(&format!("| Config | `{c}` |\n"));
    }
    out.push_str(&format!("| Mode | {} |\n", s.mode));
    let mut runners: Vec<String> = records
        .iter()
        .filter_map(|r| match &r.event {
            Event::RunStarted { version, .. } => Some(format!(
                "{}{}",
                r.by.as_deref().unwrap_or("(not recorded)"),
                if version.is_empty() { String::new() } else { format!(" (drscript {version})") }
            )),
            _ => None,
        })
        .collect();
    runners.dedup();
    if !runners.is_empty() {
        out.push_str(&format!("| Run by | {} |\n", runners.join(", then ")));
    }
    out.push_str(&format!(
        "| Outcome | **{}**{} |\n",
        s.outcome,
        s.exit_code.map(|c| format!(" (exit {c})")).unwrap_or_default()
    ));
    out.push_str(&format!("| Started | {} |\n", start.format("%Y-%m-%d %H:%M:%S%.3f UTC")));
    if let Some(f) = s.finished {
        out.push_str(&format!("| Finished | {} |\n", f.format("%Y-%m-%d %H:%M:%S%.3f UTC")));
        out.push_str(&format!("| Wall-clock time | {} |\n", secs((f - start).num_milliseconds())));
    }
    out.push_str(&format!("| Time spent running (RTO evidence) | {} |\n", secs(s.active_ms as i64)));
    let waiting = operator_ms(records);
    if waiting > 0 {
        out.push_str(&format!(
            "| RTO without the operator's answers | {} ({} waiting for confirmations and manual steps) |\n",
            secs((s.active_ms as i64 - waiting).max(0)),
            secs(waiting)
        ));
    }
    out.push_str(&format!("| Attempts | {} |\n", s.attempts));
    for line in situation_lines(&s.metrics) {
        out.push_str(&line);
    }
    if let Some(ms) = downtime_ms(records) {
        out.push_str(&format!("| Downtime (first quiescing change → DNS on the new side) | {} |\n", secs(ms)));
    }
    for (name, value) in s.metrics.iter().filter(|(n, _)| !SITUATION_METRICS.contains(&n.as_str())) {
        out.push_str(&format!("| {name} | {} |\n", metric_phrase(name, value)));
    }
    out.push_str("\n## Timeline\n\n| # | Step | Lane | Start | Duration | Outcome |\n|---|---|---|---|---|---|\n");
    for row in &s.steps {
        let indent = "&nbsp;&nbsp;".repeat(row.number.matches('.').count());
        let duration = row.end.map_or("—".to_string(), |e| secs((e - row.start).num_milliseconds()));
        out.push_str(&format!(
            "| {} | {indent}{} | {} | +{} | {duration} | {} |\n",
            row.number,
            row.title,
            row.lane.as_deref().unwrap_or(""),
            secs((row.start - start).num_milliseconds()),
            row.outcome
        ));
    }
    if !s.skipped.is_empty() {
        out.push_str("\n## Skipped (finished in an earlier attempt)\n\n");
        for (number, title) in &s.skipped {
            out.push_str(&format!("- {number} {title}\n"));
        }
    }
    out.push_str("\n## Actions\n\n| Time | Step | Action | Target | Detail | Outcome | Duration |\n|---|---|---|---|---|---|---|\n");
    let numbers: HashMap<&str, &String> = s.steps.iter().map(|r| (r.id.as_str(), &r.number)).collect();
    for record in &s.actions {
        if let Event::Action { step, primitive, target, detail, outcome, duration_ms, error } = &record.event {
            let outcome = match error {
                Some(e) => format!("{outcome}: {}", e.replace('|', "\\|").replace('\n', " ")),
                None => outcome.clone(),
            };
            out.push_str(&format!(
                "| +{} | {} | {primitive} | {} | {} | {outcome} | {} |\n",
                secs((record.ts - start).num_milliseconds()),
                step.as_deref().and_then(|id| numbers.get(id)).map_or("", |n| n.as_str()),
                target.replace('|', "\\|"),
                detail.replace('|', "\\|"),
                secs(*duration_ms as i64)
            ));
        }
    }
    let failures: Vec<&StepRow> = s.steps.iter().filter(|r| r.outcome != "ok").collect();
    if !failures.is_empty() || !s.warnings.is_empty() || s.error.is_some() {
        out.push_str("\n## Deviations\n\n");
        for row in failures {
            out.push_str(&format!(
                "- step {} \"{}\": {}{}\n",
                row.number,
                row.title,
                row.outcome,
                row.error.as_deref().map(|e| format!(" — {}", e.lines().next().unwrap_or(""))).unwrap_or_default()
            ));
        }
        for w in &s.warnings {
            out.push_str(&format!("- warning: {w}\n"));
        }
        if let Some(e) = &s.error {
            out.push_str(&format!("\n```\n{e}\n```\n"));
        }
    }
    redact::redacted(out)
}

/// `1,203`: a count as a person reads it.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A metric as an auditor reads it: `prod deployment/ac-ac-runtime: 2 → 0 in 4.1 s` for a scale,
/// `… → …: 1203 files (2.1 GiB) copied, 3 deleted, 38.0 s` for a sync; any other as written. The
/// raw figures stay in the journal.
fn metric_phrase(name: &str, v: &serde_json::Value) -> String {
    let n = |key: &str| v[key].as_u64().unwrap_or(0);
    match name {
        "scale" if v["target"].is_string() => format!(
            "{}: {} → {} in {}{}",
            v["target"].as_str().unwrap_or_default(),
            v["from"],
            v["to"],
            secs(i64::try_from(n("duration_ms")).unwrap_or(i64::MAX)),
            if v["changed"] == false { " (already there)" } else { "" }
        ),
        "sync_share" if v["source"].is_string() => {
            // A copy carries on past failed files: how many is part of the sentence.
            let failed = v["failures"].as_array().map_or(0, Vec::len);
            format!(
                "{} → {}: {} file(s) ({}) copied, {} deleted{}, {:.1} s",
                v["source"].as_str().unwrap_or_default(),
                v["destination"].as_str().unwrap_or_default(),
                thousands(n("copied")),
                drscript_sync::summary::bytes(n("copied_bytes")),
                thousands(n("deleted")),
                if failed > 0 { format!(", {} FAILED", thousands(failed as u64)) } else { String::new() },
                v["seconds"].as_f64().unwrap_or(0.0)
            )
        }
        _ => v.as_str().map_or_else(|| v.to_string(), str::to_string),
    }
}

/// The last value of the metric `name`, as text.
pub(crate) fn last_metric(metrics: &[(String, serde_json::Value)], name: &str) -> Option<String> {
    metrics.iter().rev().find(|(n, _)| n == name).map(|(_, v)| v.as_str().map_or_else(|| v.to_string(), str::to_string))
}

/// Primitives that wait for a person: their time is the operator's think-time, not the procedure's.
const OPERATOR_PRIMITIVES: &[&str] = &["confirm", "manual"];

/// Milliseconds the run spent waiting for the operator's answers (confirmations, manual steps).
pub fn operator_ms(records: &[Record]) -> i64 {
    records
        .iter()
        .filter_map(|r| match &r.event {
            Event::Action { primitive, duration_ms, .. } if OPERATOR_PRIMITIVES.contains(&primitive.as_str()) => {
                i64::try_from(*duration_ms).ok()
            }
            _ => None,
        })
        .sum()
}

/// The switch's direction, decision and the situation it read first, from its `switch` metric:
/// `("prod → dr", "switch", Some("ACTIVE prod"))`.
pub fn switch_of(metrics: &[(String, serde_json::Value)]) -> Option<(String, String, Option<String>)> {
    let sw = metrics.iter().rev().find(|(n, _)| n == "switch").map(|(_, v)| v)?;
    let (from, to) = (sw["from"].as_str().unwrap_or("?"), sw["to"].as_str().unwrap_or("?"));
    Some((
        format!("{from} → {to}"),
        sw["decision"].as_str().unwrap_or("?").to_string(),
        sw["verdict"].as_str().map(str::to_string),
    ))
}

/// From the `downtime` start metric to the end metric, when both are in the journal.
pub fn downtime_ms(records: &[Record]) -> Option<i64> {
    let at = |what: &str| {
        records
            .iter()
            .find(|r| matches!(&r.event, Event::Metric { name, value } if name == "downtime" && value == what))
    };
    Some((at("end")?.ts - at("start")?.ts).num_milliseconds())
}

/// Metrics a switch writes about the situation, shown as sentences rather than raw values.
const SITUATION_METRICS: &[&str] = &["switch", "downtime", "fencing", "rpo", "precopy_bytes", "final_copy_bytes"];

/// The switch's header lines: direction and decision, what could not be reached and fenced, the
/// RPO.
fn situation_lines(metrics: &[(String, serde_json::Value)]) -> Vec<String> {
    let mut out = Vec::new();
    let last = |name: &str| metrics.iter().rev().find(|(n, _)| n == name).map(|(_, v)| v);
    if let Some(sw) = last("switch") {
        let (from, to) = (sw["from"].as_str().unwrap_or("?"), sw["to"].as_str().unwrap_or("?"));
        let decision = sw["decision"].as_str().unwrap_or("?");
        let meaning = match decision {
            "source_down" => format!("{from} was unreachable; the operator confirmed it lost"),
            "done" => format!("already done: {to} served and {from} was quiesced; nothing changed"),
            "refused" => "refused: nothing changed".to_string(),
            "keep_from" => format!("split brain resolved keeping {from}'s data"),
            "keep_to" => format!("{to} kept its own data"),
            "fence_to" => format!("{to} returned unfenced and was fenced first"),
            _ => format!("{from} served, {to} was idle"),
        };
        out.push(format!("| Switch | {from} → {to} ({decision}: {meaning}) |\n"));
        if let Some(verdict) = sw["verdict"].as_str() {
            out.push(format!("| Situation before | {verdict} |\n"));
        }
    }
    if let Some(f) = last("fencing") {
        let unfenced: Vec<&str> = f["unfenced"].as_array().into_iter().flatten().filter_map(|v| v.as_str()).collect();
        let env = f["env"].as_str().unwrap_or("?");
        out.push(if unfenced.is_empty() {
            format!("| Fencing | {env}: everything quiesced |\n")
        } else {
            format!(
                "| Fencing | {env}: NOT quiesced: {} — fence it when it returns (fence.rhai) |\n",
                unfenced.join(", ")
            )
        });
    }
    let bytes = |v: &serde_json::Value| drscript_sync::summary::bytes(v.as_u64().unwrap_or(0));
    if let Some(pre) = last("precopy_bytes") {
        out.push(format!("| Copied while the source served (pre-copy) | {} |\n", bytes(pre)));
    }
    if let Some(fin) = last("final_copy_bytes") {
        out.push(format!("| Copied inside the downtime | {} |\n", bytes(fin)));
    }
    if let Some(rpo) = last_metric(metrics, "rpo") {
        out.push(format!("| RPO | {rpo} |\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: i64, event: Event) -> Record {
        Record { ts: DateTime::from_timestamp_millis(1_800_000_000_000 + ms).unwrap(), by: None, event }
    }

    fn started(id: &str, number: &str) -> Event {
        Event::StepStarted { id: id.into(), number: number.into(), title: id.into(), parent: None, lane: None }
    }

    fn run(attempt: u32) -> Event {
        Event::RunStarted {
            run_id: "r".into(),
            attempt,
            script: "s.rhai".into(),
            script_hash: "h".into(),
            config: None,
            mode: "live".into(),
            vars: Default::default(),
            pid: 1,
            version: String::new(),
        }
    }

    fn metric(name: &str, value: serde_json::Value) -> Event {
        Event::Metric { name: name.into(), value }
    }

    #[test]
    fn the_header_tells_direction_downtime_the_runs_rpo_and_the_rto_without_think_time() {
        let confirm = Event::Action {
            step: None,
            primitive: "confirm".into(),
            target: "\"Switch?\"".into(),
            detail: String::new(),
            outcome: "ok".into(),
            duration_ms: 5_000,
            error: None,
        };
        let records = vec![
            at(0, run(1)),
            at(
                10,
                metric(
                    "switch",
                    serde_json::json!({"from": "prod", "to": "dr", "decision": "switch", "verdict": "ACTIVE prod"}),
                ),
            ),
            at(5_010, confirm),
            at(6_000, metric("downtime", serde_json::json!("start"))),
            at(6_100, metric("storage_last_sync_time", serde_json::json!("prod 2026-12-06T09:00:00Z"))),
            at(9_000, metric("rpo", serde_json::json!("0 (every file copied after the source was quiesced)"))),
            at(10_000, metric("downtime", serde_json::json!("end"))),
            at(10_000, Event::RunFinished { outcome: "ok".into(), exit_code: 0, duration_ms: 10_000, error: None }),
        ];
        let html = crate::report_html::html(&records);
        assert!(html.contains("prod → dr (switch)") && html.contains("ACTIVE prod"), "{html}");
        assert!(html.contains("<td>Downtime</td><td class=\"big\">4.0 s</td>"), "{html}");
        assert!(
            html.contains("<td>RPO</td><td class=\"big\">0 (every file copied"),
            "the run's RPO, not the account's: {html}"
        );
        assert!(html.contains("<td>Storage last sync time</td><td>prod 2026-12-06T09:00:00Z</td>"), "{html}");
        assert!(html.contains("without 5.0 s of operator answers)</td><td class=\"big\">5.0 s</td>"), "{html}");
        let md = markdown(&records);
        assert!(md.contains("| RTO without the operator's answers | 5.0 s (5.0 s waiting"), "{md}");
    }

    #[test]
    fn scale_and_sync_figures_read_as_sentences() {
        let scale = serde_json::json!({"target": "prod deployment/ac-ac-runtime", "from": 2, "to": 0, "changed": true, "waited": true, "ready": 0, "duration_ms": 4100});
        assert_eq!(metric_phrase("scale", &scale), "prod deployment/ac-ac-runtime: 2 → 0 in 4.1 s");
        let sync = serde_json::json!({"source": "prod/app/web/repository", "destination": "dr/app/web/repository", "copied": 1203, "copied_bytes": 2_254_857_830_u64, "deleted": 3, "seconds": 38.0});
        assert_eq!(
            metric_phrase("sync_share", &sync),
            "prod/app/web/repository → dr/app/web/repository: 1,203 file(s) (2.1 GiB) copied, 3 deleted, 38.0 s"
        );
        let failed = serde_json::json!({"source": "a", "destination": "b", "copied": 1_234_567, "copied_bytes": 0, "deleted": 0, "seconds": 1.0,
            "failures": [{"path": "x", "reason": "503"}, {"path": "y", "reason": "503"}]});
        assert_eq!(
            metric_phrase("sync_share", &failed),
            "a → b: 1,234,567 file(s) (0 B) copied, 0 deleted, 2 FAILED, 1.0 s"
        );
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(metric_phrase("rpo", &serde_json::json!("0")), "0");
    }

    #[test]
    fn steps_are_in_script_order_within_each_attempt_whatever_order_they_started_in() {
        let records = vec![
            at(0, run(1)),
            at(1, started("a", "1")),
            at(2, started("b", "2")),
            at(3, started("a1", "1.1")),
            at(4, started("j", "10")),
            at(5, started("a2", "1.2")),
            at(6, started("i", "9")),
            at(7, run(2)),
            at(8, started("b again", "2")),
            at(9, started("a1 again", "1.1")),
        ];
        let order: Vec<String> = summarize(&records).steps.into_iter().map(|s| s.number).collect();
        assert_eq!(order, ["1", "1.1", "1.2", "2", "9", "10", "1.1", "2"]);
        let html = crate::report_html::html(&records);
        let positions: Vec<usize> = ["a1 again", "b again"].iter().map(|t| html.find(t).unwrap()).collect();
        assert!(positions[0] < positions[1], "the HTML timeline follows the same order");
    }
}
