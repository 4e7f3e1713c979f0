//! Pods and deployments that behave like Kubernetes': the pod phases a kubelet reports, a
//! workload stuck in CrashLoopBackOff or ImagePullBackOff (and what drscript says when a scale
//! up times out on it, through the binary), `spec.paused`, the Progressing/Available conditions
//! with `ProgressDeadlineExceeded`, ReplicaSets for `rollout history`, events, `status.phase`
//! field selectors, and `kubectl apply`'s limits — checked with kubectl and the Python client.

use drscript_test_support::clients;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use clients::{kubectl, kubectl_in, python};
use drscript_core::config::Config;
use drscript_core::kube::{Cluster, Kind, ScaleOptions, scale};
use drscript_sandbox::kube_api::{Delays, Res, Stuck};
use drscript_sandbox::{Sandbox, SandboxHandle, SandboxOptions};
use serde_json::Value;

const NS: &str = "adeptia";
const PORTAL: &str = "ac-ac-portal";

async fn start(dir: &Path, start: Duration) -> (SandboxHandle, Config) {
    let delays = Delays { start, terminate: Duration::from_millis(100) };
    let sb = Sandbox::start(dir, SandboxOptions { shares: false, delays, ..SandboxOptions::default() }).await.unwrap();
    let config = Config::load(&sb.config_path()).unwrap();
    (sb, config)
}

async fn kubectl_json(sb: &SandboxHandle, context: &str, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.extend(["-o", "json"]);
    let (ok, text) = kubectl(sb, context, &all).await;
    assert!(ok, "kubectl {args:?}: {text}");
    serde_json::from_str(&text).unwrap()
}

fn condition<'a>(deployment: &'a Value, kind: &str) -> &'a Value {
    deployment["status"]["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == kind))
        .unwrap_or(&Value::Null)
}

