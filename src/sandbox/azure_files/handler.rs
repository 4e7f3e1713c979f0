//! The operations: shares, directories (create, properties, list, delete) and files (create,
//! properties, get with ranges, put range, put range from URL, set properties, delete).

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use std::net::{IpAddr, SocketAddr};

use axum::body::Body;
use axum::extract::{ConnectInfo, State as AxState};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::Response;
use chrono::{DateTime, Utc};

use super::State;
use super::authz::{self, Incoming, Need};
use super::props::{self, Props};
use super::responses::{bad_request, base, empty, error, iso7, not_found, rfc1123, xml_escape};
use super::signature::SasToken;
use super::{names, versions};

const MAX_RANGE: u64 = 4 * 1024 * 1024;

struct Req<'a> {
    state: &'a State,
    method: Method,
    raw_path: String,
    query: Vec<(String, String)>,
    headers: HeaderMap,
    peer: Option<IpAddr>,
    account: String,
    share: String,
    /// Decoded path inside the share as the client sent it (what a file SAS names).
    sent_path: String,
    /// The path as the service names it: checked, trailing dots trimmed unless kept.
    path: String,
    /// Where it is on disk: existing components in the case they were first written with.
    fs: PathBuf,
}

impl Req<'_> {
    fn q(&self, name: &str) -> Option<&str> {
        self.query.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
    fn h(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
    fn share_dir(&self) -> PathBuf {
        self.state.dir.join(&self.account).join(&self.share)
    }
    fn fs_path(&self) -> PathBuf {
        self.fs.clone()
    }
    fn props(&self, p: &Path) -> Props {
        self.state.props.get(p)
    }

    fn authorize(&self, permission: char, resource_type: char) -> Result<(), Response> {
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

fn io_error(e: &std::io::Error) -> Response {
    error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "InternalError",
        &format!("The server encountered an internal error: {e}"),
        None,
    )
}

fn mtime(meta: &std::fs::Metadata) -> DateTime<Utc> {
    meta.modified().map(DateTime::<Utc>::from).unwrap_or_else(|_| Utc::now())
}

/// Last-Modified: the last change of any kind (content, properties).
fn changed(meta: &std::fs::Metadata) -> DateTime<Utc> {
    use std::os::unix::fs::MetadataExt;
    DateTime::from_timestamp(meta.ctime(), meta.ctime_nsec() as u32).unwrap_or_else(Utc::now)
}

/// Creation time: the one set through the service, else the folder file's birth time.
fn created(meta: &std::fs::Metadata, props: &Props) -> DateTime<Utc> {
    props.creation.or_else(|| meta.created().ok().map(DateTime::<Utc>::from)).unwrap_or_else(|| mtime(meta))
}

/// The ETag changes on every write: the write count is part of it, as the kernel's change time
/// can repeat within one clock tick.
fn etag(meta: &std::fs::Metadata, props: &Props) -> String {
    use std::hash::{Hash, Hasher};
    use std::os::unix::fs::MetadataExt;
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (meta.ctime(), meta.ctime_nsec(), meta.len(), meta.ino(), props.writes).hash(&mut h);
    format!("\"0x8D{:014X}\"", h.finish() >> 8)
}

fn set_mtime(path: &Path, t: DateTime<Utc>) -> std::io::Result<()> {
    std::fs::OpenOptions::new().write(true).open(path)?.set_modified(t.into())
}

fn parse_time(v: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(v).ok().map(|d| d.with_timezone(&Utc))
}

fn parse_range(v: &str) -> Option<(u64, u64)> {
    let r = v.trim().strip_prefix("bytes=")?;
    let (a, b) = r.split_once('-')?;
    let a: u64 = a.trim().parse().ok()?;
    let b: u64 = b.trim().parse().ok()?;
    (b >= a).then_some((a, b))
}

fn decode(seg: &str) -> String {
    percent_encoding::percent_decode_str(seg).decode_utf8_lossy().into_owned()
}

/// The version a request is served with: `x-ms-version`, else the SAS's `sv`, else the newest.
/// An unknown `x-ms-version` is refused before anything else, as the service does.
fn request_version(headers: &HeaderMap, query: &[(String, String)]) -> Result<String, Response> {
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
    let peer = request.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
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
        (Method::PUT, Some("share"), None) => create_share(&req),
        (Method::GET | Method::HEAD, Some("share"), None) => share_props(&req),
        (Method::GET, Some("directory"), Some("list")) => list(&req),
        (Method::GET | Method::HEAD, Some("directory"), None) => dir_props(&req),
        (Method::PUT, Some("directory"), None) => create_dir(&req),
        (Method::DELETE, Some("directory"), None) => delete_dir(&req),
        (Method::PUT, Some("directory"), Some("metadata" | "properties")) => set_dir_props(&req),
        (Method::PUT, None, Some("metadata")) => set_file_metadata(&req),
        (Method::PUT, None, Some("range")) => put_range(&req, body).await,
        (Method::PUT, None, Some("properties")) => set_props(&req),
        (Method::GET, None, Some("rangelist")) => list_ranges(&req),
        (Method::PUT, None, Some("lease")) => not_emulated(&req, "comp", "lease"),
        (Method::PUT, None, Some("copy")) => not_emulated(&req, "comp", "copy"),
        (Method::PUT, None, None) if req.h("x-ms-copy-source").is_some() => copy_file(&req),
        (Method::PUT, None, None) => create_file(&req),
        (Method::GET | Method::HEAD, None, None) => get_file(&req).await,
        (Method::DELETE, None, None) => delete_file(&req),
        _ => Err(bad_request("UnsupportedQueryParameter", "The operation is not supported by this emulator.")),
    }
}

/// An operation the service has and the emulator deliberately does not: refused with the
/// service's own code for a parameter it does not support, after authorisation like any other.
fn not_emulated(req: &Req<'_>, param: &str, value: &str) -> R {
    req.authorize('w', 'o')?;
    Err(super::responses::unsupported_query(param, value))
}

type R = Result<Response, Response>;

fn need_share(req: &Req<'_>) -> Result<(), Response> {
    if req.share_dir().is_dir() { Ok(()) } else { Err(not_found("ShareNotFound")) }
}

fn need_parent(req: &Req<'_>) -> Result<(), Response> {
    need_share(req)?;
    match req.fs_path().parent() {
        Some(p) if p.is_dir() => Ok(()),
        _ => Err(not_found("ParentNotFound")),
    }
}

fn create_share(req: &Req<'_>) -> R {
    req.authorize('c', 'c')?;
    if req.share_dir().is_dir() {
        return Err(error(StatusCode::CONFLICT, "ShareAlreadyExists", "The specified share already exists.", None));
    }
    std::fs::create_dir_all(req.share_dir()).map_err(|e| io_error(&e))?;
    Ok(empty(StatusCode::CREATED))
}

fn share_props(req: &Req<'_>) -> R {
    req.authorize('r', 'c')?;
    need_share(req)?;
    Ok(empty(StatusCode::OK))
}

fn dir_props(req: &Req<'_>) -> R {
    req.authorize('r', 'c')?;
    need_share(req)?;
    let p = req.fs_path();
    match std::fs::metadata(&p) {
        Ok(m) if m.is_dir() => {
            let mut r = empty(StatusCode::OK);
            file_headers(&mut r, &m, &req.props(&p));
            Ok(r)
        }
        _ => Err(not_found("ResourceNotFound")),
    }
}

fn create_dir(req: &Req<'_>) -> R {
    req.authorize('c', 'c')?;
    need_parent(req)?;
    let p = req.fs_path();
    if p.exists() {
        return Err(error(
            StatusCode::CONFLICT,
            "ResourceAlreadyExists",
            "The specified resource already exists.",
            None,
        ));
    }
    let metadata = props::parse_metadata(&req.headers)?;
    let attributes = props::parse_attributes(&req.headers, true)?;
    let creation = props::parse_creation(&req.headers)?.unwrap_or_else(Utc::now);
    std::fs::create_dir(&p).map_err(|e| io_error(&e))?;
    req.state.names.added(&p);
    if let Some(t) = req.h("x-ms-file-last-write-time").and_then(parse_time) {
        let _ = std::fs::File::open(&p).and_then(|f| f.set_modified(t.into()));
    }
    req.state.props.update(&p, |pr| {
        pr.metadata = metadata;
        pr.attributes = attributes;
        pr.creation = Some(creation);
    });
    file_answer(req, StatusCode::CREATED, &p)
}

/// Set Directory Properties / Metadata: SMB properties and metadata kept, like a file's.
fn set_dir_props(req: &Req<'_>) -> R {
    req.authorize('w', 'c')?;
    need_share(req)?;
    let p = req.fs_path();
    if !p.is_dir() {
        return Err(not_found("ResourceNotFound"));
    }
    let metadata_only = req.q("comp").is_some_and(|c| c.eq_ignore_ascii_case("metadata"));
    if metadata_only {
        let metadata = props::parse_metadata(&req.headers)?;
        req.state.props.update(&p, |pr| pr.metadata = metadata);
    } else {
        let attributes = props::parse_attributes(&req.headers, true)?;
        let creation = props::parse_creation(&req.headers)?;
        if let Some(t) = req.h("x-ms-file-last-write-time").and_then(parse_time) {
            let _ = std::fs::File::open(&p).and_then(|f| f.set_modified(t.into()));
        }
        req.state.props.update(&p, |pr| {
            pr.attributes = attributes.or(pr.attributes.take());
            pr.creation = creation.or(pr.creation);
        });
    }
    file_answer(req, StatusCode::OK, &p)
}

/// Set File Metadata replaces every metadata pair of the file.
fn set_file_metadata(req: &Req<'_>) -> R {
    req.authorize('w', 'o')?;
    let (p, _) = existing_file(req)?;
    let metadata = props::parse_metadata(&req.headers)?;
    req.state.props.update(&p, |pr| pr.metadata = metadata);
    file_answer(req, StatusCode::OK, &p)
}

fn delete_dir(req: &Req<'_>) -> R {
    req.authorize('d', 'c')?;
    need_share(req)?;
    if req.path.is_empty() {
        return Err(bad_request("InvalidResourceName", "The root directory of a share cannot be deleted."));
    }
    let p = req.fs_path();
    if !p.is_dir() {
        return Err(not_found("ResourceNotFound"));
    }
    match std::fs::remove_dir(&p) {
        Ok(()) => {
            req.state.props.remove(&p);
            req.state.names.removed(&p);
            Ok(empty(StatusCode::ACCEPTED))
        }
        Err(e) if e.kind() == std::io::ErrorKind::DirectoryNotEmpty => {
            Err(error(StatusCode::CONFLICT, "DirectoryNotEmpty", "The specified directory is not empty.", None))
        }
        Err(e) => Err(io_error(&e)),
    }
}

/// The SMB attributes reported for an entry: as set through the service, else the defaults
/// (`Directory` for a directory, `Archive` for a file).
fn attributes_of(meta: &std::fs::Metadata, props: &Props) -> String {
    props.attributes.clone().unwrap_or_else(|| if meta.is_dir() { "Directory".into() } else { "Archive".into() })
}

fn list(req: &Req<'_>) -> R {
    req.authorize('l', 'c')?;
    need_share(req)?;
    let dir = req.fs_path();
    if !dir.is_dir() {
        return Err(not_found("ResourceNotFound"));
    }
    let prefix = req.q("prefix").unwrap_or("").to_string();
    let marker = req.q("marker").unwrap_or("").to_string();
    let max: usize = match req.q("maxresults") {
        None => 5000,
        Some(v) => match v.parse::<usize>() {
            Ok(n) if (1..=5000).contains(&n) => n,
            _ => {
                return Err(bad_request(
                    "OutOfRangeQueryParameterValue",
                    "One of the query parameters specified in the request URI is outside the permissible range.",
                ));
            }
        },
    };
    let include = req.q("include").unwrap_or("").to_ascii_lowercase();
    let timestamps = include.contains("timestamps");
    let etags = include.contains("etag");
    let attributes = include.contains("attributes");
    let mut names: Vec<(String, std::fs::Metadata)> = std::fs::read_dir(&dir)
        .map_err(|e| io_error(&e))?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let meta = std::fs::metadata(e.path()).ok()?;
            Some((name, meta))
        })
        .filter(|(n, _)| n.starts_with(&prefix) && n.as_str() >= marker.as_str())
        .collect();
    names.sort_by(|a, b| a.0.cmp(&b.0));
    let next = names.get(max).map(|(n, _)| n.clone());
    names.truncate(max);
    let endpoint = format!("http://{}/{}/", req.state.addr, req.account);
    let mut xml = format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?><EnumerationResults ServiceEndpoint=\"{}\" ShareName=\"{}\" DirectoryPath=\"{}\">",
        xml_escape(&endpoint),
        xml_escape(&req.share),
        xml_escape(&req.path)
    );
    if !marker.is_empty() {
        xml.push_str(&format!("<Marker>{}</Marker>", xml_escape(&marker)));
    }
    if !prefix.is_empty() {
        xml.push_str(&format!("<Prefix>{}</Prefix>", xml_escape(&prefix)));
    }
    if req.q("maxresults").is_some() {
        xml.push_str(&format!("<MaxResults>{max}</MaxResults>"));
    }
    xml.push_str("<Entries>");
    for (name, meta) in &names {
        let props = req.props(&dir.join(name));
        let tag = if meta.is_dir() { "Directory" } else { "File" };
        let attr = attributes_of(meta, &props);
        use std::os::unix::fs::MetadataExt;
        xml.push_str(&format!("<{tag}><FileId>{}</FileId><Name>{}</Name><Properties>", meta.ino(), xml_escape(name)));
        if !meta.is_dir() {
            xml.push_str(&format!("<Content-Length>{}</Content-Length>", meta.len()));
        }
        if timestamps {
            let w = iso7(mtime(meta));
            let c = changed(meta);
            xml.push_str(&format!(
                "<CreationTime>{}</CreationTime><LastAccessTime>{w}</LastAccessTime><LastWriteTime>{w}</LastWriteTime>\
                 <ChangeTime>{}</ChangeTime><Last-Modified>{}</Last-Modified>",
                iso7(created(meta, &props)),
                iso7(c),
                rfc1123(c)
            ));
        }
        if etags {
            xml.push_str(&format!("<Etag>{}</Etag>", xml_escape(&etag(meta, &props))));
        }
        xml.push_str("</Properties>");
        if attributes {
            xml.push_str(&format!("<Attributes>{attr}</Attributes>"));
        }
        xml.push_str(&format!("</{tag}>"));
    }
    xml.push_str("</Entries>");
    match next {
        Some(n) => xml.push_str(&format!("<NextMarker>{}</NextMarker>", xml_escape(&n))),
        None => xml.push_str("<NextMarker />"),
    }
    xml.push_str("</EnumerationResults>");
    let mut r = base(StatusCode::OK, Body::from(xml));
    r.headers_mut().insert("content-type", HeaderValue::from_static("application/xml"));
    Ok(r)
}

