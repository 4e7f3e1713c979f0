//! Where is service, for scripts: `site_state(env)`, `situation()`, `switch_check(from, to)`,
//! `share_check(share)`, `sync_preview(src, dst)`, `refuse(msg)`, `primary()`, `standby()`.
//!
//! Reads only. In a plan nothing is contacted: the placeholders describe the situation a switch
//! expects (`from` serving, `to` idle), or, with `--var down=NAME`, that environment unreachable,
//! so that the plan shows the branch a region-down switch takes.

use std::sync::Arc;

use rhai::plugin::*;
use rhai::{Dynamic, EvalAltResult, Map, NativeCallContext};
use serde_json::{Value, json};

use super::environment::{Env, ShareRef};
use super::{exec_of, to_rhai};
use crate::exec::{Exec, Mode};
use crate::site::{self, Budget, Decision, Intent};
use drscript_base::error::{Error, Result};

type RhaiResult<T = Dynamic> = Result<T, Box<EvalAltResult>>;

#[export_module]
pub mod site_api {
    /// What `e` looks like right now: `cluster` and `gateway` (`reachable`, `error`),
    /// `workloads` (`runtime`, `listener`, `rabbitmq`: `desired`, `ready`, `configured`),
    /// `scheduler` (`running`, `paused`, `unknown`), `version`, `shares` (`reachable`, `problem`:
    /// `outage`/`denied`/`missing`/`other`, `error`, `sas_days_left`), `storage` (`last_sync_time`,
    /// `failover_in_progress`), and the judgements `processing`, `quiesced`, `serving`,
    /// `reachable`. Never fails for an unreachable environment: that is a state.
    #[rhai_fn(return_raw)]
    pub fn site_state(ctx: NativeCallContext, e: Env) -> RhaiResult<Map> {
        let exec = exec_of(&ctx);
        super::site_state(&exec, &e).map_err(to_rhai)
    }

    /// The verdict over every environment of the config: `summary` (`ACTIVE prod`, `SWITCHING`,
    /// `SPLIT`, `NONE`, `DNS MISMATCH`), `healthy`, `reasons`, `environments`, `dns`,
    /// `fencing_pending` — what `drscript status --json` prints.
    #[rhai_fn(return_raw)]
    pub fn situation(ctx: NativeCallContext) -> RhaiResult<Map> {
        let exec = exec_of(&ctx);
        super::situation(&exec).map_err(to_rhai)
    }

    /// Reads the situation and decides what the switch `from` → `to` may do, before any change:
    /// `decision` is `switch`, `done` (nothing to do), `source_down` (`parts` unreachable),
    /// `keep_from` or `keep_to` (a split brain resolved by `--var keep=NAME`). Refuses (exit 2,
    /// nothing changed) a wrong direction, a split brain without `keep`, and a switch while
    /// another did not finish, saying what the operator probably meant. Also returns `table`
    /// (the state as text), `from`, `to` (their `site_state`) and `dns_points_at`.
    #[rhai_fn(return_raw)]
    pub fn switch_check(ctx: NativeCallContext, from: Env, to: Env) -> RhaiResult<Map> {
        let exec = exec_of(&ctx);
        super::switch_check(&exec, &from, &to).map_err(to_rhai)
    }

    /// Whether a share can be listed, and why not: `reachable`, `problem` (`outage` — refused,
    /// timed out, DNS, 5xx: what a regional outage causes —, `denied` — 401/403, an expired SAS —,
    /// `missing`, `other`), `error`, `sas_days_left`. In a plan: reachable.
    #[rhai_fn(return_raw)]
    pub fn share_check(ctx: NativeCallContext, share: ShareRef) -> RhaiResult<Map> {
        let exec = exec_of(&ctx);
        super::share_check(&exec, &share).map_err(to_rhai)
    }

