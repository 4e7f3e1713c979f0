//! `drscript demo`: the first look. Starts the sandbox in-process, runs the shipped preflight,
//! failover and failback runbooks against it, checks after each switch that the right side
//! serves, the other is quiesced and the shares match, then switches the database to the sync
//! server and back (`db_failover`, `db_failback`, against the sandbox's real PostgreSQL servers,
//! when this machine has them) and checks the database record after each; prints a summary with
//! per-step timings and where the reports are. Exit 0 only if every check passed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

use crate::output::out;
use drscript_base::error::{Error, Result};
use drscript_core::config::Config;
use drscript_core::exec::{Mode, Prompting};
use drscript_core::journal;
use drscript_core::prompt::Acks;
use drscript_core::runner::{self, RunOptions};
use drscript_sandbox::{Sandbox, SandboxHandle, SandboxOptions};

const MARKER: &str = ".drscript-demo";

#[derive(Debug, Clone)]
pub struct DemoOptions {
    pub dir: PathBuf,
    pub start_delay: Duration,
    pub stop_delay: Duration,
}

struct Phase {
    name: String,
    outcome: String,
    seconds: Option<f64>,
    report: Option<PathBuf>,
}

pub fn run(options: &DemoOptions, cancel: CancellationToken) -> Result<()> {
    prepare_dir(&options.dir)?;
    let runtime = runner::runtime()?;
    let mut sandbox_options = SandboxOptions { databases: true, ..SandboxOptions::default() };
    sandbox_options.delays.start = options.start_delay;
    sandbox_options.delays.terminate = options.stop_delay;
    let sandbox = runtime.block_on(Sandbox::start(&options.dir.join("sandbox"), sandbox_options))?;
    let runbooks = options.dir.join("runbooks");
    write_runbooks(&runbooks)?;
    let config_path = sandbox.config_path();
    let config = Config::load(&config_path)?;
    let state_dir = options.dir.join("state");
    let mut phases = Vec::new();
    let mut failures = Vec::new();
    let mut timings = Vec::new();

    let mut run_phase = |name: &str, script: &str, acks: &[&str], phases: &mut Vec<Phase>| -> bool {
        let run_options = RunOptions {
            script: runbooks.join(script),
            config: Some(config_path.clone()),
            config_required: true,
            mode: Mode::Live,
            prompting: Prompting {
                assume_yes: true,
                acks: Acks { texts: acks.iter().map(|a| a.to_string()).collect(), all: false },
                ..Default::default()
            },
            vars: BTreeMap::new(),
            state_dir: state_dir.clone(),
            stdlib_dir: None,
            skip_rehearsal: false,
            local_state: false,
        };
        match runner::run(&run_options, cancel.clone()) {
            Ok(outcome) => {
                if let Some(dir) = &outcome.run_dir {
                    timings.push((name.to_string(), step_timings(dir)));
                }
                phases.push(Phase {
                    name: name.to_string(),
                    outcome: "ok".into(),
                    seconds: Some(outcome.seconds),
                    report: outcome.run_dir.map(|d| d.join("report.html")),
                });
                true
            }
            Err(e) => {
                phases.push(Phase {
                    name: name.to_string(),
                    outcome: format!("failed (exit {})", e.exit_code()),
                    seconds: None,
                    report: None,
                });
                failures.push(format!("{name}: {e}"));
                false
            }
        }
    };

    let databases = ["primary", "sync"].iter().all(|d| config.databases.contains_key(*d));
    let mut steps: Vec<(&str, &str, &[&str], Check<'_>)> = vec![
        ("preflight", "preflight.rhai", &[], Check::Nothing),
        ("failover", "failover.rhai", &[], Check::Serves("dr", "prod")),
        ("failback", "failback.rhai", &[], Check::Serves("prod", "dr")),
    ];
    if databases {
        steps.push(("db failover", "db_failover.rhai", &[], Check::Database("sync")));
        // The failback's manual step (replicating the sync database back) is acknowledged the
        // way an operator does it without a terminal: `--ack "Replicate the sync database"`.
        steps.push(("db failback", "db_failback.rhai", &["Replicate the sync database"], Check::Database("primary")));
    }
    for (name, script, acks, check) in steps {
        if !run_phase(name, script, acks, &mut phases) {
            break;
        }
        let (label, problems) = match check {
            Check::Nothing => continue,
            Check::Serves(active, quiesced) => {
                (format!("check {active} serves"), verify(&sandbox, &config, active, quiesced))
            }
            Check::Database(role) => {
                (format!("check db is {role}"), dns_problem(&config, "db", role).into_iter().collect())
            }
        };
        if problems.is_empty() {
            phases.push(Phase { name: label, outcome: "ok".into(), seconds: None, report: None });
        } else {
            phases.push(Phase { name: label.clone(), outcome: "failed".into(), seconds: None, report: None });
            failures.extend(problems.into_iter().map(|p| format!("{label}: {p}")));
            break;
        }
    }
    if !databases {
        phases.push(Phase {
            name: "db failover".into(),
            outcome: format!(
                "skipped: no PostgreSQL server binaries (install: {})",
                drscript_sandbox::databases::INSTALL_HINT
            ),
            seconds: None,
            report: None,
        });
    }
    out(&summary(&options.dir, &phases, &timings, &failures));
    if failures.is_empty() {
        Ok(())
    } else {
        Err(Error::Runtime { rendered: format!("error: the demo failed:\n  {}", failures.join("\n  ")) })
    }
}

