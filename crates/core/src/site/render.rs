//! The situation as people and machines read it: a one-screen table, JSON (the same structure
//! `--json` prints, documented in the README), and OpenMetrics gauges for a node-exporter textfile
//! collector.

use std::fmt::Write as _;

use super::facts::{COMPONENTS, Scheduler, SiteState};
use super::verdict::{Situation, Verdict};

/// One environment as JSON, with the judgements `processing`, `quiesced`, `serving`, `reachable`
/// (what scripts and `status --json` see).
pub fn state_json(s: &SiteState) -> serde_json::Value {
    let mut v = serde_json::to_value(s).unwrap_or_default();
    v["processing"] = s.processing().map_or(serde_json::Value::Null, serde_json::Value::Bool);
    v["quiesced"] = serde_json::Value::Bool(s.quiesced());
    v["serving"] = serde_json::Value::Bool(s.serving());
    v["reachable"] = serde_json::Value::Bool(s.reachable());
    v
}

/// The situation as JSON: the documented structure of `drscript status --json`.
pub fn json(s: &Situation) -> serde_json::Value {
    let mut v = serde_json::to_value(s).unwrap_or_default();
    v["environments"] = serde_json::Value::Array(s.environments.iter().map(state_json).collect());
    v
}

/// ANSI colours, or none.
struct Paint(bool);

impl Paint {
    fn wrap(&self, code: &str, text: &str) -> String {
        if self.0 { format!("\x1b[{code}m{text}\x1b[0m") } else { text.to_string() }
    }
}

/// The text of `drscript status`.
pub fn text(s: &Situation, color: bool) -> String {
    let paint = Paint(color);
    let mut out = String::new();
    let headline = match (&s.verdict, s.healthy) {
        (Verdict::Active(_), true) => paint.wrap("1;32", &format!("{} — healthy", s.summary)),
        (Verdict::Active(_), false) => paint.wrap("1;33", &format!("{} — degraded", s.summary)),
        _ => paint.wrap("1;31", &s.summary),
    };
    let _ = writeln!(out, "{headline}");
    for reason in &s.reasons {
        let _ = writeln!(out, "  - {reason}");
    }
    out.push('\n');
    let mut rows = vec![
        ["ENV", "CLUSTER", "RUNTIME", "LISTENER", "RABBITMQ", "SCHEDULER", "VERSION", "SHARES", "STORAGE LAST SYNC"]
            .map(str::to_string)
            .to_vec(),
    ];
    for e in &s.environments {
        let mut row = vec![e.name.clone(), if e.cluster.reachable { "ok" } else { "DOWN" }.to_string()];
        for (c, _) in COMPONENTS {
            row.push(e.workloads.get(c).map_or("?".to_string(), |w| format!("{}/{}", w.ready, w.desired)));
        }
        row.push(if e.gateway.reachable { e.scheduler.name().to_string() } else { "DOWN".to_string() });
        row.push(e.version.clone().unwrap_or_else(|| "?".to_string()));
        let shares: Vec<String> =
            e.shares.values().map(|sh| format!("{} {}", sh.name, if sh.reachable { "ok" } else { "DOWN" })).collect();
        row.push(if shares.is_empty() { "-".to_string() } else { shares.join(", ") });
        row.push(e.storage.as_ref().map_or("-".to_string(), |st| {
            st.last_sync_time.clone().unwrap_or_else(|| if st.error.is_some() { "?".into() } else { "unknown".into() })
        }));
        rows.push(row);
    }
    let widths: Vec<usize> =
        (0..rows[0].len()).map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0)).collect();
    for (i, row) in rows.iter().enumerate() {
        let cells: Vec<String> = row.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
        let line = cells.join("  ");
        let line = line.trim_end();
        let _ = writeln!(out, "{}", if i == 0 { paint.wrap("1", line) } else { line.to_string() });
    }
    let details: Vec<String> = s.environments.iter().flat_map(details).collect();
    if !details.is_empty() {
        out.push('\n');
        for d in details {
            let _ = writeln!(out, "{d}");
        }
    }
    out
}

