//! What a plan shows: the numbered steps and, under each, the actions with their targets.

use std::sync::Mutex;

#[derive(Debug, Clone, PartialEq)]
pub enum PlanEntry {
    Step { number: String, title: String, depth: usize, skipped: bool },
    Action { primitive: String, target: String, detail: String, depth: usize },
    Note { text: String, depth: usize },
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

    /// The plan as text, one line per step or action, indented by depth.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for entry in self.entries() {
            match entry {
                PlanEntry::Step { number, title, depth, skipped } => {
                    let indent = "  ".repeat(depth);
                    let mark = if skipped { "  (finished earlier: skipped)" } else { "" };
                    out.push_str(&format!("{indent}{number}. {title}{mark}\n"));
                }
                PlanEntry::Action { primitive, target, detail, depth } => {
                    let indent = "  ".repeat(depth + 1);
                    let detail = if detail.is_empty() { String::new() } else { format!("  {detail}") };
                    out.push_str(&format!("{indent}- {primitive} {target}{detail}\n"));
                }
                PlanEntry::Note { text, depth } => {
                    let indent = "  ".repeat(depth + 1);
                    out.push_str(&format!("{indent}! {text}\n"));
                }
            }
        }
        out
    }
}
