//! What a switch from `from` to `to` does in the situation it finds — decided before the first
//! change, so that a switch typed in the wrong direction, run twice, or run into a split brain
//! is refused (exit 2) with nothing changed, and says what the operator probably meant.

use serde::Serialize;

use super::facts::SiteState;
use super::history::RunSummary;
use super::verdict::Situation;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum Decision {
    /// `from` serves (or served last) and `to` is idle: the normal switch.
    Switch,
    /// `to` already serves and `from` is quiesced, as a finished run of this switch left it.
    Done { why: String },
    /// `from` (partly) does not answer: the region-down branch. `parts` are what cannot be reached;
    /// `keep_target`: `to` served last (DNS points at it) or the operator kept it, so its own data
    /// stays — nothing of `from`'s (older) data is copied over it.
    SourceDown { parts: Vec<String>, keep_target: bool },
    /// Both sides process; the operator keeps `from`: `to` is quiesced first, then the switch.
    KeepFrom,
    /// `to` processes and its data wins: `from` is quiesced, nothing is copied to `to`.
    KeepTo,
    /// `to` came back after a region-down switch away from it and processes with stale data:
    /// it is fenced (scheduler paused first) before the switch, and its data is never copied.
    FenceTo,
    /// Not allowed in this situation.
    Refuse { why: String, meant: String },
}

impl Decision {
    pub fn name(&self) -> &'static str {
        match self {
            Decision::Switch => "switch",
            Decision::Done { .. } => "done",
            Decision::SourceDown { .. } => "source_down",
            Decision::KeepFrom => "keep_from",
            Decision::KeepTo => "keep_to",
            Decision::FenceTo => "fence_to",
            Decision::Refuse { .. } => "refused",
        }
    }
}

/// What the operator asked for beyond the direction.
#[derive(Debug, Clone, Default)]
pub struct Intent {
    /// `--var keep=NAME`: the side whose data wins in a split brain.
    pub keep: Option<String>,
    /// `--var ignore_unfinished=RUN-ID`: start anew although that switch did not finish.
    pub ignore_unfinished: Option<String>,
    /// The command of this switch as an operator types it (`site::next::Commands::switch`):
    /// hints add `--var keep=` or `--var ignore_unfinished=` to it.
    pub command: String,
    /// The command that switches the other way, for "did you mean".
    pub reverse_command: String,
    /// This run is a resumed attempt of this switch: a half-finished state is its own doing.
    pub resuming: bool,
    /// What the resumed run decided at its first attempt (`switch`, `source_down`, ...).
    pub resumed_decision: Option<String>,
    /// The run being resumed, for the hints that start anew instead.
    pub run_id: Option<String>,
    /// The resumed run already copied the source's data (its copy steps are skipped now).
    pub copied: bool,
    /// `--var ack_controllers=true`: the operator knows a GitOps controller or KEDA manages
    /// workloads the switch scales (and paused it, or accepts the risk).
    pub ack_controllers: bool,
}

