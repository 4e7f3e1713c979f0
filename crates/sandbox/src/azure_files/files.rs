//! File operations: Create File, Get File (ranges, range MD5), Get / Set File Properties and
//! Metadata, Put Range (and from URL), List Ranges, Delete File.

use std::io::{Read, Seek, SeekFrom, Write};

use axum::body::Body;
use axum::http::{HeaderValue, Method, StatusCode};
use axum::response::Response;
use chrono::{DateTime, Utc};

use super::copy::read_source;
use super::handler::{
    MAX_RANGE, R, Req, existing_file, file_answer, file_headers, io_error, mtime, need_parent, parse_range, parse_time,
    set_mtime,
};
use super::responses::{bad_request, base, empty, error};
use super::{lease, props};

/// Set File Metadata replaces every metadata pair of the file.
pub(super) fn set_file_metadata(req: &Req<'_>) -> R {
    req.authorize('w', 'o')?;
    let (p, _) = existing_file(req)?;
    lease::check(req, &p, true)?;
    let metadata = props::parse_metadata(&req.headers)?;
    req.state.props.update(&p, |pr| pr.metadata = metadata);
    file_answer(req, StatusCode::OK, &p)
}

/// `x-ms-file-last-write-time` of Create File / Set File Properties: a time, `now`, or
/// `preserve` / absent (→ `default`).
pub(super) fn last_write_header(req: &Req<'_>, default: DateTime<Utc>) -> Result<DateTime<Utc>, Response> {
    match req.h("x-ms-file-last-write-time") {
        None => Ok(default),
        Some(v) if v.eq_ignore_ascii_case("preserve") => Ok(default),
        Some(v) if v.eq_ignore_ascii_case("now") => Ok(Utc::now()),
        Some(v) => parse_time(v).ok_or_else(|| props::invalid_header("x-ms-file-last-write-time", v)),
    }
}

/// Create File: a new file of `x-ms-content-length` zero bytes, or an existing one (whatever
/// the case of its name) emptied and given the new properties; its name keeps its first case.
pub(super) fn create_file(req: &Req<'_>) -> R {
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
    lease::check(req, &p, true)?;
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
pub(super) fn set_props(req: &Req<'_>) -> R {
    req.authorize('w', 'o')?;
    let (p, meta) = existing_file(req)?;
    lease::check(req, &p, true)?;
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

pub(super) async fn get_file(req: &Req<'_>) -> R {
    req.authorize('r', 'o')?;
    let (p, meta) = existing_file(req)?;
    lease::check(req, &p, false)?;
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
    lease::add_headers(&mut r, props.lease.as_deref());
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

pub(super) fn delete_file(req: &Req<'_>) -> R {
    req.authorize('d', 'o')?;
    let (p, _) = existing_file(req)?;
    lease::check(req, &p, true)?;
    std::fs::remove_file(&p).map_err(|e| io_error(&e))?;
    req.state.props.remove_file(&p);
    req.state.names.removed_file(&p);
    Ok(empty(StatusCode::ACCEPTED))
}

/// List Ranges: the emulator does not track which ranges were written, so a file reports one
/// range over its whole length (a sparse file on the service lists only its written ranges).
pub(super) fn list_ranges(req: &Req<'_>) -> R {
    req.authorize('r', 'o')?;
    let (p, meta) = existing_file(req)?;
    lease::check(req, &p, false)?;
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

pub(super) async fn put_range(req: &Req<'_>, body: Body) -> R {
    req.authorize('w', 'o')?;
    let (p, meta) = existing_file(req)?;
    lease::check(req, &p, true)?;
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
        read_source(req, source, ss, se).await?
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
