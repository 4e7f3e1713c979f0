//! Requests to one Azure Files share, authenticated by SAS or Shared Key.

use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use reqwest::{Method, StatusCode};
use url::Url;

use super::auth::{self, SignedRequest};
use super::listing::{self, Item};
use super::{API_VERSION, MAX_RANGE};
use crate::endpoint::{Remote, StorageCredential};
use crate::entry::Entry;
use crate::store::ByteStream;

/// The code of a request that was not sent: the credential gave no token (the identity library
/// retries its own requests already).
pub const NO_TOKEN: &str = "NoEntraToken";

/// A failed request: method, URL (no credentials), status and the service's error code.
#[derive(Debug, Clone)]
pub struct FilesError {
    pub message: String,
    pub status: Option<u16>,
    pub code: Option<String>,
    /// The wait the service asked for (`x-ms-retry-after-ms`, `Retry-After`).
    pub retry_after: Option<std::time::Duration>,
}

impl FilesError {
    /// An error whose message may hold URLs with a SAS: their queries are dropped and every
    /// registered secret masked before the message goes anywhere.
    pub fn new(message: impl AsRef<str>, status: Option<u16>, code: Option<String>) -> FilesError {
        FilesError { message: drscript_base::redact::for_error(message), status, code, retry_after: None }
    }

    /// A failure below HTTP (refused, reset, timed out, a body cut short): worth a retry.
    fn transport(what: &str, e: reqwest::Error) -> FilesError {
        let chain = drscript_base::error::chain(&e.without_url());
        let code = crate::op_error::untrusted_certificate(&chain).then(|| crate::op_error::UNTRUSTED.to_string());
        FilesError::new(format!("{what}: {chain}"), None, code)
    }

    pub fn retryable(&self) -> bool {
        !matches!(self.code.as_deref(), Some(NO_TOKEN | crate::op_error::UNTRUSTED))
            && self.status.is_none_or(drscript_base::retry::retryable_status)
    }
    pub fn not_found(&self) -> bool {
        self.status == Some(404)
    }
}

impl std::fmt::Display for FilesError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

pub type FResult<T> = std::result::Result<T, FilesError>;

/// The 100-ns precision the service keeps, in its ISO 8601 form.
pub fn format_time(t: DateTime<Utc>) -> String {
    // chrono has no 7-digit fraction: the service keeps 100-ns ticks.
    format!("{}.{:07}Z", t.format("%Y-%m-%dT%H:%M:%S"), t.timestamp_subsec_nanos() / 100)
}

pub fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s.trim()).ok().map(|d| d.with_timezone(&Utc))
}

#[derive(Clone)]
pub struct FilesClient {
    http: reqwest::Client,
    remote: Remote,
    /// `maxresults` of listings (the service's default, 5000, when `None`).
    page_size: Option<usize>,
    /// The read SAS minted from the account key for server-side copies, and its expiry.
    minted: std::sync::Arc<std::sync::Mutex<Option<MintedSas>>>,
}

/// A SAS query string and its expiry.
type MintedSas = (String, DateTime<Utc>);

/// How long a SAS minted from the account key lives, and how much of that must be left for it to
/// be handed out again: each range copy gets a token valid for at least `MINTED_SAS_RENEW`, so a
/// sync of any length never presents an expired one, and a leaked token is useless within the
/// hour.
const MINTED_SAS_LIFETIME: chrono::Duration = chrono::Duration::hours(1);
const MINTED_SAS_RENEW: chrono::Duration = chrono::Duration::minutes(15);

/// Percent-encodes one path segment.
fn enc(seg: &str) -> String {
    const SET: &percent_encoding::AsciiSet =
        &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');
    percent_encoding::utf8_percent_encode(seg, SET).to_string()
}

/// Properties of a file (Get File Properties).
#[derive(Debug, Clone)]
pub struct FileProps {
    pub size: u64,
    pub last_write_time: Option<DateTime<Utc>>,
    pub md5: Option<[u8; 16]>,
    /// The stored MD5 is the content's: drscript set it with the last-write-time the file still
    /// has ([`MD5_TIME`]). The service keeps a Content-MD5 through later writes (an SMB client's,
    /// a Put Range) without checking it, so any other MD5 may be stale.
    pub md5_current: bool,
}

