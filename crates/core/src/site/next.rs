//! The lifecycle's moves as commands: what an operator types to go from one situation to the
//! next. `status`'s "next" lines and every refusal's "did you mean" are built here, so that each
//! hint is a command that, typed as shown, is accepted and does what the hint says.
//!
//! The state machine itself (which situation allows which move) is written down in
//! `docs/decisions.md`, "The lifecycle of a pair"; [`steps`] is its code.

use serde::Serialize;

use super::verdict::{Situation, Verdict};
use crate::config::Config;

/// The commands of the shipped runbooks for one config.
pub struct Commands<'a> {
    config: &'a Config,
}

impl<'a> Commands<'a> {
    pub fn new(config: &'a Config) -> Self {
        Commands { config }
    }

    /// The switch `from` → `to`: `failover.rhai` when `from` is the declared primary and `to`
    /// the standby, `failback.rhai` the other way, else `failover.rhai` with the direction spelled
    /// out (always accepted: without declared roles the short forms take the direction from the
    /// live state, see [`Config::roles_declared`]).
    pub fn switch(&self, from: &str, to: &str) -> String {
        let declared = self.config.roles_declared();
        let (primary, standby) = (self.config.primary(), self.config.standby());
        if declared && from == primary && Some(to) == standby {
            "drscript failover.rhai".to_string()
        } else if declared && to == primary && Some(from) == standby {
            "drscript failback.rhai".to_string()
        } else {
            format!("drscript failover.rhai --var from={from} --var to={to}")
        }
    }

    /// The switch `from` → `to` keeping `keep`'s data in a split brain or with nothing serving.
    pub fn switch_keeping(&self, from: &str, to: &str, keep: &str) -> String {
        format!("{} --var keep={keep}", self.switch(from, to))
    }

    /// The other side of a pair; `None` when the config has not exactly two environments.
    pub fn other(&self, env: &str) -> Option<&'a str> {
        let mut others = self.config.order.iter().filter(|n| n.as_str() != env);
        match (others.next(), others.next()) {
            (Some(one), None) => Some(one.as_str()),
            _ => None,
        }
    }
}

/// Fences `env` (pauses its scheduler, scales it to 0, copies nothing).
pub fn fence_command(env: &str) -> String {
    format!("drscript fence.rhai --var env={env}")
}

/// The "next" lines of `drscript status`.
pub fn text(steps: &[Step]) -> String {
    let mut out = String::new();
    if !steps.is_empty() {
        out.push_str("\nNext:\n");
        for step in steps {
            out.push_str(&format!("  {}:\n    {}\n", step.what, step.command));
        }
    }
    out
}

/// One move an operator can make from the situation: what it does and the command that does it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Step {
    pub what: String,
    pub command: String,
}

impl Step {
    fn new(what: impl Into<String>, command: String) -> Step {
        Step { what: what.into(), command }
    }
}

