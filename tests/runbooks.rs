//! Every shipped runbook end to end against a sandbox running in its own process, the final state
//! checked through `drscript sandbox status --json` and through the real kubectl; and a failover
//! killed at step boundaries and finished with `drscript resume`.

#[path = "db_support/servers.rs"]
mod servers;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_drscript");
const RUNBOOKS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/runbooks");

struct World {
    dir: tempfile::TempDir,
    sandbox: Child,
    extra_config: String,
}

impl World {
    fn start() -> World {
        World::start_with(&[])
    }

    fn start_with(extra: &[&str]) -> World {
        let dir = tempfile::tempdir().unwrap();
        let sandbox = Command::new(BIN)
            .args(["sandbox", "up", "--dir", "sbx", "--start-delay", "0.2", "--stop-delay", "0.2"])
            .args(extra)
            .current_dir(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let started = Instant::now();
        while !dir.path().join("sbx/sandbox.json").exists() {
            assert!(started.elapsed() < Duration::from_secs(60), "the sandbox did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        World { dir, sandbox, extra_config: String::new() }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The sandbox's config plus the test's own sections.
    fn config(&self) -> PathBuf {
        let base = std::fs::read_to_string(self.path().join("sbx/drscript.toml")).unwrap();
        let path = self.path().join("sbx/test.toml");
        std::fs::write(&path, format!("{base}\n{}", self.extra_config)).unwrap();
        path
    }

    fn drscript(&self, args: &[&str]) -> Output {
        let config = self.config();
        Command::new(BIN)
            .arg("--config")
            .arg(&config)
            .args(args)
            .current_dir(self.path())
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    fn run_ok(&self, runbook: &str, extra: &[&str]) -> String {
        let script = format!("{RUNBOOKS}/{runbook}");
        let mut args = vec!["run", script.as_str(), "--yes"];
        args.extend_from_slice(extra);
        let out = self.drscript(&args);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(0), "{runbook}\n{stderr}");
        stderr
    }

    fn status(&self) -> Value {
        let out = Command::new(BIN).args(["sandbox", "status", "--dir", "sbx", "--json"]).current_dir(self.path()).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap()
    }

    fn kubectl(&self, context: &str, args: &[&str]) -> String {
        self.kubectl_ns(context, "adeptia", args)
    }

    fn kubectl_ns(&self, context: &str, namespace: &str, args: &[&str]) -> String {
        let out = Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(self.path().join("sbx/kubeconfig"))
            .args(["--context", context, "-n", namespace])
            .args(args)
            .output()
            .expect("kubectl is installed by tests/support/requirements-kube.sh");
        assert!(out.status.success(), "kubectl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Asserts that `active` serves and `standby` is quiesced, through the sandbox and kubectl.
    fn assert_serving(&self, active: &str, standby: &str) {
        let status = self.status();
        for (env, on) in [(active, true), (standby, false)] {
            let e = &status["environments"][env];
            for (w, n) in [("ac-ac-runtime", 2), ("ac-ac-listener", 1), ("ac-ac-rabbitmq", 1)] {
                let want = if on { n } else { 0 };
                assert_eq!(e["workloads"][w]["replicas"], want, "{env} {w}: {e}");
                assert_eq!(e["workloads"][w]["ready"], want, "{env} {w}");
            }
            assert_eq!(e["scheduler"].as_str().unwrap().to_lowercase(), if on { "running" } else { "paused" }, "{env} scheduler");
            let kubectl = self.kubectl(env, &["get", "deployment", "ac-ac-runtime", "-o", "jsonpath={.spec.replicas}/{.status.readyReplicas}"]);
            let want = if on { "2/2" } else { "0/" };
            assert!(kubectl.starts_with(want), "kubectl sees {env} runtime at {kubectl}, expected {want}");
            let pods = self.kubectl(env, &["get", "pods", "-l", "app.kubernetes.io/name=ac-runtime", "-o", "name"]);
            assert_eq!(pods.lines().count(), if on { 2 } else { 0 }, "{env} runtime pods: {pods}");
        }
        let zone: Value = serde_json::from_str(&std::fs::read_to_string(self.path().join("sbx/dns-zone.json")).unwrap()).unwrap();
        let app = zone.to_string();
        let target = if active == "dr" { "127.0.2.10" } else { "127.0.1.10" };
        assert!(app.contains(target), "DNS does not point at {active}: {app}");
        let prod = self.path().join("sbx/shares/prod");
        let dr = self.path().join("sbx/shares/dr");
        let (from, to) = if active == "dr" { (&prod, &dr) } else { (&dr, &prod) };
        for folder in ["app/web/repository", "app/recovery", "app/reprocessing"] {
            let a = tree(&from.join(folder));
            let b = tree(&to.join(folder));
            assert!(a.iter().all(|(k, v)| b.get(k) == Some(v)), "{folder} was not copied to {active}");
        }
        assert_eq!(tree(&from.join("rabbitmq")), tree(&to.join("rabbitmq")), "the RabbitMQ volume is mirrored");
    }
}

impl Drop for World {
    fn drop(&mut self) {
        let _ = Command::new(BIN).args(["sandbox", "down", "--dir", "sbx"]).current_dir(self.path()).output();
        let _ = self.sandbox.kill();
        let _ = self.sandbox.wait();
    }
}

fn tree(root: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    let mut out = std::collections::BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.insert(p.strip_prefix(root).unwrap().display().to_string(), std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

fn journal(dir: &Path) -> Vec<Value> {
    let runs = dir.join(".drscript/runs");
    let run = std::fs::read_dir(&runs).unwrap().flatten().map(|e| e.path()).max().unwrap();
    std::fs::read_to_string(run.join("journal.jsonl")).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[test]
fn preflight_then_failover_then_failback() {
    let world = World::start();
    world.run_ok("preflight.rhai", &[]);
    world.assert_serving_initially();
    let log = world.run_ok("failover.rhai", &[]);
    assert!(log.contains("no storage account failover needed"), "{log}");
    world.assert_serving("dr", "prod");
    world.run_ok("failback.rhai", &[]);
    world.assert_serving("prod", "dr");
}

impl World {
    fn assert_serving_initially(&self) {
        let status = self.status();
        assert_eq!(status["environments"]["dr"]["workloads"]["ac-ac-listener"]["replicas"], 0);
        assert_eq!(status["environments"]["prod"]["workloads"]["ac-ac-runtime"]["replicas"], 2);
    }
}

#[test]
fn preflight_names_what_is_not_ready() {
    let world = World::start();
    world.kubectl("dr", &["scale", "deployment", "ac-ac-listener", "--replicas=1"]);
    let out = world.drscript(&["run", &format!("{RUNBOOKS}/preflight.rhai"), "--yes"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("dr listener has 1 replicas; it must be 0"), "{stderr}");
    assert!(stderr.contains("preflight check(s) failed"), "{stderr}");
}

#[test]
fn drill_fails_over_and_back_with_checks() {
    let world = World::start();
    world.run_ok("drill.rhai", &[]);
    world.assert_serving("prod", "dr");
    let j = journal(world.path());
    let titles: Vec<&str> = j.iter().filter(|e| e["event"] == "step_finished" && e["outcome"] == "ok").filter_map(|e| e["id"].as_str()).collect();
    assert!(titles.iter().any(|t| t.starts_with("Verify DR serves")), "{titles:?}");
}

#[test]
fn storage_failover_swaps_the_regions_and_reports_the_last_sync_time() {
    let world = World::start();
    let primary = || {
        let config = world.config();
        let out = Command::new(BIN)
            .arg("--config")
            .arg(&config)
            .arg("repl")
            .current_dir(world.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .and_then(|mut child| {
                use std::io::Write;
                child.stdin.take().unwrap().write_all(b"storage_status(\"prod\").primary_location\n")?;
                child.wait_with_output()
            })
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    assert_eq!(primary(), "=> \"eastus\"");
    let log = world.run_ok("storage_failover.rhai", &[]);
    assert!(log.contains("last sync"), "{log}");
    assert_eq!(primary(), "=> \"westus\"", "the secondary region became the primary");
    let report = std::fs::read_dir(world.path().join(".drscript/runs")).unwrap().flatten().next().unwrap().path().join("report.md");
    let report = std::fs::read_to_string(report).unwrap();
    assert!(report.contains("storage_last_sync_time"), "{report}");
}

#[test]
fn failover_fails_the_storage_over_when_told_to() {
    let world = World::start();
    let log = world.run_ok("failover.rhai", &["--var", "storage_failover=always"]);
    assert!(log.contains("storage_failover"), "{log}");
    assert!(!log.contains("no storage account failover needed"), "{log}");
    world.assert_serving("dr", "prod");
}

#[test]
fn database_runbooks_switch_the_database_record_after_probing() {
    let pg = servers::Postgres::start();
    pg.sql("CREATE DATABASE syncdb OWNER app");
    let mut world = World::start();
    std::fs::write(world.path().join("sbx/app.pw"), &pg.app_password).unwrap();
    world.extra_config = format!(
        "[databases.primary]\nurl = \"postgres://app@127.0.0.1:{0}/appdb\"\npassword_file = \"app.pw\"\n\n[databases.sync]\nurl = \"postgres://app@127.0.0.1:{0}/syncdb\"\npassword_file = \"app.pw\"\n",
        pg.port
    );
    let log = world.run_ok("db_failover.rhai", &[]);
    assert!(!log.contains(&pg.app_password), "the database password leaked");
    let zone = std::fs::read_to_string(world.path().join("sbx/dns-zone.json")).unwrap();
    assert!(zone.contains("pg-sync."), "{zone}");
    world.run_ok("db_failback.rhai", &[]);
    let zone = std::fs::read_to_string(world.path().join("sbx/dns-zone.json")).unwrap();
    assert!(zone.contains("pg-primary.") && !zone.contains("pg-sync."), "{zone}");
}

/// Kills the failover with SIGKILL right after a given step finished, resumes it, and checks the
/// end state and that no finished step ran twice.
fn kill_after_and_resume(step_prefix: &str) {
    let world = World::start();
    let config = world.config();
    let mut child = Command::new(BIN)
        .arg("--config")
        .arg(&config)
        .args(["run", &format!("{RUNBOOKS}/failover.rhai"), "--yes"])
        .current_dir(world.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    loop {
        let done = std::fs::read_dir(world.path().join(".drscript/runs"))
            .ok()
            .and_then(|mut d| d.next())
            .and_then(|e| e.ok())
            .and_then(|e| std::fs::read_to_string(e.path().join("journal.jsonl")).ok())
            .is_some_and(|j| j.lines().any(|l| l.contains("\"step_finished\"") && l.contains(&format!("\"id\":\"{step_prefix}"))));
        if done {
            break;
        }
        assert!(child.try_wait().unwrap().is_none(), "the failover ended before {step_prefix}");
        assert!(started.elapsed() < Duration::from_secs(120), "never reached {step_prefix}");
        std::thread::sleep(Duration::from_millis(5));
    }
    unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
    child.wait().unwrap();
    let out = world.drscript(&["resume", "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    world.assert_serving("dr", "prod");
    let j = journal(world.path());
    let mut finished = std::collections::HashMap::new();
    for e in j.iter().filter(|e| e["event"] == "step_finished" && e["outcome"] == "ok") {
        *finished.entry(e["id"].as_str().unwrap().to_string()).or_insert(0) += 1;
    }
    assert!(finished.values().all(|n| *n == 1), "a finished step ran twice: {finished:?}");
    assert!(j.iter().any(|e| e["event"] == "step_skipped"), "resume skipped nothing");
}

#[test]
fn failover_killed_after_quiescing_is_finished_by_resume() {
    kill_after_and_resume("Quiesce prod");
}

#[test]
fn failover_killed_after_copying_is_finished_by_resume() {
    kill_after_and_resume("Copy state prod");
}

#[test]
fn failover_killed_after_activating_is_finished_by_resume() {
    kill_after_and_resume("Activate dr");
}

/// Runs a customer folder's runbook against a sandbox shaped like its config.
fn run_example(customer: &str, extra_up: &[&str]) -> World {
    let config = format!("{}/examples/{customer}/drscript.toml", env!("CARGO_MANIFEST_DIR"));
    let mut up = vec!["--like", config.as_str()];
    up.extend_from_slice(extra_up);
    let world = World::start_with(&up);
    let script = format!("{}/examples/{customer}/failover.rhai", env!("CARGO_MANIFEST_DIR"));
    let out = world.drscript(&["run", &script, "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    world
}

#[test]
fn contoso_example_fails_over_with_its_own_names_and_counts() {
    let world = run_example("contoso", &[]);
    let status = world.status();
    let dr = &status["environments"]["dr"];
    assert_eq!(dr["namespace"], "integration");
    assert_eq!(dr["workloads"]["connect-ac-runtime"]["ready"], 3, "{dr}");
    assert_eq!(dr["workloads"]["connect-ac-listener"]["ready"], 2);
    assert_eq!(status["environments"]["prod"]["workloads"]["connect-ac-runtime"]["replicas"], 0);
    let zone = std::fs::read_to_string(world.path().join("sbx/dns-zone.json")).unwrap();
    assert!(zone.contains("connect-eus2.contoso.com"), "{zone}");
    let pods = world.kubectl_ns("dr", "integration", &["get", "pods", "-o", "name"]);
    assert!(pods.lines().filter(|l| l.contains("connect-ac-runtime")).count() == 3, "{pods}");
}

#[test]
fn fabrikam_example_switches_between_its_regions() {
    let world = run_example("fabrikam", &["--active", "westeurope"]);
    let status = world.status();
    let neu = &status["environments"]["northeurope"];
    assert_eq!(neu["namespace"], "adeptia-prod");
    assert_eq!(neu["workloads"]["ac-ac-runtime"]["ready"], 1, "{neu}");
    assert_eq!(status["environments"]["westeurope"]["workloads"]["ac-ac-listener"]["replicas"], 0);
    let zone = std::fs::read_to_string(world.path().join("sbx/dns-zone.json")).unwrap();
    assert!(zone.contains("10.30.1.40") && !zone.contains("10.20.1.40"), "{zone}");
}
