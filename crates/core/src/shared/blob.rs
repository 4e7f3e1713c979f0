//! The few Blob service operations the shared state needs, as plain REST calls: containers,
//! Put/Get Blob, List Blobs, Lease Blob, metadata.
//!
//! Plain REST through reqwest rather than `azure_storage_blob` (which `drscript-sync` uses for
//! transfers): the lock is decided by the exact status and `x-ms-error-code` of Lease Blob
//! (`409 LeaseAlreadyPresent`, `409 LeaseIdMismatchWithLeaseOperation`, `412 LeaseIdMissing`),
//! each call needs its own short timeout so that a dead service cannot hold a run, and every
//! failure must name the blob, the URL without its SAS and the status. An account key becomes a
//! short-lived account SAS (as `drscript-sync` does), so one signing path serves both.
//!
//! Calls are blocking (a current-thread runtime per call, no connection pool): the lock's renewal
//! and the journal's mirror live on plain threads, and `status` has no runtime of its own.

use std::collections::BTreeMap;
use std::time::Duration;

use drscript_base::error::{Error, Result};
use drscript_base::redact;
use drscript_sync::{Endpoint, StorageCredential};

const VERSION: &str = "2021-12-02";
/// One call's budget: a shared state that does not answer within it is unreachable.
const TIMEOUT: Duration = Duration::from_secs(10);

/// A failed call: what it was, the status when the service answered, its error code.
#[derive(Debug, Clone)]
pub struct BlobError {
    pub message: String,
    pub status: Option<u16>,
    pub code: Option<String>,
}

impl std::fmt::Display for BlobError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// An answer: status, headers (lower-case names), body.
pub struct Answer {
    pub status: u16,
    pub headers: BTreeMap<String, String>,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }

    /// The `x-ms-meta-*` headers, without the prefix.
    pub fn metadata(&self) -> BTreeMap<String, String> {
        self.headers
            .iter()
            .filter_map(|(k, v)| k.strip_prefix("x-ms-meta-").map(|k| (k.to_string(), v.clone())))
            .collect()
    }
}

/// A container (and a name prefix in it) with the SAS or the Entra ID token source that opens it.
#[derive(Clone)]
pub struct Container {
    /// `scheme://host[:port][/ACCOUNT]/CONTAINER`, no query: what messages show.
    url: String,
    prefix: String,
    sas: String,
    token: Option<std::sync::Arc<dyn azure_core::credentials::TokenCredential>>,
    /// Certificate authorities trusted besides the system's (`[azure] ca_file`), PEM.
    extra_roots: Option<std::sync::Arc<[u8]>>,
}

impl std::fmt::Debug for Container {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Container({})", self.location())
    }
}

impl Container {
    /// `url` names a container (`https://ACCOUNT.blob.core.windows.net/CONTAINER[/PREFIX]`, or
    /// `blob+http://127.0.0.1:PORT/ACCOUNT/CONTAINER` for an emulator); the credential is a SAS
    /// or the account key (turned into an account SAS valid for a day), or an Entra ID token
    /// source; `extra_roots` are CAs trusted besides the system's.
    pub fn new(
        url: &str,
        credential: Option<StorageCredential>,
        extra_roots: Option<std::sync::Arc<[u8]>>,
    ) -> Result<Container> {
        let remote = match Endpoint::remote_under(url, credential, "")
            .map_err(|e| Error::Usage(e.to_string().replacen("sync: ", "state.url: ", 1)))?
        {
            Endpoint::Blob(r) => r,
            _ => {
                return Err(Error::Usage(format!(
                    "state.url {}: not a Blob container (expected https://ACCOUNT.blob.core.windows.net/CONTAINER, or blob+http://127.0.0.1:PORT/ACCOUNT/CONTAINER for Azurite)",
                    redact::for_error(url)
                )));
            }
        };
        let mut token = None;
        let sas = match &remote.credential {
            StorageCredential::Sas(q) => q.trim_start_matches('?').to_string(),
            StorageCredential::SharedKey(key) => drscript_sync::azure_files::auth::account_sas(
                &remote.account,
                key,
                "rwdlac",
                chrono::Utc::now() + chrono::Duration::hours(24),
            ),
            StorageCredential::Anonymous => String::new(),
            StorageCredential::Token(source) => {
                token = Some(source.clone());
                String::new()
            }
        };
        redact::register_sas(&sas);
        let url = format!("{}/{}", remote.base.as_str().trim_end_matches('/'), remote.root);
        Ok(Container { url, prefix: remote.path.clone(), sas, token, extra_roots })
    }

    /// The container (and prefix) without credentials, for messages.
    pub fn location(&self) -> String {
        if self.prefix.is_empty() { self.url.clone() } else { format!("{}/{}", self.url, self.prefix) }
    }

