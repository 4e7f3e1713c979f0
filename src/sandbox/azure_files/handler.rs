//! The operations: shares, directories (create, properties, list, delete) and files (create,
//! properties, get with ranges, put range, put range from URL, set properties, delete).

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::State as AxState;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::Response;
use chrono::{DateTime, Utc};

use super::State;
use super::authz::{self, Need};
use super::responses::{bad_request, base, empty, error, iso7, not_found, rfc1123, xml_escape};

const MAX_RANGE: u64 = 4 * 1024 * 1024;

struct Req<'a> {
    state: &'a State,
    method: Method,
    raw_path: String,
    raw_query: String,
    query: Vec<(String, String)>,
    headers: HeaderMap,
    account: String,
    share: String,
    /// Decoded path inside the share, no leading `/`.
    path: String,
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
        let mut p = self.share_dir();
        for seg in self.path.split('/').filter(|s| !s.is_empty()) {
            p.push(seg);
        }
        p
    }
    /// Records the file's Content-MD5 from `x-ms-content-md5`, or clears it: Create File and Set
    /// File Properties both replace it, and the service does not check it against the content.
    fn store_md5(&self, p: &Path) {
        let mut md5s = self.state.md5s.lock().unwrap_or_else(|e| e.into_inner());
        match self.h("x-ms-content-md5") {
            Some(v) => md5s.insert(p.to_path_buf(), v.to_string()),
            None => md5s.remove(p),
        };
    }

    fn stored_md5(&self, p: &Path) -> Option<String> {
        self.state.md5s.lock().unwrap_or_else(|e| e.into_inner()).get(p).cloned()
    }

    fn authorize(&self, permission: char, resource_type: char) -> Result<(), Response> {
        authz::authorize(
            self.state,
            self.method.as_str(),
            &self.raw_path,
            &self.raw_query,
            &self.headers,
            &self.account,
            &self.share,
            &self.path,
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

fn etag(meta: &std::fs::Metadata) -> String {
    let t = changed(meta);
    format!("\"0x{:X}\"", t.timestamp_nanos_opt().unwrap_or(0) as u64 ^ meta.len())
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

pub async fn handle(
    AxState(state): AxState<Arc<State>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let raw_path = uri.path().to_string();
    let raw_query = uri.query().unwrap_or("").to_string();
    let query: Vec<(String, String)> =
        url::form_urlencoded::parse(raw_query.as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
    let segs: Vec<String> = raw_path.split('/').filter(|s| !s.is_empty()).map(decode).collect();
    if segs.is_empty() || !state.accounts.contains_key(&segs[0]) {
        return bad_request("InvalidUri", "The requested URI does not represent any resource on the server.");
    }
    if segs.len() < 2 {
        return bad_request("InvalidUri", "Service-level operations are not supported by this emulator.");
    }
    if segs[2..].iter().any(|s| s == ".." || s == ".") {
        return bad_request("InvalidResourceName", "The specified resource name contains invalid characters.");
    }
    let req = Req {
        state: &state,
        method,
        raw_path,
        raw_query,
        query,
        headers,
        account: segs[0].clone(),
        share: segs[1].clone(),
        path: segs[2..].join("/"),
    };
    let restype = req.q("restype").map(str::to_ascii_lowercase);
    let comp = req.q("comp").map(str::to_ascii_lowercase);
    let result = match (req.method.clone(), restype.as_deref(), comp.as_deref()) {
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
        (Method::PUT, None, None) => create_file(&req),
        (Method::GET | Method::HEAD, None, None) => get_file(&req).await,
        (Method::DELETE, None, None) => delete_file(&req),
        _ => Err(bad_request("UnsupportedQueryParameter", "The operation is not supported by this emulator.")),
    };
    result.unwrap_or_else(|r| r)
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
            let h = r.headers_mut();
            h.insert("last-modified", HeaderValue::from_str(&rfc1123(changed(&m))).unwrap());
            h.insert("etag", HeaderValue::from_str(&etag(&m)).unwrap());
            h.insert("x-ms-file-last-write-time", HeaderValue::from_str(&iso7(mtime(&m))).unwrap());
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
    std::fs::create_dir(&p).map_err(|e| io_error(&e))?;
    if let Some(t) = req.h("x-ms-file-last-write-time").and_then(parse_time) {
        let _ = std::fs::File::open(&p).and_then(|f| f.set_modified(t.into()));
    }
    Ok(empty(StatusCode::CREATED))
}

/// Set Directory Properties / Metadata: SMB properties are accepted, the last-write-time kept;
/// metadata is accepted and not stored (nothing drscript or azcopy reads back).
fn set_dir_props(req: &Req<'_>) -> R {
    req.authorize('w', 'c')?;
    need_share(req)?;
    let p = req.fs_path();
    if !p.is_dir() {
        return Err(not_found("ResourceNotFound"));
    }
    if let Some(t) = req.h("x-ms-file-last-write-time").and_then(parse_time) {
        let _ = std::fs::File::open(&p).and_then(|f| f.set_modified(t.into()));
    }
    file_answer(StatusCode::OK, &p)
}

fn set_file_metadata(req: &Req<'_>) -> R {
    req.authorize('w', 'o')?;
    let (_, meta) = existing_file(req)?;
    let mut r = empty(StatusCode::OK);
    file_headers(&mut r, &meta);
    Ok(r)
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
        Ok(()) => Ok(empty(StatusCode::ACCEPTED)),
        Err(e) if e.kind() == std::io::ErrorKind::DirectoryNotEmpty => {
            Err(error(StatusCode::CONFLICT, "DirectoryNotEmpty", "The specified directory is not empty.", None))
        }
        Err(e) => Err(io_error(&e)),
    }
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
        let (tag, attr) = if meta.is_dir() { ("Directory", "Directory") } else { ("File", "Archive") };
        use std::os::unix::fs::MetadataExt;
        xml.push_str(&format!("<{tag}><FileId>{}</FileId><Name>{}</Name><Properties>", meta.ino(), xml_escape(name)));
        if !meta.is_dir() {
            xml.push_str(&format!("<Content-Length>{}</Content-Length>", meta.len()));
        }
        if timestamps {
            let w = iso7(mtime(meta));
            let c = changed(meta);
            xml.push_str(&format!(
                "<CreationTime>{w}</CreationTime><LastAccessTime>{w}</LastAccessTime><LastWriteTime>{w}</LastWriteTime>\
                 <ChangeTime>{}</ChangeTime><Last-Modified>{}</Last-Modified>",
                iso7(c),
                rfc1123(c)
            ));
        }
        if etags {
            xml.push_str(&format!("<Etag>{}</Etag>", xml_escape(&etag(meta))));
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
fn file_answer(status: StatusCode, p: &std::path::Path) -> R {
    let meta = std::fs::metadata(p).map_err(|e| io_error(&e))?;
    let mut r = empty(status);
    file_headers(&mut r, &meta);
    Ok(r)
}

fn file_headers(r: &mut Response, meta: &std::fs::Metadata) {
    let h = r.headers_mut();
    h.insert("last-modified", HeaderValue::from_str(&rfc1123(changed(meta))).unwrap());
    h.insert("etag", HeaderValue::from_str(&etag(meta)).unwrap());
    h.insert("x-ms-file-last-write-time", HeaderValue::from_str(&iso7(mtime(meta))).unwrap());
    h.insert("x-ms-file-creation-time", HeaderValue::from_str(&iso7(mtime(meta))).unwrap());
    h.insert("x-ms-file-change-time", HeaderValue::from_str(&iso7(changed(meta))).unwrap());
    h.insert("x-ms-file-attributes", HeaderValue::from_static("Archive"));
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
    let f = std::fs::File::create(&p).map_err(|e| io_error(&e))?;
    f.set_len(len).map_err(|e| io_error(&e))?;
    let t = match req.h("x-ms-file-last-write-time") {
        None | Some("now") => Utc::now(),
        Some(v) => parse_time(v).ok_or_else(|| {
            bad_request("InvalidHeaderValue", "The value for x-ms-file-last-write-time is not valid.")
        })?,
    };
    f.set_modified(t.into()).map_err(|e| io_error(&e))?;
    drop(f);
    req.store_md5(&p);
    file_answer(StatusCode::CREATED, &p)
}

fn set_props(req: &Req<'_>) -> R {
    req.authorize('w', 'o')?;
    let (p, meta) = existing_file(req)?;
    let before = mtime(&meta);
    if let Some(len) = req.h("x-ms-content-length").and_then(|v| v.parse::<u64>().ok()) {
        let f = std::fs::OpenOptions::new().write(true).open(&p).map_err(|e| io_error(&e))?;
        f.set_len(len).map_err(|e| io_error(&e))?;
    }
    let t = match req.h("x-ms-file-last-write-time") {
        None | Some("preserve") => before,
        Some("now") => Utc::now(),
        Some(v) => parse_time(v).ok_or_else(|| {
            bad_request("InvalidHeaderValue", "The value for x-ms-file-last-write-time is not valid.")
        })?,
    };
    set_mtime(&p, t).map_err(|e| io_error(&e))?;
    req.store_md5(&p);
    file_answer(StatusCode::OK, &p)
}

async fn get_file(req: &Req<'_>) -> R {
    req.authorize('r', 'o')?;
    let (p, meta) = existing_file(req)?;
    let size = meta.len();
    let range = req.h("x-ms-range").or_else(|| req.h("range")).map(str::to_string);
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
    file_headers(&mut r, &meta);
    let h = r.headers_mut();
    h.insert("content-length", HeaderValue::from_str(&len.to_string()).unwrap());
    h.insert("content-type", HeaderValue::from_static("application/octet-stream"));
    h.insert("x-ms-type", HeaderValue::from_static("File"));
    h.insert("accept-ranges", HeaderValue::from_static("bytes"));
    // The whole file's MD5 as stored; a range read does not carry it as Content-MD5.
    if let Some(m) = req.stored_md5(&p).and_then(|m| HeaderValue::from_str(&m).ok()) {
        let name = if status == StatusCode::PARTIAL_CONTENT { "x-ms-content-md5" } else { "content-md5" };
        h.insert(name, m);
    }
    if status == StatusCode::PARTIAL_CONTENT {
        h.insert("content-range", HeaderValue::from_str(&format!("bytes {start}-{end}/{size}")).unwrap());
    }
    Ok(r)
}

fn delete_file(req: &Req<'_>) -> R {
    req.authorize('d', 'o')?;
    let (p, _) = existing_file(req)?;
    std::fs::remove_file(&p).map_err(|e| io_error(&e))?;
    req.state.md5s.lock().unwrap_or_else(|e| e.into_inner()).remove(&p);
    Ok(empty(StatusCode::ACCEPTED))
}

/// Reads `[start, end]` of a file this emulator serves, named by a URL with its own SAS.
fn read_source(req: &Req<'_>, source: &str, start: u64, end: u64) -> Result<Vec<u8>, Response> {
    let cannot = |why: &str| {
        error(
            StatusCode::FORBIDDEN,
            "CannotVerifyCopySource",
            &format!("Could not verify the copy source within the specified time: {why}"),
            None,
        )
    };
    let url = url::Url::parse(source)
        .map_err(|_| bad_request("InvalidHeaderValue", "The value for x-ms-copy-source is not a URL."))?;
    let same = url.host_str() == Some(&req.state.addr.ip().to_string()) && url.port() == Some(req.state.addr.port());
    if !same {
        return Err(cannot("this emulator copies only from files it serves itself"));
    }
    let segs: Vec<String> = url.path().split('/').filter(|s| !s.is_empty()).map(decode).collect();
    if segs.len() < 3 {
        return Err(cannot("the source is not a file URL"));
    }
    let (account, share, path) = (segs[0].clone(), segs[1].clone(), segs[2..].join("/"));
    let query = url.query().unwrap_or("");
    if !query.contains("sig=") {
        return Err(error(
            StatusCode::UNAUTHORIZED,
            "CannotVerifyCopySource",
            "Server failed to authenticate the request. The copy source has no SAS.",
            None,
        ));
    }
    authz::check_sas(req.state, &account, &share, &path, query, Need { permission: 'r', resource_type: 'o' })
        .map_err(|_| cannot("the source SAS does not allow reading"))?;
    let mut p = req.state.dir.join(&account).join(&share);
    for s in path.split('/') {
        p.push(s);
    }
    let mut f = std::fs::File::open(&p).map_err(|_| {
        error(StatusCode::NOT_FOUND, "CannotVerifyCopySource", "The specified resource does not exist.", None)
    })?;
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
    file_answer(StatusCode::CREATED, &p)
}