/// The metadata in which an upload records the last-write-time its Content-MD5 belongs to.
pub const MD5_TIME: &str = "drscriptmd5time";

impl FilesClient {
    pub fn new(remote: Remote) -> FilesClient {
        let http = crate::http::client(&remote, Some(64));
        FilesClient { http, remote, page_size: None, minted: Default::default() }
    }

    /// Smaller listing pages (tests of paging).
    pub fn with_page_size(mut self, n: usize) -> FilesClient {
        self.page_size = Some(n);
        self
    }

    pub fn remote(&self) -> &Remote {
        &self.remote
    }

    /// The URL path of `rel` below the endpoint's directory, encoded.
    fn path_of(&self, rel: &str) -> String {
        let mut p = String::new();
        let base_path = self.remote.base.path().trim_end_matches('/');
        p.push_str(base_path);
        p.push('/');
        p.push_str(&enc(&self.remote.root));
        for seg in self.remote.path.split('/').chain(rel.split('/')).filter(|s| !s.is_empty()) {
            p.push('/');
            p.push_str(&enc(seg));
        }
        p
    }

    /// The full URL of `rel` with a SAS that lets a service read it (a Put Range From URL
    /// source): the endpoint's own SAS, or one minted from its account key. `None` when the
    /// endpoint has neither.
    pub fn url_with_sas(&self, rel: &str) -> Option<String> {
        let sas = self.read_sas()?;
        let mut u = self.remote.base.clone();
        u.set_path(&self.path_of(rel));
        Some(format!("{}?{sas}", u.as_str()))
    }

    /// Whether a service can be let read this endpoint's files ([`FilesClient::url_with_sas`]).
    ///
    /// An Entra ID token is not lent to the service: a copy from such an endpoint streams through
    /// drscript.
    pub fn can_share_reads(&self) -> bool {
        matches!(self.remote.credential, StorageCredential::Sas(_) | StorageCredential::SharedKey(_))
    }

    fn read_sas(&self) -> Option<String> {
        let key = match &self.remote.credential {
            StorageCredential::Sas(sas) => return Some(sas.clone()),
            StorageCredential::SharedKey(key) => key,
            StorageCredential::Anonymous | StorageCredential::Token(_) => return None,
        };
        let now = Utc::now();
        let mut minted = self.minted.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((sas, expiry)) = minted.as_ref()
            && *expiry - now > MINTED_SAS_RENEW
        {
            return Some(sas.clone());
        }
        // A start a little in the past: the service's clock may run behind ours.
        let expiry = now + MINTED_SAS_LIFETIME;
        let sas = auth::share_sas(
            &self.remote.account,
            &self.remote.root,
            key,
            "r",
            now - chrono::Duration::minutes(5),
            expiry,
        )?;
        *minted = Some((sas.clone(), expiry));
        Some(sas)
    }

    /// The URL without credentials, for messages.
    fn shown(&self, rel: &str) -> String {
        let mut u = self.remote.base.clone();
        u.set_path(&self.path_of(rel));
        u.to_string()
    }

