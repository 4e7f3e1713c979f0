//! `drscript sandbox up` in one process, `status`, kubectl, a runbook and `down` from others.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

fn drscript(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_drscript")).args(args).output().unwrap()
}

fn wait_for(path: &Path) {
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut pause = Duration::from_millis(10);
    while !path.exists() {
        assert!(Instant::now() < deadline, "{} did not appear", path.display());
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(100));
    }
}

#[test]
fn up_in_the_foreground_then_status_kubectl_a_runbook_and_down_from_other_processes() {
    let dir = tempfile::tempdir().unwrap();
    let sandbox = dir.path().join("sb");
    let sb = sandbox.to_str().unwrap();
    let mut up = Command::new(env!("CARGO_BIN_EXE_drscript"))
        // `--seed` alone seeds the pods' start jitter (no faults needed).
        .args(["sandbox", "up", "--dir", sb, "--start-delay", "0.2", "--stop-delay", "0.2", "--seed", "7"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for(&sandbox.join("sandbox.json"));

    let out = drscript(&["sandbox", "status", "--dir", sb, "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let status: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["environments"]["dr"]["scheduler"], "PAUSED");
    // DR as the document deploys it: the runtime up, the listener at 0.
    assert_eq!(status["environments"]["dr"]["workloads"]["ac-ac-runtime"]["replicas"], 2);
    assert_eq!(status["environments"]["dr"]["workloads"]["ac-ac-listener"]["replicas"], 0);
    let text = drscript(&["sandbox", "status", "--dir", sb]);
    assert!(String::from_utf8_lossy(&text.stdout).contains("QUARTZ_STATUS_ONBOOTUP=pause"));

    let kubectl = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(sandbox.join("kubeconfig"))
        .args(["get", "deployments"])
        .output()
        .expect("kubectl is not installed: run tests/support/requirements-kube.sh");
    let table = String::from_utf8_lossy(&kubectl.stdout);
    assert!(table.contains("ac-ac-runtime") && table.contains("2/2"), "the current context is prod: {table}");

    let script = dir.path().join("pause.rhai");
    std::fs::write(&script, "step(\"pause\", || pause_scheduler(env(\"prod\")));\n").unwrap();
    let config = sandbox.join("drscript.toml");
    let state = dir.path().join("state");
    let run = drscript(&[
        "--config",
        config.to_str().unwrap(),
        "--state-dir",
        state.to_str().unwrap(),
        "run",
        "--yes",
        script.to_str().unwrap(),
    ]);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let status: Value =
        serde_json::from_slice(&drscript(&["sandbox", "status", "--dir", sb, "--json"]).stdout).unwrap();
    assert_eq!(status["environments"]["prod"]["scheduler"], "PAUSED");

    let down = drscript(&["sandbox", "down", "--dir", sb]);
    assert!(down.status.success(), "{}", String::from_utf8_lossy(&down.stderr));
    let exit = up.wait().unwrap();
    assert!(exit.success(), "sandbox up exited with {exit}");
    let down_again = drscript(&["sandbox", "status", "--dir", sb]);
    assert_eq!(down_again.status.code(), Some(2), "{}", String::from_utf8_lossy(&down_again.stderr));
}
