//! Independent proof: the real kubectl against the sandbox's Kubernetes API emulation, and
//! kubectl and drscript seeing the same state.

use std::process::Command;
use std::time::Duration;

use drscript_core::config::Config;
use drscript_core::kube::{Cluster, Kind, ScaleOptions, replicas, scale, workload};
use drscript_sandbox::kube_api::Delays;
use drscript_sandbox::{Sandbox, SandboxHandle, SandboxOptions};
use serde_json::Value;

fn kubectl(sb: &SandboxHandle, context: &str, args: &[&str]) -> (bool, String, String) {
    let output = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(sb.kubeconfig_path())
        .args(["--context", context])
        .args(args)
        .output()
        .expect("kubectl is not installed: run tests/support/requirements-kube.sh (Debian package kubernetes-client)");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn kubectl_json(sb: &SandboxHandle, context: &str, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.extend(["-o", "json"]);
    let (ok, out, err) = kubectl(sb, context, &all);
    assert!(ok, "kubectl {args:?} failed: {err}");
    serde_json::from_str(&out).unwrap()
}

async fn start(dir: &std::path::Path) -> (SandboxHandle, Config) {
    let delays = Delays { start: Duration::from_millis(200), terminate: Duration::from_millis(300) };
    let sb = Sandbox::start(dir, SandboxOptions { shares: false, delays, ..SandboxOptions::default() }).await.unwrap();
    let config = Config::load(&sb.config_path()).unwrap();
    (sb, config)
}

/// kubectl off the runtime's worker threads (it blocks).
async fn kubectl_async(
    sb: &std::sync::Arc<SandboxHandle>,
    context: &'static str,
    args: &[&str],
) -> (bool, String, String) {
    let (sb, args): (_, Vec<String>) = (sb.clone(), args.iter().map(|a| a.to_string()).collect());
    blocking(move || kubectl(&sb, context, &args.iter().map(String::as_str).collect::<Vec<_>>())).await
}

async fn kubectl_json_async(sb: &std::sync::Arc<SandboxHandle>, context: &'static str, args: &[&str]) -> Value {
    let (sb, args): (_, Vec<String>) = (sb.clone(), args.iter().map(|a| a.to_string()).collect());
    blocking(move || kubectl_json(&sb, context, &args.iter().map(String::as_str).collect::<Vec<_>>())).await
}

/// kubectl blocks; run it off the runtime's worker threads.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_and_drscript_see_the_same_deployments_and_statefulsets() {
    let dir = tempfile::tempdir().unwrap();
    let (sb, config) = start(dir.path()).await;
    let sb = std::sync::Arc::new(sb);
    for env in ["prod", "dr"] {
        let cluster = Cluster::connect(config.environment(env).unwrap()).await.unwrap();
        let deployments = kubectl_json_async(&sb, env, &["get", "deployments"]).await;
        let items = deployments["items"].as_array().unwrap();
        assert!(items.len() >= 7, "{deployments}");
        for d in items {
            let name = d["metadata"]["name"].as_str().unwrap();
            let info = workload(&cluster, Kind::Deployment, name).await.unwrap();
            assert_eq!(i64::from(info.replicas), d["spec"]["replicas"].as_i64().unwrap(), "{env} {name}");
            assert_eq!(i64::from(info.ready), d["status"]["readyReplicas"].as_i64().unwrap_or(0), "{env} {name}");
            assert_eq!(info.images[0], d["spec"]["template"]["spec"]["containers"][0]["image"].as_str().unwrap());
        }
        let sts = kubectl_json_async(&sb, env, &["get", "statefulsets"]).await;
        assert_eq!(sts["items"][0]["metadata"]["name"], "ac-ac-rabbitmq");
        assert_eq!(
            i64::from(replicas(&cluster, Kind::StatefulSet, "ac-ac-rabbitmq").await.unwrap()),
            sts["items"][0]["spec"]["replicas"].as_i64().unwrap()
        );
    }
    // The DR model as kubectl sees it: the listener at 0 on DR, the runtime up.
    let (ok, table, err) = kubectl_async(&sb, "dr", &["get", "deployments"]).await;
    assert!(ok, "{err}");
    let line = |name: &str| table.lines().find(|l| l.starts_with(&format!("{name} "))).unwrap_or_default().to_string();
    assert!(line("ac-ac-listener").contains("0/0"), "{table}");
    assert!(line("ac-ac-runtime").contains("2/2"), "{table}");
    assert!(table.lines().next().unwrap().contains("READY"), "{table}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_scale_to_zero_is_seen_by_drscript_and_pods_terminate() {
    let dir = tempfile::tempdir().unwrap();
    let (sb, config) = start(dir.path()).await;
    let sb = std::sync::Arc::new(sb);
    sb.set_delays(Delays { start: Duration::from_millis(200), terminate: Duration::from_secs(3) });
    let prod = Cluster::connect(config.environment("prod").unwrap()).await.unwrap();
    let selector = "app.kubernetes.io/name=ac-runtime";

    let pods = kubectl_json_async(&sb, "prod", &["get", "pods", "-l", selector]).await;
    assert_eq!(pods["items"].as_array().unwrap().len(), 2, "{pods}");

    let (ok, out, err) =
        kubectl_async(&sb, "prod", &["scale", "deployment", "ac-ac-runtime", "--replicas=0", "-n", "adeptia"]).await;
    assert!(ok && out.contains("scaled"), "{out} {err}");
    assert_eq!(replicas(&prod, Kind::Deployment, "ac-ac-runtime").await.unwrap(), 0);

    // Terminating pods stay listed, with a deletionTimestamp, until they are gone.
    let (ok, table, err) = kubectl_async(&sb, "prod", &["get", "pods", "-l", selector]).await;
    assert!(ok, "{err}");
    assert_eq!(table.matches("Terminating").count(), 2, "{table}");

    // drscript's wait (scale to 0 when already at 0: no write, but wait until no pod is left).
    sb.set_delays(Delays { start: Duration::from_millis(200), terminate: Duration::from_millis(200) });
    let report = scale(&prod, Kind::Deployment, "ac-ac-runtime", 0, &ScaleOptions::default()).await.unwrap();
    assert!(!report.changed);
    let pods = kubectl_json_async(&sb, "prod", &["get", "pods", "-l", selector]).await;
    assert_eq!(pods["items"].as_array().unwrap().len(), 0, "{pods}");

    // Up again with drscript; kubectl agrees.
    scale(&prod, Kind::Deployment, "ac-ac-runtime", 2, &ScaleOptions::default()).await.unwrap();
    let d = kubectl_json_async(&sb, "prod", &["get", "deployment", "ac-ac-runtime"]).await;
    assert_eq!(d["status"]["readyReplicas"], 2, "{d}");
    let (ok, out, err) =
        kubectl_async(&sb, "prod", &["rollout", "status", "deployment/ac-ac-runtime", "--timeout=60s"]).await;
    assert!(ok && out.contains("successfully rolled out"), "{out} {err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_preconditions_and_statefulset_scale() {
    let dir = tempfile::tempdir().unwrap();
    let (sb, config) = start(dir.path()).await;
    let sb = std::sync::Arc::new(sb);
    let dr = Cluster::connect(config.environment("dr").unwrap()).await.unwrap();
    let (ok, _, err) =
        kubectl_async(&sb, "dr", &["scale", "statefulset", "ac-ac-rabbitmq", "--replicas=0", "--current-replicas=3"])
            .await;
    assert!(!ok && err.contains("Expected replicas to be 3, was 1"), "{err}");
    let (ok, out, err) =
        kubectl_async(&sb, "dr", &["scale", "statefulset", "ac-ac-rabbitmq", "--replicas=0", "--current-replicas=1"])
            .await;
    assert!(ok, "{out} {err}");
    assert_eq!(replicas(&dr, Kind::StatefulSet, "ac-ac-rabbitmq").await.unwrap(), 0);
    // A negative count is refused by the server, as a real one does.
    let (ok, _, err) = kubectl_async(
        &sb,
        "dr",
        &["patch", "deployment", "ac-ac-listener", "--type=merge", "-p", r#"{"spec":{"replicas":-1}}"#],
    )
    .await;
    assert!(!ok && err.contains("greater than or equal to 0"), "{err}");
    // kubectl's JSON patch and strategic merge patch reach the spec.
    let (ok, _, err) = kubectl_async(
        &sb,
        "dr",
        &[
            "patch",
            "deployment",
            "ac-ac-listener",
            "--type=json",
            "-p",
            r#"[{"op":"replace","path":"/spec/replicas","value":1}]"#,
        ],
    )
    .await;
    assert!(ok, "{err}");
    scale(&dr, Kind::Deployment, "ac-ac-listener", 1, &ScaleOptions::default()).await.unwrap();
    assert_eq!(workload(&dr, Kind::Deployment, "ac-ac-listener").await.unwrap().ready, 1);

    // `kubectl set env` sends a strategic merge patch: the container keeps its image.
    let (ok, out, err) =
        kubectl_async(&sb, "dr", &["set", "env", "deployment/ac-ac-event", "QUARTZ_STATUS_ONBOOTUP=run"]).await;
    assert!(ok, "{out} {err}");
    let event = workload(&dr, Kind::Deployment, "ac-ac-event").await.unwrap();
    assert_eq!(event.env.get("QUARTZ_STATUS_ONBOOTUP").map(String::as_str), Some("run"));
    assert_eq!(event.images, vec!["adeptia/ac-event:4.2.1".to_string()]);
    assert!(event.env.contains_key("JAVA_OPTS"), "{:?}", event.env);
    // The template changed: the pods are replaced, and the rollout completes.
    let (ok, out, err) =
        kubectl_async(&sb, "dr", &["rollout", "status", "deployment/ac-ac-event", "--timeout=60s"]).await;
    assert!(ok && out.contains("successfully rolled out"), "{out} {err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_get_watch_shows_pods_terminating_and_going_away() {
    let dir = tempfile::tempdir().unwrap();
    let (sb, config) = start(dir.path()).await;
    let out_path = dir.path().join("watch.out");
    let mut child = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(sb.kubeconfig_path())
        .args([
            "--context",
            "prod",
            "get",
            "pods",
            "-l",
            "app.kubernetes.io/name=ac-runtime",
            "-w",
            "--output-watch-events",
            "--request-timeout=120s",
        ])
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("kubectl is not installed: run tests/support/requirements-kube.sh");
    let read = || std::fs::read_to_string(&out_path).unwrap_or_default();
    let poll = |done: &dyn Fn(&str) -> bool| {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        let mut pause = Duration::from_millis(10);
        while !done(&read()) && std::time::Instant::now() < deadline {
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(100));
        }
    };
    // The initial list (two running pods) is printed before anything changes.
    tokio::task::block_in_place(|| poll(&|t: &str| t.matches("Running").count() >= 2));
    let prod = Cluster::connect(config.environment("prod").unwrap()).await.unwrap();
    scale(&prod, Kind::Deployment, "ac-ac-runtime", 0, &ScaleOptions::default()).await.unwrap();
    tokio::task::block_in_place(|| poll(&|t: &str| t.matches("DELETED").count() >= 2));
    let _ = child.kill();
    let _ = child.wait();
    let text = read();
    assert!(text.contains("EVENT") && text.contains("NAME"), "{text}");
    assert_eq!(text.matches("EVENT").count(), 1, "one header only: {text}");
    assert!(text.contains("Terminating"), "{text}");
    assert_eq!(text.matches("DELETED").count(), 2, "{text}");
}
