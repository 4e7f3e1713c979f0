//! An Azure Blob prefix as a sync endpoint, over Azure's Rust SDK (`azure_storage_blob`).
//!
//! Blob has no directories: `a/b/c` is one name. Blob→Blob compares two flat listings
//! (no delimiter, 5,000 names a page: [`super::flat`]); other pairs walk one directory at a time,
//! which maps onto List Blobs with `delimiter=/` (one "directory" per prefix). Both listings are
//! made with reqwest against the documented REST operation (`azure_storage_blob` 1.1 has no
//! `delimiter`, and its pager gives no say over the page size); every transfer (download, Put Blob, Put Block/Put Block List,
//! Put Blob From URL, Delete Blob, Get Blob Properties) goes through the SDK. The SDK
//! authenticates with Entra ID or a SAS in the URL only; an account key is turned into a
//! short-lived account SAS. The source's last-modified time is kept in the `mtime` metadata
//! (RFC 3339, the key rclone uses), since a blob's own Last-Modified cannot be set.
//!
//! Two things real accounts hold that a flat reading gets wrong: blobs with snapshots (Delete
//! Blob refuses them with 409 `SnapshotsPresent` unless told to delete the snapshots too), and,
//! on accounts with a hierarchical namespace (Data Lake Storage), a zero-length marker blob per
//! directory with metadata `hdi_isfolder=true`, listed beside the directory's prefix: it is a
//! folder, not a file.

use std::collections::HashMap;
use std::num::NonZero;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use azure_core::http::RequestContent;
use azure_storage_blob::models::{
    BlobClientDeleteOptions, BlobClientDownloadOptions, BlobClientGetPropertiesResultHeaders,
    BlockBlobClientCommitBlockListOptions, BlockBlobClientUploadBlobFromUrlOptions, BlockBlobClientUploadOptions,
    BlockLookupList, DeleteSnapshotsOptionType,
};
use azure_storage_blob::{BlobClient, BlobContainerClient};
use bytes::{Bytes, BytesMut};
use chrono::{DateTime, Utc};
use futures::StreamExt;
use url::Url;

use crate::listing_xml::{self, Item as ListItem, Page, Shape};

use super::endpoint::{Remote, StorageCredential};
use super::entry::Entry;
use super::op_error::{OpError, OpResult};
use super::store::{ByteStream, md5_of};

/// Blocks of a streamed upload; also the largest single Put Blob.
const BLOCK: usize = 4 * 1024 * 1024;
/// Put Blob From URL copies at most this much in one call.
const FROM_URL_MAX: u64 = 5000 * 1024 * 1024;
const MTIME: &str = "mtime";

#[derive(Clone)]
pub struct Blob {
    remote: Remote,
    /// The container URL with its SAS.
    container_url: Url,
    container: Arc<BlobContainerClient>,
    http: reqwest::Client,
    /// Cleared once the service answers that it cannot copy from URL (Azurite).
    from_url: Arc<AtomicBool>,
}

impl std::fmt::Debug for Blob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Blob({})", self.remote.location())
    }
}

