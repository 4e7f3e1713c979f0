//! Response shapes of the File service: XML error bodies with their codes, common headers.

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use chrono::{DateTime, Utc};

use super::versions;

pub fn rfc1123(t: DateTime<Utc>) -> String {
    t.format("%a, %d %b %Y %H:%M:%S GMT").to_string()
}

pub fn iso7(t: DateTime<Utc>) -> String {
    // chrono has no 7-digit fraction: the service keeps 100-ns ticks.
    format!("{}.{:07}Z", t.format("%Y-%m-%dT%H:%M:%S"), t.timestamp_subsec_nanos() / 100)
}

pub fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&apos;")
}

fn request_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(1);
    format!("00000000-0000-0000-0000-{:012x}", N.fetch_add(1, Ordering::Relaxed))
}

/// A response with the headers every File service response carries.
pub fn base(status: StatusCode, body: Body) -> Response {
    let mut r = Response::new(body);
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert("x-ms-request-id", HeaderValue::from_str(&request_id()).unwrap());
    h.insert("x-ms-version", HeaderValue::from_static(versions::NEWEST));
    h.insert("date", HeaderValue::from_str(&rfc1123(Utc::now())).unwrap());
    h.insert("server", HeaderValue::from_static("drscript-azure-files-emulator"));
    r
}

pub fn empty(status: StatusCode) -> Response {
    base(status, Body::empty())
}

/// The documented error body: `<Error><Code/><Message/></Error>`, code also in `x-ms-error-code`.
pub fn error(status: StatusCode, code: &str, message: &str, detail: Option<&str>) -> Response {
    match detail {
        Some(d) => error_fields(status, code, message, &[("AuthenticationErrorDetail", d)]),
        None => error_fields(status, code, message, &[]),
    }
}

/// An error body with extra elements after the message (`HeaderName`, `HeaderValue`, ...).
pub fn error_fields(status: StatusCode, code: &str, message: &str, fields: &[(&str, &str)]) -> Response {
    let id = request_id();
    let mut body = format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?><Error><Code>{code}</Code><Message>{}\nRequestId:{id}\nTime:{}</Message>",
        xml_escape(message),
        iso7(Utc::now())
    );
    for (name, value) in fields {
        body.push_str(&format!("<{name}>{}</{name}>", xml_escape(value)));
    }
    body.push_str("</Error>");
    let mut r = base(status, Body::from(body));
    r.headers_mut().insert("x-ms-error-code", HeaderValue::from_str(code).unwrap());
    r.headers_mut().insert("content-type", HeaderValue::from_static("application/xml"));
    r
}

pub fn not_found(code: &str) -> Response {
    let msg = match code {
        "ShareNotFound" => "The specified share does not exist.",
        "ParentNotFound" => "The specified parent path does not exist.",
        _ => "The specified resource does not exist.",
    };
    error(StatusCode::NOT_FOUND, code, msg, None)
}

pub fn bad_request(code: &str, msg: &str) -> Response {
    error(StatusCode::BAD_REQUEST, code, msg, None)
}

/// The service's answer to a query parameter it does not support (here: an operation the
/// emulator deliberately does not emulate).
pub fn unsupported_query(name: &str, value: &str) -> Response {
    error_fields(
        StatusCode::BAD_REQUEST,
        "UnsupportedQueryParameter",
        "One of the query parameters specified in the request URI is not supported.",
        &[("QueryParameterName", name), ("QueryParameterValue", value)],
    )
}
