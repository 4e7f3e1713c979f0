//! The HTTP side of the Kubernetes API emulation: routing by path as the API server does
//! (`/api/v1/namespaces/NS/pods`, `/apis/apps/v1/namespaces/NS/deployments/NAME/scale`, ...),
//! bearer-token authentication, `Status` error replies, paged lists, JSON-lines watches, patches,
//! server-side dry run and the scale subresource; replicasets and events are read-only. Two sandbox-only endpoints under `/_sandbox/` serve the whole state and
//! the request log (for `drscript sandbox status` and for tests); they are not Kubernetes API.

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};

use super::auth::{self, Auth, Identity};
use super::controller::Controller;
use super::discovery;
use super::field_selector::FieldSelector;
use super::paging::{self, Snapshots};
use super::patch::{self, PatchError};
use super::selector::{Selector, selector_string};
use super::store::{Res, Store, StoreError, WatchEvent};
use super::table;
use super::validate::{self, Refusal};

const LOG_LIMIT: usize = 2000;

pub struct Api {
    pub store: Arc<Store>,
    pub controller: Arc<Controller>,
    /// The bearer tokens clients must present and who they are; none serves anyone as admin.
    pub auth: Auth,
    pub address: Mutex<String>,
    /// `METHOD /path?query`, oldest first, bounded.
    pub log: Mutex<VecDeque<String>>,
    /// Status codes to answer the next requests with, one per request (fault injection); with a
    /// method, only a request of that method takes the fault.
    pub faults: Mutex<VecDeque<(Option<String>, u16)>>,
    /// The lists a continue token may come back to.
    pub pages: Mutex<Snapshots>,
}

impl Api {
    fn record(&self, line: String) {
        let mut log = self.log.lock().unwrap_or_else(|e| e.into_inner());
        if log.len() >= LOG_LIMIT {
            log.pop_front();
        }
        log.push_back(line);
    }
}

fn json_reply(code: StatusCode, body: &Value) -> Response {
    (code, [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

/// A `Status` object, the API server's error body.
pub fn status(code: u16, reason: &str, message: &str, details: Value) -> Response {
    let body = json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message, "reason": reason, "details": details, "code": code
    });
    json_reply(StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR), &body)
}

fn not_found(res: Res, name: &str) -> Response {
    let (group, kind) = res.qualified().split_once('.').unwrap_or((res.plural(), ""));
    status(
        404,
        "NotFound",
        &format!("{} \"{name}\" not found", res.qualified()),
        json!({"name": name, "group": kind, "kind": group}),
    )
}

fn conflict(res: Res, name: &str) -> Response {
    status(
        409,
        "Conflict",
        &format!(
            "Operation cannot be fulfilled on {} \"{name}\": the object has been modified; please apply your changes to the latest version and try again",
            res.qualified()
        ),
        json!({"name": name, "kind": res.plural()}),
    )
}

fn invalid(res: Res, name: &str, field: &str, message: &str) -> Response {
    refuse(Refusal::invalid(res, name, field, "FieldValueInvalid", message))
}

fn refuse(r: Refusal) -> Response {
    status(r.code, r.reason, &r.message, r.details)
}

fn store_error(res: Res, name: &str, e: StoreError) -> Response {
    match e {
        StoreError::NotFound => not_found(res, name),
        StoreError::Conflict => conflict(res, name),
        StoreError::AlreadyExists => {
            status(409, "AlreadyExists", &format!("{} \"{name}\" already exists", res.qualified()), json!({}))
        }
        StoreError::Invalid(m) => invalid(res, name, "metadata", &m),
    }
}

fn bad_request(message: &str) -> Response {
    status(400, "BadRequest", message, json!({}))
}

