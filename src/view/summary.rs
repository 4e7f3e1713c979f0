//! The last lines a run shows on a terminal: how it ended and after how long, the RPO and the
//! downtime when the runbook recorded them (`metric("rpo", ...)`, `metric("downtime", ...)`),
//! what to do next, and where the report is (HTML first: the one to open).

use std::time::Duration;

use drscript_core::journal::Event;
use drscript_core::observer::RunEnd;

use super::tree::duration;

/// How a run ended, as the live view shows it last.
pub struct Summary<'a>(pub &'a RunEnd<'a>);

impl Summary<'_> {
    pub fn lines(&self) -> Vec<String> {
        let took = duration(Duration::from_secs_f64(self.0.seconds.max(0.0)));
        let id = self.0.run_id;
        let head = match self.0.outcome {
            "ok" => format!("{} run {id} finished in {took}", console::style("✓").green()),
            "stopped" => format!(
                "{} run {id} stopped after {took}; continue with `drscript resume {id}`",
                console::style("■").yellow()
            ),
            "refused" => {
                format!("{} run {id} refused the situation: nothing was changed", console::style("■").yellow())
            }
            _ => format!(
                "{} run {id} failed after {took}; fix the cause and continue with `drscript resume {id}`",
                console::style("✗").red()
            ),
        };
        let mut out = vec![String::new(), head];
        if let Some(rpo) = self.metric("rpo") {
            out.push(format!("  RPO       {}", rpo.as_str().map_or_else(|| rpo.to_string(), str::to_string)));
        }
        if let Some(ms) = drscript_core::report::downtime_ms(self.0.records).and_then(|ms| u64::try_from(ms).ok()) {
            out.push(format!("  downtime  {}", duration(Duration::from_millis(ms))));
        }
        out.push(format!("  report    {}", self.0.run_dir.join("report.html").display()));
        out.push(format!("            {}", self.0.run_dir.join("report.md").display()));
        out
    }

    fn metric(&self, wanted: &str) -> Option<&serde_json::Value> {
        self.0.records.iter().rev().find_map(|r| match &r.event {
            Event::Metric { name, value } if name == wanted => Some(value),
            _ => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use drscript_core::journal::Record;

    use super::*;

    fn record(seconds: i64, name: &str, value: serde_json::Value) -> Record {
        Record {
            by: None,
            ts: chrono::DateTime::from_timestamp(seconds, 0).unwrap(),
            event: Event::Metric { name: name.to_string(), value },
        }
    }

    #[test]
    fn names_the_rpo_the_downtime_and_the_html_report_first() {
        let records = [
            record(100, "downtime", "start".into()),
            record(103, "rpo", "0 (every file copied after the source was quiesced)".into()),
            record(104, "downtime", "end".into()),
        ];
        let end =
            RunEnd { run_id: "r1", outcome: "ok", seconds: 4.04, run_dir: Path::new("runs/r1"), records: &records };
        let lines: Vec<String> =
            Summary(&end).lines().iter().map(|l| console::strip_ansi_codes(l).into_owned()).collect();
        assert_eq!(
            lines,
            [
                "",
                "✓ run r1 finished in 4.0 s",
                "  RPO       0 (every file copied after the source was quiesced)",
                "  downtime  4.0 s",
                "  report    runs/r1/report.html",
                "            runs/r1/report.md",
            ]
        );
        let failed = RunEnd { outcome: "failed", records: &[], ..end };
        assert!(Summary(&failed).lines()[1].contains("drscript resume r1"));
        assert_eq!(Summary(&failed).lines().len(), 4, "no RPO or downtime recorded, none shown");
    }
}
