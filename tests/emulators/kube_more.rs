//! Config maps, secrets, HorizontalPodAutoscalers, managedFields and the GitOps revert fault of
//! the sandbox's Kubernetes API, against the real kubectl and the official Python client: what
//! they create, read, patch and delete, what the API server refuses (409 `AlreadyExists`, the
//! viewer's 403 on secrets, an HPA's 422s), the HPA controller pulling a scale back into its
//! bounds but leaving a scale to 0 alone, and Argo CD's self-heal undoing a `kubectl scale`.

use drscript_test_support::clients;

use std::path::Path;
use std::time::{Duration, Instant};

use base64::Engine;
use clients::{kubectl, python};
use drscript_sandbox::faults::FaultSpec;
use drscript_sandbox::kube_api::{Delays, HpaSeed, Res};
use drscript_sandbox::{Sandbox, SandboxHandle, SandboxOptions};
use serde_json::Value;

const NS: &str = "adeptia";
const RUNTIME: &str = "ac-ac-runtime";

async fn start(dir: &Path, options: SandboxOptions) -> SandboxHandle {
    let delays = Delays { start: Duration::from_millis(100), terminate: Duration::from_millis(100) };
    Sandbox::start(&dir.join("sb"), SandboxOptions { shares: false, delays, ..options }).await.unwrap()
}

/// kubectl that must succeed; its output.
async fn ok(sb: &SandboxHandle, context: &str, args: &[&str]) -> String {
    let (ok, text) = kubectl(sb, context, args).await;
    assert!(ok, "kubectl {args:?}: {text}");
    text
}

/// kubectl `-o json` that must succeed.
async fn json_of(sb: &SandboxHandle, context: &str, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.extend(["-o", "json"]);
    let text = ok(sb, context, &all).await;
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("kubectl {args:?}: {e}: {text}"))
}

