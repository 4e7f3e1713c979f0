//! One request from the wire to an operation: version check, share and path names, case
//! resolution, routing (operations in [`super::dirs`], [`super::files`], [`super::copy`]), and the
//! helpers they share (headers of a file, ETag, times).

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{ConnectInfo, State as AxState};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::Response;
use chrono::{DateTime, Utc};

use super::State;
use super::authz::{self, Incoming, Need};
use super::props::{self, Props};
use super::responses::{bad_request, empty, error, iso7, not_found, rfc1123};
use super::{copy, dirs, files, lease, names, versions};

pub(super) const MAX_RANGE: u64 = 4 * 1024 * 1024;

pub(super) struct Req<'a> {
    pub(super) state: &'a State,
    pub(super) method: Method,
    pub(super) raw_path: String,
    pub(super) query: Vec<(String, String)>,
    pub(super) headers: HeaderMap,
    pub(super) peer: Option<IpAddr>,
    pub(super) account: String,
    pub(super) share: String,
    /// Decoded path inside the share as the client sent it (what a file SAS names).
    pub(super) sent_path: String,
    /// The path as the service names it: checked, trailing dots trimmed unless kept.
    pub(super) path: String,
    /// Where it is on disk: existing components in the case they were first written with.
    pub(super) fs: PathBuf,
}

impl Req<'_> {
    pub(super) fn q(&self, name: &str) -> Option<&str> {
        self.query.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
    pub(super) fn h(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
    pub(super) fn share_dir(&self) -> PathBuf {
        self.state.dir.join(&self.account).join(&self.share)
    }
    pub(super) fn fs_path(&self) -> PathBuf {
        self.fs.clone()
    }
    pub(super) fn props(&self, p: &Path) -> Props {
        self.state.props.get(p)
    }

    /// [`Req::authorize`] for an operation that Azure serves to the account owner only.
    pub(super) fn authorize_owner(&self, permission: char, resource_type: char) -> Result<(), Response> {
        self.authorize(permission, resource_type)?;
        authz::owner_only(&self.query)
    }

    pub(super) fn authorize(&self, permission: char, resource_type: char) -> Result<(), Response> {
        let incoming = Incoming {
            method: self.method.as_str(),
            raw_path: &self.raw_path,
            query: &self.query,
            headers: &self.headers,
            peer: self.peer,
        };
        authz::authorize(
            self.state,
            &incoming,
            &self.account,
            &self.share,
            &self.sent_path,
            Need { permission, resource_type },
        )
    }
}

pub(super) fn io_error(e: &std::io::Error) -> Response {
    error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "InternalError",
        &format!("The server encountered an internal error: {e}"),
        None,
    )
}

pub(super) fn mtime(meta: &std::fs::Metadata) -> DateTime<Utc> {
    meta.modified().map(DateTime::<Utc>::from).unwrap_or_else(|_| Utc::now())
}

/// Last-Modified: the last change of any kind (content, properties).
pub(super) fn changed(meta: &std::fs::Metadata) -> DateTime<Utc> {
    use std::os::unix::fs::MetadataExt;
    DateTime::from_timestamp(meta.ctime(), meta.ctime_nsec() as u32).unwrap_or_else(Utc::now)
}

/// Creation time: the one set through the service, else the folder file's birth time.
pub(super) fn created(meta: &std::fs::Metadata, props: &Props) -> DateTime<Utc> {
    props.creation.or_else(|| meta.created().ok().map(DateTime::<Utc>::from)).unwrap_or_else(|| mtime(meta))
}

/// The ETag changes on every write: the write count is part of it, as the kernel's change time
/// can repeat within one clock tick.
pub(super) fn etag(meta: &std::fs::Metadata, props: &Props) -> String {
    use std::hash::{Hash, Hasher};
    use std::os::unix::fs::MetadataExt;
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (meta.ctime(), meta.ctime_nsec(), meta.len(), meta.ino(), props.writes).hash(&mut h);
    format!("\"0x8D{:014X}\"", h.finish() >> 8)
}

pub(super) fn set_mtime(path: &Path, t: DateTime<Utc>) -> std::io::Result<()> {
    std::fs::OpenOptions::new().write(true).open(path)?.set_modified(t.into())
}