    /// The full name of `name` under the prefix.
    fn full(&self, name: &str) -> String {
        if self.prefix.is_empty() { name.to_string() } else { format!("{}/{name}", self.prefix) }
    }

    /// The URL of a blob (or of the container when `name` is empty), without credentials.
    pub fn blob_url(&self, name: &str) -> String {
        if name.is_empty() { self.url.clone() } else { format!("{}/{}", self.url, encode(&self.full(name))) }
    }

    /// One call. `name` empty is the container itself. A status ≥ 400 is an error unless listed
    /// in `accept`.
    pub fn call(
        &self,
        method: &str,
        name: &str,
        query: &[(&str, &str)],
        headers: &[(&str, String)],
        body: Option<Vec<u8>>,
        accept: &[u16],
    ) -> std::result::Result<Answer, BlobError> {
        let shown = self.blob_url(name);
        let mut url = shown.clone();
        let mut params: Vec<String> = query.iter().map(|(k, v)| format!("{k}={}", encode(v))).collect();
        if !self.sas.is_empty() {
            params.push(self.sas.clone());
        }
        if !params.is_empty() {
            url.push('?');
            url.push_str(&params.join("&"));
        }
        let what = format!("{method} {shown}");
        let method_value = reqwest::Method::from_bytes(method.as_bytes()).unwrap_or(reqwest::Method::GET);
        let mut request_headers: Vec<(String, String)> = vec![
            ("x-ms-version".to_string(), VERSION.to_string()),
            ("x-ms-date".to_string(), chrono::Utc::now().format("%a, %d %b %Y %H:%M:%S GMT").to_string()),
        ];
        request_headers.extend(headers.iter().map(|(k, v)| (k.to_string(), v.clone())));
        let (token, roots) = (self.token.clone(), self.extra_roots.clone());
        let run = async move {
            let client = reqwest::Client::builder().pool_max_idle_per_host(0).connect_timeout(TIMEOUT).timeout(TIMEOUT);
            let client = drscript_sync::http::trusting(client, roots.as_deref()).build().map_err(|e| e.to_string())?;
            if let Some(source) = token {
                let token = source
                    .get_token(&[drscript_sync::STORAGE_SCOPE], None)
                    .await
                    .map_err(|e| format!("no Entra ID token for Azure Storage: {}", drscript_base::error::chain(&e)))?;
                request_headers.push(("authorization".to_string(), format!("Bearer {}", token.token.secret())));
            }
            let mut request = client.request(method_value, &url);
            for (k, v) in &request_headers {
                request = request.header(k.as_str(), v.as_str());
            }
            if method == "PUT" {
                request = request.header("content-length", body.as_ref().map_or(0, Vec::len).to_string());
            }
            if let Some(body) = body {
                request = request.body(body);
            }
            let response = request.send().await.map_err(|e| drscript_base::error::chain(&e))?;
            let status = response.status().as_u16();
            let headers: BTreeMap<String, String> = response
                .headers()
                .iter()
                .map(|(k, v)| (k.as_str().to_ascii_lowercase(), v.to_str().unwrap_or_default().to_string()))
                .collect();
            let body = response.bytes().await.map_err(|e| drscript_base::error::chain(&e))?.to_vec();
            Ok::<_, String>(Answer { status, headers, body })
        };
        let answer = block(run).map_err(|e| BlobError {
            message: redact::redacted(format!("{what}: {}", redact::strip_url_queries(&e))),
            status: None,
            code: None,
        })?;
        if answer.status >= 400 && !accept.contains(&answer.status) {
            let text = String::from_utf8_lossy(&answer.body);
            let code = answer
                .header("x-ms-error-code")
                .map(str::to_string)
                .or_else(|| text.split("<Code>").nth(1).and_then(|c| c.split("</Code>").next()).map(str::to_string));
            let message = text
                .split("<Message>")
                .nth(1)
                .and_then(|m| m.split("</Message>").next())
                .and_then(|m| m.lines().next())
                .map(|m| format!(": {m}"))
                .unwrap_or_default();
            return Err(BlobError {
                message: redact::redacted(format!(
                    "{what}: {}{}{message}",
                    answer.status,
                    code.as_ref().map(|c| format!(" {c}")).unwrap_or_default()
                )),
                status: Some(answer.status),
                code,
            });
        }
        Ok(answer)
    }

    /// Creates the container when it does not exist.
    pub fn ensure(&self) -> std::result::Result<(), BlobError> {
        let answer = self.call("GET", "", &[("restype", "container")], &[], None, &[404])?;
        if answer.status == 404 {
            self.call("PUT", "", &[("restype", "container")], &[], None, &[409])?;
        }
        Ok(())
    }

