//! The properties the File service keeps beside a file's content and last-write-time: content
//! headers, metadata, SMB attributes, creation time, and a write count that makes the ETag
//! change on every write. Kept in memory for the emulator's lifetime (the share folders hold
//! content and last-write-time only); a file made by hand in a share folder has none.

use std::path::{Path, PathBuf};

use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use chrono::{DateTime, Utc};

use super::responses::error;

/// The documented SMB attribute names a file or directory may carry.
const ATTRIBUTES: &[&str] = &[
    "ReadOnly",
    "Hidden",
    "System",
    "None",
    "Directory",
    "Archive",
    "Temporary",
    "Offline",
    "NotContentIndexed",
    "NoScrubData",
];

/// The content headers: the request header that sets each, and the response header that
/// returns it.
pub const CONTENT_HEADERS: &[(&str, &str)] = &[
    ("x-ms-content-type", "content-type"),
    ("x-ms-content-encoding", "content-encoding"),
    ("x-ms-content-language", "content-language"),
    ("x-ms-cache-control", "cache-control"),
    ("x-ms-content-disposition", "content-disposition"),
    ("x-ms-content-md5", "content-md5"),
];

#[derive(Debug, Clone, Default)]
pub struct Props {
    /// Response header name → value, for [`CONTENT_HEADERS`] that were set.
    pub content: Vec<(String, String)>,
    /// `x-ms-meta-NAME` → value, names as sent.
    pub metadata: Vec<(String, String)>,
    pub attributes: Option<String>,
    pub creation: Option<DateTime<Utc>>,
    /// Writes through the emulator (create, ranges, properties, metadata): part of the ETag.
    pub writes: u64,
    /// The ID of the file's lease, while it has one.
    pub lease: Option<String>,
}

impl Props {
    pub fn content(&self, response_header: &str) -> Option<&str> {
        self.content.iter().find(|(k, _)| k == response_header).map(|(_, v)| v.as_str())
    }
}

fn header<'h>(h: &'h HeaderMap, name: &str) -> Option<&'h str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

pub fn invalid_header(name: &str, value: &str) -> Response {
    super::responses::error_fields(
        StatusCode::BAD_REQUEST,
        "InvalidHeaderValue",
        "The value for one of the HTTP headers is not in the correct format.",
        &[("HeaderName", name), ("HeaderValue", value)],
    )
}

/// `x-ms-file-attributes`: `preserve` (→ `None` here), or names joined by `|`; `None` alone
/// means no attribute, which a file reports as `Archive`.
pub fn parse_attributes(h: &HeaderMap, is_dir: bool) -> Result<Option<String>, Response> {
    let Some(v) = header(h, "x-ms-file-attributes") else { return Ok(None) };
    if v.eq_ignore_ascii_case("preserve") {
        return Ok(None);
    }
    let names: Vec<&str> = v.split('|').map(str::trim).filter(|s| !s.is_empty()).collect();
    if names.is_empty() || names.iter().any(|n| !ATTRIBUTES.iter().any(|a| a.eq_ignore_ascii_case(n))) {
        return Err(invalid_header("x-ms-file-attributes", v));
    }
    let mut kept: Vec<&str> = ATTRIBUTES
        .iter()
        .copied()
        .filter(|a| *a != "None" && *a != "Directory" && names.iter().any(|n| n.eq_ignore_ascii_case(a)))
        .collect();
    if is_dir {
        kept.insert(0, "Directory");
    } else if kept.is_empty() {
        kept.push("Archive");
    }
    Ok(Some(kept.join(" | ")))
}

/// `x-ms-file-creation-time`: a time, `now`, or `preserve` / absent (→ `None`).
pub fn parse_creation(h: &HeaderMap) -> Result<Option<DateTime<Utc>>, Response> {
    match header(h, "x-ms-file-creation-time") {
        None => Ok(None),
        Some(v) if v.eq_ignore_ascii_case("preserve") => Ok(None),
        Some(v) if v.eq_ignore_ascii_case("now") => Ok(Some(Utc::now())),
        Some(v) => DateTime::parse_from_rfc3339(v)
            .map(|d| Some(d.with_timezone(&Utc)))
            .map_err(|_| invalid_header("x-ms-file-creation-time", v)),
    }
}

/// The `x-ms-meta-*` headers of a request, names as sent, refused when a name is not a valid
/// C# identifier (the service's rule).
pub fn parse_metadata(h: &HeaderMap) -> Result<Vec<(String, String)>, Response> {
    let mut out = Vec::new();
    for (k, v) in h {
        let Some(name) = k.as_str().strip_prefix("x-ms-meta-") else { continue };
        let valid = name.chars().next().is_some_and(|c| c.is_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_alphanumeric() || c == '_');
        if !valid {
            return Err(error(
                StatusCode::BAD_REQUEST,
                "InvalidMetadata",
                "The metadata specified is invalid. It has characters that are not permitted.",
                None,
            ));
        }
        out.push((name.to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned()));
    }
    Ok(out)
}

/// The content headers a request sets (Create File, Set File Properties: absent ones cleared).
pub fn parse_content(h: &HeaderMap) -> Vec<(String, String)> {
    CONTENT_HEADERS.iter().filter_map(|(req, resp)| header(h, req).map(|v| (resp.to_string(), v.to_string()))).collect()
}

/// The in-memory table, keyed by the on-disk path.
#[derive(Default)]
pub struct Table(std::sync::Mutex<std::collections::HashMap<PathBuf, Props>>);

impl Table {
    pub fn get(&self, p: &Path) -> Props {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).get(p).cloned().unwrap_or_default()
    }

    /// Changes a file's properties and counts one write.
    pub fn update(&self, p: &Path, f: impl FnOnce(&mut Props)) {
        let mut t = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let e = t.entry(p.to_path_buf()).or_default();
        f(e);
        e.writes += 1;
    }

    /// Sets or clears a file's lease (not a write: the ETag stays).
    pub fn set_lease(&self, p: &Path, lease: Option<String>) {
        let mut t = self.0.lock().unwrap_or_else(|e| e.into_inner());
        t.entry(p.to_path_buf()).or_default().lease = lease;
    }

    /// Forgets a deleted file: one lookup, not a scan of every entry under the lock.
    pub fn remove_file(&self, p: &Path) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).remove(p);
    }

    /// Forgets a deleted folder and everything below it (files deleted by hand before it, on
    /// the disk the emulator serves).
    pub fn remove_dir(&self, p: &Path) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).retain(|k, _| !k.starts_with(p));
    }
}

/// Adds the stored content headers and metadata to a response.
pub fn add_headers(r: &mut Response, props: &Props) {
    let h = r.headers_mut();
    for (k, v) in &props.content {
        if let (Ok(n), Ok(v)) = (axum::http::HeaderName::try_from(k.as_str()), HeaderValue::from_str(v)) {
            h.insert(n, v);
        }
    }
    for (k, v) in &props.metadata {
        let name = format!("x-ms-meta-{k}");
        if let (Ok(n), Ok(v)) = (axum::http::HeaderName::try_from(name), HeaderValue::from_str(v)) {
            h.insert(n, v);
        }
    }
}