    /// What the DR document requires of a switch's `steps` that they do not keep (the source
    /// quiesced before the copy, both brokers stopped before the volume is mirrored, the target
    /// started after the copy, DNS moved last), one sentence each naming `from` and `to`; empty
    /// when they keep every rule. `drscript check` says the same from the script's text.
    pub fn switch_requirements(steps: rhai::Array, from: Env, to: Env) -> rhai::Array {
        let shapes: Vec<_> = steps.iter().map(shape_of).collect();
        crate::steps::requirements(&shapes)
            .into_iter()
            .map(|p| p.replace("{source}", &from.0.name).replace("{target}", &to.0.name).into())
            .collect()
    }

    /// Fails unless `url` answers a GET with 2xx within the part budget (a customer's health
    /// endpoint, checked before traffic moves). The error names the URL (secrets masked) and the
    /// status. In a plan: noted only.
    #[rhai_fn(return_raw)]
    pub fn http_check(ctx: NativeCallContext, url: &str) -> RhaiResult<()> {
        let exec = exec_of(&ctx);
        super::http_check(&exec, url).map_err(to_rhai)
    }

    /// Whether drscript may write into the share: `()` when a small file could be created and
    /// deleted at its top (or when not checked: a dry run or a plan writes nothing), else why
    /// not (the service's refusal, e.g. `403 AuthorizationPermissionMismatch` for an Entra ID
    /// identity with a Reader role). Asked of the target before anything is quiesced, since a
    /// credential's rights cannot always be read (a token carries none).
    #[rhai_fn(return_raw)]
    pub fn share_write_check(ctx: NativeCallContext, share: ShareRef) -> RhaiResult {
        let exec = exec_of(&ctx);
        super::share_write_check(&exec, &share).map_err(to_rhai)
    }

    /// How much can still be written to a share: `#{free_bytes, limit}` (`limit` says what
    /// bounds it: the Azure Files share's quota and usage, a local folder's free space), or `()`
    /// when nothing that can be read bounds it (a Blob container) and in a plan. A share whose
    /// quota this credential cannot read (a share SAS: Azure serves the quota to the account
    /// owner) is `#{free_bytes: (), limit: "..."}` saying so, never a failure.
    #[rhai_fn(return_raw)]
    pub fn share_space(ctx: NativeCallContext, share: ShareRef) -> RhaiResult {
        let exec = exec_of(&ctx);
        super::share_space(&exec, &share).map_err(to_rhai)
    }

    /// What `sync_share(src, dst, opts)` would do, read-only in every mode but a plan: `copied`
    /// and `copied_bytes` (new and changed files), `overwritten` and `overwritten_bytes` (of those,
    /// files that exist at the destination), `deleted` and `deleted_bytes` (with `mirror`: what it
    /// would delete), `grows_bytes` (what the destination grows by: copies less the files they
    /// replace, less deletions), `destination_files`, `max_delete`, `deletion_refused` (why the
    /// mirror's guard would delete nothing, else `()`), and a few `examples`.
    #[rhai_fn(return_raw)]
    pub fn sync_preview(ctx: NativeCallContext, src: Dynamic, dst: Dynamic, opts: Map) -> RhaiResult<Map> {
        let exec = exec_of(&ctx);
        super::super::sync::preview(&exec, &src, &dst, &opts).map_err(to_rhai)
    }

    /// The role whose target the DNS record `record` of `[dns.records]` holds now (`"prod"`,
    /// `"sync"`, ...), read from the provider; `()` when it holds none of them. In a plan: `()`.
    #[rhai_fn(return_raw)]
    pub fn dns_role(ctx: NativeCallContext, record: &str) -> RhaiResult {
        let exec = exec_of(&ctx);
        super::dns_role(&exec, record).map_err(to_rhai)
    }

    /// Stops the run because the situation does not allow it (exit 2): nothing has been changed
    /// yet. Say what the operator probably meant in `message`. In a plan it is only noted.
    #[rhai_fn(return_raw)]
    pub fn refuse(ctx: NativeCallContext, message: &str) -> RhaiResult<()> {
        let exec = exec_of(&ctx);
        if exec.mode() == Mode::Plan {
            super::super::flow::note_in_plan(&exec, format!("would refuse here if reached: {message}"));
            return Ok(());
        }
        Err(to_rhai(Error::Refused(message.to_string())))
    }

