//! The steps of a run as the live view draws them: a tree keyed by step number, so that
//! parallel branches (numbered in script order when they are reserved) stay in script order
//! whichever thread gets there first.
//!
//! A top-level step leaves the live area once it and every step before it finished: its line
//! (collapsed: `✓ 1 Quiesce prod  2.1 s`) and its warnings are then printed for good above the
//! live area, in script order. The rest is redrawn: running steps with what they wait for,
//! finished children of running steps collapsed to one line.

pub use drscript_core::observer::Finish;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// A warning or an error logged inside a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Warning,
    Error,
}

struct Node {
    number: String,
    title: String,
    started: Instant,
    finished: Option<(Finish, Duration)>,
    /// What the step waits for now (`dr ac-ac-runtime 1/2 ready`), set by the primitive.
    waiting: Option<String>,
    /// The step's last action line, shown while nothing says what it waits for.
    doing: Option<String>,
    notes: Vec<(Severity, String)>,
}

/// `1.2.10` → `[1, 2, 10]`: numeric order, parents before their children.
type Key = Vec<u32>;

fn key(number: &str) -> Option<Key> {
    drscript_core::exec::step_order(number)
}

#[derive(Default)]
pub struct Tree {
    nodes: BTreeMap<Key, Node>,
    /// Lines to print once above the live area, in the order they came.
    printable: Vec<String>,
}

impl Tree {
    pub fn start(&mut self, number: &str, title: &str, now: Instant) {
        let Some(k) = key(number) else { return };
        let node = Node {
            number: number.to_string(),
            title: title.to_string(),
            started: now,
            finished: None,
            waiting: None,
            doing: None,
            notes: Vec::new(),
        };
        self.nodes.insert(k, node);
    }

    pub fn finish(&mut self, number: &str, how: Finish, took: Duration) {
        if how == Finish::Skipped && key(number).is_some_and(|k| !self.nodes.contains_key(&k)) {
            self.start(number, "", Instant::now());
        }
        if let Some(node) = key(number).and_then(|k| self.nodes.get_mut(&k)) {
            node.finished = Some((how, took));
            node.waiting = None;
        }
    }

    /// Names the skipped step (its title is only known when it is skipped).
    pub fn skip(&mut self, number: &str, title: &str) {
        self.start(number, title, Instant::now());
        self.finish(number, Finish::Skipped, Duration::ZERO);
    }

    pub fn waiting(&mut self, number: &str, what: Option<String>) {
        if let Some(node) = self.running(number) {
            node.waiting = what;
        }
    }

    pub fn doing(&mut self, number: &str, what: String) {
        if let Some(node) = self.running(number) {
            node.doing = Some(what);
        }
    }

    /// A warning or error under the step `number`; without a known step, a line of its own.
    pub fn note(&mut self, number: Option<&str>, severity: Severity, text: String) {
        match number.and_then(key).and_then(|k| self.nodes.get_mut(&k)) {
            Some(node) => node.notes.push((severity, text)),
            None => self.printable.push(note_line(None, severity, &text)),
        }
    }

    /// A line outside any step (the run's header, a library's message).
    pub fn line(&mut self, text: String) {
        self.printable.push(text);
    }

    fn running(&mut self, number: &str) -> Option<&mut Node> {
        key(number).and_then(|k| self.nodes.get_mut(&k)).filter(|n| n.finished.is_none())
    }

    /// Moves every finished top-level step that no unfinished one precedes out of the live area.
    /// `all` does it for every step (the end of the run).
    fn commit(&mut self, all: bool) {
        loop {
            let Some((first, node)) = self.nodes.iter().next() else { return };
            if node.finished.is_none() && !all {
                return;
            }
            let top = first[0];
            let subtree: Vec<Key> = self.nodes.keys().take_while(|k| k[0] == top).cloned().collect();
            let nodes: Vec<Node> = subtree.iter().filter_map(|k| self.nodes.remove(k)).collect();
            let (head, rest) = nodes.split_first().expect("a subtree has its root");
            self.printable.push(step_line(head, 0, Instant::now(), ""));
            for node in std::iter::once(head).chain(rest) {
                for (severity, text) in &node.notes {
                    for line in text.lines() {
                        self.printable.push(note_line(Some(1), *severity, line));
                    }
                }
            }
        }
    }

    /// The lines to print for good since the last call.
    pub fn take_printable(&mut self, all: bool) -> Vec<String> {
        self.commit(all);
        std::mem::take(&mut self.printable)
    }

    /// The live area: unfinished top-level steps (and the finished ones after them) with their
    /// children; `spinner` marks running steps.
    pub fn live(&self, now: Instant, spinner: &str) -> Vec<String> {
        let mut out = Vec::new();
        let mut hidden: Option<Key> = None;
        for (k, node) in &self.nodes {
            if hidden.as_ref().is_some_and(|h| k.starts_with(h)) {
                continue;
            }
            let depth = k.len() - 1;
            out.push(step_line(node, depth, now, spinner));
            if node.finished.is_some() {
                // Collapsed: its children's warnings come along under its one line.
                hidden = Some(k.clone());
                let notes = self.nodes.range(k.clone()..).take_while(|(c, _)| c.starts_with(k));
                for (severity, text) in notes.flat_map(|(_, n)| &n.notes) {
                    out.push(note_line(Some(depth + 1), *severity, first_line(text)));
                }
            } else {
                hidden = None;
                for (severity, text) in &node.notes {
                    out.push(note_line(Some(depth + 1), *severity, first_line(text)));
                }
            }
        }
        out
    }
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or_default()
}

