//! The HTTP side of the Kubernetes API emulation: routing by path as the API server does
//! (`/api/v1/namespaces/NS/pods`, `/apis/apps/v1/namespaces/NS/deployments/NAME/scale`,
//! `/apis/autoscaling/v2/...`), bearer-token authentication and RBAC per verb, `Status` error
//! replies, paged lists, JSON-lines watches, patches, server-side dry run and the scale
//! subresource; config maps, secrets and HPAs are also created (201, 409 `AlreadyExists`),
//! replaced, deleted one by one or as a collection (`deletecollection`), and an HPA's `status`
//! subresource is served. Writes record `managedFields` (`managed.rs`) under the request's
//! `fieldManager` or User-Agent. Replicasets and events are read-only; pods are only deleted.
//! Two sandbox-only endpoints under `/_sandbox/` serve the whole state (secrets left out) and the
//! request log (for `drscript sandbox status` and for tests); they are not Kubernetes API.

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
use super::managed::{self, Writer};
use super::objects;
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
        StoreError::AlreadyExists => status(
            409,
            "AlreadyExists",
            &format!("{} \"{name}\" already exists", res.qualified()),
            group_details(res, name),
        ),
        StoreError::Invalid(m) => invalid(res, name, "metadata", &m),
    }
}

/// `details` of a Status about one object: its name, group (when not core) and resource.
fn group_details(res: Res, name: &str) -> Value {
    let mut details = json!({"name": name, "kind": res.plural()});
    if !res.group().is_empty() {
        details["group"] = json!(res.group());
    }
    details
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
    let user_agent = headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let protobuf = content_type.starts_with("application/vnd.kubernetes.protobuf");
    let review = segments.as_slice() == ["apis", "authorization.k8s.io", "v1", "selfsubjectaccessreviews"];
    let self_review = segments.as_slice() == ["apis", "authentication.k8s.io", "v1", "selfsubjectreviews"];
    // kubectl's typed clients send config maps, secrets and HPAs as protobuf: read as JSON.
    let decoded = if protobuf { protobuf_object(&segments, &body) } else { None };
    let (body, content_type, protobuf) = match decoded {
        Some(json) => (Bytes::from(json.to_string()), "application/json".to_string(), false),
        None => (body, content_type, protobuf),
    };
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
        user_agent: &user_agent,
        body: &body,
    };
    match segments.as_slice() {
        ["version"] if get => json_reply(StatusCode::OK, &discovery::version()),
        ["healthz" | "livez" | "readyz"] if get => (StatusCode::OK, "ok").into_response(),
        ["api"] if get && discovery::wants_aggregated(&accept) => aggregated(true),
        ["apis"] if get && discovery::wants_aggregated(&accept) => aggregated(false),
        ["api"] if get => json_reply(StatusCode::OK, &discovery::api_versions(&address)),
        ["apis"] if get => json_reply(StatusCode::OK, &discovery::api_group_list()),
        ["apis", group] if get => match discovery::api_group(group) {
            Some(g) => json_reply(StatusCode::OK, &g),
            None => status(404, "NotFound", "the server could not find the requested resource", json!({})),
        },
        ["api", "v1"] if get => json_reply(StatusCode::OK, &discovery::resource_list("", "v1")),
        ["apis", group, version] if get && discovery::is_group_version(group, version) => {
            json_reply(StatusCode::OK, &discovery::resource_list(group, version))
        }
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
        ["api", "v1", rest @ ..] => resource(&api, ("", "v1"), rest, &request()),
        ["apis", group, version, rest @ ..] if discovery::is_group_version(group, version) => {
            resource(&api, (group, version), rest, &request())
        }
        _ => status(404, "NotFound", "the server could not find the requested resource", json!({})),
    }
}