    /// The environments of a switch, `[from, to]`: `--var from=`/`--var to=` when given (one of
    /// them names the other side of a pair); else, where the config declares the roles
    /// (`[settings]`, or an environment called `prod`), primary → standby (`failback`: the other
    /// way); else from the live state: the side that serves alone is the source. With nothing
    /// serving alone and no declared roles the run is refused (exit 2), asking for the direction.
    #[rhai_fn(return_raw)]
    pub fn switch_direction(ctx: NativeCallContext, failback: bool) -> RhaiResult<rhai::Array> {
        let exec = exec_of(&ctx);
        let (from, to) = super::direction(&exec, failback).map_err(to_rhai)?;
        Ok(vec![from.into(), to.into()])
    }

    /// The primary environment of the config (`[settings] primary`, else `prod`, else the first).
    #[rhai_fn(return_raw)]
    pub fn primary(ctx: NativeCallContext) -> RhaiResult<String> {
        let exec = exec_of(&ctx);
        Ok(exec.config().map_err(to_rhai)?.primary().to_string())
    }

    /// The standby environment of the config (`[settings] standby`, else `dr`, else the other
    /// one of two).
    #[rhai_fn(return_raw)]
    pub fn standby(ctx: NativeCallContext) -> RhaiResult<String> {
        let exec = exec_of(&ctx);
        let config = exec.config().map_err(to_rhai)?;
        config.standby().map(str::to_string).ok_or_else(|| {
            to_rhai(Error::Config {
                message: format!(
                    "{}: cannot tell which environment is the standby: set [settings] standby = \"NAME\"",
                    config.path.display()
                ),
            })
        })
    }
}

fn to_map(value: Value) -> Map {
    rhai::serde::to_dynamic(value).ok().and_then(|d| d.try_cast::<Map>()).unwrap_or_default()
}

/// The environment named by `--var down=NAME` in a plan: it is pictured unreachable.
fn assumed_down(exec: &Exec) -> Option<String> {
    exec.var("down").filter(|v| !v.is_empty()).cloned()
}

/// The state a plan pictures: serving when `serving`, quiesced otherwise, unreachable when
/// named by `--var down`.
fn placeholder(exec: &Exec, e: &crate::config::Environment, serving: bool) -> site::SiteState {
    use site::facts::{COMPONENTS, Reach, Scheduler, Workload};
    let down = assumed_down(exec).as_deref() == Some(e.name.as_str());
    let workloads = if down {
        Default::default()
    } else {
        COMPONENTS
            .iter()
            .map(|(c, _)| {
                let configured = site::facts::configured(e, c).unwrap_or(1);
                let n = if serving || *c == "rabbitmq" { configured } else { 0 };
                let name = e.workload_name(c);
                (c.to_string(), Workload { name, desired: n, ready: n, configured, hpa: None, undone_by: None })
            })
            .collect()
    };
    let reach = if down {
        Reach { reachable: false, error: Some("pictured down by --var down (plan)".to_string()) }
    } else {
        Reach { reachable: true, error: None }
    };
    site::SiteState {
        name: e.name.clone(),
        cluster: reach.clone(),
        workloads,
        version: None,
        gateway: reach,
        scheduler: if down {
            Scheduler::Unknown
        } else if serving {
            Scheduler::Running
        } else {
            Scheduler::Paused
        },
        scheduler_note: None,
        credentials_refused: None,
        cluster_refused: None,
        shares: e
            .shares
            .keys()
            .map(|name| {
                let facts = site::facts::ShareFacts {
                    name: name.clone(),
                    reachable: !down,
                    problem: down.then_some(site::facts::ShareProblem::Outage),
                    error: down.then(|| "pictured down by --var down (plan)".to_string()),
                    sas_days_left: None,
                    sas_seconds_left: None,
                    sas_permissions: None,
                };
                (name.clone(), facts)
            })
            .collect(),
        storage: None,
    }
}