    /// Put Blob (a block blob), replacing what is there.
    pub fn put(&self, name: &str, bytes: Vec<u8>) -> std::result::Result<(), BlobError> {
        self.call("PUT", name, &[], &[("x-ms-blob-type", "BlockBlob".to_string())], Some(bytes), &[]).map(drop)
    }

    /// Creates an empty blob unless one exists (a leased one included).
    pub fn create_if_missing(&self, name: &str) -> std::result::Result<(), BlobError> {
        self.call(
            "PUT",
            name,
            &[],
            &[("x-ms-blob-type", "BlockBlob".to_string()), ("if-none-match", "*".to_string())],
            Some(Vec::new()),
            &[409, 412],
        )
        .map(drop)
    }

    /// Get Blob; `None` when there is none.
    pub fn get(&self, name: &str) -> std::result::Result<Option<Vec<u8>>, BlobError> {
        let answer = self.call("GET", name, &[], &[], None, &[404])?;
        Ok((answer.status != 404).then_some(answer.body))
    }

    /// Get Blob Properties; `None` when there is none.
    pub fn properties(&self, name: &str) -> std::result::Result<Option<Answer>, BlobError> {
        let answer = self.call("HEAD", name, &[], &[], None, &[404])?;
        Ok((answer.status != 404).then_some(answer))
    }

    /// Set Blob Metadata under a lease.
    pub fn set_metadata(
        &self,
        name: &str,
        lease: &str,
        metadata: &BTreeMap<String, String>,
    ) -> std::result::Result<(), BlobError> {
        let mut headers = vec![("x-ms-lease-id", lease.to_string())];
        let named: Vec<(String, String)> = metadata.iter().map(|(k, v)| (format!("x-ms-meta-{k}"), ascii(v))).collect();
        headers.extend(named.iter().map(|(k, v)| (k.as_str(), v.clone())));
        self.call("PUT", name, &[("comp", "metadata")], &headers, None, &[]).map(drop)
    }

    /// Lease Blob: `action` is acquire, renew, release or break; `headers` carry the lease id,
    /// the duration or the break period.
    pub fn lease(
        &self,
        name: &str,
        action: &str,
        headers: &[(&str, String)],
        accept: &[u16],
    ) -> std::result::Result<Answer, BlobError> {
        let mut all = vec![("x-ms-lease-action", action.to_string())];
        all.extend(headers.iter().cloned());
        self.call("PUT", name, &[("comp", "lease")], &all, None, accept)
    }

    /// List Blobs under `prefix` (flat): names (without the container's prefix) and sizes.
    pub fn list(&self, prefix: &str) -> std::result::Result<Vec<(String, u64)>, BlobError> {
        let full = self.full(prefix);
        let strip = if self.prefix.is_empty() { String::new() } else { format!("{}/", self.prefix) };
        let mut out = Vec::new();
        let mut marker = String::new();
        loop {
            let mut query = vec![("restype", "container"), ("comp", "list"), ("prefix", full.as_str())];
            if !marker.is_empty() {
                query.push(("marker", marker.as_str()));
            }
            let answer = self.call("GET", "", &query, &[], None, &[])?;
            let text = String::from_utf8_lossy(&answer.body).into_owned();
            for blob in text.split("<Blob>").skip(1) {
                let field = |tag: &str| {
                    blob.split(&format!("<{tag}>")).nth(1).and_then(|s| s.split(&format!("</{tag}>")).next())
                };
                let Some(name) = field("Name") else { continue };
                let name = unescape(name);
                let size = field("Content-Length").and_then(|s| s.parse().ok()).unwrap_or(0);
                out.push((name.strip_prefix(&strip).unwrap_or(&name).to_string(), size));
            }
            marker = text
                .split("<NextMarker>")
                .nth(1)
                .and_then(|s| s.split("</NextMarker>").next())
                .unwrap_or_default()
                .to_string();
            if marker.is_empty() {
                return Ok(out);
            }
        }
    }
}

/// Runs a future on a runtime of its own (callers are plain threads).
fn block<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread runtime starts")
        .block_on(future)
}

fn encode(text: &str) -> String {
    const SET: &percent_encoding::AsciiSet =
        &percent_encoding::NON_ALPHANUMERIC.remove(b'/').remove(b'-').remove(b'_').remove(b'.').remove(b'~');
    percent_encoding::utf8_percent_encode(text, SET).to_string()
}

/// Metadata values are ASCII header values.
fn ascii(text: &str) -> String {
    text.chars().map(|c| if c.is_ascii() && !c.is_ascii_control() { c } else { '?' }).collect()
}

fn unescape(text: &str) -> String {
    text.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", "\"").replace("&apos;", "'").replace("&amp;", "&")
}
