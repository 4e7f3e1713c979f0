//! The Kubernetes API emulation at the HTTP level: discovery forms, watches from a
//! resourceVersion, optimistic concurrency on the scale subresource, Status error bodies.

use std::time::Duration;

use drscript_sandbox::kube_api::{Delays, KubeApiServer, Seed};
use futures::StreamExt;
use serde_json::{Value, json};

async fn server() -> KubeApiServer {
    let delays = Delays { start: Duration::from_millis(100), terminate: Duration::from_millis(100) };
    KubeApiServer::start(0, None, delays, &[Seed::active("adeptia", "ac", "4.2.1")]).await.unwrap()
}

const SCALE: &str = "/apis/apps/v1/namespaces/adeptia/deployments/ac-ac-runtime/scale";

/// PATCHes the runtime's scale subresource with a body of the given content type.
async fn patch_scale(api: &KubeApiServer, content_type: &str, body: &'static str) -> reqwest::Response {
    reqwest::Client::new()
        .patch(format!("{}{SCALE}", api.url()))
        .header("Content-Type", content_type)
        .body(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_resource_version_on_scale_is_a_409_conflict() {
    let api = server().await;
    let http = reqwest::Client::new();
    let scale: Value = http.get(format!("{}{SCALE}", api.url())).send().await.unwrap().json().await.unwrap();
    assert_eq!(scale["kind"], "Scale");
    assert_eq!(scale["spec"]["replicas"], 2);
    assert_eq!(scale["status"]["selector"], "app.kubernetes.io/instance=ac,app.kubernetes.io/name=ac-runtime");
    // Someone else scales first (merge patch, no precondition).
    let r = patch_scale(&api, "application/merge-patch+json", r#"{"spec":{"replicas":1}}"#).await;
    assert_eq!(r.status(), 200);
    // Our replace carries the version we read: conflict.
    let mut stale = scale.clone();
    stale["spec"]["replicas"] = json!(0);
    let r = http.put(format!("{}{SCALE}", api.url())).json(&stale).send().await.unwrap();
    assert_eq!(r.status(), 409);
    let status: Value = r.json().await.unwrap();
    assert_eq!(status["reason"], "Conflict");
    assert!(status["message"].as_str().unwrap().contains("the object has been modified"), "{status}");
    let now: Value = http.get(format!("{}{SCALE}", api.url())).send().await.unwrap().json().await.unwrap();
    assert_eq!(now["spec"]["replicas"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_from_a_list_version_streams_the_changes_after_it() {
    let api = server().await;
    let http = reqwest::Client::new();
    let list: Value = http
        .get(format!("{}/api/v1/namespaces/adeptia/pods?labelSelector=app.kubernetes.io/name%3Dac-runtime", api.url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["kind"], "PodList");
    assert_eq!(list["items"].as_array().unwrap().len(), 2);
    let rv = list["metadata"]["resourceVersion"].as_str().unwrap().to_string();
    let watch = http
        .get(format!(
            "{}/api/v1/namespaces/adeptia/pods?watch=true&resourceVersion={rv}&labelSelector=app.kubernetes.io/name%3Dac-runtime",
            api.url()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(watch.status(), 200);
    patch_scale(&api, "application/json-patch+json", r#"[{"op":"replace","path":"/spec/replicas","value":0}]"#).await;
    let mut body = watch.bytes_stream();
    let mut buffer = String::new();
    let mut seen: Vec<(String, bool)> = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while seen.iter().filter(|(t, _)| t == "DELETED").count() < 2 {
        let chunk = tokio::time::timeout_at(deadline, body.next()).await.expect("watch events").unwrap().unwrap();
        buffer.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buffer.find('\n') {
            let line: Value = serde_json::from_str(&buffer[..end]).unwrap();
            buffer.drain(..=end);
            let terminating = !line["object"]["metadata"]["deletionTimestamp"].is_null();
            seen.push((line["type"].as_str().unwrap().to_string(), terminating));
        }
    }
    // Nothing from before the list; the pods are first marked terminating, then deleted.
    assert!(!seen.iter().any(|(t, _)| t == "ADDED"), "{seen:?}");
    let first_delete = seen.iter().position(|(t, _)| t == "DELETED").unwrap();
    assert!(seen[..first_delete].iter().any(|(t, term)| t == "MODIFIED" && *term), "{seen:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_and_errors_speak_the_api_server_dialect() {
    let api = server().await;
    let http = reqwest::Client::new();
    let aggregated = http
        .get(format!("{}/apis", api.url()))
        .header("Accept", "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json")
        .send()
        .await
        .unwrap();
    assert!(aggregated.headers()["content-type"].to_str().unwrap().contains("as=APIGroupDiscoveryList"));
    let doc: Value = aggregated.json().await.unwrap();
    let resources = &doc["items"][0]["versions"][0]["resources"];
    assert!(
        resources
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["resource"] == "deployments" && r["subresources"][0]["subresource"] == "scale")
    );
    let legacy: Value = http.get(format!("{}/apis/apps/v1", api.url())).send().await.unwrap().json().await.unwrap();
    assert!(legacy["resources"].as_array().unwrap().iter().any(|r| r["name"] == "statefulsets/scale"));
    let version: Value = http.get(format!("{}/version", api.url())).send().await.unwrap().json().await.unwrap();
    assert_eq!(version["major"], "1");

    let missing =
        http.get(format!("{}/apis/apps/v1/namespaces/adeptia/deployments/nope", api.url())).send().await.unwrap();
    assert_eq!(missing.status(), 404);
    let status: Value = missing.json().await.unwrap();
    assert_eq!(status["kind"], "Status");
    assert_eq!(status["message"], "deployments.apps \"nope\" not found");
    let apply = patch_scale(&api, "application/apply-patch+yaml", "spec: {replicas: 0}").await;
    assert_eq!(apply.status(), 415);
    let negative = patch_scale(&api, "application/merge-patch+json", r#"{"spec":{"replicas":-3}}"#).await;
    assert_eq!(negative.status(), 422);
}