fn sdk_err(what: &str, e: azure_core::Error) -> OpError {
    let status = e.http_status().map(u16::from);
    let code = match e.kind() {
        azure_core::error::ErrorKind::HttpResponse { error_code: Some(c), .. } => c.clone(),
        // The SDK asked the credential for a token and got none: no request went out.
        azure_core::error::ErrorKind::Credential => crate::azure_files::client::NO_TOKEN.to_string(),
        _ if crate::op_error::untrusted_certificate(&drscript_base::error::chain(&e)) => {
            crate::op_error::UNTRUSTED.to_string()
        }
        _ => String::new(),
    };
    // Without an `x-ms-error-code` the SDK's code is the status again.
    let code = if status.is_some_and(|s| s.to_string() == code) { String::new() } else { code };
    // The causes too: "failed to execute request" alone hides "connection refused".
    let chain = drscript_base::error::chain(&e);
    let message = match status {
        // The SDK's text of an HTTP error is the status and the raw body: the body's
        // `<Message>` (first line) is what a person needs.
        Some(s) => match xml_field(&chain, "Message") {
            Some(m) => format!("{what}: {s}{}: {}", prefixed(&code), m.lines().next().unwrap_or_default()),
            None => format!("{what}: {s}{}", prefixed(&code)),
        },
        None => format!("{what}: {}", chain.lines().next().unwrap_or_default()),
    };
    let retry_after = match e.kind() {
        azure_core::error::ErrorKind::HttpResponse { raw_response: Some(r), .. } => {
            drscript_base::retry::retry_after(|name| {
                r.headers().iter().find(|(k, _)| k.as_str().eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
            })
        }
        _ => None,
    };
    OpError::http(message, status, (!code.is_empty()).then_some(code.as_str()), retry_after)
}

fn prefixed(code: &str) -> String {
    if code.is_empty() { String::new() } else { format!(" {code}") }
}

fn xml_field(text: &str, name: &str) -> Option<String> {
    let start = text.find(&format!("<{name}>"))? + name.len() + 2;
    let end = text[start..].find(&format!("</{name}>"))? + start;
    Some(text[start..end].to_string())
}

/// The service cannot copy from URL: 501/NotImplemented, or (Azurite) a 500 without an error
/// code. Falling back to streaming is always correct, only slower.
fn cannot_copy_from_url(e: &azure_core::Error) -> bool {
    let status = e.http_status().map(u16::from);
    let code = match e.kind() {
        azure_core::error::ErrorKind::HttpResponse { error_code, .. } => error_code.clone(),
        _ => None,
    };
    status == Some(501) || code.as_deref() == Some("NotImplemented") || (status == Some(500) && code.is_none())
}

/// List Blobs: blobs and (with a delimiter) prefixes, with what a sync compares.
const LISTING: Shape = Shape {
    list: "Blobs",
    kinds: &["Blob", "BlobPrefix"],
    properties: &["Content-Length", "Last-Modified", "Content-MD5"],
};
const BLOB: usize = 0;
const LENGTH: usize = 0;
const LAST_MODIFIED: usize = 1;
const CONTENT_MD5: usize = 2;

fn metadata<'a>(b: &'a ListItem, key: &str) -> Option<&'a str> {
    b.metadata.as_ref()?.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)).map(|(_, v)| v.as_str())
}

/// A hierarchical-namespace directory marker (`hdi_isfolder=true`, any case).
fn is_folder_marker(b: &ListItem) -> bool {
    metadata(b, "hdi_isfolder").is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
}

/// A listed blob as a file entry: the source's mtime from the `mtime` metadata drscript (and
/// rclone) write, else the blob's Last-Modified.
fn file_entry(name: String, b: &ListItem) -> Entry {
    let mtime = metadata(b, MTIME)
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .or_else(|| b.properties[LAST_MODIFIED].as_deref().and_then(|t| DateTime::parse_from_rfc2822(t).ok()))
        .map(|d| d.with_timezone(&Utc));
    let mut e = Entry::file(name, b.length(LENGTH), mtime);
    e.md5 = b.properties[CONTENT_MD5].as_deref().and_then(b64_md5);
    e
}

/// One item of a flat listing, named by its path below the endpoint.
#[derive(Debug, Clone)]
pub enum FlatItem {
    File(String, Entry),
    /// A hierarchical-namespace folder marker: such an account lists in a per-directory order,
    /// not in name order (see [`super::flat`]).
    Folder(String),
}

fn b64_md5(s: &str) -> Option<[u8; 16]> {
    use base64::Engine;
    let v = base64::engine::general_purpose::STANDARD.decode(s.trim()).ok()?;
    <[u8; 16]>::try_from(v.as_slice()).ok()
}