/// Decides the switch `from` → `to` in `situation`; `history` is newest first, without the
/// current run.
pub fn decide(
    situation: &Situation,
    from: &SiteState,
    to: &SiteState,
    history: &[RunSummary],
    intent: &Intent,
) -> Decision {
    let (f, t) = (from.name.as_str(), to.name.as_str());
    if let Some(run) = &situation.unfinished_run
        && intent.ignore_unfinished.as_deref() != Some(run.run_id.as_str())
    {
        let direction = match (&run.from, &run.to) {
            (Some(a), Some(b)) => format!("{a} → {b}"),
            _ => "a switch".to_string(),
        };
        return Decision::Refuse {
            why: format!(
                "run {} ({}, {direction}) started changing things and did not finish",
                run.run_id, run.runbook
            ),
            meant: format!(
                "`drscript resume {}` continues it where it stopped (finished steps are skipped); to start anew instead: {} --var ignore_unfinished={}",
                run.run_id, intent.command, run.run_id
            ),
        };
    }
    // A side this switch will touch must let drscript in before anything changes: a wrong
    // gateway password found at "Pause" would leave the source stopped and the switch half done.
    if let Some((side, (what, why, fix))) =
        [from, to].into_iter().find_map(|s| s.refusals().into_iter().next().map(|r| (s.name.as_str(), r)))
    {
        return Decision::Refuse {
            why: format!("{what} of {side} refuses drscript's credentials: {why}"),
            meant: format!("{fix}, and run again; `drscript status` shows the answer"),
        };
    }
    // A controller that sets the replicas back (Argo CD self-heal, Flux, KEDA) would undo the
    // switch half way: stopped source restarted, or the target scaled back down.
    if !intent.ack_controllers
        && let Some((side, component, by)) = [from, to]
            .into_iter()
            .find_map(|s| s.controllers().into_iter().next().map(|(c, g)| (s.name.as_str(), c, g)))
    {
        return Decision::Refuse {
            why: format!("{side}'s {component} is managed by {}, which would undo the switch's scale", by.owner),
            meant: format!(
                "pause it first: {}\nthen run again acknowledging it: {} --var ack_controllers=true",
                by.pause, intent.command
            ),
        };
    }
    // The switch ends by repointing the application record: a provider that refuses the
    // credentials now would leave the target serving with nobody routed to it.
    if let Some(d) = &situation.dns
        && let Some(error) = &d.error
        && dns_credentials_refused(error)
    {
        return Decision::Refuse {
            why: format!("the DNS provider refuses drscript's credentials for {}: {error}", d.fqdn),
            meant: "fix the [dns] credentials (the token or TSIG key it names), and run again; `drscript status` shows the answer".to_string(),
        };
    }
    let dns = situation.dns_points_at();
    let dns_at_to = dns.is_none_or(|d| d == t);
    // The run that switched, not a later no-op that found the switch done.
    let last_switch = history.iter().find(|r| r.is_finished_switch() && r.decision.as_deref() != Some("done"));
    let finished_this_way = last_switch.is_some_and(|r| r.from.as_deref() == Some(f) && r.to.as_deref() == Some(t));
    let keep = intent.keep.as_deref();
    let down_parts = |s: &SiteState| {
        let mut parts = Vec::new();
        if !s.cluster.reachable {
            parts.push("cluster".to_string());
        }
        if !s.gateway.reachable {
            parts.push("gateway".to_string());
        }
        parts
    };
    if !to.cluster.reachable && !to.gateway.reachable {
        // The target's region does not answer at all: nothing can be started there, so the
        // switch is refused before anything is stopped here. (A part that answers errors — a busy
        // API server — is the switch's steps to retry and report, resumably.)
        let meant = match (&intent.run_id, intent.resuming) {
            (Some(run), true) => format!(
                "wait until {t} answers (`drscript status` shows it); to bring {f} back with its own data instead: {} --var ignore_unfinished={run}",
                intent.reverse_command
            ),
            _ => format!("wait until {t} answers (`drscript status` shows it); {f} is left as it is"),
        };
        return Decision::Refuse {
            why: format!("{t} does not answer ({}): a switch to it cannot complete", down_parts(to).join(", ")),
            meant,
        };
    }
    if !from.reachable() {
        if to.serving() && dns_at_to {
            return Decision::Done {
                why: format!("{t} already serves and DNS points at it; {f} does not answer (fence it when it returns)"),
            };
        }
        // The target served last (a switch to the source was interrupted, then the source's
        // region went down) or was kept: the source's data is the older one.
        let keep_target = dns == Some(t) || keep == Some(t);
        return Decision::SourceDown { parts: down_parts(from), keep_target };
    }
    // A resumed region-down switch whose source came back meanwhile: carry on down the same
    // branch (what it could not quiesce is recorded and fenced afterwards), never a new decision.
    if intent.resuming && intent.resumed_decision.as_deref() == Some("source_down") {
        // Unless traffic never left it and its data was already copied: then it took new work
        // since it came back, which the copy (skipped on resume) does not hold.
        if intent.copied && dns == Some(f) && from.processing() == Some(true) {
            let run = intent.run_id.clone().unwrap_or_default();
            return Decision::Refuse {
                why: format!(
                    "{f} came back and serves again (DNS still points at it): the region-down switch {run} never moved traffic, and {f} has taken work since"
                ),
                meant: format!(
                    "switch anew from {f}, keeping its newest data (the switch quiesces {t} first): {} --var ignore_unfinished={run} --var keep={f}",
                    intent.command
                ),
            };
        }
        return Decision::SourceDown { parts: Vec::new(), keep_target: dns == Some(t) || keep == Some(t) };
    }
    // Reachable but scheduler state unknown: only the workloads tell.
    let pf = from.processing().unwrap_or(false);
    let pt = to.processing().unwrap_or(false);
    if intent.resuming && !(pf && pt) {
        // Done meanwhile, by this run's earlier attempt or by anyone: a resume must not quiesce
        // or fence the side that now serves.
        if to.serving() && dns_at_to && from.quiesced() {
            return Decision::Done {
                why: format!("the switch {f} → {t} is already done: {t} serves and {f} is quiesced"),
            };
        }
        // The earlier attempt quiesced, copied or started things: carry on, its finished steps
        // are skipped and the rest are idempotent. (It brought `to` up on purpose: no fencing.)
        return Decision::Switch;
    }
    if pt && !intent.resuming && situation.fencing_pending.iter().any(|n| n == t) {
        return Decision::FenceTo;
    }
    if let Some(k) = keep
        && k != f
        && k != t
    {
        return Decision::Refuse {
            why: format!("--var keep={k} names neither side of this switch ({f} → {t})"),
            meant: format!("{cmd} --var keep={f} or {cmd} --var keep={t}", cmd = intent.command),
        };
    }
    match (pf, pt) {
        (true, true) => match keep {
            Some(k) if k == f => Decision::KeepFrom,
            Some(_) => Decision::KeepTo,
            None => Decision::Refuse {
                why: format!("SPLIT: both {f} and {t} process (someone started {t} by hand, or {f} came back)"),
                meant: format!(
                    "name the side whose data wins: `{cmd} --var keep={f}` (quiesce {t}, then switch as usual: {t}'s changes are overwritten) or `{cmd} --var keep={t}` (quiesce {f}, copy nothing, route to {t})",
                    cmd = intent.command
                ),
            },
        },
        (true, false) => Decision::Switch,
        (false, true) => {
            if to.serving() && dns_at_to && from.quiesced() {
                // Whoever made it so (this state directory's run, another operator's, a hand
                // switch), the asked-for state holds: changing nothing is always safe.
                let by = match last_switch.filter(|_| finished_this_way) {
                    Some(run) => format!("run {} already switched {f} → {t}", run.run_id),
                    None => format!("no switch {f} → {t} is recorded in this state directory"),
                };
                return Decision::Done {
                    why: format!(
                        "{t} already serves and {f} is quiesced ({by}); to move service from {t} to {f} instead: {}",
                        intent.reverse_command
                    ),
                };
            }
            if keep == Some(t) {
                return Decision::KeepTo;
            }
            Decision::Refuse {
                why: format!(
                    "{t} already processes while {f} is quiesced{}: a half-finished switch or a hand start",
                    match dns {
                        Some(d) => format!(" and DNS points at {d}"),
                        None => String::new(),
                    }
                ),
                meant: format!(
                    "to finish the switch to {t} with {t}'s data: {} --var keep={t}; to go back to {f}: {}",
                    intent.command, intent.reverse_command
                ),
            }
        }
        (false, false) => {
            if keep == Some(t) {
                return Decision::KeepTo;
            }
            if dns == Some(t) && keep != Some(f) {
                return Decision::Refuse {
                    why: format!(
                        "neither side processes and DNS points at {t}: {t} served last, its data may be the newest"
                    ),
                    // Both hints are this same command with a `keep`: the reverse switch would move
                    // service to {f}, the opposite of bringing {t} back.
                    meant: format!(
                        "to bring {t} back with its own data (nothing copied): {cmd} --var keep={t}; to switch {f} → {t} anyway (overwriting {t}'s folders with {f}'s): {cmd} --var keep={f}",
                        cmd = intent.command
                    ),
                };
            }
            Decision::Switch
        }
    }
}