/// Polls the sandbox (in-process) until `check` holds, bounded.
async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn runtime_pods(sb: &SandboxHandle, env: &str, prefix: &str) -> Vec<Value> {
    sb.env(env)
        .unwrap()
        .kube
        .pods(NS)
        .into_iter()
        .filter(|p| p["metadata"]["name"].as_str().unwrap().starts_with(prefix))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_go_pending_creating_running_then_ready_and_kubectl_sees_it() {
    let dir = tempfile::tempdir().unwrap();
    let (sb, config) = start(dir.path(), Duration::from_millis(900)).await;
    // DR starts as the document deploys it, its runtime up: take it down first, as a failback
    // leaves it, so that the pods below are new ones.
    let dr = Cluster::connect(config.environment("dr").unwrap()).await.unwrap();
    scale(&dr, Kind::Deployment, "ac-ac-runtime", 0, &ScaleOptions::default()).await.unwrap();
    let sb = std::sync::Arc::new(sb);
    let watcher = {
        let sb = sb.clone();
        tokio::spawn(async move {
            let mut seen: Vec<(String, String, bool)> = Vec::new();
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Some(p) = runtime_pods(&sb, "dr", "ac-ac-runtime").first() {
                    let state = (
                        p["status"]["phase"].as_str().unwrap_or_default().to_string(),
                        p["status"]["containerStatuses"][0]["state"]["waiting"]["reason"]
                            .as_str()
                            .unwrap_or("-")
                            .to_string(),
                        p["status"]["containerStatuses"][0]["ready"] == true,
                    );
                    if seen.last() != Some(&state) {
                        seen.push(state.clone());
                    }
                    if state.2 {
                        break;
                    }
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            seen
        })
    };
    let report = scale(&dr, Kind::Deployment, "ac-ac-runtime", 1, &ScaleOptions::default()).await.unwrap();
    assert_eq!(report.ready, 1);
    let seen = watcher.await.unwrap();
    let expected = [("Pending", "ContainerCreating", false), ("Running", "-", false), ("Running", "-", true)];
    let seen_ref: Vec<(&str, &str, bool)> = seen.iter().map(|(a, b, c)| (a.as_str(), b.as_str(), *c)).collect();
    assert_eq!(seen_ref, expected, "the phases a kubelet reports, in order");
    let pod = runtime_pods(&sb, "dr", "ac-ac-runtime")[0]["metadata"]["name"].as_str().unwrap().to_string();
    let events =
        kubectl_json(&sb, "dr", &["get", "events", "--field-selector", &format!("involvedObject.name={pod}")]).await;
    let reasons: Vec<&str> =
        events["items"].as_array().unwrap().iter().map(|e| e["reason"].as_str().unwrap()).collect();
    assert_eq!(reasons, ["Scheduled", "Pulled", "Created", "Started"], "{events}");
    let running = kubectl_json(&sb, "dr", &["get", "pods", "--field-selector", "status.phase=Running"]).await;
    assert!(running["items"].as_array().unwrap().iter().any(|p| p["metadata"]["name"] == pod.as_str()));
    let out = python(
        &sb,
        "dr",
        "out = {'not_running': len(core.list_namespaced_pod('adeptia', field_selector='status.phase!=Running').items), 'bad': None}\ntry:\n    core.list_namespaced_pod('adeptia', field_selector='status.nope=x')\nexcept client.exceptions.ApiException as e:\n    out['bad'] = e.status",
    )
    .await;
    assert_eq!(out["not_running"], 0, "{out}");
    assert_eq!(out["bad"], 400, "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_pull_back_off_start_times_out_naming_the_reason_and_the_progress_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let (sb, config) = start(dir.path(), Duration::from_millis(100)).await;
    let prod = &sb.env("prod").unwrap().kube;
    prod.set_stuck(NS, PORTAL, Some(Stuck::ImagePullBackOff));
    // A new template with a short deadline: the rollout's pods never pull their image.
    let patch = r#"{"spec":{"progressDeadlineSeconds":1,"template":{"spec":{"containers":[{"name":"ac-portal","image":"adeptia/ac-portal:9.9.9"}]}}}}"#;
    let (ok, text) = kubectl(&sb, "prod", &["patch", "deployment", PORTAL, "-p", patch]).await;
    assert!(ok, "{text}");
    let (ok, text) =
        kubectl(&sb, "prod", &["rollout", "status", &format!("deployment/{PORTAL}"), "--timeout=20s"]).await;
    assert!(!ok && text.contains("exceeded its progress deadline"), "{text}");
    let d = prod.object(Res::Deployment, NS, PORTAL).unwrap();
    assert_eq!(condition(&d, "Progressing")["reason"], "ProgressDeadlineExceeded", "{d}");
    assert_eq!(condition(&d, "Progressing")["status"], "False");
    assert_eq!(condition(&d, "Available")["reason"], "MinimumReplicasUnavailable");
    let (_, table) = kubectl(&sb, "prod", &["get", "pods"]).await;
    assert!(table.contains("ImagePullBackOff"), "{table}");
    let cluster = Cluster::connect(config.environment("prod").unwrap()).await.unwrap();
    let opts = ScaleOptions { timeout: Duration::from_millis(1500), ..ScaleOptions::default() };
    let e = scale(&cluster, Kind::Deployment, PORTAL, 2, &opts).await.unwrap_err().to_string();
    for part in [
        "deployment/ac-ac-portal",
        "observed 0 ready of 2 wanted",
        "Progressing=False ProgressDeadlineExceeded",
        "not ready: 2 pods pending: ImagePullBackOff",
        "Back-off pulling image \"adeptia/ac-portal:9.9.9\"",
    ] {
        assert!(e.contains(part), "`{part}` missing from: {e}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_deployment_does_not_roll_out_and_resuming_leaves_a_history() {
    let dir = tempfile::tempdir().unwrap();
    let (sb, _config) = start(dir.path(), Duration::from_millis(150)).await;
    let prod = &sb.env("prod").unwrap().kube;
    let names = |pods: Vec<Value>| -> Vec<String> {
        pods.iter()
            .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
            .map(|p| p["metadata"]["name"].as_str().unwrap().to_string())
            .collect()
    };
    let before = names(runtime_pods(&sb, "prod", PORTAL));
    let (ok, text) = kubectl(&sb, "prod", &["rollout", "pause", &format!("deployment/{PORTAL}")]).await;
    assert!(ok, "{text}");
    let (ok, text) = kubectl(&sb, "prod", &["set", "env", &format!("deployment/{PORTAL}"), "DR_DRILL=1"]).await;
    assert!(ok, "{text}");
    eventually("the paused condition", || {
        condition(&prod.object(Res::Deployment, NS, PORTAL).unwrap(), "Progressing")["reason"] == "DeploymentPaused"
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(names(runtime_pods(&sb, "prod", PORTAL)), before, "no rollout while paused");
    let (ok, text) = kubectl(&sb, "prod", &["rollout", "resume", &format!("deployment/{PORTAL}")]).await;
    assert!(ok, "{text}");
    let (ok, text) =
        kubectl(&sb, "prod", &["rollout", "status", &format!("deployment/{PORTAL}"), "--timeout=20s"]).await;
    assert!(ok && text.contains("successfully rolled out"), "{text}");
    let after = runtime_pods(&sb, "prod", PORTAL);
    let live: Vec<&Value> = after.iter().filter(|p| p["metadata"]["deletionTimestamp"].is_null()).collect();
    assert_eq!(live.len(), 1);
    assert!(!before.contains(&live[0]["metadata"]["name"].as_str().unwrap().to_string()));
    assert!(live[0]["spec"]["containers"][0]["env"].as_array().unwrap().iter().any(|e| e["name"] == "DR_DRILL"));
    let d = prod.object(Res::Deployment, NS, PORTAL).unwrap();
    assert_eq!(condition(&d, "Progressing")["reason"], "NewReplicaSetAvailable", "{d}");
    assert_eq!(condition(&d, "Available")["status"], "True");
    let (ok, history) = kubectl(&sb, "prod", &["rollout", "history", &format!("deployment/{PORTAL}")]).await;
    assert!(ok, "{history}");
    let revisions: Vec<&str> =
        history.lines().filter_map(|l| l.split_whitespace().next()).filter(|w| w.parse::<u32>().is_ok()).collect();
    assert_eq!(revisions, ["1", "2"], "{history}");
    let rs = kubectl_json(&sb, "prod", &["get", "replicasets", "-l", "app.kubernetes.io/name=ac-portal"]).await;
    let mut desired: Vec<i64> =
        rs["items"].as_array().unwrap().iter().map(|r| r["spec"]["replicas"].as_i64().unwrap()).collect();
    desired.sort();
    assert_eq!(desired, [0, 1], "{rs}");
    // Undo goes back to the first template: its ReplicaSet becomes revision 3, none is added.
    let (ok, text) = kubectl(&sb, "prod", &["rollout", "undo", &format!("deployment/{PORTAL}")]).await;
    assert!(ok, "{text}");
    let (ok, text) =
        kubectl(&sb, "prod", &["rollout", "status", &format!("deployment/{PORTAL}"), "--timeout=20s"]).await;
    assert!(ok, "{text}");
    let (_, history) = kubectl(&sb, "prod", &["rollout", "history", &format!("deployment/{PORTAL}")]).await;
    let revisions: Vec<&str> =
        history.lines().filter_map(|l| l.split_whitespace().next()).filter(|w| w.parse::<u32>().is_ok()).collect();
    assert_eq!(revisions, ["2", "3"], "{history}");
    let rs = kubectl_json(&sb, "prod", &["get", "replicasets", "-l", "app.kubernetes.io/name=ac-portal"]).await;
    assert_eq!(rs["items"].as_array().unwrap().len(), 2, "{rs}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicasets_and_events_are_read_only_and_apply_needs_validation_off() {
    let dir = tempfile::tempdir().unwrap();
    let (sb, _config) = start(dir.path(), Duration::from_millis(100)).await;
    let rs = kubectl_json(&sb, "prod", &["get", "rs"]).await;
    let first = rs["items"][0]["metadata"]["name"].as_str().unwrap().to_string();
    let (ok, text) = kubectl(&sb, "prod", &["delete", "rs", &first]).await;
    assert!(!ok && text.contains("not supported"), "{text}");
    let (ok, text) = kubectl(&sb, "prod", &["get", "events"]).await;
    assert!(ok && text.contains("ScalingReplicaSet"), "{text}");
    let manifest = dir.path().join("portal.json");
    let mut d = kubectl_json(&sb, "prod", &["get", "deployment", PORTAL]).await;
    d["spec"]["template"]["metadata"]["labels"]["drill"] = "yes".into();
    std::fs::write(&manifest, d.to_string()).unwrap();
    let file = manifest.to_str().unwrap();
    let (ok, text) = kubectl(&sb, "prod", &["apply", "-f", file]).await;
    assert!(!ok && text.contains("openapi"), "without OpenAPI, apply's validation stops: {text}");
    let (ok, text) = kubectl(&sb, "prod", &["apply", "--server-side", "--validate=false", "-f", file]).await;
    assert!(!ok && text.contains("server-side apply is not supported"), "{text}");
    let (ok, text) = kubectl(&sb, "prod", &["apply", "--validate=false", "-f", file]).await;
    assert!(ok && text.contains("configured"), "{text}");
    let stored = sb.env("prod").unwrap().kube.object(Res::Deployment, NS, PORTAL).unwrap();
    assert_eq!(stored["spec"]["template"]["metadata"]["labels"]["drill"], "yes");
}

fn wait_for(path: &Path) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !path.exists() {
        assert!(Instant::now() < deadline, "{} did not appear", path.display());
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `sandbox up --stuck` and `drscript run` in separate processes, as an operator rehearses a
/// stuck DR start: the run fails with the workload, its ready count and the pods' reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stuck_dr_start_fails_the_run_naming_workload_ready_count_and_crash_loop() {
    let bin = env!("CARGO_BIN_EXE_drscript");
    let dir = tempfile::tempdir().unwrap();
    let sandbox = dir.path().join("sb");
    let sb = sandbox.to_str().unwrap().to_string();
    let typo = Command::new(bin)
        .args(["sandbox", "up", "--dir", &sb, "--stuck", "dr/ac-ac-runtim=CrashLoopBackOff"])
        .output()
        .unwrap();
    let typo_text = String::from_utf8_lossy(&typo.stderr);
    assert_eq!(typo.status.code(), Some(2), "{typo_text}");
    assert!(typo_text.contains("ac-ac-runtim`") && typo_text.contains("ac-ac-runtime"), "{typo_text}");
    let mut up = Command::new(bin)
        .args(["sandbox", "up", "--dir", &sb, "--start-delay", "0.2", "--stop-delay", "0.2"])
        .args(["--stuck", "dr/ac-ac-runtime=CrashLoopBackOff"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for(&sandbox.join("sandbox.json"));
    let script = dir.path().join("activate.rhai");
    std::fs::write(
        &script,
        // DR's runtime runs from the start (as the document deploys it): down first, then up.
        "step(\"Scale down DR runtime\", || scale(env(\"dr\"), \"deployment\", \"ac-ac-runtime\", 0));\nstep(\"Scale up DR runtime\", || scale(env(\"dr\"), \"deployment\", \"ac-ac-runtime\", 2, #{timeout: 2}));\n",
    )
    .unwrap();
    let config = sandbox.join("drscript.toml");
    let state = dir.path().join("state");
    let mut cmd = Command::new(bin);
    cmd.arg("--config").arg(&config).arg("--state-dir").arg(&state).args(["run", "--yes"]).arg(&script);
    let run = tokio::task::spawn_blocking(move || cmd.output()).await.unwrap().unwrap();
    let text = String::from_utf8_lossy(&run.stderr).to_string();
    let (_, pods) =
        kubectl_in(&sandbox.join("kubeconfig"), "dr", &["get", "pods", "-l", "app.kubernetes.io/name=ac-runtime"])
            .await;
    let down = Command::new(bin).args(["sandbox", "down", "--dir", &sb]).output().unwrap();
    assert!(down.status.success());
    up.wait().unwrap();
    assert!(!run.status.success(), "{text}");
    for part in [
        "dr (ctx dr, ns adeptia) deployment/ac-ac-runtime",
        "timed out after 2s waiting for 2 ready replicas",
        "observed 0 ready of 2 wanted",
        "not ready: 2 pods running, not ready: CrashLoopBackOff (1 restart)",
        "back-off 10s restarting failed container=ac-runtime",
    ] {
        assert!(text.contains(part), "`{part}` missing from:\n{text}");
    }
    assert_eq!(pods.matches("CrashLoopBackOff").count(), 2, "{pods}");
}