/// A protobuf body of a config map, secret or HPA write, as JSON.
fn protobuf_object(segments: &[&str], body: &[u8]) -> Option<Value> {
    let (version, plural) = match segments {
        ["api", "v1", "namespaces", _, plural, ..] => ("v1", *plural),
        ["apis", "autoscaling", version, "namespaces", _, plural, ..] => (*version, *plural),
        _ => return None,
    };
    super::protobuf::object(plural, version, body)
}

fn aggregated(core: bool) -> Response {
    let body = discovery::aggregated(core).to_string();
    (StatusCode::OK, [(header::CONTENT_TYPE, discovery::AGGREGATED)], body).into_response()
}

fn sandbox_endpoint(api: &Api, what: &str) -> Response {
    match what {
        "state" => {
            // Secrets are not shown on this endpoint, which asks for no token.
            let objects: Vec<Value> = api
                .store
                .all()
                .into_iter()
                .filter(|((r, _, _), _)| !matches!(r, Res::Event | Res::Secret))
                .map(|(_, v)| v)
                .collect();
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
    user_agent: &'a str,
    body: &'a [u8],
}

impl Request<'_> {
    /// Who the write is recorded as in `managedFields`.
    fn writer(&self) -> Writer {
        Writer::of_request(self.query.get("fieldManager").map(String::as_str), self.user_agent)
    }
}

/// The RBAC verb of a request: `get`/`list`/`watch` for reads, `patch`, `update`, `delete`, `create`.
fn verb(method: &Method, named: bool, watch: bool) -> &'static str {
    match method.as_str() {
        "GET" if watch => "watch",
        "GET" if named => "get",
        "GET" => "list",
        "PATCH" => "patch",
        "PUT" => "update",
        "DELETE" if named => "delete",
        "DELETE" => "deletecollection",
        _ => "create",
    }
}

fn resource(api: &Arc<Api>, (group, version): (&str, &str), rest: &[&str], request: &Request) -> Response {
    let Request { identity, method, query, accept, content_type, body, .. } = *request;
    let (ns, plural, name, sub) = match rest {
        [plural] => (None, *plural, None, None),
        ["namespaces", ns, plural] => (Some(*ns), *plural, None, None),
        ["namespaces", ns, plural, name] => (Some(*ns), *plural, Some(*name), None),
        ["namespaces", ns, plural, name, sub] => (Some(*ns), *plural, Some(*name), Some(*sub)),
        _ => return status(404, "NotFound", "the server could not find the requested resource", json!({})),
    };
    let Some(res) = Res::from_plural(plural).filter(|_| discovery::serves(group, version, plural)) else {
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
    let write = Write { method, content_type, body, dry_run };
    match (method.as_str(), name, sub) {
        ("GET", None, None) if watching => watch(api, (res, version), ns, query, table::wants_table(accept)),
        ("GET", None, None) => list(api, (res, version), ns, query, accept),
        (_, Some(_), _) if ns.is_none() => bad_request("a namespace is required"),
        ("GET", Some(name), None | Some("status")) if sub.is_none() || res == Res::HorizontalPodAutoscaler => {
            match api.store.get(res, ns.unwrap_or_default(), name) {
                Some(o) if table::wants_table(accept) => {
                    json_reply(StatusCode::OK, &table::table(res, &[o], api.store.resource_version()))
                }
                Some(o) => json_reply(StatusCode::OK, &objects::present(res, version, &o)),
                None => not_found(res, name),
            }
        }
        ("POST", None, None) if res.is_object() => match ns {
            Some(ns) => create(api, (res, version), ns, request, &write),
            None => bad_request("a namespace is required"),
        },
        ("PUT" | "PATCH", Some(name), None) if res.is_object() => {
            replace(api, (res, version), ns.unwrap_or_default(), name, request, &write)
        }
        ("PUT" | "PATCH", Some(name), Some("status")) if res == Res::HorizontalPodAutoscaler => {
            replace_status(api, version, ns.unwrap_or_default(), name, &write)
        }
        ("DELETE", Some(name), None) if res.is_object() => delete(api, res, ns.unwrap_or_default(), name, &write),
        ("DELETE", None, None) if res.is_object() => delete_collection(api, (res, version), ns, query, dry_run),
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
            write_workload(api, res, ns.unwrap_or_default(), name, &write, &request.writer())
        }
        (_, Some(name), Some("scale")) if res.is_workload() => {
            scale(api, res, ns.unwrap_or_default(), name, &write, &request.writer().on("scale"))
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

/// `v1`, `apps/v1`, `autoscaling/v1`: what a client of `version` of `res`'s group is answered in.
fn api_version_of(res: Res, version: &str) -> String {
    if res.group().is_empty() { version.to_string() } else { format!("{}/{version}", res.group()) }
}

fn list(
    api: &Api,
    (res, version): (Res, &str),
    ns: Option<&str>,
    query: &HashMap<String, String>,
    accept: &str,
) -> Response {
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
    let items: Vec<Value> = page.iter().map(|o| objects::present(res, version, o)).collect();
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
            "kind": format!("{}List", res.kind()), "apiVersion": api_version_of(res, version),
            "metadata": metadata, "items": items
        }),
    )
}

