//! The sandbox's Kubernetes APIs as AKS serves them: HTTPS with a private CA, bearer tokens, an
//! admin whose token comes from the kubeconfig's `exec` plugin and rotates (a token expiring
//! mid-run is refreshed through the plugin), and a read-only identity whose writes are 403 —
//! with kubectl, the Python client and drscript's binary, which must name the identity, verb and
//! resource of a refused scale.

use drscript_test_support::clients;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use clients::{kubectl, python};
use drscript_sandbox::kube_api::{Delays, Res};
use drscript_sandbox::{Sandbox, SandboxHandle, SandboxOptions};
use serde_json::Value;

const NS: &str = "adeptia";
const RUNTIME: &str = "ac-ac-runtime";

async fn start(dir: &Path, options: SandboxOptions) -> SandboxHandle {
    let delays = Delays { start: Duration::from_millis(100), terminate: Duration::from_millis(100) };
    Sandbox::start(&dir.join("sb"), SandboxOptions { shares: false, delays, ..options }).await.unwrap()
}

/// An HTTPS client trusting the sandbox's CA for `env`.
fn https(sb: &SandboxHandle, env: &str) -> reqwest::Client {
    let pem = std::fs::read(sb.dir.join(format!("kube-{env}-ca.crt"))).unwrap();
    reqwest::Client::builder().add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap()).build().unwrap()
}