/// An empty answer with the file's headers (Last-Modified, ETag, SMB properties), as the file
/// is now on disk.
fn file_answer(req: &Req<'_>, status: StatusCode, p: &Path) -> R {
    let meta = std::fs::metadata(p).map_err(|e| io_error(&e))?;
    let mut r = empty(status);
    file_headers(&mut r, &meta, &req.props(p));
    Ok(r)
}

fn file_headers(r: &mut Response, meta: &std::fs::Metadata, props: &Props) {
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

fn existing_file(req: &Req<'_>) -> Result<(PathBuf, std::fs::Metadata), Response> {
    need_share(req)?;
    let p = req.fs_path();
    match std::fs::metadata(&p) {
        Ok(m) if m.is_file() => Ok((p, m)),
        _ => Err(not_found("ResourceNotFound")),
    }
}

/// `x-ms-file-last-write-time` of Create File / Set File Properties: a time, `now`, or
/// `preserve` / absent (→ `default`).
fn last_write_header(req: &Req<'_>, default: DateTime<Utc>) -> Result<DateTime<Utc>, Response> {
    match req.h("x-ms-file-last-write-time") {
        None => Ok(default),
        Some(v) if v.eq_ignore_ascii_case("preserve") => Ok(default),
        Some(v) if v.eq_ignore_ascii_case("now") => Ok(Utc::now()),
        Some(v) => parse_time(v).ok_or_else(|| props::invalid_header("x-ms-file-last-write-time", v)),
    }
}

/// Create File: a new file of `x-ms-content-length` zero bytes, or an existing one (whatever
/// the case of its name) emptied and given the new properties; its name keeps its first case.
fn create_file(req: &Req<'_>) -> R {
    req.authorize('c', 'o')?;
    if req.h("x-ms-type").map(str::to_ascii_lowercase).as_deref() != Some("file") {
        return Err(bad_request(
            "MissingRequiredHeader",
            "An HTTP header that's mandatory for this request is not specified: x-ms-type",
        ));
    }
    let Some(len) = req.h("x-ms-content-length").and_then(|v| v.parse::<u64>().ok()) else {
        return Err(bad_request(
            "MissingRequiredHeader",
            "An HTTP header that's mandatory for this request is not specified: x-ms-content-length",
        ));
    };
    if req.path.is_empty() {
        return Err(bad_request("InvalidResourceName", "A file needs a name."));
    }
    need_parent(req)?;
    let p = req.fs_path();
    if p.is_dir() {
        return Err(error(
            StatusCode::CONFLICT,
            "ResourceTypeMismatch",
            "The specified resource type does not match the type of the existing resource.",
            None,
        ));
    }
    let content = props::parse_content(&req.headers);
    let metadata = props::parse_metadata(&req.headers)?;
    let attributes = props::parse_attributes(&req.headers, false)?;
    let creation = props::parse_creation(&req.headers)?.unwrap_or_else(Utc::now);
    let t = last_write_header(req, Utc::now())?;
    let f = std::fs::File::create(&p).map_err(|e| io_error(&e))?;
    req.state.names.added(&p);
    f.set_len(len).map_err(|e| io_error(&e))?;
    f.set_modified(t.into()).map_err(|e| io_error(&e))?;
    drop(f);
    req.state.props.update(&p, |pr| {
        pr.content = content;
        pr.metadata = metadata;
        pr.attributes = attributes;
        pr.creation = Some(creation);
    });
    file_answer(req, StatusCode::CREATED, &p)
}

/// Set File Properties: the content headers are replaced (an absent one is cleared, as the
/// service clears it; the service stores Content-MD5 without checking it), size and SMB
/// properties changed where given.
fn set_props(req: &Req<'_>) -> R {
    req.authorize('w', 'o')?;
    let (p, meta) = existing_file(req)?;
    let content = props::parse_content(&req.headers);
    let attributes = props::parse_attributes(&req.headers, false)?;
    let creation = props::parse_creation(&req.headers)?;
    let t = last_write_header(req, mtime(&meta))?;
    if let Some(len) = req.h("x-ms-content-length").and_then(|v| v.parse::<u64>().ok()) {
        let f = std::fs::OpenOptions::new().write(true).open(&p).map_err(|e| io_error(&e))?;
        f.set_len(len).map_err(|e| io_error(&e))?;
    }
    set_mtime(&p, t).map_err(|e| io_error(&e))?;
    req.state.props.update(&p, |pr| {
        pr.content = content;
        pr.attributes = attributes.or(pr.attributes.take());
        pr.creation = creation.or(pr.creation);
    });
    file_answer(req, StatusCode::OK, &p)
}

async fn get_file(req: &Req<'_>) -> R {
    req.authorize('r', 'o')?;
    let (p, meta) = existing_file(req)?;
    let props = req.props(&p);
    let size = meta.len();
    let range = req.h("x-ms-range").or_else(|| req.h("range")).map(str::to_string);
    let want_md5 = req.h("x-ms-range-get-content-md5").is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let (start, end, status) = match range.as_deref().map(parse_range) {
        None => (0, size.saturating_sub(1), StatusCode::OK),
        Some(Some((a, b))) if a < size => (a, b.min(size - 1), StatusCode::PARTIAL_CONTENT),
        Some(_) => {
            return Err(error(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "InvalidRange",
                "The range specified is invalid for the current size of the resource.",
                None,
            ));
        }
    };
    let len = if size == 0 { 0 } else { end - start + 1 };
    // The service computes a range's MD5 only for a range, and only up to 4 MiB.
    if want_md5 && (status != StatusCode::PARTIAL_CONTENT || len > MAX_RANGE) {
        return Err(props::invalid_header("x-ms-range-get-content-md5", "true"));
    }
    let range_md5 = if want_md5 {
        use base64::Engine;
        use md5::Digest;
        let mut f = std::fs::File::open(&p).map_err(|e| io_error(&e))?;
        f.seek(SeekFrom::Start(start)).map_err(|e| io_error(&e))?;
        let mut buf = vec![0u8; len as usize];
        f.read_exact(&mut buf).map_err(|e| io_error(&e))?;
        Some(base64::engine::general_purpose::STANDARD.encode(md5::Md5::digest(&buf)))
    } else {
        None
    };
    let body = if req.method == Method::HEAD || len == 0 {
        Body::empty()
    } else {
        use tokio::io::{AsyncReadExt, AsyncSeekExt};
        req.state.content_reads.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut f = tokio::fs::File::open(&p).await.map_err(|e| io_error(&e))?;
        f.seek(SeekFrom::Start(start)).await.map_err(|e| io_error(&e))?;
        Body::from_stream(tokio_util::io::ReaderStream::with_capacity(f.take(len), 256 * 1024))
    };
    let mut r = base(status, body);
    file_headers(&mut r, &meta, &props);
    props::add_headers(&mut r, &props);
    let h = r.headers_mut();
    h.insert("content-length", HeaderValue::from_str(&len.to_string()).unwrap());
    if props.content("content-type").is_none() {
        h.insert("content-type", HeaderValue::from_static("application/octet-stream"));
    }
    h.insert("x-ms-type", HeaderValue::from_static("File"));
    h.insert("accept-ranges", HeaderValue::from_static("bytes"));
    // A range read carries the whole file's stored MD5 as x-ms-content-md5, and Content-MD5
    // only when the range's own was asked for.
    if status == StatusCode::PARTIAL_CONTENT {
        h.remove("content-md5");
        if let Some(m) = props.content("content-md5").and_then(|m| HeaderValue::from_str(m).ok()) {
            h.insert("x-ms-content-md5", m);
        }
        if let Some(m) = range_md5.and_then(|m| HeaderValue::from_str(&m).ok()) {
            h.insert("content-md5", m);
        }
        h.insert("content-range", HeaderValue::from_str(&format!("bytes {start}-{end}/{size}")).unwrap());
    }
    Ok(r)
}

fn delete_file(req: &Req<'_>) -> R {
    req.authorize('d', 'o')?;
    let (p, _) = existing_file(req)?;
    std::fs::remove_file(&p).map_err(|e| io_error(&e))?;
    req.state.props.remove(&p);
    req.state.names.removed(&p);
    Ok(empty(StatusCode::ACCEPTED))
}

/// List Ranges: the emulator does not track which ranges were written, so a file reports one
/// range over its whole length (a sparse file on the service lists only its written ranges).
fn list_ranges(req: &Req<'_>) -> R {
    req.authorize('r', 'o')?;
    let (p, meta) = existing_file(req)?;
    let size = meta.len();
    let (start, end) = match req.h("x-ms-range").or_else(|| req.h("range")).and_then(parse_range) {
        Some((a, b)) => (a, b.min(size.saturating_sub(1))),
        None => (0, size.saturating_sub(1)),
    };
    let mut xml = String::from("<?xml version=\"1.0\" encoding=\"utf-8\"?><Ranges>");
    if size > 0 && start <= end {
        xml.push_str(&format!("<Range><Start>{start}</Start><End>{end}</End></Range>"));
    }
    xml.push_str("</Ranges>");
    let props = req.props(&p);
    let mut r = base(StatusCode::OK, Body::from(xml));
    file_headers(&mut r, &meta, &props);
    r.headers_mut().insert("content-type", HeaderValue::from_static("application/xml"));
    r.headers_mut().insert("x-ms-content-length", HeaderValue::from_str(&size.to_string()).unwrap());
    Ok(r)
}

/// A file named by a copy source URL on this emulator: authorised by its own SAS, or (same
/// account only) by the request's Shared Key, as the service allows.
fn copy_source(req: &Req<'_>, source: &str) -> Result<PathBuf, Response> {
    let cannot = |why: &str| {
        error(
            StatusCode::FORBIDDEN,
            "CannotVerifyCopySource",
            &format!("Could not verify the copy source within the specified time: {why}"),
            None,
        )
    };
    let url = url::Url::parse(source).map_err(|_| props::invalid_header("x-ms-copy-source", "(not a URL)"))?;
    let same = url.host_str() == Some(&req.state.addr.ip().to_string()) && url.port() == Some(req.state.addr.port());
    if !same {
        return Err(cannot("this emulator copies only from files it serves itself"));
    }
    let segs: Vec<String> = url.path().split('/').filter(|s| !s.is_empty()).map(decode).collect();
    if segs.len() < 3 {
        return Err(cannot("the source is not a file URL"));
    }
    let (account, share, path) = (segs[0].clone(), segs[1].clone(), segs[2..].join("/"));
    let pairs: Vec<(String, String)> = url.query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
    match SasToken::from_query(&pairs) {
        Some(token) => {
            authz::check_sas(
                req.state,
                &account,
                &share,
                &path,
                &token,
                req.peer,
                Need { permission: 'r', resource_type: 'o' },
            )
            .map_err(|_| cannot("the source SAS does not allow reading"))?;
        }
        None if account == req.account && req.q("sig").is_none() => {}
        None => {
            return Err(error(
                StatusCode::UNAUTHORIZED,
                "CannotVerifyCopySource",
                "Server failed to authenticate the request. The copy source has no SAS.",
                None,
            ));
        }
    }
    let p = names::resolve(&req.state.dir.join(&account).join(&share), &path, &req.state.names);
    if !p.is_file() {
        return Err(error(
            StatusCode::NOT_FOUND,
            "CannotVerifyCopySource",
            "The specified resource does not exist.",
            None,
        ));
    }
    Ok(p)
}

/// Reads `[start, end]` of a file this emulator serves, named by a URL with its own SAS.
fn read_source(req: &Req<'_>, source: &str, start: u64, end: u64) -> Result<Vec<u8>, Response> {
    let p = copy_source(req, source)?;
    let mut f = std::fs::File::open(&p).map_err(|e| io_error(&e))?;
    let size = f.metadata().map_err(|e| io_error(&e))?.len();
    if end >= size {
        return Err(error(
            StatusCode::RANGE_NOT_SATISFIABLE,
            "InvalidSourceRange",
            "The source range is beyond the end of the source.",
            None,
        ));
    }
    f.seek(SeekFrom::Start(start)).map_err(|e| io_error(&e))?;
    let mut buf = vec![0u8; (end - start + 1) as usize];
    f.read_exact(&mut buf).map_err(|e| io_error(&e))?;
    Ok(buf)
}

/// Copy File from a file on this emulator: done at once, so it answers `success` where the
/// service may answer `pending` for a large file; the copy gets the source's content headers
/// and metadata unless the request names its own metadata.
fn copy_file(req: &Req<'_>) -> R {
    req.authorize('w', 'o')?;
    if req.path.is_empty() {
        return Err(bad_request("InvalidResourceName", "A file needs a name."));
    }
    need_parent(req)?;
    let source = req.h("x-ms-copy-source").unwrap_or_default().to_string();
    let from = copy_source(req, &source)?;
    let to = req.fs_path();
    if to.is_dir() {
        return Err(error(
            StatusCode::CONFLICT,
            "ResourceTypeMismatch",
            "The specified resource type does not match the type of the existing resource.",
            None,
        ));
    }
    if from != to {
        std::fs::copy(&from, &to).map_err(|e| io_error(&e))?;
        req.state.names.added(&to);
    }
    let source_props = req.props(&from);
    let metadata = props::parse_metadata(&req.headers)?;
    req.state.props.update(&to, |pr| {
        pr.content = source_props.content.clone();
        pr.metadata = if metadata.is_empty() { source_props.metadata.clone() } else { metadata };
        pr.creation = Some(Utc::now());
    });
    let mut r = file_answer(req, StatusCode::ACCEPTED, &to)?;
    let id = format!("{:032x}", rand::random::<u128>());
    let id = format!("{}-{}-{}-{}-{}", &id[..8], &id[8..12], &id[12..16], &id[16..20], &id[20..]);
    r.headers_mut().insert("x-ms-copy-id", HeaderValue::from_str(&id).unwrap());
    r.headers_mut().insert("x-ms-copy-status", HeaderValue::from_static("success"));
    Ok(r)
}

async fn put_range(req: &Req<'_>, body: Body) -> R {
    req.authorize('w', 'o')?;
    let (p, meta) = existing_file(req)?;
    let Some((start, end)) = req.h("x-ms-range").or_else(|| req.h("range")).and_then(parse_range) else {
        return Err(bad_request(
            "MissingRequiredHeader",
            "An HTTP header that's mandatory for this request is not specified: x-ms-range",
        ));
    };
    let write = req.h("x-ms-write").unwrap_or("").to_ascii_lowercase();
    if write != "update" && write != "clear" {
        return Err(bad_request(
            "MissingRequiredHeader",
            "An HTTP header that's mandatory for this request is not specified: x-ms-write",
        ));
    }
    if end >= meta.len() {
        return Err(error(
            StatusCode::RANGE_NOT_SATISFIABLE,
            "InvalidRange",
            "The range specified is invalid for the current size of the resource.",
            None,
        ));
    }
    let len = end - start + 1;
    if write == "update" && len > MAX_RANGE {
        return Err(error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "RequestBodyTooLarge",
            "The request body is too large and exceeds the maximum permissible limit.",
            None,
        ));
    }
    let data: Vec<u8> = if write == "clear" {
        vec![0u8; len as usize]
    } else if let Some(source) = req.h("x-ms-copy-source") {
        let (ss, se) = match req.h("x-ms-source-range").and_then(parse_range) {
            Some(r) => r,
            None => {
                return Err(bad_request(
                    "MissingRequiredHeader",
                    "An HTTP header that's mandatory for this request is not specified: x-ms-source-range",
                ));
            }
        };
        if se - ss != end - start {
            return Err(bad_request(
                "InvalidHeaderValue",
                "The source range and the destination range differ in length.",
            ));
        }
        read_source(req, source, ss, se)?
    } else {
        let bytes = axum::body::to_bytes(body, MAX_RANGE as usize + 1).await.map_err(|_| {
            error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "RequestBodyTooLarge",
                "The request body is too large and exceeds the maximum permissible limit.",
                None,
            )
        })?;
        if bytes.len() as u64 != len {
            return Err(bad_request(
                "InvalidHeaderValue",
                "The value for one of the HTTP headers is not in the correct format: Content-Length does not match x-ms-range.",
            ));
        }
        if let Some(md5) = req.h("content-md5") {
            use base64::Engine;
            use md5::Digest;
            let got = base64::engine::general_purpose::STANDARD.encode(md5::Md5::digest(&bytes));
            if got != md5 {
                return Err(bad_request(
                    "Md5Mismatch",
                    "The MD5 value specified in the request did not match with the MD5 value calculated by the server.",
                ));
            }
        }
        bytes.to_vec()
    };
    let before = mtime(&meta);
    let mut f = std::fs::OpenOptions::new().write(true).open(&p).map_err(|e| io_error(&e))?;
    f.seek(SeekFrom::Start(start)).map_err(|e| io_error(&e))?;
    f.write_all(&data).map_err(|e| io_error(&e))?;
    let t = match req.h("x-ms-file-last-write-time") {
        Some(v) if v.eq_ignore_ascii_case("preserve") => before,
        _ => Utc::now(),
    };
    f.set_modified(t.into()).map_err(|e| io_error(&e))?;
    drop(f);
    // Like the service, a range write leaves the stored Content-MD5 as it was.
    req.state.props.update(&p, |_| {});
    file_answer(req, StatusCode::CREATED, &p)
}