pub async fn handle(
    State(api): State<Arc<Api>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_string();
    api.record(format!("{method} {}", uri.path_and_query().map_or(path.as_str(), |p| p.as_str())));
    let segments: Vec<&str> = path.trim_matches('/').split('/').filter(|s| !s.is_empty()).collect();
    if let ["_sandbox", what] = segments.as_slice() {
        return sandbox_endpoint(&api, what);
    }
    let identity = match api.auth.authenticate(headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok())) {
        Ok(identity) => identity,
        // The API server does not say why (missing, unknown or expired token).
        Err(_) => return status(401, "Unauthorized", "Unauthorized", json!({})),
    };
    let injected = {
        let mut faults = api.faults.lock().unwrap_or_else(|e| e.into_inner());
        match faults.front() {
            Some((None, _)) => faults.pop_front(),
            Some((Some(m), _)) if m == method.as_str() => faults.pop_front(),
            _ => None,
        }
    };
    if let Some((_, code)) = injected {
        let reason = match code {
            429 => "TooManyRequests",
            409 => "Conflict",
            _ => "InternalError",
        };
        return status(code, reason, &format!("injected fault {code}"), json!({"retryAfterSeconds": 0}));
    }
    let query: HashMap<String, String> =
        uri.query().map(|q| url::form_urlencoded::parse(q.as_bytes()).into_owned().collect()).unwrap_or_default();
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let protobuf = content_type.starts_with("application/vnd.kubernetes.protobuf");
    let review = segments.as_slice() == ["apis", "authorization.k8s.io", "v1", "selfsubjectaccessreviews"];
    let self_review = segments.as_slice() == ["apis", "authentication.k8s.io", "v1", "selfsubjectreviews"];
    if protobuf && !review && !self_review {
        // What an API server without protobuf for a type answers; client-go then sends JSON.
        return status(
            415,
            "UnsupportedMediaType",
            &format!(
                "the body of the request was in an unknown format - accepted media types include: application/json (got `{content_type}`)"
            ),
            json!({}),
        );
    }
    let address = api.address.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let get = method == Method::GET;
    let request = || Request {
        identity: &identity,
        method: &method,
        query: &query,
        accept: &accept,
        content_type: &content_type,
        body: &body,
    };
    match segments.as_slice() {
        ["version"] if get => json_reply(StatusCode::OK, &discovery::version()),
        ["healthz" | "livez" | "readyz"] if get => (StatusCode::OK, "ok").into_response(),
        ["api"] if get && discovery::wants_aggregated(&accept) => aggregated(true),
        ["apis"] if get && discovery::wants_aggregated(&accept) => aggregated(false),
        ["api"] if get => json_reply(StatusCode::OK, &discovery::api_versions(&address)),
        ["apis"] if get => json_reply(StatusCode::OK, &discovery::api_group_list()),
        ["apis", "apps"] if get => json_reply(StatusCode::OK, &discovery::api_group()),
        ["api", "v1"] if get => json_reply(StatusCode::OK, &discovery::resource_list("")),
        ["apis", "apps", "v1"] if get => json_reply(StatusCode::OK, &discovery::resource_list("apps")),
        ["openapi", ..] => status(
            404,
            "NotFound",
            "the drscript sandbox does not serve OpenAPI documents: `kubectl apply` needs --validate=false \
             (client-side apply then works through strategic merge patch); server-side apply is not supported",
            json!({}),
        ),
        ["api", "v1", "namespaces", ns] if get => namespace(&api, ns),
        ["apis", "authorization.k8s.io", "v1", "selfsubjectaccessreviews"] if method == Method::POST => {
            let request = if protobuf {
                super::protobuf::access_review(&body).ok_or_else(|| "not a SelfSubjectAccessReview".to_string())
            } else {
                serde_json::from_slice::<Value>(&body).map_err(|e| e.to_string())
            };
            match request {
                Ok(request) => json_reply(StatusCode::CREATED, &auth::access_review(&identity, &request)),
                Err(e) => bad_request(&format!("invalid SelfSubjectAccessReview: {e}")),
            }
        }
        ["apis", "authentication.k8s.io", "v1", "selfsubjectreviews"] if method == Method::POST => {
            json_reply(StatusCode::CREATED, &auth::self_review(&identity))
        }
        ["api", "v1", rest @ ..] => resource(&api, "", rest, &request()),
        ["apis", "apps", "v1", rest @ ..] => resource(&api, "apps", rest, &request()),
        _ => status(404, "NotFound", "the server could not find the requested resource", json!({})),
    }
}

fn aggregated(core: bool) -> Response {
    let body = discovery::aggregated(core).to_string();
    (StatusCode::OK, [(header::CONTENT_TYPE, discovery::AGGREGATED)], body).into_response()
}