    async fn send(
        &self,
        method: Method,
        rel: &str,
        query: &[(&str, &str)],
        headers: Vec<(String, String)>,
        body: Option<reqwest::Body>,
        ok: &[StatusCode],
    ) -> FResult<reqwest::Response> {
        let path = self.path_of(rel);
        let mut url = self.remote.base.clone();
        url.set_path(&path);
        let mut pairs: Vec<(String, String)> = query.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let mut headers = headers;
        headers.push(("x-ms-version".into(), API_VERSION.into()));
        headers.push(("x-ms-date".into(), Utc::now().format("%a, %d %b %Y %H:%M:%S GMT").to_string()));
        match &self.remote.credential {
            StorageCredential::Sas(sas) => {
                for (k, v) in url::form_urlencoded::parse(sas.as_bytes()) {
                    pairs.push((k.into_owned(), v.into_owned()));
                }
            }
            StorageCredential::SharedKey(key) => {
                let signed =
                    SignedRequest { method: method.as_str(), headers: &headers, path: url.path(), query: &pairs };
                let authz = auth::shared_key_authorization(&self.remote.account, key, &signed)
                    .ok_or_else(|| FilesError::new("the account key is not valid base64", None, None))?;
                headers.push(("Authorization".into(), authz));
            }
            StorageCredential::Token(_) => {
                let token =
                    self.remote.credential.bearer().await.unwrap_or_else(|| Err(String::new())).map_err(|e| {
                        FilesError::new(
                            format!("{method} {}: no Entra ID token for Azure Storage: {e}", self.shown(rel)),
                            None,
                            Some(NO_TOKEN.to_string()),
                        )
                    })?;
                headers.push(("Authorization".into(), format!("Bearer {token}")));
                // What the Files REST API requires of a request with a token: the caller's role
                // ("Storage File Data Privileged ...") decides, not the files' ACLs.
                headers.push(("x-ms-file-request-intent".into(), "backup".into()));
            }
            StorageCredential::Anonymous => {}
        }
        if !pairs.is_empty() {
            let mut q = url::form_urlencoded::Serializer::new(String::new());
            for (k, v) in &pairs {
                q.append_pair(k, v);
            }
            url.set_query(Some(&q.finish()));
        }
        let mut req = self.http.request(method.clone(), url);
        for (k, v) in &headers {
            req = req.header(k.as_str(), v.as_str());
        }
        if let Some(b) = body {
            req = req.body(b);
        }
        let what = format!("{method} {}", self.shown(rel));
        let resp = req.send().await.map_err(|e| FilesError::transport(&what, e))?;
        if ok.contains(&resp.status()) {
            return Ok(resp);
        }
        let status = resp.status();
        let retry_after = drscript_base::retry::retry_after(|name| resp.headers().get(name)?.to_str().ok());
        let header_code = resp.headers().get("x-ms-error-code").and_then(|v| v.to_str().ok()).map(str::to_string);
        let body = resp.text().await.unwrap_or_default();
        let code = header_code.or_else(|| between(&body, "<Code>", "</Code>"));
        let msg = between(&body, "<Message>", "</Message>")
            .map(|m| m.lines().next().unwrap_or_default().to_string())
            .unwrap_or_default();
        // The service's detail for a refused SAS goes on with "String to sign used was ...",
        // which spells out the token's fields: the first sentence is the diagnosis.
        let detail = between(&body, "<AuthenticationErrorDetail>", "</AuthenticationErrorDetail>")
            .map(|d| d.split(" String to sign").next().unwrap_or_default().trim().to_string())
            .filter(|d| !d.is_empty())
            .map(|d| format!(" ({d})"))
            .unwrap_or_default();
        let message = format!(
            "{what}: {status}{}{}{detail}",
            code.as_deref().map(|c| format!(" {c}")).unwrap_or_default(),
            if msg.is_empty() { String::new() } else { format!(": {msg}") }
        );
        let mut err = FilesError::new(message, Some(status.as_u16()), code);
        err.retry_after = retry_after;
        Err(err)
    }

    /// The share's quota in GiB (Get Share Properties, `x-ms-share-quota`) and the bytes it
    /// holds (Get Share Stats, `ShareUsageBytes`), whatever folder of it the endpoint names. Both
    /// are share-level operations that Azure serves to the account owner (Shared Key, an account
    /// SAS), not to a share SAS.
    pub async fn share_space(&self) -> FResult<(u64, u64)> {
        let share = FilesClient { remote: Remote { path: String::new(), ..self.remote.clone() }, ..self.clone() };
        let what = format!("GET {}?restype=share", share.shown(""));
        let resp = share.send(Method::GET, "", &[("restype", "share")], vec![], None, &[StatusCode::OK]).await?;
        let quota = resp
            .headers()
            .get("x-ms-share-quota")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .ok_or_else(|| FilesError::new(format!("{what}: no x-ms-share-quota in the answer"), None, None))?;
        let what = format!("GET {}?restype=share&comp=stats", share.shown(""));
        let resp = share
            .send(Method::GET, "", &[("restype", "share"), ("comp", "stats")], vec![], None, &[StatusCode::OK])
            .await?;
        let text = resp.text().await.map_err(|e| FilesError::transport(&what, e))?;
        let used = between(&text, "<ShareUsageBytes>", "</ShareUsageBytes>")
            .and_then(|v| v.trim().parse::<u64>().ok())
            .ok_or_else(|| FilesError::new(format!("{what}: no ShareUsageBytes in the answer"), None, None))?;
        Ok((quota, used))
    }