/// What is checked after a phase.
enum Check<'a> {
    Nothing,
    /// The first environment serves, the second is quiesced.
    Serves(&'a str, &'a str),
    /// The database record answers this role's target.
    Database(&'a str),
}

fn prepare_dir(dir: &Path) -> Result<()> {
    if dir.exists() {
        let is_demo = dir.join(MARKER).exists();
        let empty = std::fs::read_dir(dir).map(|mut d| d.next().is_none()).unwrap_or(false);
        if !is_demo && !empty {
            return Err(Error::Usage(format!(
                "{} exists and is not a drscript demo folder; pass --dir with a new or empty folder",
                dir.display()
            )));
        }
        std::fs::remove_dir_all(dir).map_err(|e| Error::io(format!("cannot clear {}", dir.display()), e))?;
    }
    drscript_core::state::create_private_dir(dir)?;
    std::fs::write(dir.join(MARKER), "made by drscript demo; removed by the next demo\n")
        .map_err(|e| Error::io(format!("cannot write into {}", dir.display()), e))
}

fn write_runbooks(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(format!("cannot create {}", dir.display()), e))?;
    for (file, text) in drscript_core::modules::embedded_runbooks() {
        let path = dir.join(file);
        std::fs::write(&path, text).map_err(|e| Error::io(format!("cannot write {}", path.display()), e))?;
    }
    Ok(())
}

/// What is wrong with the sandbox after a switch to `active` (empty when all is well).
pub fn verify(sandbox: &SandboxHandle, config: &Config, active: &str, quiesced: &str) -> Vec<String> {
    let status = sandbox.status();
    let mut problems = Vec::new();
    for (env_name, serving) in [(active, true), (quiesced, false)] {
        let Ok(env) = config.environment(env_name) else {
            problems.push(format!("no environment {env_name}"));
            continue;
        };
        let state = &status["environments"][env_name];
        for component in ["runtime", "listener", "rabbitmq"] {
            let wanted = env.replicas_of(component).unwrap_or(1);
            let name = env.workload_name(component);
            let w = &state["workloads"][&name];
            let wanted = if serving { i64::from(wanted) } else { 0 };
            let (replicas, ready) = (w["replicas"].as_i64().unwrap_or(-1), w["ready"].as_i64().unwrap_or(-1));
            if replicas != wanted || ready != wanted {
                problems.push(format!("{env_name} {name}: {ready}/{replicas} ready, expected {wanted}"));
            }
        }
        let scheduler = state["scheduler"].as_str().unwrap_or("?").to_ascii_lowercase();
        let expected = if serving { "running" } else { "paused" };
        if scheduler != expected {
            problems.push(format!("{env_name} scheduler is {scheduler}, expected {expected}"));
        }
    }
    if let Some(problem) = dns_problem(config, "app", active) {
        problems.push(problem);
    }
    let share = |env: &str, name: &str| -> Option<PathBuf> {
        status["environments"][env]["shares"][name]["path"].as_str().map(PathBuf::from)
    };
    let (Some(src_app), Some(dst_app), Some(src_mq), Some(dst_mq)) =
        (share(quiesced, "app"), share(active, "app"), share(quiesced, "rabbitmq"), share(active, "rabbitmq"))
    else {
        problems.push("the sandbox status lacks the shares".to_string());
        return problems;
    };
    for folder in ["web/repository", "recovery", "reprocessing"] {
        if let Err(p) = contains_tree(&src_app.join(folder), &dst_app.join(folder)) {
            problems.push(format!("share app/{folder}: {p}"));
        }
    }
    match (tree(&src_mq), tree(&dst_mq)) {
        (Ok(a), Ok(b)) if a == b => {}
        (Ok(a), Ok(b)) => problems.push(format!(
            "the RabbitMQ volumes differ ({} files in {quiesced}, {} in {active})",
            a.len(),
            b.len()
        )),
        (Err(e), _) | (_, Err(e)) => problems.push(e),
    }
    problems
}