impl Blob {
    pub fn new(remote: &Remote) -> crate::Result<Blob> {
        let mut remote = remote.clone();
        if let StorageCredential::SharedKey(key) = &remote.credential {
            let sas = crate::azure_files::auth::account_sas(
                &remote.account,
                key,
                "rwdlac",
                Utc::now() + chrono::Duration::hours(24),
            );
            remote.credential = StorageCredential::Sas(sas);
        }
        let mut url = remote.base.clone();
        {
            let mut segs = url.path_segments_mut().map_err(|_| crate::Error::Usage("bad blob URL".into()))?;
            segs.pop_if_empty().push(&remote.root);
        }
        if let Some(sas) = remote.sas() {
            url.set_query(Some(sas));
        }
        // The engine retries per file with its own backoff; SDK retries underneath would
        // multiply the attempts and hide a service that cannot do an operation at all.
        let mut options = azure_storage_blob::BlobContainerClientOptions::default();
        options.client_options.retry = azure_core::http::RetryOptions::none();
        // One HTTP client for the SDK's calls and the listing, with the endpoint's timeouts (the
        // SDK's own client waits forever on a server that accepted and went silent).
        let http = crate::http::client(&remote, None);
        options.client_options.transport = Some(azure_core::http::Transport::new(Arc::new(http.clone())));
        let token = match &remote.credential {
            StorageCredential::Token(credential) => Some(credential.clone()),
            _ => None,
        };
        let container = BlobContainerClient::new(url.clone(), token, Some(options)).map_err(|e| {
            crate::Error::Usage(drscript_base::redact::for_error(format!(
                "sync: bad blob endpoint {}: {e}",
                remote.location()
            )))
        })?;
        Ok(Blob {
            remote,
            container_url: url,
            container: Arc::new(container),
            http,
            from_url: Arc::new(AtomicBool::new(true)),
        })
    }

    /// The blob name of `rel`.
    fn name(&self, rel: &str) -> String {
        [self.remote.path.as_str(), rel].iter().filter(|s| !s.is_empty()).copied().collect::<Vec<_>>().join("/")
    }

    fn blob(&self, rel: &str) -> BlobClient {
        self.container.blob_client(&self.name(rel))
    }

    fn shown(&self, rel: &str) -> String {
        let n = self.name(rel);
        format!(
            "{}/{n}",
            self.remote.location().trim_end_matches(&format!("/{}", self.remote.path)).trim_end_matches('/')
        )
    }

    /// The blob's URL with the SAS (a Put Blob From URL source).
    pub fn url_with_sas(&self, rel: &str) -> Option<String> {
        self.remote.sas()?;
        Some(self.blob(rel).url().to_string())
    }

    pub async fn root_exists(&self) -> OpResult<bool> {
        match self.container.get_properties(None).await {
            Ok(_) => Ok(true),
            Err(e) if e.http_status().map(u16::from) == Some(404) => Ok(false),
            Err(e) => Err(sdk_err(&format!("GET {}", self.remote.location()), e)),
        }
    }

    /// Blob has no folders: only a missing container stops a sync, which must not guess one into
    /// existence (a wrong name in the URL would silently fill a new container).
    pub fn mkdir(&self, rel: &str) -> OpResult<()> {
        if !rel.is_empty() {
            return Ok(());
        }
        Err(OpError::not_found(format!(
            "the container {} does not exist (drscript does not create containers): create it, or correct the URL",
            self.remote.root
        )))
    }