/// The errors and notes behind the table's `DOWN` and `?` cells.
fn details(e: &SiteState) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(err) = &e.cluster.error {
        out.push(format!("{} cluster: {err}", e.name));
    }
    if let Some(err) = &e.gateway.error {
        out.push(format!("{} gateway: {err}", e.name));
    }
    if let Some(note) = &e.scheduler_note {
        out.push(format!("{} scheduler: {note}", e.name));
    }
    for sh in e.shares.values() {
        if let Some(err) = &sh.error {
            let problem = sh.problem.map(|p| format!("{p:?}").to_lowercase()).unwrap_or_default();
            out.push(format!("{} share {} ({problem}): {err}", e.name, sh.name));
        }
        if let Some(days) = sh.sas_days_left.filter(|d| *d < 14) {
            out.push(format!("{} share {}: SAS expires in {days} day(s)", e.name, sh.name));
        }
    }
    if let Some(st) = &e.storage {
        if let Some(err) = &st.error {
            out.push(format!("{} storage {}: {err}", e.name, st.account));
        }
        if st.failover_in_progress {
            out.push(format!("{} storage {}: a failover is in progress", e.name, st.account));
        }
    }
    out
}

/// OpenMetrics gauges (text format), ending with `# EOF`.
pub fn openmetrics(s: &Situation) -> String {
    let mut out = String::new();
    let mut gauge = |name: &str, help: &str, samples: Vec<(String, f64)>| {
        let _ = writeln!(out, "# TYPE drscript_{name} gauge\n# HELP drscript_{name} {help}");
        for (labels, value) in samples {
            let _ = writeln!(out, "drscript_{name}{labels} {value}");
        }
    };
    let active = match &s.verdict {
        Verdict::Active(side) => Some(side.as_str()),
        _ => None,
    };
    let env_label = |e: &SiteState| format!("{{env=\"{}\"}}", e.name);
    gauge(
        "healthy",
        "1 when one side is active and serving and every side answers",
        vec![(String::new(), f64::from(u8::from(s.healthy)))],
    );
    gauge(
        "active",
        "1 for the environment that serves (verdict ACTIVE)",
        s.environments.iter().map(|e| (env_label(e), f64::from(u8::from(active == Some(e.name.as_str()))))).collect(),
    );
    gauge(
        "cluster_reachable",
        "1 when the environment's API server answers",
        s.environments.iter().map(|e| (env_label(e), f64::from(u8::from(e.cluster.reachable)))).collect(),
    );
    gauge(
        "gateway_reachable",
        "1 when the environment's gateway answers",
        s.environments.iter().map(|e| (env_label(e), f64::from(u8::from(e.gateway.reachable)))).collect(),
    );
    let workloads = |f: fn(&super::facts::Workload) -> i32| {
        s.environments
            .iter()
            .flat_map(|e| {
                e.workloads
                    .iter()
                    .map(move |(c, w)| (format!("{{env=\"{}\",component=\"{c}\"}}", e.name), f64::from(f(w))))
            })
            .collect::<Vec<_>>()
    };
    gauge("replicas_desired", "spec.replicas of the workload", workloads(|w| w.desired));
    gauge("replicas_ready", "ready pods of the workload", workloads(|w| w.ready));
    gauge(
        "scheduler_running",
        "1 running, 0 paused, -1 unknown",
        s.environments
            .iter()
            .map(|e| {
                let v = match e.scheduler {
                    Scheduler::Running => 1.0,
                    Scheduler::Paused => 0.0,
                    Scheduler::Unknown => -1.0,
                };
                (env_label(e), v)
            })
            .collect(),
    );
    let shares = |f: fn(&super::facts::ShareFacts) -> Option<f64>| {
        s.environments
            .iter()
            .flat_map(|e| {
                e.shares
                    .values()
                    .filter_map(move |sh| f(sh).map(|v| (format!("{{env=\"{}\",share=\"{}\"}}", e.name, sh.name), v)))
            })
            .collect::<Vec<_>>()
    };
    gauge("share_reachable", "1 when the share can be listed", shares(|sh| Some(f64::from(u8::from(sh.reachable)))));
    gauge("sas_days_left", "whole days until the share's SAS expires", shares(|sh| sh.sas_days_left.map(|d| d as f64)));
    gauge(
        "storage_last_sync_age_seconds",
        "seconds since the storage account's last geo-replication sync: the RPO right now",
        s.environments
            .iter()
            .filter_map(|e| {
                let st = e.storage.as_ref()?;
                let t = chrono::DateTime::parse_from_rfc3339(st.last_sync_time.as_deref()?).ok()?;
                let age = (s.read_at - t.with_timezone(&chrono::Utc)).num_milliseconds() as f64 / 1000.0;
                Some((format!("{{env=\"{}\",account=\"{}\"}}", e.name, st.account), age.max(0.0)))
            })
            .collect(),
    );
    out.push_str("# EOF\n");
    out
}