/// `as_table`: each event carries a one-row Table (what `kubectl get -w` asks for); the column
/// definitions come with the first event only, as from a real server.
fn watch(
    api: &Api,
    (res, version): (Res, &str),
    ns: Option<&str>,
    query: &HashMap<String, String>,
    as_table: bool,
) -> Response {
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
    let version = version.to_string();
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
                objects::present(res, &version, &e.object)
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

/// The resourceVersion a write must find: a PUT's, or the one a patch sets (a patch that leaves
/// it alone applies to whatever is stored, as the API server retries it on a conflict).
fn precondition(write: &Write, current: &Value, desired: &Value) -> Option<String> {
    let wanted = rv_of(desired);
    match write.method.as_str() {
        "PATCH" if wanted == rv_of(current) => None,
        _ => wanted,
    }
}

fn write_workload(api: &Api, res: Res, ns: &str, name: &str, write: &Write, writer: &Writer) -> Response {
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
    let expected = precondition(write, &current, &desired);
    let change = |o: &mut Value| {
        let before = o.clone();
        o["spec"] = next["spec"].clone();
        for field in ["labels", "annotations"] {
            o["metadata"][field] = desired["metadata"][field].clone();
        }
        managed::record(res, res.api_version(), Some(&before), o, writer);
        Ok(())
    };
    let result = api.store.apply(write.dry_run, res, ns, name, expected.as_deref(), change);
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

fn scale(api: &Api, res: Res, ns: &str, name: &str, write: &Write, writer: &Writer) -> Response {
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
    let expected = precondition(write, &current_scale, &desired);
    let change = |o: &mut Value| {
        let before = o.clone();
        o["spec"]["replicas"] = json!(replicas);
        managed::record(res, res.api_version(), Some(&before), o, writer);
        Ok(())
    };
    let result = api.store.apply(write.dry_run, res, ns, name, expected.as_deref(), change);
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

/// A reply with `Warning` headers (`299 - "unknown field \"x\""`), as the API server sends them.
fn with_warnings(mut reply: Response, warnings: &[String]) -> Response {
    for w in warnings {
        if let Ok(v) = header::HeaderValue::from_str(&format!("299 - {w:?}")) {
            reply.headers_mut().append("Warning", v);
        }
    }
    reply
}

/// A name for `generateName`: the prefix and five characters, as the API server makes it.
fn generated_name(prefix: &str) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let suffix: String = (0..5).map(|_| ALPHABET[rand::random_range(0..ALPHABET.len())] as char).collect();
    format!("{prefix}{suffix}")
}

/// POST of a config map, secret or HPA: 201 with the stored object, 409 `AlreadyExists`.
fn create(api: &Api, (res, version): (Res, &str), ns: &str, request: &Request, write: &Write) -> Response {
    // The emulation has no Namespace objects: a namespace exists while something is in it.
    if !api.store.all().iter().any(|((_, n, _), _)| n == ns) {
        return status(
            404,
            "NotFound",
            &format!("namespaces \"{ns}\" not found"),
            json!({"name": ns, "kind": "namespaces"}),
        );
    }
    let mut body: Value = match serde_json::from_slice(write.body) {
        Ok(b) => b,
        Err(e) => return bad_request(&format!("the body of the request could not be decoded as JSON: {e}")),
    };
    let warnings = match objects::field_validation(res, request.query.get("fieldValidation").map(String::as_str), &body)
    {
        Ok(w) => w,
        Err(r) => return refuse(r),
    };
    if body["metadata"]["name"].as_str().is_none_or(str::is_empty)
        && let Some(prefix) = body["metadata"]["generateName"].as_str().filter(|p| !p.is_empty())
    {
        body["metadata"]["name"] = json!(generated_name(prefix));
    }
    let mut object = match objects::prepare(res, version, ns, body, None) {
        Ok(o) => o,
        Err(r) => return refuse(r),
    };
    let name = object["metadata"]["name"].as_str().unwrap_or_default().to_string();
    // Field sets are recorded in the stored version's terms (a v1 HPA write too).
    managed::record(res, res.api_version(), None, &mut object, &request.writer());
    let created = if write.dry_run {
        match api.store.get(res, ns, &name) {
            Some(_) => Err(StoreError::AlreadyExists),
            None => {
                object["apiVersion"] = json!(res.api_version());
                object["kind"] = json!(res.kind());
                object["metadata"]["creationTimestamp"] = json!(super::store::now());
                Ok(object)
            }
        }
    } else {
        api.store.create(res, object)
    };
    match created {
        Ok(o) => with_warnings(json_reply(StatusCode::CREATED, &objects::present(res, version, &o)), &warnings),
        Err(e) => store_error(res, &name, e),
    }
}

/// PUT or PATCH of a config map, secret or HPA: the whole object but its status.
fn replace(api: &Api, (res, version): (Res, &str), ns: &str, name: &str, request: &Request, write: &Write) -> Response {
    let Some(current) = api.store.get(res, ns, name) else { return not_found(res, name) };
    let shown = objects::present(res, version, &current);
    let desired = match write.desired(&shown) {
        Ok(d) => d,
        Err(r) => return r,
    };
    let warnings = if *write.method == Method::PUT {
        match objects::field_validation(res, request.query.get("fieldValidation").map(String::as_str), &desired) {
            Ok(w) => w,
            Err(r) => return refuse(r),
        }
    } else {
        Vec::new()
    };
    if let Err(r) = validate::same_object(ns, name, &desired) {
        return refuse(r);
    }
    let expected = precondition(write, &shown, &desired);
    let next = match objects::prepare(res, version, ns, desired, Some(&current)) {
        Ok(o) => o,
        Err(r) => return refuse(r),
    };
    let writer = request.writer();
    let change = |o: &mut Value| {
        let before = o.clone();
        *o = next.clone();
        managed::record(res, res.api_version(), Some(&before), o, &writer);
        Ok(())
    };
    let result = api.store.apply(write.dry_run, res, ns, name, expected.as_deref(), change);
    match result {
        Ok(o) => with_warnings(json_reply(StatusCode::OK, &objects::present(res, version, &o)), &warnings),
        Err(e) => store_error(res, name, e),
    }
}

/// PUT or PATCH of an HPA's `status` subresource: the status only.
fn replace_status(api: &Api, version: &str, ns: &str, name: &str, write: &Write) -> Response {
    let res = Res::HorizontalPodAutoscaler;
    let Some(current) = api.store.get(res, ns, name) else { return not_found(res, name) };
    let shown = objects::present(res, version, &current);
    let desired = match write.desired(&shown) {
        Ok(d) => d,
        Err(r) => return r,
    };
    if let Err(r) = validate::same_object(ns, name, &desired) {
        return refuse(r);
    }
    let expected = precondition(write, &shown, &desired);
    // A v1 status carries no conditions: those stay as stored.
    let status = if version == "v1" {
        let mut s = current["status"].clone();
        for field in ["currentReplicas", "desiredReplicas", "lastScaleTime", "observedGeneration"] {
            s[field] = desired["status"][field].clone();
        }
        s
    } else {
        desired["status"].clone()
    };
    let change = |o: &mut Value| {
        o["status"] = status.clone();
        Ok(())
    };
    let result = api.store.apply(write.dry_run, res, ns, name, expected.as_deref(), change);
    match result {
        Ok(o) => json_reply(StatusCode::OK, &objects::present(res, version, &o)),
        Err(e) => store_error(res, name, e),
    }
}

/// The `preconditions` of a DELETE's `DeleteOptions` body.
#[allow(clippy::result_large_err)]
fn delete_preconditions(res: Res, name: &str, body: &[u8], stored: &Value) -> Result<(), Response> {
    if body.is_empty() {
        return Ok(());
    }
    let options: Value =
        serde_json::from_slice(body).map_err(|e| bad_request(&format!("invalid DeleteOptions body: {e}")))?;
    let wanted = &options["preconditions"];
    let failed = |what: &str, wanted: &str, actual: &str| {
        status(
            409,
            "Conflict",
            &format!(
                "Operation cannot be fulfilled on {} \"{name}\": Precondition failed: {what} in precondition: {wanted}, {what} in object meta: {actual}",
                res.qualified()
            ),
            group_details(res, name),
        )
    };
    for (field, what) in [("uid", "UID"), ("resourceVersion", "ResourceVersion")] {
        if let Some(w) = wanted[field].as_str().filter(|w| !w.is_empty()) {
            let actual = stored["metadata"][field].as_str().unwrap_or_default();
            if w != actual {
                return Err(failed(what, w, actual));
            }
        }
    }
    Ok(())
}

/// DELETE of a config map, secret or HPA: a `Status` of success naming what went, as the API
/// server answers for objects deleted at once.
fn delete(api: &Api, res: Res, ns: &str, name: &str, write: &Write) -> Response {
    let Some(current) = api.store.get(res, ns, name) else { return not_found(res, name) };
    if let Err(r) = delete_preconditions(res, name, write.body, &current) {
        return r;
    }
    let deleted = if write.dry_run { Ok(current) } else { api.store.delete(res, ns, name) };
    match deleted {
        Ok(o) => {
            let mut details = group_details(res, name);
            details["uid"] = o["metadata"]["uid"].clone();
            json_reply(
                StatusCode::OK,
                &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details}),
            )
        }
        Err(e) => store_error(res, name, e),
    }
}

/// DELETE of a collection (`deletecollection`): every selected object goes; the answer lists them.
fn delete_collection(
    api: &Api,
    (res, version): (Res, &str),
    ns: Option<&str>,
    query: &HashMap<String, String>,
    dry_run: bool,
) -> Response {
    let (labels, fields) = match selectors(res, query) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let (items, _) = api.store.list(res, ns);
    let mut deleted = Vec::new();
    for o in items.iter().filter(|o| labels.matches(&o["metadata"]["labels"]) && fields.matches(o)) {
        let (ns, name) = (
            o["metadata"]["namespace"].as_str().unwrap_or_default(),
            o["metadata"]["name"].as_str().unwrap_or_default(),
        );
        let gone = if dry_run { Ok(o.clone()) } else { api.store.delete(res, ns, name) };
        if let Ok(gone) = gone {
            deleted.push(objects::present(res, version, &gone));
        }
    }
    json_reply(
        StatusCode::OK,
        &json!({
            "kind": format!("{}List", res.kind()), "apiVersion": api_version_of(res, version),
            "metadata": {"resourceVersion": api.store.resource_version().to_string()}, "items": deleted
        }),
    )
}
