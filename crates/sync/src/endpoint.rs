//! Where a sync reads or writes: a local folder, an Azure Files directory or a Blob prefix, parsed
//! from what an operator types or from a share the caller resolved (the config is not read here).
//!
//! Azure URLs are recognised by their host, by one rule (`azure_service`): `ACCOUNT.file.core.windows.net`,
//! `ACCOUNT.blob.core.windows.net`, the sovereign-cloud suffixes, private endpoints and the Azure
//! DNS zone endpoints (`ACCOUNT.zNN.file.storage.azure.net`); a custom domain names its service
//! with the scheme (`files+https://`, `blob+https://`). An emulator on loopback is
//! addressed path-style (`http://127.0.0.1:PORT/ACCOUNT/SHARE/PATH`, as Azurite does); since its
//! host says nothing about the service, the scheme may name it: `files+http://…` or `blob+http://…`;
//! a plain `http://127.0.0.1:PORT/…` is taken as Azure Files, the emulator drscript ships.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use azure_core::credentials::TokenCredential;

use url::Url;

use drscript_base::error::{Error, Result};
use drscript_base::redact;

/// How requests to a service endpoint are authorised.
#[derive(Clone)]
pub enum StorageCredential {
    /// Public or pre-authorised (tests of error paths only).
    Anonymous,
    /// A SAS query string, without the leading `?`.
    Sas(String),
    /// The account key (base64), for Shared Key signing.
    SharedKey(String),
    /// Microsoft Entra ID: a bearer token for [`STORAGE_SCOPE`] from the caller's credential
    /// (which registers every token it hands out with the redaction layer). Azure accepts one
    /// over HTTPS only; Azure Files also needs `x-ms-file-request-intent: backup`.
    Token(Arc<dyn TokenCredential>),
}

/// The scope of an Azure Storage token, the same in every cloud.
pub const STORAGE_SCOPE: &str = "https://storage.azure.com/.default";

impl StorageCredential {
    /// A bearer token for Azure Storage (`None` for the other credentials), or why there is none.
    pub async fn bearer(&self) -> Option<std::result::Result<String, String>> {
        let StorageCredential::Token(credential) = self else { return None };
        Some(
            credential
                .get_token(&[STORAGE_SCOPE], None)
                .await
                .map(|t| t.token.secret().to_string())
                .map_err(|e| redact::for_error(drscript_base::error::chain(&e))),
        )
    }
}

impl std::fmt::Debug for StorageCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StorageCredential::Anonymous => write!(f, "anonymous"),
            // Not even the token's other fields: a Debug print may end up in a log.
            StorageCredential::Sas(_) => write!(f, "sas(***)"),
            StorageCredential::SharedKey(_) => write!(f, "shared-key(***)"),
            StorageCredential::Token(_) => write!(f, "entra"),
        }
    }
}

/// A service location: `base` is `scheme://host[:port]` plus `/ACCOUNT` for path-style URLs.
#[derive(Debug, Clone)]
pub struct Remote {
    pub base: Url,
    pub account: String,
    /// Share or container.
    pub root: String,
    /// Directory path or blob prefix inside it, without leading or trailing `/`.
    pub path: String,
    pub credential: StorageCredential,
    /// Longest wait for a connection or for the next bytes of an answer; the client's default
    /// when `None`.
    pub timeout: Option<Duration>,
    /// Certificate authorities trusted besides the system's (a TLS-inspecting proxy's, an
    /// emulator's), PEM.
    pub extra_roots: Option<Arc<[u8]>>,
}

impl Remote {
    /// The URL without credentials, for messages.
    pub fn location(&self) -> String {
        let mut s = format!("{}/{}", self.base.as_str().trim_end_matches('/'), self.root);
        if !self.path.is_empty() {
            s.push('/');
            s.push_str(&self.path);
        }
        s
    }

