//! Copies: Copy File, and the source of Put Range From URL. Copy File's source must be a file
//! this emulator serves, authorised by its own SAS or (same account) Shared Key; Put Range From
//! URL also reads a source on another server (another account) over HTTP with the URL's SAS, as
//! the service does between accounts.

use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;

use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use chrono::Utc;

use super::authz::{self, Need};
use super::handler::{R, Req, decode, file_answer, io_error, need_parent};
use super::props;
use super::responses::{bad_request, error};
use super::signature::SasToken;
use super::{lease, names};

/// A file named by a copy source URL on this emulator: authorised by its own SAS, or (same
/// account only) by the request's Shared Key, as the service allows.
pub(super) fn copy_source(req: &Req<'_>, source: &str) -> Result<PathBuf, Response> {
    let cannot = |why: &str| {
        error(
            StatusCode::FORBIDDEN,
            "CannotVerifyCopySource",
            &format!("Could not verify the copy source within the specified time: {why}"),
            None,
        )
    };
    let url = url::Url::parse(source).map_err(|_| props::invalid_header("x-ms-copy-source", "(not a URL)"))?;
    if !served_here(req, &url) {
        return Err(cannot("this emulator's Copy File copies only from files it serves itself"));
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
/// A source on another server (another storage account) is read over HTTP, as the service
/// reads it: with the URL's own SAS, the range asked for, and the source's refusal passed on as
/// `CannotVerifyCopySource` with its status.
pub(super) async fn read_source(req: &Req<'_>, source: &str, start: u64, end: u64) -> Result<Vec<u8>, Response> {
    let url = url::Url::parse(source).map_err(|_| props::invalid_header("x-ms-copy-source", "(not a URL)"))?;
    if !served_here(req, &url) {
        return read_remote(source, start, end).await;
    }
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

fn served_here(req: &Req<'_>, url: &url::Url) -> bool {
    url.host_str() == Some(&req.state.addr.ip().to_string()) && url.port() == Some(req.state.addr.port())
}

async fn read_remote(source: &str, start: u64, end: u64) -> Result<Vec<u8>, Response> {
    static CLIENT: std::sync::LazyLock<reqwest::Client> = std::sync::LazyLock::new(|| {
        reqwest::Client::builder().timeout(std::time::Duration::from_secs(30)).build().expect("an HTTP client")
    });
    let cannot = |status: StatusCode, why: String| error(status, "CannotVerifyCopySource", &why, None);
    let answer = CLIENT
        .get(source)
        .header("x-ms-version", "2025-05-05")
        .header("x-ms-range", format!("bytes={start}-{end}"))
        .send()
        .await
        .map_err(|e| cannot(StatusCode::FORBIDDEN, format!("Could not reach the copy source: {}", e.without_url())))?;
    let status = answer.status();
    if !status.is_success() {
        let code = answer.headers().get("x-ms-error-code").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
        return Err(cannot(
            StatusCode::from_u16(status.as_u16()).unwrap_or(StatusCode::FORBIDDEN),
            format!("The copy source answered {} {code}", status.as_u16()),
        ));
    }
    let bytes = answer
        .bytes()
        .await
        .map_err(|e| cannot(StatusCode::FORBIDDEN, format!("The copy source broke off: {}", e.without_url())))?;
    if bytes.len() as u64 != end - start + 1 {
        return Err(error(
            StatusCode::RANGE_NOT_SATISFIABLE,
            "InvalidSourceRange",
            "The source range is beyond the end of the source.",
            None,
        ));
    }
    Ok(bytes.to_vec())
}

/// Copy File from a file on this emulator: done at once, so it answers `success` where the
/// service may answer `pending` for a large file; the copy gets the source's content headers
/// and metadata unless the request names its own metadata.
pub(super) fn copy_file(req: &Req<'_>) -> R {
    req.authorize('w', 'o')?;
    if req.path.is_empty() {
        return Err(bad_request("InvalidResourceName", "A file needs a name."));
    }
    need_parent(req)?;
    let source = req.h("x-ms-copy-source").unwrap_or_default().to_string();
    let from = copy_source(req, &source)?;
    let to = req.fs_path();
    lease::check(req, &to, true)?;
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