fn step_line(node: &Node, depth: usize, now: Instant, spinner: &str) -> String {
    let indent = "  ".repeat(depth);
    let (number, title) = (&node.number, &node.title);
    match node.finished {
        Some((Finish::Ok, took)) => {
            format!("{indent}{} {number} {title}  {}", console::style("✓").green(), duration(took))
        }
        Some((Finish::Failed, took)) => {
            format!("{indent}{} {number} {title}  failed after {}", console::style("✗").red(), duration(took))
        }
        Some((Finish::Stopped, took)) => {
            format!("{indent}{} {number} {title}  stopped after {}", console::style("■").yellow(), duration(took))
        }
        Some((Finish::Skipped, _)) => {
            format!("{indent}{} {number} {title}  finished in an earlier attempt", console::style("↷").dim())
        }
        None => {
            let what = node.waiting.as_ref().or(node.doing.as_ref());
            let what = what.map(|w| format!("  {}", console::style(first_line(w)).dim())).unwrap_or_default();
            let elapsed = duration(now.saturating_duration_since(node.started));
            format!("{indent}{} {number} {title}  {elapsed}{what}", console::style(spinner).cyan())
        }
    }
}

/// A warning or error under the step at `depth` (indented one more level), or on its own.
fn note_line(depth: Option<usize>, severity: Severity, text: &str) -> String {
    let mark = match severity {
        Severity::Warning => console::style("⚠").yellow(),
        Severity::Error => console::style("✗").red(),
    };
    format!("{}{mark} {text}", depth.map_or_else(String::new, |d| "  ".repeat(d + 1)))
}

/// `2.1 s`, `4 min 05 s`.
pub fn duration(d: Duration) -> String {
    let secs = d.as_secs_f64();
    if secs < 60.0 {
        format!("{secs:.1} s")
    } else {
        let whole = d.as_secs();
        format!("{} min {:02} s", whole / 60, whole % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain(lines: Vec<String>) -> Vec<String> {
        lines.iter().map(|l| console::strip_ansi_codes(l).into_owned()).collect()
    }

    #[test]
    fn parallel_branches_keep_script_order_and_commit_in_order() {
        let t0 = Instant::now();
        let mut tree = Tree::default();
        tree.start("2", "Quiesce prod", t0);
        tree.start("3", "Scale down dr rabbitmq", t0);
        tree.start("2.2", "Scale down prod listener", t0);
        tree.start("2.1", "Scale down prod runtime", t0);
        tree.waiting("2.1", Some("prod ac-ac-runtime 1 pod left".into()));
        tree.finish("3", Finish::Ok, Duration::from_millis(100));
        assert!(tree.take_printable(false).is_empty(), "3 waits for 2");
        let live = plain(tree.live(t0 + Duration::from_secs(2), "*"));
        assert_eq!(
            live,
            [
                "* 2 Quiesce prod  2.0 s",
                "  * 2.1 Scale down prod runtime  2.0 s  prod ac-ac-runtime 1 pod left",
                "  * 2.2 Scale down prod listener  2.0 s",
                "✓ 3 Scale down dr rabbitmq  0.1 s",
            ]
        );
        tree.note(Some("2.2"), Severity::Warning, "slow\nsecond line".into());
        tree.finish("2.1", Finish::Ok, Duration::from_millis(500));
        tree.finish("2.2", Finish::Ok, Duration::from_millis(700));
        tree.finish("2", Finish::Ok, Duration::from_millis(2100));
        assert_eq!(
            plain(tree.take_printable(false)),
            ["✓ 2 Quiesce prod  2.1 s", "    ⚠ slow", "    ⚠ second line", "✓ 3 Scale down dr rabbitmq  0.1 s"]
        );
        assert!(tree.live(t0, "*").is_empty());
    }

    #[test]
    fn a_finished_child_collapses_with_its_warnings() {
        let t0 = Instant::now();
        let mut tree = Tree::default();
        tree.start("1", "Copy", t0);
        tree.start("1.1", "Copy web", t0);
        tree.start("1.1.1", "inner", t0);
        tree.note(Some("1.1.1"), Severity::Error, "boom".into());
        tree.finish("1.1.1", Finish::Failed, Duration::from_secs(1));
        tree.finish("1.1", Finish::Failed, Duration::from_secs(1));
        let live = plain(tree.live(t0, "*"));
        assert_eq!(live, ["* 1 Copy  0.0 s", "  ✗ 1.1 Copy web  failed after 1.0 s", "      ✗ boom"]);
    }

    #[test]
    fn durations_read_like_a_stopwatch() {
        assert_eq!(duration(Duration::from_millis(2140)), "2.1 s");
        assert_eq!(duration(Duration::from_secs(245)), "4 min 05 s");
    }
}
