//! The kube and scheduler primitives from a Rhai runbook, through the built binary, against an
//! in-process sandbox: live runs change the sandbox, plans do not touch it, bad arguments get
//! clear messages.

use std::process::{Command, Output};
use std::time::Duration;

use drscript_sandbox::gateway::SchedulerState;
use drscript_sandbox::kube_api::{Delays, Res};
use drscript_sandbox::{Sandbox, SandboxHandle, SandboxOptions};

async fn sandbox(dir: &std::path::Path) -> SandboxHandle {
    let delays = Delays { start: Duration::from_millis(150), terminate: Duration::from_millis(150) };
    Sandbox::start(&dir.join("sandbox"), SandboxOptions { shares: false, delays, ..SandboxOptions::default() })
        .await
        .unwrap()
}

async fn drscript(sb: &SandboxHandle, dir: &std::path::Path, args: &[&str], script: &str) -> Output {
    let path = dir.join("runbook.rhai");
    std::fs::write(&path, script).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_drscript"));
    cmd.arg("--config").arg(sb.config_path()).arg("--state-dir").arg(dir.join("state")).args(args).arg(&path);
    tokio::task::spawn_blocking(move || cmd.output().unwrap()).await.unwrap()
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

const FAILOVER_PART: &str = r#"
let prod = env("prod");
let dr = env("dr");
step("Scale down PROD runtime", || scale(prod, "deployment", "ac-ac-runtime", 0));
step("Pause PROD scheduler", || pause_scheduler(prod));
let event = workload(dr, "deployment", "ac-ac-event");
if event.env.get("QUARTZ_STATUS_ONBOOTUP") != "pause" { fail("DR event service boots unpaused") }
if event.version != "4.2.1" { fail("version " + event.version) }
if scheduler_state(dr) != "PAUSED" { fail("DR scheduler not paused") }
step("Scale up DR listener", || scale("dr", "deployment", "ac-ac-listener", 1, #{timeout: 60, current: 0}));
step("Resume DR scheduler", || resume_scheduler(dr));
if replicas(prod, "deployment", "ac-ac-runtime") != 0 { fail("PROD runtime not at 0") }
let again = scale(prod, "deployment", "ac-ac-runtime", 0);
if again.changed { fail("second scale should be unchanged") }
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runbook_scales_and_switches_schedulers() {
    let dir = tempfile::tempdir().unwrap();
    let sb = sandbox(dir.path()).await;
    let out = drscript(&sb, dir.path(), &["run", "--yes"], FAILOVER_PART).await;
    assert!(out.status.success(), "{}", text(&out));
    let prod = sb.env("prod").unwrap();
    let dr = sb.env("dr").unwrap();
    assert_eq!(prod.kube.object(Res::Deployment, "adeptia", "ac-ac-runtime").unwrap()["spec"]["replicas"], 0);
    assert_eq!(dr.kube.object(Res::Deployment, "adeptia", "ac-ac-listener").unwrap()["status"]["readyReplicas"], 1);
    assert_eq!(prod.gateway.state(), SchedulerState::Paused);
    assert_eq!(dr.gateway.state(), SchedulerState::Running);
    // The gateway password never reaches the output.
    let password = std::fs::read_to_string(sb.dir.join("secrets/prod-gateway.password")).unwrap();
    assert!(!text(&out).contains(password.trim()), "{}", text(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plan_touches_neither_cluster_nor_gateway() {
    let dir = tempfile::tempdir().unwrap();
    let sb = sandbox(dir.path()).await;
    let before: Vec<usize> =
        sb.environments.values().map(|e| e.kube.requests().len() + e.gateway.calls().len()).collect();
    let out = drscript(&sb, dir.path(), &["plan"], FAILOVER_PART.replace("if ", "if false && ").as_str()).await;
    assert!(out.status.success(), "{}", text(&out));
    let shown = text(&out);
    assert!(shown.contains("prod (ctx prod, ns adeptia) deployment/ac-ac-runtime"), "{shown}");
    assert!(shown.contains("to 0 replicas"), "{shown}");
    let after: Vec<usize> =
        sb.environments.values().map(|e| e.kube.requests().len() + e.gateway.calls().len()).collect();
    assert_eq!(before, after, "a plan talked to the sandbox");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_arguments_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let sb = sandbox(dir.path()).await;
    for (script, expected) in [
        (r#"scale(env("prod"), "daemonset", "ac-ac-runtime", 0);"#, "unknown workload kind `daemonset`"),
        (r#"scale(env("prod"), "deployment", "ac-ac-runtime", -2);"#, "replicas must be 0 or more, got -2"),
        (r#"scale(env("prod"), "deployment", "ac-ac-runtime", 1.5);"#, "replicas must be an integer"),
        (r#"scale(env("prod"), "deployment", "ac-ac-runtime", "two");"#, "replicas must be an integer"),
        (r#"scale(env("prod"), "deployment", "ac-ac-runtime", 0, #{timout: 5});"#, "unknown scale option `timout`"),
        (r#"scale("drr", "deployment", "ac-ac-runtime", 0);"#, "unknown environment `drr`"),
        (r#"workload(env("prod"), "deployment", "ac-ac-nope");"#, "ac-ac-nope` does not exist in namespace `adeptia`"),
    ] {
        let out = drscript(&sb, dir.path(), &["run", "--yes"], script).await;
        assert!(!out.status.success(), "{script}: {}", text(&out));
        assert!(text(&out).contains(expected), "{script}: expected `{expected}` in:\n{}", text(&out));
    }
    assert_eq!(
        sb.env("prod").unwrap().kube.object(Res::Deployment, "adeptia", "ac-ac-runtime").unwrap()["spec"]["replicas"],
        2
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_reads_the_clusters_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let sb = sandbox(dir.path()).await;
    let script = r#"
        scale(env("prod"), "deployment", "ac-ac-runtime", 0);
        scale(env("dr"), "deployment", "ac-ac-listener", 0);
    "#;
    let out = drscript(&sb, dir.path(), &["run", "--dry-run", "--yes"], script).await;
    assert!(out.status.success(), "{}", text(&out));
    let shown = text(&out);
    assert!(shown.contains("from 2 to 0 replicas"), "{shown}");
    assert!(shown.contains("already at 0 (unchanged)"), "{shown}");
    let writes = sb.environments.values().flat_map(|e| e.kube.requests()).filter(|r| !r.starts_with("GET")).count();
    assert_eq!(writes, 0);
    assert_eq!(
        sb.env("prod").unwrap().kube.object(Res::Deployment, "adeptia", "ac-ac-runtime").unwrap()["spec"]["replicas"],
        2
    );
    // A missing workload fails the dry run as it would fail the live one.
    let out = drscript(
        &sb,
        dir.path(),
        &["run", "--dry-run", "--yes"],
        r#"scale(env("prod"), "deployment", "ac-ac-nope", 0);"#,
    )
    .await;
    assert!(!out.status.success() && text(&out).contains("404"), "{}", text(&out));
}