    /// Get Directory Properties: whether the directory exists.
    pub async fn dir_exists(&self, rel: &str) -> FResult<bool> {
        match self.send(Method::GET, rel, &[("restype", "directory")], vec![], None, &[StatusCode::OK]).await {
            Ok(_) => Ok(true),
            Err(e) if e.not_found() => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// List Directories and Files of one directory, every page; `None` when it does not exist.
    pub async fn list(&self, rel: &str) -> FResult<Option<Vec<Entry>>> {
        let mut out = Vec::new();
        let mut marker = String::new();
        loop {
            let max = self.page_size.map(|n| n.to_string());
            let mut q = vec![("restype", "directory"), ("comp", "list"), ("include", "Timestamps")];
            if let Some(m) = &max {
                q.push(("maxresults", m.as_str()));
            }
            if !marker.is_empty() {
                q.push(("marker", marker.as_str()));
            }
            let resp = match self.send(Method::GET, rel, &q, vec![], None, &[StatusCode::OK]).await {
                Ok(r) => r,
                Err(e) if e.not_found() => return Ok(None),
                Err(e) => return Err(e),
            };
            let what = format!("GET {}", self.shown(rel));
            let text = resp.text().await.map_err(|e| FilesError::transport(&what, e))?;
            let page = listing::parse(&text).map_err(|e| FilesError::new(format!("{what}: {e}"), None, None))?;
            for item in page.entries.items {
                match item {
                    Item::Directory(n) => out.push(Entry::dir(n.name)),
                    Item::File(n) => {
                        let t = n.properties.last_write_time.as_deref().or(n.properties.last_modified.as_deref());
                        let t = t.and_then(parse_time).filter(|t| *t != sentinel());
                        out.push(Entry::file(n.name, n.properties.content_length.unwrap_or(0), t));
                    }
                }
            }
            match page.next_marker.filter(|m| !m.is_empty()) {
                Some(m) => marker = m,
                None => break,
            }
        }
        Ok(Some(out))
    }

    pub async fn properties(&self, rel: &str) -> FResult<FileProps> {
        let resp = self.send(Method::HEAD, rel, &[], vec![], None, &[StatusCode::OK]).await?;
        let h = resp.headers();
        let get = |n: &str| h.get(n).and_then(|v| v.to_str().ok()).map(str::to_string);
        use base64::Engine;
        let last_write_time =
            get("x-ms-file-last-write-time").and_then(|v| parse_time(&v)).filter(|t| *t != sentinel());
        let md5_time = get(&format!("x-ms-meta-{MD5_TIME}")).and_then(|v| parse_time(&v));
        Ok(FileProps {
            size: get("content-length").and_then(|v| v.parse().ok()).unwrap_or(0),
            md5_current: last_write_time.is_some() && md5_time == last_write_time,
            last_write_time,
            md5: get("content-md5")
                .and_then(|v| base64::engine::general_purpose::STANDARD.decode(v).ok())
                .and_then(|v| <[u8; 16]>::try_from(v.as_slice()).ok()),
        })
    }

    pub async fn create_dir(&self, rel: &str) -> FResult<()> {
        match self.send(Method::PUT, rel, &[("restype", "directory")], vec![], None, &[StatusCode::CREATED]).await {
            Ok(_) => Ok(()),
            Err(e) if e.code.as_deref() == Some("ResourceAlreadyExists") => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Create File: allocates `size` bytes (zeros) with the given last-write-time.
    pub async fn create_file(&self, rel: &str, size: u64, last_write: DateTime<Utc>) -> FResult<()> {
        self.create_stamped(rel, size, last_write, None).await
    }

    /// Create File that records in its metadata ([`MD5_TIME`]) the last-write-time the upload
    /// will end with, and so the Content-MD5 it will set.
    async fn create_stamped(
        &self,
        rel: &str,
        size: u64,
        last_write: DateTime<Utc>,
        md5_time: Option<DateTime<Utc>>,
    ) -> FResult<()> {
        let mut headers = vec![
            ("x-ms-type".into(), "file".into()),
            ("x-ms-content-length".into(), size.to_string()),
            ("x-ms-file-last-write-time".into(), format_time(last_write)),
            ("Content-Length".into(), "0".into()),
        ];
        if let Some(t) = md5_time {
            headers.push((format!("x-ms-meta-{MD5_TIME}"), format_time(t)));
        }
        self.send(Method::PUT, rel, &[], headers, None, &[StatusCode::CREATED]).await.map(drop)
    }

    /// Put Range (update), keeping the file's last-write-time.
    pub async fn put_range(&self, rel: &str, offset: u64, data: Bytes) -> FResult<()> {
        let end = offset + data.len() as u64 - 1;
        let headers = vec![
            ("x-ms-range".into(), format!("bytes={offset}-{end}")),
            ("x-ms-write".into(), "update".into()),
            ("x-ms-file-last-write-time".into(), "preserve".into()),
            ("Content-Length".into(), data.len().to_string()),
        ];
        self.send(Method::PUT, rel, &[("comp", "range")], headers, Some(data.into()), &[StatusCode::CREATED])
            .await
            .map(drop)
    }

    /// Put Range From URL: the service reads `len` bytes at `offset` from `source` (with SAS).
    pub async fn put_range_from_url(&self, rel: &str, offset: u64, len: u64, source: &str) -> FResult<()> {
        let range = format!("bytes={offset}-{}", offset + len - 1);
        let headers = vec![
            ("x-ms-range".into(), range.clone()),
            ("x-ms-source-range".into(), range),
            ("x-ms-write".into(), "update".into()),
            ("x-ms-copy-source".into(), source.to_string()),
            ("x-ms-file-last-write-time".into(), "preserve".into()),
            ("Content-Length".into(), "0".into()),
        ];
        self.send(Method::PUT, rel, &[("comp", "range")], headers, None, &[StatusCode::CREATED]).await.map(drop)
    }

    /// Set File Properties: the last-write-time and the Content-MD5 (which the service stores
    /// without checking it, and clears when absent); SMB attributes preserved.
    pub async fn set_last_write_time(&self, rel: &str, t: DateTime<Utc>, md5: Option<[u8; 16]>) -> FResult<()> {
        let mut headers = vec![
            ("x-ms-file-last-write-time".into(), format_time(t)),
            ("x-ms-file-attributes".into(), "preserve".into()),
            ("x-ms-file-creation-time".into(), "preserve".into()),
            ("x-ms-file-permission".into(), "preserve".into()),
            ("Content-Length".into(), "0".into()),
        ];
        if let Some(m) = md5 {
            use base64::Engine;
            headers.push(("x-ms-content-md5".into(), base64::engine::general_purpose::STANDARD.encode(m)));
        }
        self.send(Method::PUT, rel, &[("comp", "properties")], headers, None, &[StatusCode::OK]).await.map(drop)
    }

    pub async fn delete_file(&self, rel: &str) -> FResult<()> {
        match self.send(Method::DELETE, rel, &[], vec![], None, &[StatusCode::ACCEPTED]).await {
            Err(e) if !e.not_found() => Err(e),
            _ => Ok(()),
        }
    }

    pub async fn delete_dir(&self, rel: &str) -> FResult<()> {
        match self.send(Method::DELETE, rel, &[("restype", "directory")], vec![], None, &[StatusCode::ACCEPTED]).await {
            Err(e) if !e.not_found() => Err(e),
            _ => Ok(()),
        }
    }

    /// Get File: the content as a stream.
    pub async fn get(&self, rel: &str) -> FResult<ByteStream> {
        let resp = self.send(Method::GET, rel, &[], vec![], None, &[StatusCode::OK]).await?;
        // A body cut off midway is a passing failure: the copy's retry starts the file again.
        Ok(resp
            .bytes_stream()
            .map(|r| {
                r.map_err(|e| {
                    let why = drscript_base::error::chain(&e.without_url());
                    crate::op_error::OpError::new(why, true).into_io()
                })
            })
            .boxed())
    }

    /// Uploads a stream as `rel`: create with a sentinel last-write-time (so that a killed
    /// upload is never mistaken for a complete one), put ranges of up to 4 MiB, then set the
    /// real last-write-time and the MD5 of what was sent (so that a hash compare later needs
    /// only the file's properties, as with Blob).
    pub async fn upload(
        &self,
        rel: &str,
        size: u64,
        mtime: Option<DateTime<Utc>>,
        mut data: ByteStream,
    ) -> FResult<u64> {
        let final_time = mtime.unwrap_or_else(Utc::now);
        if size == 0 {
            self.create_file(rel, 0, final_time).await?;
            return Ok(0);
        }
        self.create_stamped(rel, size, sentinel(), Some(final_time)).await?;
        let mut buf = bytes::BytesMut::with_capacity((size.min(MAX_RANGE)) as usize);
        let mut offset = 0u64;
        let mut hash = <md5::Md5 as md5::Digest>::new();
        let read_err = |e: std::io::Error| FilesError::new(format!("cannot read the source of {rel}: {e}"), None, None);
        while let Some(chunk) = data.next().await {
            let mut chunk = chunk.map_err(read_err)?;
            md5::Digest::update(&mut hash, &chunk);
            while !chunk.is_empty() {
                let room = MAX_RANGE as usize - buf.len();
                let take = room.min(chunk.len());
                buf.extend_from_slice(&chunk.split_to(take));
                if buf.len() as u64 == MAX_RANGE {
                    let part = buf.split().freeze();
                    let n = part.len() as u64;
                    self.put_range(rel, offset, part).await?;
                    offset += n;
                }
            }
        }
        if !buf.is_empty() {
            let n = buf.len() as u64;
            self.put_range(rel, offset, buf.freeze()).await?;
            offset += n;
        }
        if offset != size {
            return Err(FilesError::new(
                format!("the source of {rel} changed while copying ({offset} bytes read, {size} expected)"),
                None,
                None,
            ));
        }
        self.set_last_write_time(rel, final_time, Some(md5::Digest::finalize(hash).into())).await?;
        Ok(offset)
    }

    /// Server-side copy of `rel` from `source` (a file URL with SAS), range by range.
    pub async fn copy_from_url(
        &self,
        rel: &str,
        size: u64,
        mtime: Option<DateTime<Utc>>,
        source: &str,
    ) -> FResult<u64> {
        let final_time = mtime.unwrap_or_else(Utc::now);
        if size == 0 {
            self.create_file(rel, 0, final_time).await?;
            return Ok(0);
        }
        self.create_file(rel, size, sentinel()).await?;
        let mut offset = 0;
        while offset < size {
            let len = MAX_RANGE.min(size - offset);
            self.put_range_from_url(rel, offset, len, source).await?;
            offset += len;
        }
        self.set_last_write_time(rel, final_time, None).await?;
        Ok(size)
    }
}

/// The last-write-time of a file still being written: older than any real source. Listings and
/// properties read it as no time at all (`None`), so it never reaches a copy, a plan or a report:
/// a destination without a time is older than any source and is copied again.
pub fn sentinel() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("1980-01-01T00:00:00Z").unwrap().with_timezone(&Utc)
}

fn between(text: &str, a: &str, b: &str) -> Option<String> {
    let start = text.find(a)? + a.len();
    let end = text[start..].find(b)? + start;
    Some(text[start..end].to_string())
}

/// The URL of `remote` (for tests and messages).
pub fn base_url(remote: &Remote) -> Url {
    remote.base.clone()
}