fn sandbox_endpoint(api: &Api, what: &str) -> Response {
    match what {
        "state" => {
            let objects: Vec<Value> =
                api.store.all().into_iter().filter(|((r, _, _), _)| *r != Res::Event).map(|(_, v)| v).collect();
            json_reply(
                StatusCode::OK,
                &json!({
                    "resourceVersion": api.store.resource_version(), "delays": api.controller.delays(),
                    "stuck": api.controller.stuck().into_iter()
                        .map(|((ns, w), r)| json!({"namespace": ns, "workload": w, "reason": r.name()}))
                        .collect::<Vec<_>>(),
                    "objects": objects
                }),
            )
        }
        "requests" => {
            let log: Vec<String> = api.log.lock().unwrap_or_else(|e| e.into_inner()).iter().cloned().collect();
            json_reply(StatusCode::OK, &json!(log))
        }
        _ => status(404, "NotFound", "unknown sandbox endpoint", json!({})),
    }
}

fn namespace(api: &Api, ns: &str) -> Response {
    let exists = api.store.all().iter().any(|((_, n, _), _)| n == ns);
    if !exists {
        return status(
            404,
            "NotFound",
            &format!("namespaces \"{ns}\" not found"),
            json!({"name": ns, "kind": "namespaces"}),
        );
    }
    json_reply(
        StatusCode::OK,
        &json!({"kind": "Namespace", "apiVersion": "v1", "metadata": {"name": ns}, "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}),
    )
}

/// One resource request, as routed.
struct Request<'a> {
    identity: &'a Identity,
    method: &'a Method,
    query: &'a HashMap<String, String>,
    accept: &'a str,
    content_type: &'a str,
    body: &'a [u8],
}

/// The RBAC verb of a request: `get`/`list`/`watch` for reads, `patch`, `update`, `delete`, `create`.
fn verb(method: &Method, named: bool, watch: bool) -> &'static str {
    match method.as_str() {
        "GET" if watch => "watch",
        "GET" if named => "get",
        "GET" => "list",
        "PATCH" => "patch",
        "PUT" => "update",
        "DELETE" => "delete",
        _ => "create",
    }
}

fn resource(api: &Arc<Api>, group: &str, rest: &[&str], request: &Request) -> Response {
    let Request { identity, method, query, accept, content_type, body } = *request;
    let (ns, plural, name, sub) = match rest {
        [plural] => (None, *plural, None, None),
        ["namespaces", ns, plural] => (Some(*ns), *plural, None, None),
        ["namespaces", ns, plural, name] => (Some(*ns), *plural, Some(*name), None),
        ["namespaces", ns, plural, name, sub] => (Some(*ns), *plural, Some(*name), Some(*sub)),
        _ => return status(404, "NotFound", "the server could not find the requested resource", json!({})),
    };
    let Some(res) = Res::from_plural(plural).filter(|r| r.group() == group) else {
        return status(404, "NotFound", "the server could not find the requested resource", json!({}));
    };
    let watching = matches!(query.get("watch").map(String::as_str), Some("true" | "1"));
    let verb = verb(method, name.is_some(), watching);
    let resource_name = match sub {
        Some(s) => format!("{plural}/{s}"),
        None => plural.to_string(),
    };
    if !identity.may(verb, group, &resource_name) {
        let message = auth::forbidden_message(&identity.user, verb, group, &resource_name, ns);
        let message = match name {
            Some(n) => format!("{} \"{n}\" is forbidden: {message}", res.qualified()),
            None => format!("{} is forbidden: {message}", res.qualified()),
        };
        return status(
            403,
            "Forbidden",
            &message,
            json!({"name": name.unwrap_or_default(), "group": group, "kind": plural}),
        );
    }
    let options_kind = match method.as_str() {
        "PATCH" => "PatchOptions",
        "PUT" => "UpdateOptions",
        "DELETE" => "DeleteOptions",
        _ => "CreateOptions",
    };
    // A DELETE carries its options (dryRun among them) in a DeleteOptions body, as kubectl sends it.
    let body_dry_run = if *method == Method::DELETE && !body.is_empty() {
        match serde_json::from_slice::<Value>(body) {
            Ok(options) => {
                options["dryRun"].as_array().and_then(|a| a.first()).and_then(Value::as_str).map(str::to_string)
            }
            Err(e) => return bad_request(&format!("invalid DeleteOptions body: {e}")),
        }
    } else {
        None
    };
    let dry_run = if *method == Method::GET {
        false
    } else {
        match validate::dry_run(query.get("dryRun").map(String::as_str).or(body_dry_run.as_deref()), options_kind) {
            Ok(d) => d,
            Err(r) => return refuse(r),
        }
    };
    match (method.as_str(), name, sub) {
        ("GET", None, None) if watching => watch(api, res, ns, query, table::wants_table(accept)),
        ("GET", None, None) => list(api, res, ns, query, accept),
        (_, Some(_), _) if ns.is_none() => bad_request("a namespace is required"),
        ("GET", Some(name), None) => match api.store.get(res, ns.unwrap_or_default(), name) {
            Some(o) if table::wants_table(accept) => {
                json_reply(StatusCode::OK, &table::table(res, &[o], api.store.resource_version()))
            }
            Some(o) => json_reply(StatusCode::OK, &o),
            None => not_found(res, name),
        },
        ("DELETE", Some(name), None) if res == Res::Pod => {
            let ns = ns.unwrap_or_default();
            match api.store.get(res, ns, name) {
                Some(pod) if dry_run => json_reply(StatusCode::OK, &pod),
                Some(_) => {
                    api.controller.terminate(ns, name);
                    json_reply(StatusCode::OK, &api.store.get(res, ns, name).unwrap_or(Value::Null))
                }
                None => not_found(res, name),
            }
        }
        ("PATCH" | "PUT", Some(name), None) if res.is_workload() => {
            let write = Write { method, content_type, body, dry_run };
            write_workload(api, res, ns.unwrap_or_default(), name, &write)
        }
        (_, Some(name), Some("scale")) if res.is_workload() => {
            let write = Write { method, content_type, body, dry_run };
            scale(api, res, ns.unwrap_or_default(), name, &write)
        }
        _ => status(
            405,
            "MethodNotAllowed",
            &format!(
                "{method} is not supported on {}{} by the drscript sandbox (see docs/sandbox-kubernetes.md)",
                res.qualified(),
                sub.map(|s| format!("/{s}")).unwrap_or_default()
            ),
            json!({"kind": res.plural(), "group": res.group()}),
        ),
    }
}