pub(super) fn parse_time(v: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(v).ok().map(|d| d.with_timezone(&Utc))
}

pub(super) fn parse_range(v: &str) -> Option<(u64, u64)> {
    let r = v.trim().strip_prefix("bytes=")?;
    let (a, b) = r.split_once('-')?;
    let a: u64 = a.trim().parse().ok()?;
    let b: u64 = b.trim().parse().ok()?;
    (b >= a).then_some((a, b))
}

pub(super) fn decode(seg: &str) -> String {
    percent_encoding::percent_decode_str(seg).decode_utf8_lossy().into_owned()
}

/// The version a request is served with: `x-ms-version`, else the SAS's `sv`, else the newest.
/// An unknown `x-ms-version` is refused before anything else, as the service does.
pub(super) fn request_version(headers: &HeaderMap, query: &[(String, String)]) -> Result<String, Response> {
    if let Some(v) = headers.get("x-ms-version") {
        let v = v.to_str().unwrap_or("");
        return if versions::is_supported(v) {
            Ok(v.to_string())
        } else {
            Err(props::invalid_header("x-ms-version", v))
        };
    }
    let sv = query.iter().find(|(k, _)| k == "sv").map(|(_, v)| v.as_str());
    Ok(sv.filter(|v| versions::is_supported(v)).unwrap_or(versions::NEWEST).to_string())
}

pub async fn handle(AxState(state): AxState<Arc<State>>, request: axum::extract::Request) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
        .or_else(|| request.extensions().get::<ConnectInfo<crate::kube_api::TlsPeer>>().map(|c| c.0.0.ip()));
    let (parts, body) = request.into_parts();
    let raw_query = parts.uri.query().unwrap_or("").to_string();
    let query: Vec<(String, String)> =
        url::form_urlencoded::parse(raw_query.as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
    let version = match request_version(&parts.headers, &query) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let mut response =
        route(&state, parts.method, parts.uri.path().to_string(), query, parts.headers, peer, &version, body)
            .await
            .unwrap_or_else(|r| r);
    if let Ok(v) = HeaderValue::from_str(&version) {
        response.headers_mut().insert("x-ms-version", v);
    }
    response
}

#[allow(clippy::too_many_arguments)]
async fn route(
    state: &State,
    method: Method,
    raw_path: String,
    query: Vec<(String, String)>,
    headers: HeaderMap,
    peer: Option<IpAddr>,
    version: &str,
    body: Body,
) -> R {
    // An encoded slash separates path components too (azcopy sends `dir%2Ffile`).
    let segs: Vec<String> = decode(&raw_path).split('/').filter(|s| !s.is_empty()).map(str::to_string).collect();
    if segs.is_empty() || !state.accounts.contains_key(&segs[0]) {
        return Err(bad_request("InvalidUri", "The requested URI does not represent any resource on the server."));
    }
    if segs.len() < 2 {
        return Err(bad_request("InvalidUri", "Service-level operations are not supported by this emulator."));
    }
    names::check_share(&segs[1])?;
    let keep_dots = versions::allows_trailing_dot_header(version)
        && headers.get("x-ms-allow-trailing-dot").is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"true"));
    let path = names::normalize(&segs[2..], keep_dots)?;
    let share_dir = state.dir.join(&segs[0]).join(&segs[1]);
    let fs = names::resolve(&share_dir, &path, &state.names);
    let req = Req {
        state,
        method,
        raw_path,
        query,
        headers,
        peer,
        account: segs[0].clone(),
        share: segs[1].clone(),
        sent_path: segs[2..].join("/"),
        path,
        fs,
    };
    let restype = req.q("restype").map(str::to_ascii_lowercase);
    let comp = req.q("comp").map(str::to_ascii_lowercase);
    match (req.method.clone(), restype.as_deref(), comp.as_deref()) {
        (Method::PUT, Some("share"), None) => dirs::create_share(&req),
        (Method::GET | Method::HEAD, Some("share"), None) => dirs::share_props(&req),
        (Method::PUT, Some("share"), Some("properties")) => dirs::set_share_props(&req),
        (Method::GET, Some("share"), Some("stats")) => dirs::share_stats(&req),
        (Method::GET, Some("directory"), Some("list")) => dirs::list(&req),
        (Method::GET | Method::HEAD, Some("directory"), None) => dirs::dir_props(&req),
        (Method::PUT, Some("directory"), None) => dirs::create_dir(&req),
        (Method::DELETE, Some("directory"), None) => dirs::delete_dir(&req),
        (Method::PUT, Some("directory"), Some("metadata" | "properties")) => dirs::set_dir_props(&req),
        (Method::PUT, None, Some("metadata")) => files::set_file_metadata(&req),
        (Method::PUT, None, Some("range")) => files::put_range(&req, body).await,
        (Method::PUT, None, Some("properties")) => files::set_props(&req),
        (Method::GET, None, Some("rangelist")) => files::list_ranges(&req),
        (Method::PUT, None, Some("lease")) => lease::lease_file(&req),
        (Method::PUT, None, Some("copy")) => not_emulated(&req, "comp", "copy"),
        (Method::PUT, None, None) if req.h("x-ms-copy-source").is_some() => copy::copy_file(&req),
        (Method::PUT, None, None) => files::create_file(&req),
        (Method::GET | Method::HEAD, None, None) => files::get_file(&req).await,
        (Method::DELETE, None, None) => files::delete_file(&req),
        _ => Err(bad_request("UnsupportedQueryParameter", "The operation is not supported by this emulator.")),
    }
}

