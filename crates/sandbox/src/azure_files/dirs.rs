//! Share and directory operations: Create Share, Get Share Properties, Create / Get / Set /
//! Delete Directory, and List Directories and Files.

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode};
use chrono::Utc;

use super::handler::{
    R, Req, attributes_of, changed, created, etag, file_answer, file_headers, io_error, mtime, need_parent, need_share,
    parse_time,
};
use super::props;
use super::responses::{bad_request, base, empty, error, iso7, not_found, rfc1123, xml_escape};

pub(super) fn create_share(req: &Req<'_>) -> R {
    req.authorize('c', 'c')?;
    if req.share_dir().is_dir() {
        return Err(error(StatusCode::CONFLICT, "ShareAlreadyExists", "The specified share already exists.", None));
    }
    std::fs::create_dir_all(req.share_dir()).map_err(|e| io_error(&e))?;
    Ok(empty(StatusCode::CREATED))
}

/// A standard file share's quota when none was set: 5 TiB (100 TiB with large file shares).
const DEFAULT_QUOTA_GIB: u64 = 5120;

fn quota_of(req: &Req<'_>) -> u64 {
    let quotas = req.state.quotas.lock().unwrap_or_else(|e| e.into_inner());
    quotas.get(&req.share_dir()).copied().unwrap_or(DEFAULT_QUOTA_GIB)
}

pub(super) fn share_props(req: &Req<'_>) -> R {
    req.authorize('r', 'c')?;
    need_share(req)?;
    let mut r = empty(StatusCode::OK);
    r.headers_mut().insert("x-ms-share-quota", HeaderValue::from(quota_of(req)));
    Ok(r)
}

/// Set Share Properties: the quota (`x-ms-share-quota`, 1–102400 GiB).
pub(super) fn set_share_props(req: &Req<'_>) -> R {
    req.authorize_owner('w', 'c')?;
    need_share(req)?;
    if let Some(v) = req.h("x-ms-share-quota") {
        match v.trim().parse::<u64>() {
            Ok(q) if (1..=102_400).contains(&q) => {
                let mut quotas = req.state.quotas.lock().unwrap_or_else(|e| e.into_inner());
                quotas.insert(req.share_dir(), q);
            }
            _ => return Err(props::invalid_header("x-ms-share-quota", v)),
        }
    }
    Ok(empty(StatusCode::OK))
}

/// Get Share Stats: `ShareUsageBytes`, the size of every file in the share.
pub(super) fn share_stats(req: &Req<'_>) -> R {
    req.authorize_owner('r', 'c')?;
    need_share(req)?;
    fn usage(dir: &std::path::Path) -> u64 {
        let Ok(rd) = std::fs::read_dir(dir) else { return 0 };
        rd.flatten()
            .map(|e| match e.metadata() {
                Ok(m) if m.is_dir() => usage(&e.path()),
                Ok(m) => m.len(),
                Err(_) => 0,
            })
            .sum()
    }
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?><ShareStats><ShareUsageBytes>{}</ShareUsageBytes></ShareStats>",
        usage(&req.share_dir())
    );
    let mut r = base(StatusCode::OK, Body::from(body));
    r.headers_mut().insert("content-type", HeaderValue::from_static("application/xml"));
    Ok(r)
}

pub(super) fn dir_props(req: &Req<'_>) -> R {
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

pub(super) fn create_dir(req: &Req<'_>) -> R {
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
pub(super) fn set_dir_props(req: &Req<'_>) -> R {
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

pub(super) fn delete_dir(req: &Req<'_>) -> R {
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
            req.state.props.remove_dir(&p);
            req.state.names.removed_dir(&p);
            Ok(empty(StatusCode::ACCEPTED))
        }
        Err(e) if e.kind() == std::io::ErrorKind::DirectoryNotEmpty => {
            Err(error(StatusCode::CONFLICT, "DirectoryNotEmpty", "The specified directory is not empty.", None))
        }
        Err(e) => Err(io_error(&e)),
    }
}

pub(super) fn list(req: &Req<'_>) -> R {
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