/// One write request's body and how to apply it.
struct Write<'a> {
    method: &'a Method,
    content_type: &'a str,
    body: &'a [u8],
    dry_run: bool,
}

impl Write<'_> {
    /// The object as the request wants it: `current` patched, or the body of a PUT.
    #[allow(clippy::result_large_err)]
    fn desired(&self, current: &Value) -> Result<Value, Response> {
        match self.method.as_str() {
            "PATCH" => {
                let mut patched = current.clone();
                patch::apply(self.content_type, &mut patched, self.body).map_err(patch_error)?;
                Ok(patched)
            }
            "PUT" => {
                serde_json::from_slice::<Value>(self.body).map_err(|e| bad_request(&format!("invalid JSON body: {e}")))
            }
            m => Err(status(405, "MethodNotAllowed", &format!("{m} is not supported here"), json!({}))),
        }
    }
}

// The error is the finished reply; boxing it would only move the allocation.
#[allow(clippy::result_large_err)]
fn selectors(res: Res, query: &HashMap<String, String>) -> Result<(Selector, FieldSelector), Response> {
    let labels = Selector::parse(query.get("labelSelector").map_or("", String::as_str)).map_err(|e| bad_request(&e))?;
    let fields = FieldSelector::parse(res, query.get("fieldSelector").map_or("", String::as_str))
        .map_err(|e| bad_request(&e))?;
    Ok((labels, fields))
}

fn expired_continue() -> Response {
    status(
        410,
        "Expired",
        "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.",
        json!({}),
    )
}