/// Whether a DNS read failed on the credentials (HTTP 401/403 from Azure DNS, a TSIG the
/// server does not accept), not on an outage.
pub fn dns_credentials_refused(error: &str) -> bool {
    ["401 Unauthorized", "403 Forbidden", "AuthorizationFailed", "AuthenticationFailed", "NOTAUTH", "BADKEY", "BADSIG"]
        .iter()
        .any(|m| error.contains(m))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::site::facts::{Reach, Scheduler, Workload};
    use crate::site::verdict::{DnsFacts, Verdict, judge};

    fn env(name: &str, serving: bool, reachable: bool) -> SiteState {
        let n = |c: i32| if serving { c } else { 0 };
        let workloads: BTreeMap<String, Workload> = [("runtime", 2), ("listener", 1), ("rabbitmq", 1)]
            .into_iter()
            .map(|(c, k)| {
                let count = if c == "rabbitmq" { k } else { n(k) };
                (
                    c.to_string(),
                    Workload {
                        name: c.to_string(),
                        desired: count,
                        ready: count,
                        configured: k,
                        hpa: None,
                        undone_by: None,
                    },
                )
            })
            .collect();
        let reach = Reach { reachable, error: (!reachable).then(|| "refused".to_string()) };
        SiteState {
            name: name.to_string(),
            cluster: reach.clone(),
            workloads: if reachable { workloads } else { BTreeMap::new() },
            version: None,
            gateway: reach,
            scheduler: if !reachable {
                Scheduler::Unknown
            } else if serving {
                Scheduler::Running
            } else {
                Scheduler::Paused
            },
            scheduler_note: None,
            credentials_refused: None,
            cluster_refused: None,
            shares: BTreeMap::new(),
            storage: None,
        }
    }

    fn dns(at: &str) -> Option<DnsFacts> {
        Some(DnsFacts {
            record: "app".into(),
            fqdn: "app.example".into(),
            values: vec![],
            points_at: Some(at.into()),
            error: None,
            resolvers: vec![],
        })
    }

    fn switch(from: &str, to: &str, decision: &str) -> RunSummary {
        RunSummary {
            run_id: "r1".into(),
            runbook: "failover.rhai".into(),
            mode: "live".into(),
            started: chrono::Utc::now(),
            outcome: "ok".into(),
            exit_code: Some(0),
            total_seconds: 1.0,
            downtime_seconds: None,
            attempts: 1,
            from: Some(from.into()),
            to: Some(to.into()),
            decision: Some(decision.into()),
            rpo: None,
            unfenced: vec![],
            resume: None,
            started_changes: true,
        }
    }

    fn decide_in(prod: SiteState, dr: SiteState, at: &str, history: &[RunSummary], keep: Option<&str>) -> Decision {
        let s = judge(vec![prod.clone(), dr.clone()], dns(at), history, None);
        let intent = Intent {
            keep: keep.map(str::to_string),
            command: "drscript this".into(),
            reverse_command: "drscript back".into(),
            ..Default::default()
        };
        decide(&s, &prod, &dr, history, &intent)
    }

    #[test]
    fn the_serving_side_switches_to_the_idle_one() {
        assert_eq!(decide_in(env("prod", true, true), env("dr", false, true), "prod", &[], None), Decision::Switch);
    }

    #[test]
    fn the_documents_standby_with_its_runtime_running_is_a_standby_not_a_split() {
        let mut dr = env("dr", false, true);
        let runtime = dr.workloads.get_mut("runtime").unwrap();
        (runtime.desired, runtime.ready) = (2, 2);
        assert_eq!(dr.processing(), Some(false));
        let s = judge(vec![env("prod", true, true), dr.clone()], dns("prod"), &[], None);
        assert_eq!(s.verdict, Verdict::Active("prod".into()), "{:?}", s.reasons);
        assert!(s.reasons.iter().any(|r| r == "dr is quiesced"), "{:?}", s.reasons);
        assert_eq!(decide_in(env("prod", true, true), dr.clone(), "prod", &[], None), Decision::Switch);
        // Its listener started (or its scheduler resumed) by hand: now it processes.
        let mut listening = dr.clone();
        listening.workloads.get_mut("listener").unwrap().desired = 1;
        assert_eq!(listening.processing(), Some(true));
        let mut scheduling = dr;
        scheduling.scheduler = Scheduler::Running;
        let s = judge(vec![env("prod", true, true), scheduling], dns("prod"), &[], None);
        assert!(matches!(s.verdict, Verdict::Split(_)), "{:?}", s.verdict);
    }

    #[test]
    fn the_same_switch_finished_earlier_is_done_citing_that_run_and_without_it_still_done() {
        let (prod, dr) = (env("prod", false, true), env("dr", true, true));
        let done = decide_in(prod.clone(), dr.clone(), "dr", &[switch("prod", "dr", "switch")], None);
        assert!(matches!(done, Decision::Done { .. }), "{done:?}");
        // A later no-op run is not the run that switched: the switch is cited.
        let noop = RunSummary { run_id: "r2".into(), ..switch("prod", "dr", "done") };
        let done = decide_in(prod.clone(), dr.clone(), "dr", &[noop, switch("prod", "dr", "switch")], None);
        assert!(matches!(&done, Decision::Done { why } if why.contains("run r1 already switched")), "{done:?}");
        // A fresh state directory (another laptop, a hand switch): the state holds all the same.
        let fresh = decide_in(prod, dr, "dr", &[], None);
        assert!(
            matches!(&fresh, Decision::Done { why } if why.contains("no switch prod → dr is recorded") && why.contains("drscript back")),
            "{fresh:?}"
        );
    }

    #[test]
    fn a_split_brain_needs_the_side_to_keep() {
        let (prod, dr) = (env("prod", true, true), env("dr", true, true));
        assert!(matches!(decide_in(prod.clone(), dr.clone(), "prod", &[], None), Decision::Refuse { .. }));
        assert_eq!(decide_in(prod.clone(), dr.clone(), "prod", &[], Some("prod")), Decision::KeepFrom);
        assert_eq!(decide_in(prod.clone(), dr.clone(), "prod", &[], Some("dr")), Decision::KeepTo);
        assert!(matches!(decide_in(prod, dr, "prod", &[], Some("qa")), Decision::Refuse { .. }));
    }

    #[test]
    fn an_unreachable_source_is_the_region_down_branch_unless_the_target_already_serves() {
        let down = decide_in(env("prod", false, false), env("dr", false, true), "prod", &[], None);
        assert_eq!(down, Decision::SourceDown { parts: vec!["cluster".into(), "gateway".into()], keep_target: false });
        // DR served last (a failback interrupted, then PROD's region lost): DR keeps its data.
        let back = decide_in(env("prod", false, false), env("dr", false, true), "dr", &[], None);
        assert_eq!(back, Decision::SourceDown { parts: vec!["cluster".into(), "gateway".into()], keep_target: true });
        // A switch to a side that does not answer is refused before anything stops.
        let d = decide_in(env("dr", true, true), env("prod", false, false), "dr", &[], None);
        assert!(matches!(&d, Decision::Refuse { why, .. } if why.contains("prod does not answer")), "{d:?}");
        let done = decide_in(env("prod", false, false), env("dr", true, true), "dr", &[], None);
        assert!(matches!(done, Decision::Done { .. }), "{done:?}");
    }

    #[test]
    fn neither_side_processing_with_dns_at_the_target_is_refused_unless_the_source_is_kept() {
        let (prod, dr) = (env("prod", false, true), env("dr", false, true));
        // The hint that brings DR back is this command with keep=dr, not the reverse switch
        // (which would move service to PROD).
        let d = decide_in(prod.clone(), dr.clone(), "dr", &[], None);
        assert!(
            matches!(&d, Decision::Refuse { meant, .. } if meant.contains("drscript this --var keep=dr") && !meant.contains("drscript back")),
            "{d:?}"
        );
        assert_eq!(decide_in(prod.clone(), dr.clone(), "dr", &[], Some("dr")), Decision::KeepTo);
        assert_eq!(decide_in(prod.clone(), dr.clone(), "dr", &[], Some("prod")), Decision::Switch);
        assert_eq!(decide_in(prod, dr, "prod", &[], None), Decision::Switch);
    }

    #[test]
    fn a_side_whose_gateway_refuses_the_credentials_is_refused_before_anything_changes() {
        for refused_side in ["prod", "dr"] {
            let (mut prod, mut dr) = (env("prod", true, true), env("dr", false, true));
            let side = if refused_side == "prod" { &mut prod } else { &mut dr };
            side.scheduler = Scheduler::Unknown;
            side.credentials_refused = Some("login at http://gw/login as `drscript`: 401 Unauthorized".into());
            let d = decide_in(prod, dr, "prod", &[], None);
            assert!(
                matches!(&d, Decision::Refuse { why, meant } if why.contains(&format!("gateway of {refused_side}")) && meant.contains("gateway_auth")),
                "{d:?}"
            );
        }
        assert!(crate::scheduler::credentials_refused("login at http://gw/x as `u`: 401 Unauthorized: nope"));
        assert!(crate::scheduler::credentials_refused("403 Forbidden (check gateway_auth and its secret): no"));
        assert!(!crate::scheduler::credentials_refused("404 Not Found: query=Status unknown"));
        // A gateway in trouble is not a wrong password.
        assert!(!crate::scheduler::credentials_refused("login at http://gw/x as `u`: 500 Internal Server Error: boom"));
        assert!(!crate::scheduler::credentials_refused(
            "login at http://gw/x answered 200 OK without an ACCESS_TOKEN header"
        ));
    }

    #[test]
    fn a_dns_provider_that_refuses_the_credentials_refuses_the_switch_and_an_outage_does_not() {
        let (prod, dr) = (env("prod", true, true), env("dr", false, true));
        let with_error = |error: &str| {
            let mut d = dns("prod").unwrap();
            (d.points_at, d.error) = (None, Some(error.to_string()));
            let s = judge(vec![prod.clone(), dr.clone()], Some(d), &[], None);
            decide(&s, &prod, &dr, &[], &Intent::default())
        };
        let d = with_error("azure_dns GET https://management.azure.com/...: 403 Forbidden: AuthorizationFailed");
        assert!(
            matches!(&d, Decision::Refuse { why, meant } if why.contains("DNS provider") && meant.contains("[dns]")),
            "{d:?}"
        );
        assert!(matches!(with_error("update refused: NOTAUTH (TSIG BADKEY)"), Decision::Refuse { .. }));
        assert_eq!(with_error("no answer within 8s (timed out)"), Decision::Switch);
    }

    #[test]
    fn a_gitops_owned_workload_refuses_the_switch_until_acknowledged() {
        let (prod, mut dr) = (env("prod", true, true), env("dr", false, true));
        dr.workloads.get_mut("listener").unwrap().undone_by = Some(crate::kube::controllers::GitOps {
            owner: "Argo CD application adeptia".into(),
            pause: "argocd app set adeptia --sync-policy none".into(),
        });
        let s = judge(vec![prod.clone(), dr.clone()], dns("prod"), &[], None);
        let intent = Intent { command: "drscript failover.rhai".into(), ..Default::default() };
        let d = decide(&s, &prod, &dr, &[], &intent);
        assert!(
            matches!(&d, Decision::Refuse { why, meant } if why.contains("dr's listener is managed by Argo CD application adeptia")
                && meant.contains("argocd app set adeptia --sync-policy none")
                && meant.contains("drscript failover.rhai --var ack_controllers=true")),
            "{d:?}"
        );
        let acked = Intent { ack_controllers: true, ..intent };
        assert_eq!(decide(&s, &prod, &dr, &[], &acked), Decision::Switch);
    }

    #[test]
    fn an_unfinished_switch_is_refused_with_its_resume_command() {
        let mut run = switch("prod", "dr", "switch");
        run.outcome = "unfinished".into();
        run.resume = Some("drscript resume r1".into());
        let d = decide_in(env("prod", true, true), env("dr", false, true), "prod", &[run], None);
        assert!(matches!(&d, Decision::Refuse { meant, .. } if meant.contains("drscript resume r1")), "{d:?}");
    }

    fn resume_in(prod: SiteState, dr: SiteState, at: &str, history: &[RunSummary], from_dr: bool) -> Decision {
        let s = judge(vec![prod.clone(), dr.clone()], dns(at), history, None);
        let intent = Intent { resuming: true, reverse_command: "drscript back".into(), ..Default::default() };
        if from_dr { decide(&s, &dr, &prod, history, &intent) } else { decide(&s, &prod, &dr, history, &intent) }
    }

    #[test]
    fn a_resume_whose_switch_is_already_done_by_anyone_is_a_no_op() {
        let d = resume_in(env("prod", false, true), env("dr", true, true), "dr", &[], false);
        assert!(matches!(&d, Decision::Done { why } if why.contains("already done")), "{d:?}");
        // Half done (DR runs, DNS still at PROD): carry on.
        assert_eq!(resume_in(env("prod", false, true), env("dr", true, true), "prod", &[], false), Decision::Switch);
    }

    #[test]
    fn a_resumed_failback_never_fences_the_side_it_brought_back() {
        // The region-down failover left PROD unfenced; the failback (this run) started PROD again
        // and stopped at a manual step with DNS at PROD.
        let mut failover = switch("prod", "dr", "source_down");
        failover.unfenced = vec!["prod".into()];
        let (prod, dr) = (env("prod", true, true), env("dr", false, true));
        assert_eq!(
            resume_in(prod.clone(), dr.clone(), "prod", &[failover.clone()], true),
            Decision::Done { why: "the switch dr → prod is already done: prod serves and dr is quiesced".into() }
        );
        // Half done (PROD started, DNS still at DR): carry on, no fencing.
        assert_eq!(resume_in(prod.clone(), dr.clone(), "dr", &[failover.clone()], true), Decision::Switch);
        // Someone restarted DR meanwhile: a split brain to settle, never PROD fenced.
        let mut split = dr.clone();
        split.scheduler = Scheduler::Running;
        let d = resume_in(prod.clone(), split, "prod", &[failover.clone()], true);
        assert!(matches!(&d, Decision::Refuse { why, .. } if why.contains("SPLIT")), "{d:?}");
        // `status` meanwhile: the unfinished failback to PROD discharged the obligation.
        let mut failback = switch("dr", "prod", "switch");
        failback.outcome = "stopped".into();
        let s = judge(vec![prod, dr], dns("prod"), &[failback, failover], None);
        assert!(s.fencing_pending.is_empty(), "{:?}", s.reasons);
    }

    #[test]
    fn a_returned_unfenced_target_is_fenced_first() {
        let mut run = switch("prod", "dr", "source_down");
        run.unfenced = vec!["prod".into()];
        let s = judge(vec![env("prod", true, true), env("dr", true, true)], dns("dr"), &[run.clone()], None);
        assert_eq!(s.fencing_pending, vec!["prod".to_string()]);
        let d = decide(&s, &env("dr", true, true), &env("prod", true, true), &[run], &Intent::default());
        assert_eq!(d, Decision::FenceTo);
    }
}