fn budget(exec: &Exec) -> Budget {
    let seconds = exec.var("state_timeout").and_then(|v| v.parse::<f64>().ok()).filter(|s| *s > 0.0);
    seconds.map_or_else(Budget::default, |s| Budget(std::time::Duration::from_secs_f64(s)))
}

fn site_state(exec: &Arc<Exec>, e: &Env) -> Result<Map> {
    let config = exec.config()?.clone();
    let env = config.environment(&e.0.name)?.clone();
    let b = budget(exec);
    let mut state = exec.query(
        "site_state",
        &e.0.name,
        || placeholder(exec, &env, env.name == config.primary()),
        || exec.block_on(async { Ok(site::facts::read(&config, &env, b).await) }),
    )?;
    state.picture(&exec.pictured());
    Ok(to_map(site::render::state_json(&state)))
}

/// The runs of this run's state directory, newest first (none outside a journaled run).
fn direction(exec: &Arc<Exec>, failback: bool) -> Result<(String, String)> {
    let config = exec.config()?.clone();
    let commands = site::next::Commands::new(&config);
    let pair = |one: &str| {
        commands.other(one).map(str::to_string).ok_or_else(|| {
            Error::Usage(format!(
                "--var from/to: {} environments in the config, name both sides of the switch",
                config.order.len()
            ))
        })
    };
    match (exec.var("from").cloned(), exec.var("to").cloned()) {
        (Some(f), Some(t)) => return Ok((f, t)),
        (Some(f), None) if !config.roles_declared() => return Ok((f.clone(), pair(&f)?)),
        (None, Some(t)) if !config.roles_declared() => return Ok((pair(&t)?, t)),
        _ => {}
    }
    if config.roles_declared() {
        let (primary, standby) = (config.primary().to_string(), config.standby().map(str::to_string));
        let standby = standby.ok_or_else(|| Error::Config {
            message: format!(
                "{}: cannot tell which environment is the standby: set [settings] standby = \"NAME\"",
                config.path.display()
            ),
        })?;
        let (f, t) = if failback { (standby, primary) } else { (primary, standby) };
        return Ok(match (exec.var("from").cloned(), exec.var("to").cloned()) {
            // `--var from=dr` on a failover: the other side of the pair, not dr → dr.
            (Some(f), None) if f == t => (f.clone(), pair(&f)?),
            (None, Some(t)) if t == f => (pair(&t)?, t),
            (from, to) => (from.unwrap_or(f), to.unwrap_or(t)),
        });
    }
    // No declared roles: "failover" and "failback" both move service away from the side that
    // serves; a plan pictures the file's order (it reads nothing).
    if exec.mode() == Mode::Plan {
        let first = config.order.first().cloned().unwrap_or_default();
        return Ok((first.clone(), pair(&first)?));
    }
    let situation = read_situation(exec, &[], &run_history(exec)?)?;
    let serving = match &situation.verdict {
        site::Verdict::Active(side) => Some(side.clone()),
        // The routed side does not answer and nothing else processes: the region-down branch.
        site::Verdict::None => {
            situation.dns_points_at().filter(|at| situation.env(at).is_some_and(|e| !e.reachable())).map(str::to_string)
        }
        _ => None,
    };
    match serving {
        Some(from) => {
            let to = pair(&from)?;
            tracing::info!(
                "direction {from} → {to}: {from} serves (no [settings] primary/standby: the side that serves is the source)"
            );
            Ok((from, to))
        }
        None => {
            let example = match config.order.as_slice() {
                [a, b] => format!("{}\n  or: {}", commands.switch(a, b), commands.switch(b, a)),
                _ => "drscript failover.rhai --var from=NAME --var to=NAME".to_string(),
            };
            Err(Error::Refused(format!(
                "which way? The config declares no primary ([settings] primary/standby) and no side serves alone ({}), so the direction cannot be read from the live state. Nothing was changed.\nName it: {example}\n(`drscript status` shows the situation and what each command would do)",
                situation.summary
            )))
        }
    }
}