/// The moves the situation allows, the one the situation calls for first; `state_dir` holds
/// the runs the situation was judged with.
pub fn steps(config: &Config, s: &Situation, state_dir: &std::path::Path) -> Vec<Step> {
    // Whether the unfinished run already copied its source's data (see `decide`).
    let copied = |run: &super::history::RunSummary| super::history::copied(state_dir, &run.run_id);
    let c = Commands::new(config);
    let mut out = Vec::new();
    let reachable = |n: &str| s.env(n).is_some_and(|e| e.reachable());
    if let Some(run) = &s.unfinished_run {
        let region_down = run.decision.as_deref() == Some("source_down");
        match (run.from.as_deref(), run.to.as_deref()) {
            // A region-down switch whose source came back with traffic still on it: switch anew
            // from it, keeping its newest data (see `decide`).
            (Some(from), Some(to))
                if region_down
                    && copied(run)
                    && s.dns_points_at() == Some(from)
                    && s.env(from).is_some_and(|e| e.processing() == Some(true)) =>
            {
                out.push(Step::new(
                    format!(
                        "{from} came back and still has the traffic: switch anew from it, keeping its newest data ({to} is quiesced first)"
                    ),
                    format!("{} --var ignore_unfinished={} --var keep={from}", c.switch(from, to), run.run_id),
                ))
            }
            // Its target does not answer: the resume would be refused; the side it came from
            // can take service back with its own data.
            (Some(from), Some(to)) if !reachable(to) && reachable(from) => out.push(Step::new(
                format!(
                    "{to} does not answer, so the unfinished switch {} cannot complete: to bring {from} back with its own data",
                    run.run_id
                ),
                format!("{} --var ignore_unfinished={}", c.switch(to, from), run.run_id),
            )),
            _ => out.push(Step::new(
                format!("continue the unfinished switch {} (finished steps are skipped)", run.run_id),
                format!("drscript resume {}", run.run_id),
            )),
        }
        return out;
    }
    for env in &s.fencing_pending {
        if s.env(env).is_some_and(|e| e.reachable()) {
            out.push(Step::new(
                format!("quiesce {env}, which came back after the region-down switch"),
                fence_command(env),
            ));
        }
    }
    if !out.is_empty() {
        return out;
    }
    match &s.verdict {
        Verdict::Active(side) => {
            if let Some(other) = c.other(side).filter(|o| reachable(o)) {
                out.push(Step::new(format!("to move service from {side} to {other}"), c.switch(side, other)));
            }
        }
        Verdict::Split(sides) => {
            if let [a, b] = sides.as_slice() {
                for (keep, stop) in [(a, b), (b, a)] {
                    out.push(Step::new(
                        format!("to keep {keep} (and its data): quiesce {stop}, copy nothing"),
                        c.switch_keeping(stop, keep, keep),
                    ));
                }
            }
        }
        Verdict::None => match s.dns_points_at() {
            Some(at) if !reachable(at) => {
                if let Some(other) = c.other(at) {
                    out.push(Step::new(
                        format!("{at} does not answer: fail over to {other} (the region-down branch)"),
                        c.switch(at, other),
                    ));
                }
            }
            Some(at) => {
                if let Some(other) = c.other(at) {
                    out.push(Step::new(
                        format!("to bring {at} back with its own data (nothing copied)"),
                        c.switch_keeping(other, at, at),
                    ));
                    out.push(Step::new(
                        format!("to switch to {other} instead (its folders overwritten with {at}'s)"),
                        c.switch(at, other),
                    ));
                }
            }
            None => {}
        },
        Verdict::DnsMismatch(at) => {
            let serving = s.environments.iter().find(|e| e.processing() == Some(true)).map(|e| e.name.clone());
            if let Some(side) = serving {
                out.push(Step::new(
                    format!("to point DNS at {side}, which processes (nothing copied)"),
                    c.switch_keeping(at, &side, &side),
                ));
            }
        }
        Verdict::Switching(_) => {}
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(settings: &str) -> Config {
        let text = format!(
            "{settings}\n[environments.westeurope]\nnamespace = \"a\"\nrelease = \"ac\"\ngateway = \"https://w.example\"\n[environments.northeurope]\nnamespace = \"a\"\nrelease = \"ac\"\ngateway = \"https://n.example\"\n"
        );
        Config::parse(std::path::Path::new("drscript.toml"), &text).unwrap()
    }

    #[test]
    fn short_forms_only_where_the_roles_are_declared() {
        let declared = config("[settings]\nprimary = \"westeurope\"\nstandby = \"northeurope\"");
        let c = Commands::new(&declared);
        assert_eq!(c.switch("westeurope", "northeurope"), "drscript failover.rhai");
        assert_eq!(c.switch("northeurope", "westeurope"), "drscript failback.rhai");
        let undeclared = config("");
        let c = Commands::new(&undeclared);
        assert_eq!(
            c.switch("westeurope", "northeurope"),
            "drscript failover.rhai --var from=westeurope --var to=northeurope"
        );
        assert_eq!(c.other("westeurope"), Some("northeurope"));
    }
}