fn list(api: &Api, res: Res, ns: Option<&str>, query: &HashMap<String, String>, accept: &str) -> Response {
    let (labels, fields) = match selectors(res, query) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let limit = match query.get("limit").map(|l| l.parse::<i64>()) {
        None => None,
        Some(Ok(n)) if n > 0 => Some(n as usize),
        Some(Ok(_)) => None,
        Some(Err(_)) => return bad_request(&format!("invalid limit `{}`", query["limit"])),
    };
    let (all, rv, start_after) = match query.get("continue").filter(|c| !c.is_empty()) {
        None => {
            let (items, rv) = api.store.list(res, ns);
            (items, rv, None)
        }
        Some(token) => {
            if query.get("resourceVersion").is_some_and(|v| !v.is_empty() && v != "0") {
                return bad_request("specifying resource version is not allowed when using continue");
            }
            let (rv, start) = match paging::decode(token) {
                Ok(t) => t,
                Err(e) => return bad_request(&format!("invalid continue token: {e}")),
            };
            let pages = api.pages.lock().unwrap_or_else(|e| e.into_inner());
            match pages.find(rv, res, ns) {
                Some(items) => (items, rv, Some(start)),
                None => return expired_continue(),
            }
        }
    };
    let selected = |o: &&Value| labels.matches(&o["metadata"]["labels"]) && fields.matches(o);
    let remaining_all: Vec<&Value> =
        all.iter().filter(|o| start_after.as_ref().is_none_or(|s| paging::key_of(o) > *s)).filter(selected).collect();
    let (page, more) = match limit {
        Some(n) if remaining_all.len() > n => (&remaining_all[..n], remaining_all.len() - n),
        _ => (&remaining_all[..], 0),
    };
    let items: Vec<Value> = page.iter().map(|o| (*o).clone()).collect();
    let mut metadata = json!({"resourceVersion": rv.to_string()});
    if more > 0 {
        api.pages.lock().unwrap_or_else(|e| e.into_inner()).keep(rv, res, ns, &all);
        metadata["continue"] = json!(paging::encode(rv, &paging::key_of(&items[items.len() - 1])));
        // The real server counts what is left only when no selector filters the list.
        if !query.contains_key("labelSelector") && !query.contains_key("fieldSelector") {
            metadata["remainingItemCount"] = json!(more);
        }
    }
    if table::wants_table(accept) {
        let mut t = table::table(res, &items, rv);
        if let Some(c) = metadata.get("continue") {
            t["metadata"]["continue"] = c.clone();
        }
        return json_reply(StatusCode::OK, &t);
    }
    json_reply(
        StatusCode::OK,
        &json!({
            "kind": format!("{}List", res.kind()), "apiVersion": res.api_version(),
            "metadata": metadata, "items": items
        }),
    )
}

/// `as_table`: each event carries a one-row Table (what `kubectl get -w` asks for); the column
/// definitions come with the first event only, as from a real server.
fn watch(api: &Api, res: Res, ns: Option<&str>, query: &HashMap<String, String>, as_table: bool) -> Response {
    let (labels, fields) = match selectors(res, query) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let since = match query.get("resourceVersion").map(String::as_str) {
        None | Some("" | "0") => None,
        Some(v) => match v.parse::<u64>() {
            Ok(n) => Some(n),
            Err(_) => return bad_request(&format!("invalid resourceVersion `{v}`")),
        },
    };
    let timeout = query
        .get("timeoutSeconds")
        .and_then(|t| t.parse::<u64>().ok())
        .map_or(Duration::from_secs(1800), Duration::from_secs);
    let (backlog, start_rv, mut events) = api.store.watch(res, since);
    let ns = ns.map(str::to_string);
    let keep = move |e: &WatchEvent| {
        e.res == res
            && ns.as_deref().is_none_or(|ns| e.object["metadata"]["namespace"].as_str() == Some(ns))
            && labels.matches(&e.object["metadata"]["labels"])
            && fields.matches(&e.object)
    };
    let (tx, rx) = mpsc::channel::<Bytes>(256);
    tokio::spawn(async move {
        let mut first = true;
        let mut line = move |e: &WatchEvent| {
            let object = if as_table {
                let mut t = table::table(res, std::slice::from_ref(&*e.object), e.rv);
                if !std::mem::take(&mut first) {
                    t["columnDefinitions"] = json!([]);
                }
                t
            } else {
                (*e.object).clone()
            };
            Bytes::from(format!("{}\n", json!({"type": e.kind.name(), "object": object})))
        };
        let Some(backlog) = backlog else {
            let gone = json!({"type": "ERROR", "object": {
                "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": "too old resource version", "reason": "Expired", "code": 410}});
            let _ = tx.send(Bytes::from(format!("{gone}\n"))).await;
            return;
        };
        for e in backlog.iter().filter(|e| keep(e)) {
            if tx.send(line(e)).await.is_err() {
                return;
            }
        }
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                () = &mut deadline => return,
                () = tx.closed() => return,
                received = events.recv() => match received {
                    Ok(e) if e.rv > start_rv && keep(&e) => {
                        if tx.send(line(&e)).await.is_err() {
                            return;
                        }
                    }
                    Ok(_) => {}
                    // A slow client is cut off; it lists and watches again, as with a real server.
                    Err(broadcast::error::RecvError::Lagged(_) | broadcast::error::RecvError::Closed) => return,
                },
            }
        }
    });
    let stream =
        futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|b| (Ok::<_, Infallible>(b), rx)) });
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CACHE_CONTROL, "no-cache, private")
        .body(Body::from_stream(stream))
        .unwrap_or_else(|_| status(500, "InternalError", "cannot build watch response", json!({})))
}

