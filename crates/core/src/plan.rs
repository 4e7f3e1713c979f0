//! What a plan shows: the numbered steps and, under each, the actions with their targets.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::estimate::Estimate;

#[derive(Debug, Clone, PartialEq)]
pub enum PlanEntry {
    Step {
        /// The journal's step id, the same in a plan and in the live run of the same script.
        id: String,
        number: String,
        title: String,
        depth: usize,
        skipped: bool,
        /// The lane (`p2.1`: group 2, branch 1) when the step starts a branch of `parallel`.
        parallel: Option<String>,
    },
    Action {
        primitive: String,
        target: String,
        detail: String,
        depth: usize,
    },
    Note {
        text: String,
        depth: usize,
    },
}

#[derive(Debug, Default)]
pub struct PlanRecorder {
    entries: Mutex<Vec<PlanEntry>>,
}

impl PlanRecorder {
    pub fn push(&self, entry: PlanEntry) {
        self.entries.lock().unwrap().push(entry);
    }

    pub fn entries(&self) -> Vec<PlanEntry> {
        self.entries.lock().unwrap().clone()
    }

    pub fn step_count(&self) -> usize {
        self.entries().iter().filter(|e| matches!(e, PlanEntry::Step { .. })).count()
    }

    pub fn action_count(&self) -> usize {
        self.entries().iter().filter(|e| matches!(e, PlanEntry::Action { .. })).count()
    }

    /// The plan as text, one line per step or action, indented by depth. Steps that run at the
    /// same time are marked `‖` under a line naming them; with `expected`, each step shows what it
    /// took in that earlier run.
    pub fn render(&self, expected: Option<&Estimate>) -> String {
        let entries = self.entries();
        let groups = parallel_groups(&entries);
        let mut seen: Vec<&str> = Vec::new();
        let mut lines: Vec<(String, Option<String>)> = Vec::new();
        for entry in &entries {
            match entry {
                PlanEntry::Step { id, number, title, depth, skipped, parallel } => {
                    let indent = "  ".repeat(*depth);
                    let mark = match parallel.as_deref().map(group_of) {
                        Some(group) => {
                            if !seen.contains(&group) {
                                let numbers = groups.get(group).map_or_else(String::new, |n| n.join(", "));
                                lines.push((format!("{indent}‖ at the same time: {numbers}"), None));
                                seen.push(group);
                            }
                            "‖ "
                        }
                        None => "",
                    };
                    let skipped = if *skipped { "  (finished earlier: skipped)" } else { "" };
                    let took = expected.and_then(|e| e.step(id)).map(seconds);
                    lines.push((format!("{indent}{mark}{number}. {title}{skipped}"), took));
                }
                PlanEntry::Action { primitive, target, detail, depth } => {
                    let indent = "  ".repeat(*depth + 1);
                    let detail = if detail.is_empty() { String::new() } else { format!("  {detail}") };
                    // A long question keeps its lines under its action.
                    let text = format!("{primitive} {target}{detail}")
                        .lines()
                        .enumerate()
                        .map(|(i, l)| if i == 0 || l.is_empty() { l.to_string() } else { format!("{indent}  {l}") })
                        .collect::<Vec<_>>()
                        .join("\n");
                    lines.push((format!("{indent}- {text}"), None));
                }
                PlanEntry::Note { text, depth } => {
                    let indent = "  ".repeat(*depth + 1);
                    lines.push((format!("{indent}! {text}"), None));
                }
            }
        }
        // Durations line up in a column after the longest step line.
        let width = lines.iter().filter(|(_, t)| t.is_some()).map(|(l, _)| l.chars().count()).max().unwrap_or(0);
        let mut out = String::new();
        for (line, took) in lines {
            match took {
                Some(took) => out.push_str(&format!("{line:<width$}  {took:>8}\n")),
                None => out.push_str(&format!("{line}\n")),
            }
        }
        out
    }
}

/// `p2` for the lane `p2.1`: the parallel call the branch belongs to.
fn group_of(lane: &str) -> &str {
    lane.split_once('.').map_or(lane, |(group, _)| group)
}

/// The step numbers that start each parallel call's branches, by group, in script order.
fn parallel_groups(entries: &[PlanEntry]) -> HashMap<&str, Vec<&str>> {
    let mut groups: HashMap<&str, Vec<&str>> = HashMap::new();
    for entry in entries {
        if let PlanEntry::Step { number, parallel: Some(lane), .. } = entry {
            groups.entry(group_of(lane)).or_default().push(number);
        }
    }
    groups
}

/// `2.1 s`, `1 min 05 s`.
pub fn seconds(s: f64) -> String {
    if s < 60.0 {
        format!("{s:.1} s")
    } else {
        let whole = s.round() as u64;
        format!("{} min {:02} s", whole / 60, whole % 60)
    }
}

/// The lines under a plan saying what the whole is expected to take, or that nothing is known.
pub fn expectation(expected: Option<&Estimate>, runbook: &str) -> String {
    match expected {
        None => format!("Expected time: no earlier run of {runbook} finished in this state directory.\n"),
        Some(e) => format!(
            "Expected total: {}{} (the last finished run of {runbook}, {}, started {} UTC).\n",
            seconds(e.total_seconds),
            e.downtime_seconds.map(|d| format!(", downtime {}", seconds(d))).unwrap_or_default(),
            e.run_id,
            e.started.format("%Y-%m-%d %H:%M")
        ),
    }
}
