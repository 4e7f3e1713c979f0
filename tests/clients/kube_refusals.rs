//! The Kubernetes emulation refuses what the API server refuses and honours what it honours,
//! checked with three independent clients: kubectl, the official Python `kubernetes` client and
//! kube-rs. Malformed label selectors (400), an immutable deployment selector and a statefulset
//! spec outside its mutable fields (422), a body naming another object than the URL (400),
//! `limit`/`continue` paging with bad (400) and expired (410) tokens, and `dryRun=All` (validated,
//! nothing stored; any other value 422).

use drscript_test_support::clients;

use std::time::Duration;

use base64::Engine;
use drscript_core::config::Config;
use drscript_core::kube::Cluster;
use drscript_sandbox::kube_api::{Delays, Res};
use drscript_sandbox::{Sandbox, SandboxHandle, SandboxOptions};
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::autoscaling::v1::Scale;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

const NS: &str = "adeptia";
const RUNTIME: &str = "ac-ac-runtime";

/// kubectl against the prod context.
async fn kubectl(sb: &SandboxHandle, args: &[&str]) -> (bool, String) {
    clients::kubectl(sb, "prod", args).await
}

/// The official Python client against the prod context.
async fn python(sb: &SandboxHandle, code: &str) -> Value {
    clients::python(sb, "prod", code).await
}

async fn start(dir: &std::path::Path) -> (SandboxHandle, Cluster) {
    let delays = Delays { start: Duration::from_millis(100), terminate: Duration::from_millis(100) };
    let sb = Sandbox::start(dir, SandboxOptions { shares: false, delays, ..SandboxOptions::default() }).await.unwrap();
    let config = Config::load(&sb.config_path()).unwrap();
    let cluster = Cluster::connect(config.environment("prod").unwrap()).await.unwrap();
    (sb, cluster)
}

