//! The kube primitives' plain API against the sandbox's Kubernetes API emulation: scaling with
//! waits, idempotence, preconditions, retries, and the errors an operator must be able to act on.

use std::time::Duration;

use drscript_core::config::Config;
use drscript_core::kube::{Cluster, Kind, ScaleOptions, replicas, scale, workload};
use drscript_sandbox::kube_api::{Delays, Res};
use drscript_sandbox::{Sandbox, SandboxHandle, SandboxOptions};

const RUNTIME: &str = "ac-ac-runtime";

fn fast() -> Delays {
    Delays { start: Duration::from_millis(150), terminate: Duration::from_millis(150) }
}

async fn sandbox(dir: &std::path::Path, options: SandboxOptions) -> (SandboxHandle, Config) {
    let handle = Sandbox::start(dir, SandboxOptions { shares: false, delays: fast(), ..options }).await.unwrap();
    let config = Config::load(&handle.config_path()).unwrap();
    (handle, config)
}

async fn cluster(config: &Config, env: &str) -> Cluster {
    Cluster::connect(config.environment(env).unwrap()).await.unwrap()
}

fn writes(handle: &SandboxHandle, env: &str) -> Vec<String> {
    handle.env(env).unwrap().kube.requests().into_iter().filter(|r| !r.starts_with("GET")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scale_to_zero_waits_until_no_pod_is_left_and_back_up_until_ready() {
    let dir = tempfile::tempdir().unwrap();
    let (sb, config) = sandbox(dir.path(), SandboxOptions::default()).await;
    let prod = cluster(&config, "prod").await;
    let kube = &sb.env("prod").unwrap().kube;
    let runtime_pods = || {
        kube.pods("adeptia")
            .into_iter()
            .filter(|p| p["metadata"]["name"].as_str().unwrap().starts_with(RUNTIME))
            .count()
    };
    assert_eq!(runtime_pods(), 2);

    let down = scale(&prod, Kind::Deployment, RUNTIME, 0, &ScaleOptions::default()).await.unwrap();
    assert!(down.changed);
    assert_eq!((down.from, down.to), (2, 0));
    // Terminating pods count: the wait ends only when they are gone.
    assert_eq!(runtime_pods(), 0, "scale returned while pods were still listed");
    assert!(
        writes(&sb, "prod")
            .iter()
            .any(|w| w.starts_with(&format!("PUT /apis/apps/v1/namespaces/adeptia/deployments/{RUNTIME}/scale"))),
        "scale must go through the scale subresource: {:?}",
        writes(&sb, "prod")
    );

    let up = scale(&prod, Kind::Deployment, RUNTIME, 2, &ScaleOptions::default()).await.unwrap();
    assert!(up.changed);
    assert_eq!(up.ready, 2);
    let d = kube.object(Res::Deployment, "adeptia", RUNTIME).unwrap();
    assert_eq!(d["status"]["readyReplicas"], 2);
    assert_eq!(d["status"]["observedGeneration"], d["metadata"]["generation"]);
    assert_eq!(replicas(&prod, Kind::Deployment, RUNTIME).await.unwrap(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statefulset_scales_and_already_at_target_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (sb, config) = sandbox(dir.path(), SandboxOptions::default()).await;
    let dr = cluster(&config, "dr").await;
    let report = scale(&dr, Kind::StatefulSet, "ac-ac-rabbitmq", 0, &ScaleOptions::default()).await.unwrap();
    assert!(report.changed);
    assert!(sb.env("dr").unwrap().kube.pods("adeptia").iter().all(|p| p["metadata"]["name"] != "ac-ac-rabbitmq-0"));

    let before = writes(&sb, "dr").len();
    let again = scale(&dr, Kind::StatefulSet, "ac-ac-rabbitmq", 0, &ScaleOptions::default()).await.unwrap();
    assert!(!again.changed, "{again:?}");
    // DR's listener is at 0 by the DR model: scaling it to 0 is unchanged too.
    let listener = scale(&dr, Kind::Deployment, "ac-ac-listener", 0, &ScaleOptions::default()).await.unwrap();
    assert!(!listener.changed);
    assert_eq!(writes(&sb, "dr").len(), before, "an unchanged scale wrote: {:?}", writes(&sb, "dr"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn current_precondition_fails_on_mismatch_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (sb, config) = sandbox(dir.path(), SandboxOptions::default()).await;
    let prod = cluster(&config, "prod").await;
    let opts = ScaleOptions { current: Some(5), ..ScaleOptions::default() };
    let err = scale(&prod, Kind::Deployment, RUNTIME, 0, &opts).await.unwrap_err().to_string();
    assert!(err.contains("expected 5") && err.contains("found 2"), "{err}");
    assert!(err.contains("prod (ctx prod, ns adeptia) deployment/ac-ac-runtime"), "{err}");
    assert_eq!(
        sb.env("prod").unwrap().kube.object(Res::Deployment, "adeptia", RUNTIME).unwrap()["spec"]["replicas"],
        2
    );
    let ok = ScaleOptions { current: Some(2), wait: false, ..ScaleOptions::default() };
    assert!(scale(&prod, Kind::Deployment, RUNTIME, 1, &ok).await.unwrap().changed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_failures_and_conflicts_are_retried() {
    let dir = tempfile::tempdir().unwrap();
    let (sb, config) = sandbox(dir.path(), SandboxOptions::default()).await;
    let prod = cluster(&config, "prod").await;
    let kube = &sb.env("prod").unwrap().kube;
    kube.inject_faults(&[500, 429, 503]);
    kube.inject_fault_on("PUT", 409);
    let report = scale(&prod, Kind::Deployment, "ac-ac-listener", 0, &ScaleOptions::default()).await.unwrap();
    assert!(report.changed);
    let log = kube.requests();
    let puts = log.iter().filter(|r| r.starts_with("PUT ")).count();
    assert_eq!(puts, 2, "the conflicting replace must be retried once: {log:?}");
    assert_eq!(kube.object(Res::Deployment, "adeptia", "ac-ac-listener").unwrap()["spec"]["replicas"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeout_says_which_pods_are_still_terminating() {
    let dir = tempfile::tempdir().unwrap();
    let (sb, config) = sandbox(dir.path(), SandboxOptions::default()).await;
    sb.set_delays(Delays { start: Duration::from_millis(100), terminate: Duration::from_secs(30) });
    let prod = cluster(&config, "prod").await;
    // Far below the 30 s termination, far above what a loaded machine needs to list the pods.
    let opts = ScaleOptions { timeout: Duration::from_secs(8), ..ScaleOptions::default() };
    let err = scale(&prod, Kind::Deployment, RUNTIME, 0, &opts).await.unwrap_err().to_string();
    assert!(err.contains("timed out after 8s"), "{err}");
    assert!(err.contains("2 still present") && err.contains("terminating since"), "{err}");
    assert!(err.contains(&format!("{RUNTIME}-")), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workload_reports_counts_images_and_env() {
    let dir = tempfile::tempdir().unwrap();
    let (_sb, config) =
        sandbox(dir.path(), SandboxOptions { version: "4.3.0".into(), ..SandboxOptions::default() }).await;
    let dr = cluster(&config, "dr").await;
    let event = workload(&dr, Kind::Deployment, "ac-ac-event").await.unwrap();
    assert_eq!(event.env.get("QUARTZ_STATUS_ONBOOTUP").map(String::as_str), Some("pause"));
    assert_eq!(event.images, vec!["adeptia/ac-event:4.3.0".to_string()]);
    assert_eq!(event.version, "4.3.0");
    assert_eq!((event.replicas, event.ready), (1, 1));
    // DR as the document deploys it: the runtime up, the listener at 0.
    let runtime = workload(&dr, Kind::Deployment, RUNTIME).await.unwrap();
    assert_eq!((runtime.replicas, runtime.ready), (2, 2));
    let listener = workload(&dr, Kind::Deployment, "ac-ac-listener").await.unwrap();
    assert_eq!((listener.replicas, listener.ready), (0, 0));
    let prod = cluster(&config, "prod").await;
    let prod_event = workload(&prod, Kind::Deployment, "ac-ac-event").await.unwrap();
    assert_eq!(prod_event.env.get("QUARTZ_STATUS_ONBOOTUP").map(String::as_str), Some("run"));
    let rabbit = workload(&prod, Kind::StatefulSet, "ac-ac-rabbitmq").await.unwrap();
    assert_eq!(rabbit.ready, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_workload_is_a_404_naming_namespace_and_object() {
    let dir = tempfile::tempdir().unwrap();
    let (_sb, config) = sandbox(dir.path(), SandboxOptions::default()).await;
    let prod = cluster(&config, "prod").await;
    for err in [
        scale(&prod, Kind::Deployment, "ac-ac-nope", 0, &ScaleOptions::default()).await.unwrap_err().to_string(),
        replicas(&prod, Kind::StatefulSet, "ac-ac-nope").await.unwrap_err().to_string(),
        workload(&prod, Kind::Deployment, "ac-ac-nope").await.unwrap_err().to_string(),
    ] {
        assert!(err.contains("404"), "{err}");
        assert!(
            err.contains("ac-ac-nope") && err.contains("namespace `adeptia`") && err.contains("context `prod`"),
            "{err}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_before_anything_is_sent() {
    let err = "daemonset".parse::<Kind>().unwrap_err();
    assert!(err.is_bad_input());
    assert!(err.to_string().contains("daemonset"));
    let err = drscript_core::kube::check_replicas(-1).unwrap_err();
    assert!(err.is_bad_input() && err.to_string().contains("-1"), "{err}");
    let dir = tempfile::tempdir().unwrap();
    let (sb, config) = sandbox(dir.path(), SandboxOptions::default()).await;
    let prod = cluster(&config, "prod").await;
    let before = sb.env("prod").unwrap().kube.requests().len();
    let err = scale(&prod, Kind::Deployment, RUNTIME, -1, &ScaleOptions::default()).await.unwrap_err();
    assert!(err.is_bad_input(), "{err}");
    assert_eq!(sb.env("prod").unwrap().kube.requests().len(), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_credentials_give_a_clear_401() {
    let dir = tempfile::tempdir().unwrap();
    let (sb, config) = sandbox(dir.path(), SandboxOptions { kube_token: true, ..SandboxOptions::default() }).await;
    // The right token works.
    let prod = cluster(&config, "prod").await;
    assert_eq!(replicas(&prod, Kind::Deployment, RUNTIME).await.unwrap(), 2);
    // A kubeconfig with a wrong token.
    let token = sb.env("prod").unwrap().endpoints.kube_token.clone().unwrap();
    let text = std::fs::read_to_string(sb.kubeconfig_path()).unwrap().replace(&token, "wrong-token-0123456789");
    std::fs::write(sb.kubeconfig_path(), text).unwrap();
    let prod = cluster(&config, "prod").await;
    let err = drscript_base::redact::redacted(
        scale(&prod, Kind::Deployment, RUNTIME, 0, &ScaleOptions::default()).await.unwrap_err().to_string(),
    );
    assert!(err.contains("401 Unauthorized") && err.contains("context `prod`"), "{err}");
    assert!(!err.contains(&token), "{err}");
    assert_eq!(
        sb.env("prod").unwrap().kube.object(Res::Deployment, "adeptia", RUNTIME).unwrap()["spec"]["replicas"],
        2
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_server_that_is_down_fails_fast_and_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let (sb, config) = sandbox(dir.path(), SandboxOptions::default()).await;
    let url = sb.env("prod").unwrap().endpoints.kube_api.clone();
    drop(sb);
    let prod = cluster(&config, "prod").await;
    let err = scale(&prod, Kind::Deployment, RUNTIME, 0, &ScaleOptions::default()).await.unwrap_err().to_string();
    assert!(err.contains("cannot reach the API server") && err.contains(url.trim_start_matches("http://")), "{err}");
    assert!(err.to_lowercase().contains("refused") && err.contains("after 3 attempts"), "{err}");
    // The connection error ends the call, not the 5-minute scale timeout.
    assert!(!err.contains("timed out"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_context_is_named_with_the_known_ones() {
    let dir = tempfile::tempdir().unwrap();
    let (_sb, config) = sandbox(dir.path(), SandboxOptions::default()).await;
    let mut env = config.environment("prod").unwrap().clone();
    env.kube_context = Some("prod-aks".into());
    let err = Cluster::connect(&env).await.err().unwrap().to_string();
    assert!(
        err.contains("context `prod-aks` is not in kubeconfig")
            && err.contains("known: dr, dr-viewer, prod, prod-viewer"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeout_scaling_up_says_how_many_are_ready() {
    let dir = tempfile::tempdir().unwrap();
    let (sb, config) = sandbox(dir.path(), SandboxOptions::default()).await;
    sb.set_delays(Delays { start: Duration::from_secs(30), terminate: Duration::from_millis(100) });
    let dr = cluster(&config, "dr").await;
    let opts = ScaleOptions { timeout: Duration::from_secs(4), ..ScaleOptions::default() };
    let err = scale(&dr, Kind::Deployment, "ac-ac-listener", 1, &opts).await.unwrap_err().to_string();
    assert!(err.contains("timed out after 4s waiting for 1 ready replicas"), "{err}");
    assert!(err.contains("observed 0 ready of 1 wanted (1 existing)"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_server_that_never_answers_is_bounded_by_the_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let (sb, config) = sandbox(dir.path(), SandboxOptions::default()).await;
    // Accepts connections and never says a word.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_url = format!("http://{}", silent.local_addr().unwrap());
    let _hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            held.push(socket);
        }
    });
    let prod_url = sb.env("prod").unwrap().endpoints.kube_api.clone();
    let text = std::fs::read_to_string(sb.kubeconfig_path()).unwrap().replace(&prod_url, &silent_url);
    std::fs::write(sb.kubeconfig_path(), text).unwrap();
    let prod = cluster(&config, "prod").await;
    let opts = ScaleOptions { timeout: Duration::from_secs(3), ..ScaleOptions::default() };
    let err = scale(&prod, Kind::Deployment, RUNTIME, 0, &opts).await.unwrap_err().to_string();
    assert!(err.contains("timed out after 3s before the scale was written"), "{err}");
    assert!(err.contains(silent_url.trim_start_matches("http://")), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forbidden_is_not_retried_and_names_context_namespace_and_object() {
    let dir = tempfile::tempdir().unwrap();
    let (sb, config) = sandbox(dir.path(), SandboxOptions::default()).await;
    let kube = &sb.env("prod").unwrap().kube;
    kube.inject_faults(&[403]);
    let prod = cluster(&config, "prod").await;
    let before = kube.requests().len();
    let err = scale(&prod, Kind::Deployment, RUNTIME, 0, &ScaleOptions::default()).await.unwrap_err().to_string();
    assert!(err.contains("403 Forbidden") && err.contains("context `prod`"), "{err}");
    assert!(err.contains("deployment/ac-ac-runtime in namespace `adeptia`"), "{err}");
    assert_eq!(kube.requests().len(), before + 1, "a 403 must not be retried");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_api_server_gets_six_requests_per_call_not_retries_stacked_under_retries() {
    let dir = tempfile::tempdir().unwrap();
    let (sb, config) = sandbox(dir.path(), SandboxOptions::default()).await;
    let kube = &sb.env("prod").unwrap().kube;
    // More 503s and 429s than any sane budget: the call must give up after its own 6 attempts.
    // (kube-rs's default client retries 429/503/504 up to 15 times underneath, ~5 minutes.)
    kube.inject_faults(&[503; 200]);
    let prod = cluster(&config, "prod").await;
    let before = kube.requests().len();
    let err = scale(&prod, Kind::Deployment, RUNTIME, 0, &ScaleOptions::default()).await.unwrap_err().to_string();
    assert!(err.contains("503") && err.contains("after 6 attempts"), "{err}");
    assert_eq!(kube.requests().len(), before + 6, "{:?}", &kube.requests()[before..]);
}