/// Polls the stored `res/name` of `env` until `done` holds (at most `limit`); the last value.
async fn until(
    sb: &SandboxHandle,
    env: &str,
    res: Res,
    name: &str,
    limit: Duration,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let kube = &sb.env(env).unwrap().kube;
    let deadline = Instant::now() + limit;
    loop {
        let o = kube.object(res, NS, name).unwrap_or(Value::Null);
        if done(&o) || Instant::now() > deadline {
            return o;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The manager owning `f:spec.f:replicas` in `managedFields`, and through which subresource.
fn replicas_manager(object: &Value) -> Option<(String, Option<String>)> {
    object["metadata"]["managedFields"].as_array()?.iter().find_map(|e| {
        (!e["fieldsV1"]["f:spec"]["f:replicas"].is_null())
            .then(|| (e["manager"].as_str().unwrap().to_string(), e["subresource"].as_str().map(str::to_string)))
    })
}

fn manager(name: &str, sub: Option<&str>) -> Option<(String, Option<String>)> {
    Some((name.to_string(), sub.map(str::to_string)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_maps_and_secrets_with_kubectl_and_the_python_client() {
    let dir = tempfile::tempdir().unwrap();
    let sb = start(dir.path(), SandboxOptions::default()).await;
    // Discovery: kubectl knows the kinds, their short names and that secrets have none.
    let resources = ok(&sb, "prod", &["api-resources"]).await;
    let line =
        |name: &str| resources.lines().find(|l| l.starts_with(&format!("{name} "))).unwrap_or_default().to_string();
    assert!(
        line("configmaps").split_whitespace().collect::<Vec<_>>() == ["configmaps", "cm", "v1", "true", "ConfigMap"],
        "{resources}"
    );
    assert!(
        line("secrets").split_whitespace().collect::<Vec<_>>() == ["secrets", "v1", "true", "Secret"],
        "{resources}"
    );
    assert!(
        line("horizontalpodautoscalers").contains("hpa") && line("horizontalpodautoscalers").contains("autoscaling/v2"),
        "{resources}"
    );

    // Create, the duplicate refused, read back as YAML and as a table.
    let out =
        ok(&sb, "prod", &["create", "configmap", "app-settings", "--from-literal=a=b", "--from-literal=mode=dr"]).await;
    assert!(out.contains("configmap/app-settings created"), "{out}");
    let (created, text) = kubectl(&sb, "prod", &["create", "configmap", "app-settings", "--from-literal=a=c"]).await;
    assert!(!created && text.contains(r#"configmaps "app-settings" already exists"#), "{text}");
    let yaml = ok(&sb, "prod", &["get", "cm", "app-settings", "-o", "yaml"]).await;
    assert!(yaml.contains("kind: ConfigMap") && yaml.contains("  a: b") && yaml.contains("  mode: dr"), "{yaml}");
    let table = ok(&sb, "prod", &["get", "cm"]).await;
    assert!(table.lines().next().unwrap().split_whitespace().eq(["NAME", "DATA", "AGE"]), "{table}");
    assert!(
        table.lines().any(|l| l.starts_with("app-settings ") && l.split_whitespace().nth(1) == Some("2")),
        "{table}"
    );
    // The three patch types.
    ok(&sb, "prod", &["patch", "cm", "app-settings", "-p", r#"{"data":{"mode":"prod"}}"#]).await;
    ok(&sb, "prod", &["patch", "cm", "app-settings", "--type=merge", "-p", r#"{"data":{"extra":"1"}}"#]).await;
    ok(&sb, "prod", &["patch", "cm", "app-settings", "--type=json", "-p", r#"[{"op":"remove","path":"/data/extra"}]"#])
        .await;
    let cm = json_of(&sb, "prod", &["get", "configmap", "app-settings", "--show-managed-fields"]).await;
    assert_eq!(cm["data"], serde_json::json!({"a": "b", "mode": "prod"}), "{cm}");
    let managers: Vec<&str> =
        cm["metadata"]["managedFields"].as_array().unwrap().iter().map(|e| e["manager"].as_str().unwrap()).collect();
    assert!(managers.contains(&"kubectl-create") && managers.contains(&"kubectl-patch"), "{managers:?}");

    // A secret: base64 data, type Opaque, its own table columns.
    let out = ok(&sb, "prod", &["create", "secret", "generic", "db-cred", "--from-literal=password=s3cret"]).await;
    assert!(out.contains("secret/db-cred created"), "{out}");
    let secret = json_of(&sb, "prod", &["get", "secret", "db-cred"]).await;
    assert_eq!(secret["type"], "Opaque");
    assert_eq!(secret["data"]["password"], base64::engine::general_purpose::STANDARD.encode("s3cret"));
    let table = ok(&sb, "prod", &["get", "secrets"]).await;
    assert!(table.lines().next().unwrap().split_whitespace().eq(["NAME", "TYPE", "DATA", "AGE"]), "{table}");
    assert!(table.lines().any(|l| l.split_whitespace().take(3).eq(["db-cred", "Opaque", "1"])), "{table}");

    // The viewer reads config maps but, as the `view` role, not secrets.
    ok(&sb, "prod-viewer", &["get", "cm", "app-settings"]).await;
    let (listed, text) = kubectl(&sb, "prod-viewer", &["get", "secrets"]).await;
    assert!(!listed, "{text}");
    assert!(text.contains(r#"secrets is forbidden: User "sandbox-viewer" cannot list resource "secrets" in API group "" in the namespace "adeptia""#), "{text}");
    let (read, text) = kubectl(&sb, "prod-viewer", &["get", "secret", "db-cred"]).await;
    assert!(
        !read
            && text.contains(r#"secrets "db-cred" is forbidden: User "sandbox-viewer" cannot get resource "secrets""#),
        "{text}"
    );
    let (_, can) = kubectl(&sb, "prod-viewer", &["auth", "can-i", "list", "secrets"]).await;
    assert!(can.starts_with("no"), "{can}");

    // The Python client: stringData folded into data, 409 with the Status shape, a watch from a
    // list's resourceVersion, patch, delete.
    let out = python(
        &sb,
        "prod",
        r#"
s = core.create_namespaced_secret('adeptia', {'metadata': {'name': 'api-token'}, 'stringData': {'token': 'abc'}, 'type': 'Opaque'})
out['data'] = s.data
out['string_data'] = s.string_data
out['duplicate'] = err(lambda: core.create_namespaced_secret('adeptia', {'metadata': {'name': 'api-token'}, 'stringData': {'token': 'x'}}))
listed = core.list_namespaced_config_map('adeptia')
out['listed'] = [c.metadata.name for c in listed.items]
core.create_namespaced_config_map('adeptia', {'metadata': {'name': 'second'}, 'data': {'k': 'v'}})
from kubernetes import watch
out['watched'] = [(e['type'], e['object'].metadata.name) for e in watch.Watch().stream(core.list_namespaced_config_map, 'adeptia', resource_version=listed.metadata.resource_version, timeout_seconds=1)]
p = core.patch_namespaced_config_map('second', 'adeptia', {'data': {'k': 'w'}}, field_manager='dr-runbook')
out['patched'] = p.data
c = core.read_namespaced_config_map('second', 'adeptia')
c.data = {'k': 'replaced'}
out['replaced'] = core.replace_namespaced_config_map('second', 'adeptia', c).data
out['stale'] = err(lambda: core.replace_namespaced_config_map('second', 'adeptia', c))
out['deleted'] = core.delete_namespaced_config_map('second', 'adeptia')
out['gone'] = err(lambda: core.read_namespaced_config_map('second', 'adeptia'))
"#,
    )
    .await;
    assert_eq!(out["data"]["token"], base64::engine::general_purpose::STANDARD.encode("abc"), "{out}");
    assert!(out["string_data"].is_null(), "stringData is not returned: {out}");
    assert_eq!(out["duplicate"]["status"], 409);
    let status = &out["duplicate"]["body"];
    assert_eq!(
        (status["kind"].as_str(), status["reason"].as_str()),
        (Some("Status"), Some("AlreadyExists")),
        "{status}"
    );
    assert_eq!(status["message"], r#"secrets "api-token" already exists"#);
    assert_eq!(status["details"], serde_json::json!({"name": "api-token", "kind": "secrets"}));
    assert_eq!(out["listed"], serde_json::json!(["app-settings"]));
    assert_eq!(out["watched"], serde_json::json!([["ADDED", "second"]]), "{out}");
    assert_eq!(out["patched"]["k"], "w");
    assert_eq!(out["replaced"]["k"], "replaced");
    assert_eq!(
        (out["stale"]["status"].as_i64(), out["stale"]["body"]["reason"].as_str()),
        (Some(409), Some("Conflict"))
    );
    assert_eq!(
        out["stale"]["body"]["message"],
        r#"Operation cannot be fulfilled on configmaps "second": the object has been modified; please apply your changes to the latest version and try again"#
    );
    // A config map goes at once: the answer is a Status of success naming it, not the object.
    assert_eq!(
        (out["deleted"]["kind"].as_str(), out["deleted"]["status"].as_str()),
        (Some("Status"), Some("Success")),
        "{out}"
    );
    assert_eq!(out["deleted"]["details"]["name"], "second");
    assert_eq!(out["deleted"]["details"]["kind"], "configmaps");
    assert_eq!(out["gone"]["status"], 404);
    assert_eq!(out["gone"]["body"]["message"], r#"configmaps "second" not found"#);

    let out = ok(&sb, "prod", &["delete", "cm", "app-settings"]).await;
    assert!(out.contains(r#"configmap "app-settings" deleted"#), "{out}");
    let (found, text) = kubectl(&sb, "prod", &["get", "cm", "app-settings"]).await;
    assert!(!found && text.contains("NotFound"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_set_env_from_a_config_map_and_a_secret() {
    let dir = tempfile::tempdir().unwrap();
    let sb = start(dir.path(), SandboxOptions::default()).await;
    ok(
        &sb,
        "dr",
        &["create", "configmap", "dr-settings", "--from-literal=quartz.mode=pause", "--from-literal=REGION=westeurope"],
    )
    .await;
    ok(&sb, "dr", &["create", "secret", "generic", "dr-db", "--from-literal=DB_PASSWORD=pw"]).await;
    let out = ok(&sb, "dr", &["set", "env", "deployment/ac-ac-runtime", "--from=configmap/dr-settings"]).await;
    assert!(out.contains("deployment.apps/ac-ac-runtime env updated"), "{out}");
    ok(&sb, "dr", &["set", "env", "deployment/ac-ac-runtime", "--from=secret/dr-db"]).await;
    let d = json_of(&sb, "dr", &["get", "deployment", RUNTIME]).await;
    let env = d["spec"]["template"]["spec"]["containers"][0]["env"].as_array().unwrap().clone();
    let by = |name: &str| env.iter().find(|e| e["name"] == name).cloned().unwrap_or(Value::Null);
    assert_eq!(
        by("QUARTZ_MODE")["valueFrom"]["configMapKeyRef"],
        serde_json::json!({"name": "dr-settings", "key": "quartz.mode"}),
        "{env:?}"
    );
    assert_eq!(by("REGION")["valueFrom"]["configMapKeyRef"]["key"], "REGION");
    assert_eq!(
        by("DB_PASSWORD")["valueFrom"]["secretKeyRef"],
        serde_json::json!({"name": "dr-db", "key": "DB_PASSWORD"})
    );
    assert_eq!(by("RUNTIME_MAX_THREADS")["value"], "40", "the strategic merge keeps the other variables: {env:?}");
    assert_eq!(d["spec"]["template"]["spec"]["containers"][0]["image"], "adeptia/ac-runtime:4.2.1");
    let out = ok(&sb, "dr", &["rollout", "status", "deployment/ac-ac-runtime", "--timeout=60s"]).await;
    assert!(out.contains("successfully rolled out"), "{out}");
}

/// An HPA as the Python client sends it, for the refusals.
fn hpa_body(name: &str, min: Option<i64>, max: Option<i64>, kind: &str) -> String {
    let mut spec = serde_json::json!({"scaleTargetRef": {"apiVersion": "apps/v1", "kind": kind, "name": RUNTIME}});
    if let Some(m) = min {
        spec["minReplicas"] = m.into();
    }
    if let Some(m) = max {
        spec["maxReplicas"] = m.into();
    }
    serde_json::json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": name}, "spec": spec})
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_hpas_are_refused_with_the_api_servers_422() {
    let dir = tempfile::tempdir().unwrap();
    let sb = start(dir.path(), SandboxOptions::default()).await;
    let cases = [
        ("max-zero", hpa_body("max-zero", None, Some(0), "Deployment")),
        ("min-zero", hpa_body("min-zero", Some(0), Some(3), "Deployment")),
        ("min-above-max", hpa_body("min-above-max", Some(5), Some(3), "Deployment")),
        ("no-kind", hpa_body("no-kind", Some(1), Some(3), "")),
    ];
    let calls: Vec<String> = cases
        .iter()
        .map(|(name, body)| format!("out[{name:?}] = err(lambda: hpa.create_namespaced_horizontal_pod_autoscaler('adeptia', json.loads({body:?})))"))
        .collect();
    let out = python(&sb, "prod", &format!("hpa = client.AutoscalingV2Api()\n{}", calls.join("\n"))).await;
    let message = |name: &str| out[name]["body"]["message"].as_str().unwrap_or_default().to_string();
    for (name, _) in &cases {
        assert_eq!(out[name]["status"], 422, "{name}: {out}");
        assert_eq!(out[name]["body"]["reason"], "Invalid", "{name}: {out}");
        assert_eq!(out[name]["body"]["details"]["kind"], "HorizontalPodAutoscaler");
        assert_eq!(out[name]["body"]["details"]["group"], "autoscaling");
    }
    let both = "[spec.maxReplicas: Invalid value: 0: must be greater than 0, spec.maxReplicas: Invalid value: 0: must be greater than or equal to `minReplicas`]";
    assert_eq!(message("max-zero"), format!("HorizontalPodAutoscaler.autoscaling \"max-zero\" is invalid: {both}"));
    // Without maxReplicas (which the Python client does not let through): the zero it decodes to.
    let file = dir.path().join("no-max.json");
    std::fs::write(&file, hpa_body("no-max", None, None, "Deployment")).unwrap();
    let (created, text) = kubectl(&sb, "prod", &["create", "--validate=false", "-f", file.to_str().unwrap()]).await;
    assert!(!created, "{text}");
    assert!(
        text.contains(r#"The HorizontalPodAutoscaler "no-max" is invalid"#)
            && text.contains("spec.maxReplicas: Invalid value: 0: must be greater than 0"),
        "{text}"
    );
    assert_eq!(
        message("min-zero"),
        "HorizontalPodAutoscaler.autoscaling \"min-zero\" is invalid: spec.minReplicas: Invalid value: 0: must be greater than or equal to 1"
    );
    assert_eq!(
        out["min-zero"]["body"]["details"]["causes"][0],
        serde_json::json!({"reason": "FieldValueInvalid", "message": "Invalid value: 0: must be greater than or equal to 1", "field": "spec.minReplicas"})
    );
    assert_eq!(
        message("min-above-max"),
        "HorizontalPodAutoscaler.autoscaling \"min-above-max\" is invalid: spec.maxReplicas: Invalid value: 3: must be greater than or equal to `minReplicas`"
    );
    assert_eq!(
        message("no-kind"),
        "HorizontalPodAutoscaler.autoscaling \"no-kind\" is invalid: spec.scaleTargetRef.kind: Required value"
    );
    // kubectl renders the same Status as a real server's.
    // kubectl autoscale sends no minimum for --min=0 (autoscaling/v1, as protobuf): the server's
    // default of 1 applies and nothing is refused.
    ok(&sb, "prod", &["autoscale", "deployment", RUNTIME, "--min=0", "--max=2"]).await;
    let h = json_of(&sb, "prod", &["get", "hpa", RUNTIME]).await;
    assert_eq!((h["spec"]["minReplicas"].as_i64(), h["spec"]["maxReplicas"].as_i64()), (Some(1), Some(2)), "{h}");
    ok(&sb, "prod", &["delete", "hpa", RUNTIME]).await;
    assert!(sb.env("prod").unwrap().kube.object(Res::HorizontalPodAutoscaler, NS, RUNTIME).is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hpa_pulls_a_scale_back_to_its_bounds_but_leaves_a_scale_to_zero_alone() {
    let dir = tempfile::tempdir().unwrap();
    let hpa: HpaSeed = "prod/ac-ac-runtime=1:3".parse().unwrap();
    let sb = start(dir.path(), SandboxOptions { hpa: vec![hpa], ..SandboxOptions::default() }).await;
    let d = json_of(&sb, "prod", &["get", "deployment", RUNTIME, "--show-managed-fields"]).await;
    assert_eq!(replicas_manager(&d), manager("helm", None), "Helm installed it: {d}");
    let h = until(&sb, "prod", Res::HorizontalPodAutoscaler, RUNTIME, Duration::from_secs(5), |h| {
        h["status"]["currentReplicas"] == 2
    })
    .await;
    assert_eq!(h["status"]["desiredReplicas"], 2, "{h}");
    let status = sb.status();
    assert_eq!(
        status["environments"]["prod"]["workloads"][RUNTIME]["hpa"],
        serde_json::json!({"name": RUNTIME, "min": 1, "max": 3})
    );
    assert!(status["environments"]["dr"]["workloads"][RUNTIME]["hpa"].is_null());

    // Above the maximum: back to 3 within about a second, written as the controller manager.
    ok(&sb, "prod", &["scale", "deployment", RUNTIME, "--replicas=6"]).await;
    let scaled_at = Instant::now();
    let d = until(&sb, "prod", Res::Deployment, RUNTIME, Duration::from_secs(5), |d| d["spec"]["replicas"] == 3).await;
    assert_eq!(d["spec"]["replicas"], 3, "{d}");
    assert!(scaled_at.elapsed() < Duration::from_millis(1500), "took {:?}", scaled_at.elapsed());
    let d = json_of(&sb, "prod", &["get", "deployment", RUNTIME, "--show-managed-fields"]).await;
    assert_eq!(
        replicas_manager(&d),
        manager("kube-controller-manager", Some("scale")),
        "{:#}",
        d["metadata"]["managedFields"]
    );
    let events =
        ok(&sb, "prod", &["get", "events", "--field-selector", "involvedObject.kind=HorizontalPodAutoscaler"]).await;
    assert!(
        events.contains("SuccessfulRescale")
            && events.contains("New size: 3; reason: Current number of replicas above Spec.MaxReplicas"),
        "{events}"
    );
    let h = until(&sb, "prod", Res::HorizontalPodAutoscaler, RUNTIME, Duration::from_secs(5), |h| {
        h["status"]["currentReplicas"] == 3
    })
    .await;
    let condition = |h: &Value, kind: &str| {
        h["status"]["conditions"].as_array().unwrap().iter().find(|c| c["type"] == kind).cloned().unwrap_or(Value::Null)
    };
    assert_eq!(condition(&h, "ScalingActive")["reason"], "ValidMetricFound", "{h}");
    assert!(!h["status"]["lastScaleTime"].is_null(), "{h}");
    // The Python client reads it in both versions (its models check every field's type).
    let out = python(
        &sb,
        "prod",
        &format!(
            "h = client.AutoscalingV2Api().read_namespaced_horizontal_pod_autoscaler('{RUNTIME}', 'adeptia')\n\
             out['current'] = h.status.current_replicas\n\
             out['conditions'] = [[c.type, c.status, c.reason] for c in h.status.conditions]\n\
             out['target'] = h.spec.metrics[0].resource.target.average_utilization\n\
             v1 = client.AutoscalingV1Api().read_namespaced_horizontal_pod_autoscaler('{RUNTIME}', 'adeptia')\n\
             out['v1'] = [v1.spec.target_cpu_utilization_percentage, v1.status.current_replicas, v1.status.desired_replicas]"
        ),
    )
    .await;
    assert_eq!(out["current"], 3, "{out}");
    assert_eq!(out["target"], 80);
    assert_eq!(out["v1"], serde_json::json!([80, 3, 3]));
    assert_eq!(
        out["conditions"],
        serde_json::json!([
            ["AbleToScale", "True", "ReadyForNewScale"],
            ["ScalingActive", "True", "ValidMetricFound"],
            ["ScalingLimited", "False", "DesiredWithinRange"]
        ])
    );
    let table = ok(&sb, "prod", &["get", "hpa"]).await;
    let header: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["NAME", "REFERENCE", "TARGETS", "MINPODS", "MAXPODS", "REPLICAS", "AGE"], "{table}");
    let row: Vec<&str> = table.lines().nth(1).unwrap().split_whitespace().collect();
    assert_eq!(row[..7], ["ac-ac-runtime", "Deployment/ac-ac-runtime", "cpu:", "80%/80%", "1", "3", "3"], "{table}");

    // Scaled to 0 (what a DR tool does to a standby): the HPA does nothing.
    ok(&sb, "prod", &["scale", "deployment", RUNTIME, "--replicas=0"]).await;
    let h = until(&sb, "prod", Res::HorizontalPodAutoscaler, RUNTIME, Duration::from_secs(5), |h| {
        condition(h, "ScalingActive")["reason"] == "ScalingDisabled"
    })
    .await;
    let disabled = condition(&h, "ScalingActive");
    assert_eq!(disabled["status"], "False", "{h}");
    assert_eq!(disabled["message"], "scaling is disabled since the replica count of the target is zero");
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let d = json_of(&sb, "prod", &["get", "deployment", RUNTIME, "--show-managed-fields"]).await;
    assert_eq!(d["spec"]["replicas"], 0, "left at 0: {d}");
    assert_eq!(replicas_manager(&d), manager("kubectl", Some("scale")), "kubectl scale names no field manager");
    // Within the bounds: left as it is; the Python client's fieldManager is recorded.
    python(&sb, "prod", &format!("apps.patch_namespaced_deployment_scale('{RUNTIME}', 'adeptia', {{'spec': {{'replicas': 2}}}}, field_manager='drscript')")).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    let d = sb.env("prod").unwrap().kube.object(Res::Deployment, NS, RUNTIME).unwrap();
    assert_eq!(d["spec"]["replicas"], 2);
    assert_eq!(replicas_manager(&d), manager("drscript", Some("scale")));
    // A PATCH of the deployment itself is an entry without subresource.
    ok(&sb, "prod", &["patch", "deployment", RUNTIME, "--type=merge", "-p", r#"{"spec":{"replicas":1}}"#]).await;
    let d = sb.env("prod").unwrap().kube.object(Res::Deployment, NS, RUNTIME).unwrap();
    assert_eq!(replicas_manager(&d), manager("kubectl-patch", None));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_autoscale_creates_an_hpa_the_controller_acts_on() {
    let dir = tempfile::tempdir().unwrap();
    let sb = start(dir.path(), SandboxOptions::default()).await;
    // kubectl 1.32 creates through autoscaling/v1; the HPA is served in v2 as well.
    let out = ok(&sb, "dr", &["autoscale", "deployment", "ac-ac-portal", "--min=2", "--max=4"]).await;
    assert!(out.contains("horizontalpodautoscaler.autoscaling/ac-ac-portal autoscaled"), "{out}");
    let d =
        until(&sb, "dr", Res::Deployment, "ac-ac-portal", Duration::from_secs(5), |d| d["spec"]["replicas"] == 2).await;
    assert_eq!(d["spec"]["replicas"], 2, "below the minimum: raised to it");
    let h = json_of(&sb, "dr", &["get", "hpa", "ac-ac-portal"]).await;
    assert_eq!(h["apiVersion"], "autoscaling/v2");
    assert_eq!(h["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"], 80, "{h}");
    let v1 = json_of(&sb, "dr", &["get", "horizontalpodautoscalers.v1.autoscaling", "ac-ac-portal"]).await;
    assert_eq!(
        (v1["apiVersion"].as_str(), v1["spec"]["targetCPUUtilizationPercentage"].as_i64()),
        (Some("autoscaling/v1"), Some(80)),
        "{v1}"
    );
    ok(&sb, "dr", &["patch", "hpa", "ac-ac-portal", "--type=merge", "-p", r#"{"spec":{"maxReplicas":5}}"#]).await;
    let h = json_of(&sb, "dr", &["get", "hpa", "ac-ac-portal"]).await;
    assert_eq!((h["spec"]["maxReplicas"].as_i64(), h["metadata"]["generation"].as_i64()), (Some(5), Some(2)), "{h}");
    let out = ok(&sb, "dr", &["delete", "hpa", "ac-ac-portal"]).await;
    assert!(out.contains(r#"horizontalpodautoscaler.autoscaling "ac-ac-portal" deleted"#), "{out}");
    // Without the HPA nothing holds the bounds.
    ok(&sb, "dr", &["scale", "deployment", "ac-ac-portal", "--replicas=7"]).await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(sb.env("dr").unwrap().kube.object(Res::Deployment, NS, "ac-ac-portal").unwrap()["spec"]["replicas"], 7);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gitops_revert_fault_undoes_a_scale_as_argo_cd_self_heal_does() {
    let dir = tempfile::tempdir().unwrap();
    let faults: FaultSpec = "kube=gitops:revert@prod".parse().unwrap();
    let sb = start(dir.path(), SandboxOptions { faults: Some(faults), ..SandboxOptions::default() }).await;
    let d = json_of(&sb, "prod", &["get", "deployment", RUNTIME]).await;
    assert_eq!(d["metadata"]["labels"]["app.kubernetes.io/instance"], "ac");
    assert_eq!(
        d["metadata"]["annotations"]["argocd.argoproj.io/tracking-id"],
        "ac:apps/Deployment:adeptia/ac-ac-runtime"
    );
    assert_eq!(sb.status()["environments"]["prod"]["workloads"][RUNTIME]["gitops"], "ac");
    let sts = json_of(&sb, "prod", &["get", "statefulset", "ac-ac-rabbitmq"]).await;
    assert_eq!(
        sts["metadata"]["annotations"]["argocd.argoproj.io/tracking-id"],
        "ac:apps/StatefulSet:adeptia/ac-ac-rabbitmq"
    );

    ok(&sb, "prod", &["scale", "deployment", RUNTIME, "--replicas=0"]).await;
    let scaled_at = Instant::now();
    let d = until(&sb, "prod", Res::Deployment, RUNTIME, Duration::from_secs(5), |d| d["spec"]["replicas"] == 2).await;
    assert_eq!(d["spec"]["replicas"], 2, "reverted: {d}");
    assert!(scaled_at.elapsed() < Duration::from_millis(1500), "took {:?}", scaled_at.elapsed());
    let d = json_of(&sb, "prod", &["get", "deployment", RUNTIME, "--show-managed-fields"]).await;
    assert_eq!(replicas_manager(&d), manager("argocd-controller", None), "{:#}", d["metadata"]["managedFields"]);
    // The DR cluster is not under GitOps: a scale there stays.
    let dr = json_of(&sb, "dr", &["get", "deployment", RUNTIME]).await;
    assert!(dr["metadata"]["annotations"]["argocd.argoproj.io/tracking-id"].is_null(), "{dr}");
    ok(&sb, "dr", &["scale", "deployment", RUNTIME, "--replicas=0"]).await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(sb.env("dr").unwrap().kube.object(Res::Deployment, NS, RUNTIME).unwrap()["spec"]["replicas"], 0);
}