fn api_error(e: kube::Error) -> (u16, String, String) {
    match e {
        kube::Error::Api(s) => (s.code, s.reason.clone(), s.message.clone()),
        other => panic!("expected an API error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_label_selectors_are_400_not_an_empty_list() {
    let dir = tempfile::tempdir().unwrap();
    let (sb, cluster) = start(dir.path()).await;
    for bad in ["app in (a", "app.kubernetes.io/name=ac-runtime=x", "app name=x"] {
        let (ok, text) = kubectl(&sb, &["get", "pods", "-l", bad]).await;
        assert!(!ok && text.contains("BadRequest") && text.contains("found '"), "{bad}: {text}");
    }
    let out = python(
        &sb,
        r#"
out["bad"] = err(lambda: core.list_namespaced_pod("adeptia", label_selector="app in (a"))
out["good"] = len(core.list_namespaced_pod("adeptia", label_selector="app.kubernetes.io/name in (ac-runtime)").items)
"#,
    )
    .await;
    assert_eq!(out["bad"]["status"], 400, "{out}");
    assert_eq!(out["bad"]["body"]["reason"], "BadRequest");
    assert!(out["bad"]["body"]["message"].as_str().unwrap().starts_with("unable to parse requirement"), "{out}");
    assert_eq!(out["good"], 2);
    let pods = cluster.api::<Pod>();
    let (code, reason, _) = api_error(pods.list(&ListParams::default().labels("app=a=b")).await.unwrap_err());
    assert_eq!((code, reason.as_str()), (400, "BadRequest"));
    let (code, _, message) = api_error(pods.list(&ListParams::default().fields("spec.foo=x")).await.unwrap_err());
    assert_eq!((code, message.as_str()), (400, "field label not supported: spec.foo"));
    assert_eq!(
        pods.list(&ListParams::default().labels("app.kubernetes.io/name=ac-runtime")).await.unwrap().items.len(),
        2
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn selectors_are_immutable_and_nothing_changes_when_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (sb, cluster) = start(dir.path()).await;
    let kube = &sb.env("prod").unwrap().kube;
    let before = kube.object(Res::Deployment, NS, RUNTIME).unwrap();
    let pods_before = kube.pods(NS).len();
    let relabel =
        r#"{"spec":{"selector":{"matchLabels":{"app":"other"}},"template":{"metadata":{"labels":{"app":"other"}}}}}"#;
    let (ok, text) = kubectl(&sb, &["patch", "deployment", RUNTIME, "--type", "merge", "-p", relabel]).await;
    assert!(!ok && text.contains("spec.selector") && text.contains("field is immutable"), "{text}");
    let out = python(
        &sb,
        &format!(
            r#"
out["deployment"] = err(lambda: apps.patch_namespaced_deployment("{RUNTIME}", "adeptia", {relabel}))
out["statefulset"] = err(lambda: apps.patch_namespaced_stateful_set("ac-ac-rabbitmq", "adeptia", {{"spec": {{"serviceName": "elsewhere"}}}}))
"#
        ),
    )
    .await;
    assert_eq!(out["deployment"]["status"], 422, "{out}");
    assert_eq!(out["deployment"]["body"]["reason"], "Invalid");
    assert_eq!(out["deployment"]["body"]["details"]["causes"][0]["field"], "spec.selector");
    assert_eq!(out["statefulset"]["status"], 422, "{out}");
    assert_eq!(out["statefulset"]["body"]["details"]["causes"][0]["reason"], "FieldValueForbidden");
    let deployments = cluster.api::<Deployment>();
    let patch: Value = serde_json::from_str(relabel).unwrap();
    let (code, _, message) =
        api_error(deployments.patch(RUNTIME, &PatchParams::default(), &Patch::Merge(&patch)).await.unwrap_err());
    assert_eq!(code, 422);
    assert!(message.starts_with("Deployment.apps \"ac-ac-runtime\" is invalid: spec.selector:"), "{message}");
    // A template whose labels the selector does not select is refused too.
    let orphan = json!({"spec": {"template": {"metadata": {"labels": {"app.kubernetes.io/name": "x"}}}}});
    let (code, _, message) =
        api_error(deployments.patch(RUNTIME, &PatchParams::default(), &Patch::Strategic(&orphan)).await.unwrap_err());
    assert!(code == 422 && message.contains("`selector` does not match template `labels`"), "{message}");
    let statefulsets = cluster.api::<StatefulSet>();
    let sts = json!({"spec": {"serviceName": "elsewhere"}});
    let (code, _, _) = api_error(
        statefulsets.patch("ac-ac-rabbitmq", &PatchParams::default(), &Patch::Merge(&sts)).await.unwrap_err(),
    );
    assert_eq!(code, 422);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let after = kube.object(Res::Deployment, NS, RUNTIME).unwrap();
    assert_eq!(after["metadata"]["generation"], before["metadata"]["generation"]);
    assert_eq!(after["spec"]["selector"], before["spec"]["selector"]);
    assert_eq!(kube.pods(NS).len(), pods_before, "no pod was created for a refused selector");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_naming_another_object_than_the_url_is_400() {
    let dir = tempfile::tempdir().unwrap();
    let (sb, cluster) = start(dir.path()).await;
    let out = python(
        &sb,
        &format!(
            r#"
body = apps.read_namespaced_deployment("ac-ac-portal", "adeptia")
out["replace"] = err(lambda: apps.replace_namespaced_deployment("{RUNTIME}", "adeptia", body))
"#
        ),
    )
    .await;
    assert_eq!(out["replace"]["status"], 400, "{out}");
    assert_eq!(
        out["replace"]["body"]["message"],
        "the name of the object (ac-ac-portal) does not match the name on the URL (ac-ac-runtime)"
    );
    let deployments = cluster.api::<Deployment>();
    let portal = deployments.get("ac-ac-portal").await.unwrap();
    let (code, reason, _) = api_error(deployments.replace(RUNTIME, &PostParams::default(), &portal).await.unwrap_err());
    assert_eq!((code, reason.as_str()), (400, "BadRequest"));
    let mut scale: Scale = deployments.get_scale("ac-ac-portal").await.unwrap();
    scale.spec.as_mut().unwrap().replicas = Some(0);
    let (code, _, _) = api_error(deployments.replace_scale(RUNTIME, &PostParams::default(), &scale).await.unwrap_err());
    assert_eq!(code, 400);
    let kube = &sb.env("prod").unwrap().kube;
    assert_eq!(kube.object(Res::Deployment, NS, RUNTIME).unwrap()["spec"]["replicas"], 2);
    assert_eq!(kube.object(Res::Deployment, NS, "ac-ac-portal").unwrap()["spec"]["replicas"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_page_with_limit_and_continue_and_bad_tokens_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (sb, cluster) = start(dir.path()).await;
    let all: Vec<String> = sb
        .env("prod")
        .unwrap()
        .kube
        .pods(NS)
        .iter()
        .map(|p| p["metadata"]["name"].as_str().unwrap().to_string())
        .collect();
    assert!(all.len() >= 9, "{all:?}");
    let out = python(
        &sb,
        r#"
names, token, pages, remaining = [], None, 0, []
while True:
    page = core.list_namespaced_pod("adeptia", limit=2, _continue=token)
    names += [p.metadata.name for p in page.items]
    remaining.append(page.metadata.remaining_item_count)
    pages += 1
    token = page.metadata._continue
    if not token:
        break
out["names"], out["pages"], out["remaining"] = names, pages, remaining
out["bad"] = err(lambda: core.list_namespaced_pod("adeptia", limit=2, _continue="garbage!"))
"#,
    )
    .await;
    let names: Vec<String> = serde_json::from_value(out["names"].clone()).unwrap();
    assert_eq!(names, all, "paging returns every pod once, in order");
    assert_eq!(out["pages"], all.len().div_ceil(2));
    assert_eq!(out["remaining"][0], all.len() - 2, "{out}");
    assert_eq!(out["bad"]["status"], 400, "{out}");
    assert!(out["bad"]["body"]["message"].as_str().unwrap().starts_with("invalid continue token"), "{out}");
    // kube-rs pages the same way; a token for a list the server no longer has is 410 Expired.
    let pods = cluster.api::<Pod>();
    let first = pods.list(&ListParams::default().limit(4)).await.unwrap();
    assert_eq!(first.items.len(), 4);
    let token = first.metadata.continue_.clone().unwrap();
    let second = pods.list(&ListParams::default().limit(100).continue_token(&token)).await.unwrap();
    assert_eq!(first.items.len() + second.items.len(), all.len());
    assert!(second.metadata.continue_.as_deref().unwrap_or("").is_empty());
    let (code, _, _) = api_error(pods.list(&ListParams::default().continue_token("%%%")).await.unwrap_err());
    assert_eq!(code, 400);
    let expired = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(r#"{"v":"meta.k8s.io/v1","rv":3,"start":"/adeptia/a\u0000"}"#);
    let (code, reason, _) = api_error(pods.list(&ListParams::default().continue_token(&expired)).await.unwrap_err());
    assert_eq!((code, reason.as_str()), (410, "Expired"));
    // kubectl pages by itself (--chunk-size) and sees every pod.
    let (ok, text) = kubectl(&sb, &["get", "pods", "--chunk-size=3", "-o", "name"]).await;
    assert!(ok, "{text}");
    assert_eq!(text.lines().count(), all.len(), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_all_is_validated_and_stores_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (sb, cluster) = start(dir.path()).await;
    let kube = &sb.env("prod").unwrap().kube;
    let rv_before = kube.object(Res::Deployment, NS, RUNTIME).unwrap()["metadata"]["resourceVersion"].clone();
    let pod = kube.pods(NS)[0]["metadata"]["name"].as_str().unwrap().to_string();
    let (ok, text) = kubectl(&sb, &["scale", "deployment", RUNTIME, "--replicas=5", "--dry-run=server"]).await;
    assert!(ok && text.contains("server dry run"), "{text}");
    let (ok, text) = kubectl(&sb, &["delete", "pod", &pod, "--dry-run=server"]).await;
    assert!(ok, "{text}");
    let (ok, text) = kubectl(
        &sb,
        &[
            "patch",
            "deployment",
            RUNTIME,
            "--dry-run=server",
            "--type",
            "merge",
            "-p",
            r#"{"spec":{"selector":{"matchLabels":{"a":"b"}}}}"#,
        ],
    )
    .await;
    assert!(!ok && text.contains("field is immutable"), "a dry run is validated: {text}");
    let out = python(
        &sb,
        &format!(
            r#"
s = apps.patch_namespaced_deployment_scale("{RUNTIME}", "adeptia", {{"spec": {{"replicas": 7}}}}, dry_run="All")
out["answered"] = s.spec.replicas
out["unknown"] = err(lambda: apps.patch_namespaced_deployment_scale("{RUNTIME}", "adeptia", {{"spec": {{"replicas": 7}}}}, dry_run="Server"))
"#
        ),
    )
    .await;
    assert_eq!(out["answered"], 7, "the dry run answers what would be stored: {out}");
    assert_eq!(out["unknown"]["status"], 422, "{out}");
    assert_eq!(out["unknown"]["body"]["details"]["causes"][0]["field"], "dryRun");
    let deployments = cluster.api::<Deployment>();
    let patch = json!({"spec": {"replicas": 9}});
    let answered =
        deployments.patch_scale(RUNTIME, &PatchParams::default().dry_run(), &Patch::Merge(&patch)).await.unwrap();
    assert_eq!(answered.spec.as_ref().and_then(|s| s.replicas), Some(9), "{answered:?}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let after = kube.object(Res::Deployment, NS, RUNTIME).unwrap();
    assert_eq!(after["spec"]["replicas"], 2);
    assert_eq!(after["metadata"]["resourceVersion"], rv_before, "nothing was written");
    let still = kube.pods(NS).into_iter().find(|p| p["metadata"]["name"] == pod.as_str()).unwrap();
    assert!(still["metadata"]["deletionTimestamp"].is_null(), "a dry-run delete leaves the pod alone");
    assert_eq!(
        kube.pods(NS).iter().filter(|p| p["metadata"]["name"].as_str().unwrap().starts_with(RUNTIME)).count(),
        2
    );
}