async fn drscript(sb: &SandboxHandle, dir: &Path, config: &Path, script: &str) -> (bool, String) {
    let path = dir.join("runbook.rhai");
    std::fs::write(&path, script).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_drscript"));
    cmd.arg("--config").arg(config).arg("--state-dir").arg(dir.join("state")).args(["run", "--yes"]).arg(&path);
    let _ = sb;
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap()).await.unwrap();
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_with_a_private_ca_and_tokens_and_a_viewer_that_may_only_read() {
    let dir = tempfile::tempdir().unwrap();
    let sb = start(dir.path(), SandboxOptions::default()).await;
    let url = sb.env("prod").unwrap().endpoints.kube_api.clone();
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");
    // The admin context goes through the exec plugin; kubectl trusts the CA from the kubeconfig.
    let (ok, text) = kubectl(&sb, "prod", &["get", "deployments"]).await;
    assert!(ok && text.contains(RUNTIME), "{text}");
    let (ok, text) = kubectl(&sb, "prod", &["auth", "whoami"]).await;
    assert!(ok && text.contains("sandbox-admin"), "{text}");
    // No token: 401; plain HTTP to the HTTPS port: no answer a client could take for one.
    let r = https(&sb, "prod").get(format!("{url}/apis/apps/v1/namespaces/{NS}/deployments")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let plain = reqwest::get(url.replace("https://", "http://") + "/version").await;
    assert!(plain.is_err() || !plain.unwrap().status().is_success());
    // The viewer reads, and is refused writes with the API server's words.
    let (ok, text) = kubectl(&sb, "prod-viewer", &["get", "pods"]).await;
    assert!(ok, "{text}");
    let (ok, text) = kubectl(&sb, "prod-viewer", &["scale", "deployment", RUNTIME, "--replicas=0"]).await;
    assert!(!ok, "{text}");
    assert!(text.contains(r#"deployments.apps "ac-ac-runtime" is forbidden: User "sandbox-viewer" cannot patch resource "deployments/scale" in API group "apps" in the namespace "adeptia""#), "{text}");
    for (context, expected) in [("prod-viewer", "no"), ("prod", "yes")] {
        let (_, text) = kubectl(&sb, context, &["auth", "can-i", "patch", "deployments", "--subresource=scale"]).await;
        assert!(text.starts_with(expected), "{context}: {text}");
    }
    let (ok, text) = kubectl(&sb, "prod-viewer", &["auth", "can-i", "watch", "pods"]).await;
    assert!(ok && text.starts_with("yes"), "{text}");
    let out = python(
        &sb,
        "prod-viewer",
        &format!("try:\n    apps.patch_namespaced_deployment_scale('{RUNTIME}', 'adeptia', {{'spec': {{'replicas': 0}}}})\nexcept ApiException as e:\n    out = {{'status': e.status, 'body': json.loads(e.body)}}\nout['listed'] = len(apps.list_namespaced_deployment('adeptia').items)"),
    )
    .await;
    assert_eq!(out["status"], 403, "{out}");
    assert_eq!(out["body"]["reason"], "Forbidden");
    assert_eq!(out["body"]["details"]["kind"], "deployments");
    assert!(out["listed"].as_u64().unwrap() >= 7, "{out}");
    let admin = python(&sb, "prod", "out['listed'] = len(apps.list_namespaced_deployment('adeptia').items)").await;
    assert!(admin["listed"].as_u64().unwrap() >= 7, "the Python client runs the exec plugin too: {admin}");
    let kube = &sb.env("prod").unwrap().kube;
    assert_eq!(kube.object(Res::Deployment, NS, RUNTIME).unwrap()["spec"]["replicas"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scale_denied_by_rbac_names_identity_verb_and_resource_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let sb = start(dir.path(), SandboxOptions::default()).await;
    let config = std::fs::read_to_string(sb.config_path())
        .unwrap()
        .replace("kube_context = \"prod\"", "kube_context = \"prod-viewer\"");
    let viewer_config = sb.dir.join("viewer.toml");
    std::fs::write(&viewer_config, config).unwrap();
    let (ok, text) = drscript(
        &sb,
        dir.path(),
        &viewer_config,
        "step(\"Scale down PROD runtime\", || scale(env(\"prod\"), \"deployment\", \"ac-ac-runtime\", 0));\n",
    )
    .await;
    assert!(!ok, "{text}");
    assert!(
        text.contains(
            "403 Forbidden: identity `sandbox-viewer` may not `update` `deployments/scale` (API group apps) in namespace `adeptia` (deployment/ac-ac-runtime, context `prod-viewer`"
        ),
        "{text}"
    );
    assert!(!text.contains("after 2 attempts"), "a 403 is not retried: {text}");
    let viewer_token = sb.env("prod").unwrap().endpoints.kube_viewer_token.clone().unwrap();
    assert!(!text.contains(&viewer_token), "the token never reaches the output");
    assert_eq!(sb.env("prod").unwrap().kube.object(Res::Deployment, NS, RUNTIME).unwrap()["spec"]["replicas"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_that_expires_mid_run_is_refreshed_through_the_exec_plugin() {
    let dir = tempfile::tempdir().unwrap();
    let lifetime = Duration::from_secs(2);
    let sb = start(dir.path(), SandboxOptions { kube_token_lifetime: lifetime, ..SandboxOptions::default() }).await;
    let credential: Value =
        serde_json::from_slice(&std::fs::read(sb.dir.join("secrets/prod-kube.credential.json")).unwrap()).unwrap();
    let first = credential["status"]["token"].as_str().unwrap().to_string();
    assert_eq!(credential["kind"], "ExecCredential");
    let url = sb.env("prod").unwrap().endpoints.kube_api.clone();
    let pods = format!("{url}/api/v1/namespaces/{NS}/pods");
    let r = https(&sb, "prod").get(&pods).bearer_auth(&first).send().await.unwrap();
    assert_eq!(r.status(), 200, "the plugin's token is valid while it lives");
    // A run longer than a token's life: scale down and up, waiting for the pods, with pauses.
    sb.set_delays(Delays { start: Duration::from_millis(1200), terminate: Duration::from_millis(600) });
    let script = r#"
let prod = env("prod");
step("down", || scale(prod, "deployment", "ac-ac-runtime", 0));
step("up", || scale(prod, "deployment", "ac-ac-runtime", 2));
step("down again", || scale(prod, "deployment", "ac-ac-runtime", 1));
"#;
    let started = std::time::Instant::now();
    let (ok, text) = drscript(&sb, dir.path(), &sb.config_path(), script).await;
    assert!(ok, "{text}");
    assert!(started.elapsed() > lifetime, "the run outlived the first token ({:?})", started.elapsed());
    let kube = &sb.env("prod").unwrap().kube;
    assert!(kube.rotating_tokens_used() >= 2, "requests used {} tokens", kube.rotating_tokens_used());
    assert_eq!(kube.object(Res::Deployment, NS, RUNTIME).unwrap()["spec"]["replicas"], 1);
    // The first token is refused now that it has expired (401 `Unauthorized`, as the API server
    // says it: without telling why).
    let r = https(&sb, "prod").get(&pods).bearer_auth(&first).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let status: Value = r.json().await.unwrap();
    assert_eq!((status["reason"].as_str(), status["message"].as_str()), (Some("Unauthorized"), Some("Unauthorized")));
    assert!(!text.contains(&first), "the token never reaches the output");
}