/// Whether the record `key` (`app`, `db`) answers the `role`'s target (None when it does).
fn dns_problem(config: &Config, key: &str, role: &str) -> Option<String> {
    let dns = config.dns.as_ref()?;
    let record = dns.records.get(key)?;
    let zone_file = dns.zone_file.as_ref()?;
    let wanted = record.targets.get(role)?;
    let zone = drscript_base::dns_zone::DnsZoneFile::new(zone_file.clone());
    match zone.get(&record.zone, &record.name, &record.record_type) {
        Ok(Some(r)) if r.values.iter().any(|v| v == wanted) => None,
        Ok(Some(r)) => Some(format!("{}.{} answers {:?}, expected {wanted}", record.name, record.zone, r.values)),
        Ok(None) => Some(format!("{}.{} has no {} record", record.name, record.zone, record.record_type)),
        Err(e) => Some(e.to_string()),
    }
}

/// Every file under `src` is under `dst` with the same content.
fn contains_tree(src: &Path, dst: &Path) -> std::result::Result<(), String> {
    let a = tree(src)?;
    let b = tree(dst)?;
    if a.is_empty() {
        return Err(format!("{} is empty", src.display()));
    }
    match a.iter().find(|(path, hash)| b.get(*path) != Some(hash)) {
        None => Ok(()),
        Some((path, _)) => Err(format!("{} is missing or different in {}", path, dst.display())),
    }
}

/// Relative path → sha256 of every file under `root`.
fn tree(root: &Path) -> std::result::Result<BTreeMap<String, String>, String> {
    let mut files = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let entries = std::fs::read_dir(&dir).map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let bytes = std::fs::read(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
                let rel = path.strip_prefix(root).unwrap_or(&path).display().to_string();
                files.insert(rel, hex::encode(Sha256::digest(&bytes)));
            }
        }
    }
    Ok(files)
}

/// Top-level steps of a run with their durations.
fn step_timings(run_dir: &Path) -> Vec<(String, f64)> {
    let Ok(records) = journal::read(&run_dir.join("journal.jsonl")) else { return Vec::new() };
    let summary = drscript_core::report::summarize(&records);
    // The summary lists steps in script order (parallel ones may have started in any order).
    summary
        .steps
        .iter()
        .filter(|s| !s.number.contains('.'))
        .map(|s| {
            let seconds = s.end.map_or(0.0, |e| (e - s.start).num_milliseconds() as f64 / 1000.0);
            (format!("{} {}", s.number, s.title), seconds)
        })
        .collect()
}

fn summary(dir: &Path, phases: &[Phase], timings: &[(String, Vec<(String, f64)>)], failures: &[String]) -> String {
    let mut text = format!("\ndrscript demo — sandbox, runbooks and reports in {}\n\n", dir.display());
    text.push_str(&format!("{:<18} {:<18} {:>8}  {}\n", "phase", "outcome", "time", "report"));
    for p in phases {
        text.push_str(&format!(
            "{:<18} {:<18} {:>8}  {}\n",
            p.name,
            p.outcome,
            p.seconds.map(|s| format!("{s:.1} s")).unwrap_or_default(),
            p.report.as_ref().map(|r| r.display().to_string()).unwrap_or_default()
        ));
    }
    for (phase, steps) in timings.iter().filter(|(p, _)| p != "preflight") {
        text.push_str(&format!("\n{phase} steps:\n"));
        for (step, seconds) in steps {
            text.push_str(&format!("  {step:<48} {seconds:>6.1} s\n"));
        }
    }
    text.push('\n');
    if failures.is_empty() {
        text.push_str("All checks passed: DR took over and PROD came back, with the shares in step.\n");
        if phases.iter().any(|p| p.name == "db failback" && p.outcome == "ok") {
            text.push_str("The database switched to the sync server and back, each time after a real write probe.\n");
        }
    } else {
        text.push_str(&format!("{} check(s) failed.\n", failures.len()));
    }
    text
}