/// `default` stands in for an absent count: 1 for a workload (API defaulting), 0 for a Scale
/// (Go clients omit a zero `replicas`).
#[allow(clippy::result_large_err)]
fn check_replicas(res: Res, name: &str, value: &Value, default: i64) -> Result<i64, Response> {
    match value.as_i64() {
        Some(n) if n >= 0 && n <= i64::from(i32::MAX) => Ok(n),
        Some(n) => {
            Err(invalid(res, name, "spec.replicas", &format!("Invalid value: {n}: must be greater than or equal to 0")))
        }
        None if value.is_null() => Ok(default),
        None => Err(bad_request(&format!("spec.replicas: expected an integer, got {value}"))),
    }
}

fn patch_error(e: PatchError) -> Response {
    match e {
        PatchError::Unsupported(m) => status(415, "UnsupportedMediaType", &m, json!({})),
        PatchError::Invalid(m) => status(422, "Invalid", &m, json!({})),
    }
}

fn rv_of(object: &Value) -> Option<String> {
    object["metadata"]["resourceVersion"].as_str().map(str::to_string)
}

fn write_workload(api: &Api, res: Res, ns: &str, name: &str, write: &Write) -> Response {
    let Some(current) = api.store.get(res, ns, name) else { return not_found(res, name) };
    let desired = match write.desired(&current) {
        Ok(d) => d,
        Err(r) => return r,
    };
    if let Err(r) = validate::same_object(ns, name, &desired) {
        return refuse(r);
    }
    if let Err(r) = check_replicas(res, name, &desired["spec"]["replicas"], 1) {
        return r;
    }
    let mut next = current.clone();
    next["spec"] = desired["spec"].clone();
    if next["spec"]["replicas"].is_null() {
        next["spec"]["replicas"] = json!(1);
    }
    if let Err(r) = validate::workload_update(res, name, &current, &next) {
        return refuse(r);
    }
    let expected = rv_of(&desired);
    let change = |o: &mut Value| {
        o["spec"] = next["spec"].clone();
        for field in ["labels", "annotations"] {
            o["metadata"][field] = desired["metadata"][field].clone();
        }
        Ok(())
    };
    let result = if write.dry_run {
        api.store.preview(res, ns, name, expected.as_deref(), change)
    } else {
        api.store.update(res, ns, name, expected.as_deref(), change)
    };
    match result {
        Ok(updated) => {
            if !write.dry_run {
                api.controller.enqueue(res, ns, name);
            }
            json_reply(StatusCode::OK, &updated)
        }
        Err(e) => store_error(res, name, e),
    }
}

fn scale_of(workload: &Value) -> Value {
    let meta = &workload["metadata"];
    json!({
        "kind": "Scale", "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": meta["name"], "namespace": meta["namespace"], "uid": meta["uid"],
            "resourceVersion": meta["resourceVersion"], "creationTimestamp": meta["creationTimestamp"]
        },
        "spec": {"replicas": workload["spec"]["replicas"].as_i64().unwrap_or(1)},
        "status": {
            "replicas": workload["status"]["replicas"].as_i64().unwrap_or(0),
            "selector": selector_string(&workload["spec"]["selector"])
        }
    })
}

fn scale(api: &Api, res: Res, ns: &str, name: &str, write: &Write) -> Response {
    let Some(current) = api.store.get(res, ns, name) else { return not_found(res, name) };
    let current_scale = scale_of(&current);
    if *write.method == Method::GET {
        return json_reply(StatusCode::OK, &current_scale);
    }
    let desired = match write.desired(&current_scale) {
        Ok(d) => d,
        Err(r) => return r,
    };
    if let Err(r) = validate::same_object(ns, name, &desired) {
        return refuse(r);
    }
    let replicas = match check_replicas(res, name, &desired["spec"]["replicas"], 0) {
        Ok(n) => n,
        Err(r) => return r,
    };
    let expected = rv_of(&desired);
    let change = |o: &mut Value| {
        o["spec"]["replicas"] = json!(replicas);
        Ok(())
    };
    let result = if write.dry_run {
        api.store.preview(res, ns, name, expected.as_deref(), change)
    } else {
        api.store.update(res, ns, name, expected.as_deref(), change)
    };
    match result {
        Ok(updated) => {
            if !write.dry_run {
                api.controller.enqueue(res, ns, name);
            }
            json_reply(StatusCode::OK, &scale_of(&updated))
        }
        Err(e) => store_error(res, name, e),
    }
}