fn run_history(exec: &Exec) -> Result<Vec<site::RunSummary>> {
    match exec.run_context() {
        Some(run) => site::history::runs(&run.state_dir),
        None => Ok(Vec::new()),
    }
}

fn read_situation(exec: &Arc<Exec>, names: &[String], history: &[site::RunSummary]) -> Result<site::Situation> {
    let config = exec.config()?.clone();
    let current = exec.run_context().map(|r| r.run_id.clone());
    let b = budget(exec);
    exec.block_on(async { site::read(&config, names, b, history, current.as_deref()).await })
}

fn situation(exec: &Arc<Exec>) -> Result<Map> {
    let config = exec.config()?.clone();
    let placeholder = || {
        let envs = config
            .order
            .iter()
            .filter_map(|name| config.environments.get(name))
            .map(|e| placeholder(exec, e, e.name == config.primary()))
            .collect();
        site::judge(envs, None, &[], None)
    };
    let s =
        exec.query("situation", "all environments", placeholder, || read_situation(exec, &[], &run_history(exec)?))?;
    Ok(to_map(site::render::json(&s)))
}

fn switch_check(exec: &Arc<Exec>, from: &Env, to: &Env) -> Result<Map> {
    let config = exec.config()?.clone();
    let (f, t) = (from.0.name.clone(), to.0.name.clone());
    if f == t {
        return Err(Error::Usage(format!("a switch from {f} to {f}: `from` and `to` must differ")));
    }
    if exec.mode() != Mode::Plan && assumed_down(exec).is_some() {
        tracing::warn!("--var down is for plans only: a live run reads whether {f} answers");
    }
    let placeholder = || {
        let envs = vec![placeholder(exec, &from.0, true), placeholder(exec, &to.0, false)];
        site::judge(envs, None, &[], None)
    };
    let all_runs = run_history(exec)?;
    let situation = exec.query("switch_check", &format!("{f} → {t}"), placeholder, || {
        read_situation(exec, &[f.clone(), t.clone()], &all_runs)
    })?;
    let this_run = exec.run_context().map(|r| r.run_id.as_str());
    let (history, current): (Vec<_>, Vec<_>) = all_runs.into_iter().partition(|r| Some(r.run_id.as_str()) != this_run);
    // Only an earlier attempt that changed something makes this a continuation: one stopped at
    // its confirmation decided on a situation that may be long gone, and is decided afresh.
    let resumed_decision = current.first().and_then(|r| r.decision.clone());
    let resuming = current.iter().any(|r| {
        r.from.as_deref() == Some(f.as_str())
            && r.to.as_deref() == Some(t.as_str())
            && r.started_changes
            && r.decision.as_deref().is_some_and(|d| site::history::CHANGING.contains(&d))
    });
    // DR's own last copy: when a switch into `to` last finished (the RPO when `from` is lost).
    let last_copy = history
        .iter()
        .find(|r| {
            r.is_finished_switch() && r.to.as_deref() == Some(t.as_str()) && r.decision.as_deref() != Some("done")
        })
        .map(|r| r.started.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
    let (Some(fs), Some(ts)) = (situation.env(&f), situation.env(&t)) else {
        return Err(Error::Other(format!("switch_check: no state read for {f} or {t}")));
    };
    let intent = Intent {
        keep: exec.var("keep").filter(|v| !v.is_empty()).cloned(),
        ignore_unfinished: exec.var("ignore_unfinished").cloned(),
        command: site::next::Commands::new(&config).switch(&f, &t),
        reverse_command: site::next::Commands::new(&config).switch(&t, &f),
        ack_controllers: exec.var("ack_controllers").is_some_and(|v| v == "true"),
        resumed_decision: resumed_decision.filter(|_| resuming),
        run_id: this_run.map(str::to_string),
        copied: resuming && exec.run_context().is_some_and(|r| site::history::copied(&r.state_dir, &r.run_id)),
        resuming,
    };
    let decision = site::decide(&situation, fs, ts, &history, &intent);
    let mut table = site::render::text(&situation, false);
    if exec.mode() == Mode::Plan {
        // Nothing is read in a plan: the table pictures the usual case and must not pass for a
        // reading (`drscript status` is the reading).
        table = format!("(pictured for the plan, nothing was read: `drscript status` reads it)\n{table}");
    }
    exec.metric(
        site::history::SWITCH_METRIC,
        json!({
            "from": f,
            "to": t,
            "decision": decision.name(),
            "verdict": situation.summary,
            "dns_points_at": situation.dns_points_at(),
        }),
    )?;
    if let Decision::Refuse { why, meant } = &decision {
        return Err(Error::Refused(format!("{why}. Nothing was changed.\n\n{table}\nDid you mean: {meant}")));
    }
    let mut out = json!({
        "decision": decision.name(),
        "table": table,
        "verdict": situation.summary,
        "from": site::render::state_json(fs),
        "to": site::render::state_json(ts),
        "dns_points_at": situation.dns_points_at(),
        "parts": [],
        "keep_target": false,
        "why": "",
        "last_copy": last_copy,
        "storage_last_sync": fs.storage.as_ref().and_then(|st| st.last_sync_time.clone()),
        "fencing_pending": situation.fencing_pending,
    });
    match &decision {
        Decision::Done { why } => out["why"] = Value::String(why.clone()),
        Decision::SourceDown { parts, keep_target } => {
            out["parts"] = json!(parts);
            out["keep_target"] = json!(keep_target);
        }
        _ => {}
    }
    Ok(to_map(out))
}

fn share_check(exec: &Arc<Exec>, share: &ShareRef) -> Result<Map> {
    // A missing secret is a config mistake, found by a rehearsal; not a share problem.
    if let Some(secret) = &share.share.sas {
        exec.secret(secret)?;
    }
    if let Some(secret) = &share.share.account_key {
        exec.secret(secret)?;
    }
    let b = budget(exec);
    let facts = exec.query(
        "share_check",
        &share.describe(),
        || site::facts::ShareFacts {
            name: share.name.clone(),
            reachable: true,
            problem: None,
            error: None,
            sas_days_left: None,
            sas_seconds_left: None,
            sas_permissions: None,
        },
        || exec.block_on(async { Ok(site::facts::read_share(&share.name, &share.share, &share.path, b).await) }),
    )?;
    Ok(to_map(serde_json::to_value(facts).unwrap_or(Value::Null)))
}

/// The name of the file [`share_write_check`] creates and deletes: the run's process, so two
/// checks never meet.
fn write_check_name() -> String {
    format!(".drscript-write-check-{}", std::process::id())
}

fn share_write_check(exec: &Arc<Exec>, share: &ShareRef) -> Result<Dynamic> {
    if !exec.is_live() {
        return Ok(Dynamic::UNIT);
    }
    let problem = exec.query(
        "share_write_check",
        &share.describe(),
        || None,
        || {
            let store = drscript_sync::store::Store::open(&share.share.endpoint(&share.path)?)?;
            exec.block_on(async move {
                let name = write_check_name();
                let body: &'static [u8] = b"drscript checks it may write here; deleted at once\n";
                let data: drscript_sync::store::ByteStream =
                    Box::pin(futures::stream::once(async move { Ok(bytes::Bytes::from_static(body)) }));
                Ok(match store.write(&name, body.len() as u64, None, data).await {
                    Ok(_) => store.delete_file(&name).await.err().map(|e| format!("written, then not deleted: {e}")),
                    Err(e) if e.message.contains("AuthorizationPermissionMismatch") => Some(format!(
                        "{} (drscript's Entra ID identity needs the role \"Storage File Data Privileged Contributor\" \
                         on the account, or \"Storage Blob Data Contributor\" for a container)",
                        e.message
                    )),
                    Err(e) => Some(e.message),
                })
            })
        },
    )?;
    Ok(problem.map_or(Dynamic::UNIT, Dynamic::from))
}

/// A step map of the stdlib's builders as the rules of [`crate::steps`] see it.
fn shape_of(step: &Dynamic) -> crate::steps::Shape {
    let map = step.clone().try_cast::<Map>().unwrap_or_default();
    let text = |k: &str| map.get(k).and_then(|v| v.clone().into_string().ok()).unwrap_or_default();
    let list = |k: &str| map.get(k).and_then(|v| v.clone().try_cast::<rhai::Array>()).unwrap_or_default();
    crate::steps::Shape {
        kind: text("kind"),
        name: text("name"),
        side: text("side"),
        components: list("components").into_iter().filter_map(|c| c.into_string().ok()).collect(),
        children: list("steps").iter().map(shape_of).collect(),
    }
}

fn http_check(exec: &Arc<Exec>, url: &str) -> Result<()> {
    let shown = drscript_base::redact::for_error(url);
    let b = budget(exec);
    exec.query(
        "http_check",
        &shown,
        || (),
        || {
            exec.block_on(async {
                let client = reqwest::Client::builder()
                    .timeout(b.0)
                    .build()
                    .map_err(|e| Error::action("http_check", shown.clone(), e.to_string()))?;
                let resp = client.get(url).send().await.map_err(|e| {
                    Error::action("http_check", shown.clone(), drscript_base::redact::for_error(e.to_string()))
                })?;
                let status = resp.status();
                if status.is_success() {
                    Ok(())
                } else {
                    Err(Error::action("http_check", shown.clone(), format!("answered {status}, not 2xx")))
                }
            })
        },
    )
}

fn share_space(exec: &Arc<Exec>, share: &ShareRef) -> Result<Dynamic> {
    let endpoint = share.share.endpoint("")?;
    let b = budget(exec);
    let space = exec.query(
        "share_space",
        &share.describe(),
        || None,
        || {
            exec.block_on(async {
                let read = async {
                    let store = drscript_sync::store::Store::open(&endpoint)?;
                    store.space().await.map_err(|e| Error::action("share_space", share.describe(), e.message))
                };
                match tokio::time::timeout(b.0, read).await {
                    Ok(Ok(Some(space))) => Ok(Some((Some(space.free_bytes), space.limit))),
                    Ok(Ok(None)) => Ok(None),
                    // The owner's operations refused to this credential: unknown, said so.
                    Ok(Err(e)) if [" 403", "AuthorizationFailure", "AuthorizationPermissionMismatch"]
                        .iter()
                        .any(|m| e.to_string().contains(m)) =>
                    {
                        Ok(Some((None, "the quota cannot be read with this credential (a share SAS; Shared Key or an account SAS can)".to_string())))
                    }
                    Ok(Err(e)) => Err(e),
                    Err(_) => Ok(Some((None, format!("the quota did not answer within {:.0} s", b.0.as_secs_f64())))),
                }
            })
        },
    )?;
    Ok(match space {
        None => Dynamic::UNIT,
        Some((free, limit)) => {
            let mut m = Map::new();
            m.insert("free_bytes".into(), free.map_or(Dynamic::UNIT, |f| Dynamic::from(f as i64)));
            m.insert("limit".into(), limit.into());
            m.into()
        }
    })
}

fn dns_role(exec: &Arc<Exec>, record: &str) -> Result<Dynamic> {
    let config = exec.config()?.clone();
    if config.dns.as_ref().and_then(|d| d.records.get(record)).is_none() {
        return Err(Error::Usage(format!(
            "dns_role(\"{record}\"): no [dns.records.{record}] in {}",
            config.path.display()
        )));
    }
    let b = budget(exec);
    let facts = exec.query(
        "dns_role",
        record,
        || None,
        || exec.block_on(async { Ok(site::read_dns(&config, record, b).await) }),
    )?;
    match facts {
        Some(f) if f.error.is_some() => Err(Error::action("dns_role", f.fqdn, f.error.unwrap_or_default())),
        Some(f) => Ok(f.points_at.map_or(Dynamic::UNIT, Dynamic::from)),
        None => Ok(Dynamic::UNIT),
    }
}
