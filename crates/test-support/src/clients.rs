//! The independent clients the Kubernetes emulation is checked with — the real kubectl and the
//! official Python `kubernetes` client (tests/support/requirements-kube.sh installs both) — run off
//! the runtime's threads against a sandbox's kubeconfig, in namespace `adeptia`.

use std::path::Path;
use std::process::Command;

use drscript_sandbox::SandboxHandle;
use serde_json::Value;

/// kubectl with `kubeconfig` and `context`: whether it succeeded, and stdout then stderr.
pub async fn kubectl_in(kubeconfig: &Path, context: &str, args: &[&str]) -> (bool, String) {
    let mut cmd = Command::new("kubectl");
    cmd.arg("--kubeconfig").arg(kubeconfig).args(["--context", context, "-n", "adeptia"]).args(args);
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .unwrap()
        .expect("kubectl is not installed: run tests/support/requirements-kube.sh");
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

/// kubectl against the sandbox's kubeconfig.
pub async fn kubectl(sb: &SandboxHandle, context: &str, args: &[&str]) -> (bool, String) {
    kubectl_in(&sb.kubeconfig_path(), context, args).await
}

const PYTHON: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../.tools/venv-kube/bin/python");

const PRELUDE: &str = r#"
import json, sys
from kubernetes import client, config
from kubernetes.client.rest import ApiException
config.load_kube_config(config_file=sys.argv[1], context=sys.argv[2])
apps, core = client.AppsV1Api(), client.CoreV1Api()
out = {}
def err(call):
    try:
        call()
        return None
    except ApiException as e:
        return {"status": e.status, "body": json.loads(e.body)}
"#;

/// Runs `code` with the official Python client (`apps`, `core`, `err`, `ApiException` and `out`
/// in scope) against `context`, and returns `out` as JSON.
pub async fn python(sb: &SandboxHandle, context: &str, code: &str) -> Value {
    let script = format!("{PRELUDE}\n{code}\nprint(json.dumps(out, default=str))\n");
    let mut cmd = Command::new(PYTHON);
    cmd.arg("-c").arg(script).arg(sb.kubeconfig_path()).arg(context);
    let out = tokio::task::spawn_blocking(move || cmd.output()).await.unwrap().unwrap_or_else(|e| {
        panic!("{PYTHON}: {e}: run tests/support/requirements-kube.sh (installs the Python kubernetes client)")
    });
    assert!(out.status.success(), "python failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}