/// An operation the service has and the emulator deliberately does not: refused with the
/// service's own code for a parameter it does not support, after authorisation like any other.
pub(super) fn not_emulated(req: &Req<'_>, param: &str, value: &str) -> R {
    req.authorize('w', 'o')?;
    Err(super::responses::unsupported_query(param, value))
}

pub(super) type R = Result<Response, Response>;

pub(super) fn need_share(req: &Req<'_>) -> Result<(), Response> {
    if req.share_dir().is_dir() { Ok(()) } else { Err(not_found("ShareNotFound")) }
}

pub(super) fn need_parent(req: &Req<'_>) -> Result<(), Response> {
    need_share(req)?;
    match req.fs_path().parent() {
        Some(p) if p.is_dir() => Ok(()),
        _ => Err(not_found("ParentNotFound")),
    }
}

/// The SMB attributes reported for an entry: as set through the service, else the defaults
/// (`Directory` for a directory, `Archive` for a file).
pub(super) fn attributes_of(meta: &std::fs::Metadata, props: &Props) -> String {
    props.attributes.clone().unwrap_or_else(|| if meta.is_dir() { "Directory".into() } else { "Archive".into() })
}

/// An empty answer with the file's headers (Last-Modified, ETag, SMB properties), as the file
/// is now on disk.
pub(super) fn file_answer(req: &Req<'_>, status: StatusCode, p: &Path) -> R {
    let meta = std::fs::metadata(p).map_err(|e| io_error(&e))?;
    let mut r = empty(status);
    file_headers(&mut r, &meta, &req.props(p));
    Ok(r)
}

pub(super) fn file_headers(r: &mut Response, meta: &std::fs::Metadata, props: &Props) {
    let h = r.headers_mut();
    let hv = |s: String| HeaderValue::from_str(&s).unwrap_or_else(|_| HeaderValue::from_static(""));
    h.insert("last-modified", hv(rfc1123(changed(meta))));
    h.insert("etag", hv(etag(meta, props)));
    h.insert("x-ms-file-last-write-time", hv(iso7(mtime(meta))));
    h.insert("x-ms-file-creation-time", hv(iso7(created(meta, props))));
    h.insert("x-ms-file-change-time", hv(iso7(changed(meta))));
    h.insert("x-ms-file-attributes", hv(attributes_of(meta, props)));
    h.insert("x-ms-request-server-encrypted", HeaderValue::from_static("false"));
}

pub(super) fn existing_file(req: &Req<'_>) -> Result<(PathBuf, std::fs::Metadata), Response> {
    need_share(req)?;
    let p = req.fs_path();
    match std::fs::metadata(&p) {
        Ok(m) if m.is_file() => Ok((p, m)),
        _ => Err(not_found("ResourceNotFound")),
    }
}