    /// The SAS query string, if the credential is one.
    pub fn sas(&self) -> Option<&str> {
        match &self.credential {
            StorageCredential::Sas(q) => Some(q),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
pub enum Endpoint {
    Local(PathBuf),
    Files(Remote),
    Blob(Remote),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Service {
    Files,
    Blob,
}

/// The storage service an Azure host names, by one rule for every form Azure hands out:
/// `ACCOUNT.{file|blob}.core.SUFFIX` (public and sovereign clouds: `windows.net`,
/// `chinacloudapi.cn`, `usgovcloudapi.net`, ...), `ACCOUNT.privatelink.{file|blob}.core.SUFFIX`
/// (private endpoints), and the Azure DNS zone endpoints `ACCOUNT.zNN.{file|blob}.storage.azure.net`.
/// Other hosts (custom domains) name their service with the scheme: `files+https://`, `blob+https://`.
fn azure_service(host: &str) -> Option<Service> {
    let labels: Vec<&str> = host.split('.').collect();
    let service = |label: &str| match label {
        "file" => Some(Service::Files),
        "blob" => Some(Service::Blob),
        _ => None,
    };
    let zone =
        |label: &str| label.len() >= 2 && label.starts_with('z') && label[1..].chars().all(|c| c.is_ascii_digit());
    match labels.as_slice() {
        [_, "privatelink", s, "core", _, ..] => service(s),
        [_, z, s, "storage", "azure", "net"] if zone(z) => service(s),
        [_, s, "core", _, ..] => service(s),
        _ => None,
    }
}

fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
        || host.trim_matches(['[', ']']).parse::<std::net::Ipv6Addr>().is_ok_and(|ip| ip.is_loopback())
}

impl Endpoint {
    /// Parses a local path or an Azure Files / Blob URL (SAS in the query string).
    pub fn parse(text: &str) -> Result<Endpoint> {
        let t = text.trim();
        if t.is_empty() {
            return Err(Error::Usage("sync: empty endpoint".to_string()));
        }
        let lower = t.to_ascii_lowercase();
        let looks_like_url = lower.contains("://");
        if !looks_like_url {
            return Ok(Endpoint::Local(PathBuf::from(t)));
        }
        Self::parse_url(t, None)
    }

    /// The local folder `path` with `sub` appended.
    pub fn local_under(path: &std::path::Path, sub: &str) -> Endpoint {
        let mut p = path.to_path_buf();
        if !sub.is_empty() {
            p.push(sub.trim_matches('/'));
        }
        Endpoint::Local(p)
    }

    /// The storage URL `url` signed with `credential` (resolved by the caller: this crate reads
    /// no configuration), with `sub` appended to its path.
    pub fn remote_under(url: &str, credential: Option<StorageCredential>, sub: &str) -> Result<Endpoint> {
        if let Some(StorageCredential::Sas(sas)) = &credential {
            redact::register_sas(sas);
        }
        let entra = matches!(credential, Some(StorageCredential::Token(_)));
        let mut ep = Self::parse_url(url, credential)?;
        if entra
            && let Endpoint::Files(r) | Endpoint::Blob(r) = &ep
            && r.base.scheme() != "https"
        {
            return Err(Error::Usage(format!(
                "{}: an Entra ID token is sent over HTTPS only (Azure refuses one over HTTP)",
                r.location()
            )));
        }
        if !sub.is_empty()
            && let Endpoint::Files(r) | Endpoint::Blob(r) = &mut ep
        {
            let sub = sub.trim_matches('/');
            r.path = if r.path.is_empty() { sub.to_string() } else { format!("{}/{sub}", r.path) };
        }
        Ok(ep)
    }

    /// The same endpoint trusting the certificate authorities of the PEM bundle `pem` besides
    /// the system's; `what` names where the bundle came from in the error when it is not one.
    pub fn trusting(mut self, pem: Arc<[u8]>, what: &str) -> Result<Endpoint> {
        crate::http::certificates(&pem)
            .map_err(|e| Error::Usage(format!("{what} is not a PEM bundle of certificates: {e}")))?;
        if let Endpoint::Files(r) | Endpoint::Blob(r) = &mut self {
            r.extra_roots = Some(pem);
        }
        Ok(self)
    }

    fn parse_url(text: &str, credential: Option<StorageCredential>) -> Result<Endpoint> {
        // A SAS typed on the command line is as secret as one from the config.
        if let Some((_, query)) = text.split_once('?') {
            redact::register_sas(query.split('#').next().unwrap_or_default());
        }
        let shown = redact::for_error(text);
        let bad = |why: &str| {
            Error::Usage(format!(
                "sync: \"{shown}\" is neither a local path nor a known storage URL: {why} \
                 (expected https://ACCOUNT.file.core.windows.net/SHARE/PATH?SAS, \
                 https://ACCOUNT.blob.core.windows.net/CONTAINER/PREFIX?SAS, or \
                 files+http://127.0.0.1:PORT/ACCOUNT/SHARE/PATH for an emulator)"
            ))
        };
        let (hint, rest) = match text.split_once("://") {
            Some((scheme, _)) => {
                let s = scheme.to_ascii_lowercase();
                match s.split_once('+') {
                    Some(("files" | "file", inner)) => {
                        (Some(Service::Files), format!("{inner}{}", &text[scheme.len()..]))
                    }
                    Some(("blob", inner)) => (Some(Service::Blob), format!("{inner}{}", &text[scheme.len()..])),
                    Some(_) => return Err(bad("unknown scheme")),
                    None => (None, text.to_string()),
                }
            }
            None => (None, text.to_string()),
        };
        let url = Url::parse(&rest).map_err(|e| bad(&e.to_string()))?;
        let host = url.host_str().ok_or_else(|| bad("no host"))?.to_ascii_lowercase();
        match url.scheme() {
            "https" => {}
            "http" if is_loopback(&host) => {}
            "http" => return Err(bad("plain http is allowed only on loopback (emulators)")),
            other => return Err(bad(&format!("unsupported scheme {other}"))),
        }
        let segments: Vec<String> = url
            .path_segments()
            .map(|s| {
                s.filter(|x| !x.is_empty())
                    .map(|x| percent_encoding::percent_decode_str(x).decode_utf8_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        let query = url.query().map(str::to_string).filter(|q| !q.is_empty());
        let credential =
            credential.or_else(|| query.map(StorageCredential::Sas)).unwrap_or(StorageCredential::Anonymous);

        let (service, path_style) = match (azure_service(&host), hint) {
            (Some(s), _) => (s, false),
            (None, Some(s)) if is_loopback(&host) => (s, true),
            // A custom domain in front of an account: the scheme names the service.
            (None, Some(s)) => (s, false),
            // The emulator drscript ships (and its sandbox serves) is Azure Files; Azurite's blob
            // endpoint must be named `blob+http://`.
            (None, None) if is_loopback(&host) => (Service::Files, true),
            (None, None) => return Err(bad("unknown host")),
        };
        let mut base = url.clone();
        base.set_query(None);
        base.set_fragment(None);
        base.set_path("");
        let mut segs = segments.into_iter();
        let account = if path_style {
            let a = segs.next().ok_or_else(|| bad("no account in the path"))?;
            base.set_path(&a);
            a
        } else {
            host.split('.').next().unwrap_or_default().to_string()
        };
        let root = segs.next().ok_or_else(|| {
            bad(if service == Service::Files { "no share in the path" } else { "no container in the path" })
        })?;
        let path = segs.collect::<Vec<_>>().join("/");
        let remote = Remote { base, account, root, path, credential, timeout: None, extra_roots: None };
        Ok(match service {
            Service::Files => Endpoint::Files(remote),
            Service::Blob => Endpoint::Blob(remote),
        })
    }

    /// The location without credentials, for messages and summaries.
    pub fn location(&self) -> String {
        match self {
            Endpoint::Local(p) => p.display().to_string(),
            Endpoint::Files(r) | Endpoint::Blob(r) => r.location(),
        }
    }

    /// The same endpoint with `timeout` for its service requests (no effect on a folder).
    pub fn with_timeout(mut self, timeout: Duration) -> Endpoint {
        if let Endpoint::Files(r) | Endpoint::Blob(r) = &mut self {
            r.timeout = Some(timeout);
        }
        self
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Endpoint::Local(_) => "local",
            Endpoint::Files(_) => "azure-files",
            Endpoint::Blob(_) => "azure-blob",
        }
    }
}

/// `p` made absolute and free of `..`, following symlinks for the part that exists.
fn resolved(p: &Path) -> PathBuf {
    let abs = if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir().map(|c| c.join(p)).unwrap_or_else(|_| p.to_path_buf())
    };
    let mut existing = abs.clone();
    let mut rest = Vec::new();
    loop {
        if let Ok(c) = existing.canonicalize() {
            let mut out = c;
            for r in rest.iter().rev() {
                out.push(r);
            }
            return out;
        }
        match (existing.file_name().map(|n| n.to_os_string()), existing.parent()) {
            (Some(name), Some(parent)) => {
                rest.push(name);
                existing = parent.to_path_buf();
            }
            _ => return abs,
        }
    }
}

fn nested(inner: &[&str], outer: &[&str]) -> bool {
    inner.len() >= outer.len() && inner[..outer.len()] == *outer
}

/// Refuses pairs where one side would copy into or delete from the other.
pub fn check_overlap(src: &Endpoint, dst: &Endpoint, mirror: bool) -> Result<()> {
    let overlap = match (src, dst) {
        (Endpoint::Local(s), Endpoint::Local(d)) => {
            let (s, d) = (resolved(s), resolved(d));
            if d.starts_with(&s) {
                Some("the destination is inside the source")
            } else if mirror && s.starts_with(&d) {
                Some("the source is inside the destination of a mirror")
            } else {
                None
            }
        }
        (Endpoint::Files(s), Endpoint::Files(d)) | (Endpoint::Blob(s), Endpoint::Blob(d)) => {
            let same = s.base == d.base && s.account == d.account && s.root == d.root;
            let sp: Vec<&str> = s.path.split('/').filter(|x| !x.is_empty()).collect();
            let dp: Vec<&str> = d.path.split('/').filter(|x| !x.is_empty()).collect();
            if same && nested(&dp, &sp) {
                Some("the destination is inside the source")
            } else if same && mirror && nested(&sp, &dp) {
                Some("the source is inside the destination of a mirror")
            } else {
                None
            }
        }
        _ => None,
    };
    match overlap {
        Some(why) => {
            Err(Error::Usage(format!("sync: {why} ({} → {}); choose separate folders", src.location(), dst.location())))
        }
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_files_blob_and_emulator_urls() {
        let e = Endpoint::parse("https://acct.file.core.windows.net/pvc-1/web/repository/?sv=1&sp=rl&sig=abc").unwrap();
        let Endpoint::Files(r) = e else { panic!() };
        assert_eq!((r.account.as_str(), r.root.as_str(), r.path.as_str()), ("acct", "pvc-1", "web/repository"));
        assert_eq!(r.sas(), Some("sv=1&sp=rl&sig=abc"));
        assert_eq!(r.location(), "https://acct.file.core.windows.net/pvc-1/web/repository");

        let Endpoint::Blob(r) = Endpoint::parse("https://acct.blob.core.windows.net/c/p/q?sig=x").unwrap() else {
            panic!()
        };
        assert_eq!((r.root.as_str(), r.path.as_str()), ("c", "p/q"));

        let Endpoint::Files(r) = Endpoint::parse("files+http://127.0.0.1:8123/devacct/share/a/b").unwrap() else {
            panic!()
        };
        assert_eq!(r.base.as_str(), "http://127.0.0.1:8123/devacct");
        assert_eq!((r.account.as_str(), r.root.as_str(), r.path.as_str()), ("devacct", "share", "a/b"));
        assert_eq!(r.location(), "http://127.0.0.1:8123/devacct/share/a/b");
        assert!(matches!(Endpoint::parse("http://127.0.0.1:8123/devacct/share").unwrap(), Endpoint::Files(_)));
    }

    #[test]
    fn every_azure_storage_host_form_is_recognised_by_one_rule_and_a_custom_domain_by_its_scheme() {
        for (host, service) in [
            ("acct.file.core.windows.net", Some(Service::Files)),
            ("acct.blob.core.chinacloudapi.cn", Some(Service::Blob)),
            ("acct.file.core.usgovcloudapi.net", Some(Service::Files)),
            ("acct.z12.blob.storage.azure.net", Some(Service::Blob)),
            ("acct.z3.file.storage.azure.net", Some(Service::Files)),
            ("acct.privatelink.file.core.windows.net", Some(Service::Files)),
            ("acct.queue.core.windows.net", None),
            ("acct.zx.file.storage.azure.net", None),
            ("acct.file.example.com", None),
            ("example.com", None),
        ] {
            assert_eq!(azure_service(host), service, "{host}");
        }
        let Endpoint::Files(r) = Endpoint::parse("https://acct.z7.file.storage.azure.net/pvc/web?sig=1").unwrap()
        else {
            panic!()
        };
        assert_eq!((r.account.as_str(), r.root.as_str(), r.path.as_str()), ("acct", "pvc", "web"));
        let Endpoint::Blob(r) = Endpoint::parse("blob+https://files.example.com/backups/x?sig=1").unwrap() else {
            panic!()
        };
        assert_eq!((r.root.as_str(), r.path.as_str()), ("backups", "x"));
        assert_eq!(r.location(), "https://files.example.com/backups/x");
    }

    #[test]
    fn rejects_unknown_services_and_remote_plain_http() {
        for bad in ["https://example.com/share/x", "http://acct.file.core.windows.net/s", "ftp://host/x"] {
            let err = Endpoint::parse(bad).unwrap_err().to_string();
            assert!(err.contains("neither a local path nor a known storage URL"), "{bad}: {err}");
        }
        let err = Endpoint::parse("https://example.com/x?se=2031-05-06&sig=SECRETSIG").unwrap_err().to_string();
        assert!(!err.contains("SECRETSIG") && !err.contains("2031-05-06"), "{err}");
    }

    #[test]
    fn refuses_destination_inside_source() {
        let src = Endpoint::parse("/tmp/a").unwrap();
        let dst = Endpoint::parse("/tmp/a/b").unwrap();
        assert!(check_overlap(&src, &dst, false).unwrap_err().to_string().contains("inside the source"));
        let src = Endpoint::parse("https://a.file.core.windows.net/s/web?sig=1").unwrap();
        let dst = Endpoint::parse("https://a.file.core.windows.net/s/web/x?sig=1").unwrap();
        assert!(check_overlap(&src, &dst, false).is_err());
        let dst = Endpoint::parse("https://a.file.core.windows.net/s/webx?sig=1").unwrap();
        assert!(check_overlap(&src, &dst, false).is_ok());
    }
}