    /// One page of List Blobs below `prefix`: one level (`delimiter=/`) or flat, `maxresults`
    /// when given (the service's own default and ceiling is 5,000).
    async fn list_page(&self, prefix: &str, delimiter: bool, marker: &str, max: Option<usize>) -> OpResult<Page> {
        let mut url = self.container_url.clone();
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("restype", "container").append_pair("comp", "list");
            if delimiter {
                q.append_pair("delimiter", "/");
            }
            q.append_pair("include", "metadata");
            if let Some(n) = max {
                q.append_pair("maxresults", &n.to_string());
            }
            if !prefix.is_empty() {
                q.append_pair("prefix", prefix);
            }
            if !marker.is_empty() {
                q.append_pair("marker", marker);
            }
        }
        let what = format!("GET {} (list {prefix})", self.remote.location());
        let mut request = self.http.get(url).header("x-ms-version", "2025-01-05");
        if let Some(token) = self.remote.credential.bearer().await {
            let token = token.map_err(|e| {
                OpError::http(
                    format!("{what}: no Entra ID token for Azure Storage: {e}"),
                    None,
                    Some(crate::azure_files::client::NO_TOKEN),
                    None,
                )
            })?;
            request = request.bearer_auth(token);
        }
        let resp = request.send().await.map_err(|e| {
            let chain = drscript_base::error::chain(&e.without_url());
            let code = crate::op_error::untrusted_certificate(&chain).then_some(crate::op_error::UNTRUSTED);
            OpError::http(format!("{what}: {chain}"), None, code, None)
        })?;
        let status = resp.status();
        let retry_after = drscript_base::retry::retry_after(|name| resp.headers().get(name)?.to_str().ok());
        let text = resp
            .text()
            .await
            .map_err(|e| OpError::new(format!("{what}: {}", drscript_base::error::chain(&e.without_url())), true))?;
        if !status.is_success() {
            let code = text.split("<Code>").nth(1).and_then(|t| t.split("</Code>").next()).unwrap_or_default();
            let message = format!("{what}: {status} {code}");
            return Err(OpError::http(message, Some(status.as_u16()), Some(code), retry_after));
        }
        listing_xml::read(&text, &LISTING).map_err(|e| OpError::new(format!("{what}: {e}"), false))
    }

    /// The endpoint's prefix in the container (`path/`), empty at the container's root.
    fn prefix_of(&self, rel: &str) -> String {
        let dir = self.name(rel);
        if dir.is_empty() { String::new() } else { format!("{dir}/") }
    }

    /// One level below `rel`: blobs and prefixes, every page.
    pub async fn list(&self, rel: &str) -> OpResult<Option<Vec<Entry>>> {
        let prefix = self.prefix_of(rel);
        let mut out = Vec::new();
        let mut marker = String::new();
        loop {
            let page = self.list_page(&prefix, true, &marker, None).await?;
            for item in page.items {
                if item.kind != BLOB {
                    let name = item.name.strip_prefix(&prefix).unwrap_or(&item.name).trim_end_matches('/');
                    if !name.is_empty() {
                        out.push(Entry::dir(name));
                    }
                    continue;
                }
                let name = item.name.strip_prefix(&prefix).unwrap_or(&item.name).to_string();
                if name.is_empty() || name.contains('/') || is_folder_marker(&item) {
                    continue;
                }
                out.push(file_entry(name, &item));
            }
            match page.next_marker.filter(|m| !m.is_empty()) {
                Some(m) => marker = m,
                None => break,
            }
        }
        // A prefix with nothing under it is, for blobs, a folder that does not exist.
        if out.is_empty() && !prefix.is_empty() { Ok(None) } else { Ok(Some(out)) }
    }

    /// One page of the flat listing of everything below the endpoint (no delimiter), in the
    /// service's order; the marker of the next page, `None` after the last.
    pub async fn list_flat_page(&self, marker: &str, max: usize) -> OpResult<(Vec<FlatItem>, Option<String>)> {
        let prefix = self.prefix_of("");
        let page = self.list_page(&prefix, false, marker, Some(max)).await?;
        let mut out = Vec::with_capacity(page.items.len());
        for b in page.items.into_iter().filter(|b| b.kind == BLOB) {
            let Some(rel) = b.name.strip_prefix(&prefix).filter(|r| !r.is_empty()) else { continue };
            let rel = rel.to_string();
            if is_folder_marker(&b) {
                out.push(FlatItem::Folder(rel));
            } else {
                let entry = file_entry(rel.clone(), &b);
                out.push(FlatItem::File(rel, entry));
            }
        }
        Ok((out, page.next_marker.filter(|m| !m.is_empty())))
    }

    pub async fn read(&self, rel: &str) -> OpResult<ByteStream> {
        let opts = BlobClientDownloadOptions { parallel: NonZero::new(2), ..Default::default() };
        let what = format!("GET {}", self.shown(rel));
        let r = self.blob(rel).download(Some(opts)).await.map_err(|e| sdk_err(&what, e))?;
        // A range after the first can fail too (a 503 mid-file): the copy's retry reads its
        // status and Retry-After, as for the first request.
        Ok(r.body.map(move |c| c.map_err(|e| sdk_err(&what, e).into_io())).boxed())
    }

    fn metadata(mtime: Option<DateTime<Utc>>) -> Option<HashMap<String, String>> {
        mtime.map(|t| HashMap::from([(MTIME.to_string(), t.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true))]))
    }

    /// Put Blob for one block's worth, else Put Block per 4 MiB and Put Block List: the blob
    /// appears whole or not at all.
    pub async fn write(
        &self,
        rel: &str,
        size: u64,
        mtime: Option<DateTime<Utc>>,
        mut data: ByteStream,
    ) -> OpResult<u64> {
        let what = format!("PUT {}", self.shown(rel));
        let blob = self.blob(rel).block_blob_client();
        let mut buf = BytesMut::with_capacity((size as usize).min(BLOCK));
        let mut blocks: Vec<Vec<u8>> = Vec::new();
        let mut total = 0u64;
        let read_err = |e: std::io::Error| OpError::new(format!("cannot read the source of {rel}: {e}"), true);
        let stage = |n: usize, part: Bytes| {
            let blob = &blob;
            let what = &what;
            async move {
                let id = format!("drsync-{n:08}").into_bytes();
                let len = part.len() as u64;
                blob.stage_block(&id, len, RequestContent::from(part.to_vec()), None)
                    .await
                    .map_err(|e| sdk_err(what, e))?;
                Ok::<Vec<u8>, OpError>(id)
            }
        };
        while let Some(chunk) = data.next().await {
            let mut chunk = chunk.map_err(read_err)?;
            total += chunk.len() as u64;
            while !chunk.is_empty() {
                let take = (BLOCK - buf.len()).min(chunk.len());
                buf.extend_from_slice(&chunk.split_to(take));
                if buf.len() == BLOCK && (total < size || !chunk.is_empty() || !blocks.is_empty()) {
                    let id = stage(blocks.len(), buf.split().freeze()).await?;
                    blocks.push(id);
                }
            }
        }
        if blocks.is_empty() {
            let opts = BlockBlobClientUploadOptions { metadata: Self::metadata(mtime), ..Default::default() };
            blob.upload(RequestContent::from(buf.to_vec()), Some(opts)).await.map_err(|e| sdk_err(&what, e))?;
            return Ok(total);
        }
        if !buf.is_empty() {
            let id = stage(blocks.len(), buf.freeze()).await?;
            blocks.push(id);
        }
        let list = BlockLookupList { latest: Some(blocks), ..Default::default() };
        let opts = BlockBlobClientCommitBlockListOptions { metadata: Self::metadata(mtime), ..Default::default() };
        let content = list.try_into().map_err(|e| sdk_err(&what, e))?;
        blob.commit_block_list(content, Some(opts)).await.map_err(|e| sdk_err(&what, e))?;
        Ok(total)
    }

    /// Put Blob From URL from another blob (with its SAS); `None` when the service cannot.
    pub async fn copy_from(&self, src: &Blob, rel: &str, entry: &Entry) -> Option<OpResult<u64>> {
        if !self.from_url.load(Ordering::Relaxed) || entry.size > FROM_URL_MAX {
            return None;
        }
        let source = src.url_with_sas(rel)?;
        let opts =
            BlockBlobClientUploadBlobFromUrlOptions { metadata: Self::metadata(entry.mtime), ..Default::default() };
        let what = format!("PUT {} (from URL)", self.shown(rel));
        match self.blob(rel).block_blob_client().upload_blob_from_url(source, Some(opts)).await {
            Ok(_) => Some(Ok(entry.size)),
            Err(e) => {
                let cannot = cannot_copy_from_url(&e);
                let err = sdk_err(&what, e);
                if cannot {
                    tracing::info!(
                        "sync: {} cannot copy server-side ({err}); streaming instead",
                        self.remote.location()
                    );
                    self.from_url.store(false, Ordering::Relaxed);
                    None
                } else {
                    Some(Err(err))
                }
            }
        }
    }

    pub fn server_side_possible(&self, src: &Blob) -> bool {
        self.from_url.load(Ordering::Relaxed) && src.remote.sas().is_some()
    }

    /// Delete Blob with its snapshots: a mirror removes what the source lacks, and a blob
    /// with snapshots cannot be deleted alone.
    pub async fn delete_file(&self, rel: &str) -> OpResult<()> {
        let options = BlobClientDeleteOptions {
            delete_snapshots: Some(DeleteSnapshotsOptionType::Include),
            ..Default::default()
        };
        match self.blob(rel).delete(Some(options)).await {
            Ok(_) => Ok(()),
            Err(e) if e.http_status().map(u16::from) == Some(404) => Ok(()),
            Err(e) => Err(sdk_err(&format!("DELETE {}", self.shown(rel)), e)),
        }
    }

    pub async fn md5(&self, rel: &str) -> OpResult<[u8; 16]> {
        let props =
            self.blob(rel).get_properties(None).await.map_err(|e| sdk_err(&format!("HEAD {}", self.shown(rel)), e))?;
        if let Ok(Some(m)) = props.content_md5()
            && let Ok(m) = <[u8; 16]>::try_from(m.as_slice())
        {
            return Ok(m);
        }
        md5_of(self.read(rel).await?, rel).await
    }
}
