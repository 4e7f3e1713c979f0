//! The strings the File service signs, rebuilt on the service's side from the REST reference
//! ("Authorize with Shared Key", "Create an account SAS", "Create a service SAS").
//!
//! Written apart from drscript's client signing (`drscript_sync::azure_files::auth`) on purpose: an
//! emulator that verified with the client's own code would accept every signing bug the client
//! has. The tests check this verifier against signatures made by Microsoft's Python SDK.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// HMAC-SHA256 of `text` with the base64 account key, base64-encoded; `None` for a key that is
/// not base64.
pub fn hmac_sha256(account_key: &str, text: &str) -> Option<String> {
    let key = B64.decode(account_key.trim()).ok()?;
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).ok()?;
    mac.update(text.as_bytes());
    Some(B64.encode(mac.finalize().into_bytes()))
}

/// Compares two signatures without stopping at the first differing byte.
pub fn same_signature(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// One request as the service received it.
pub struct Received<'a> {
    pub verb: &'a str,
    /// Every header as received: name (any case) and value; repeated names appear repeatedly.
    pub headers: &'a [(String, String)],
    /// The path exactly as it was on the request line (still percent-encoded).
    pub raw_path: &'a str,
    /// The query parameters, decoded.
    pub query: &'a [(String, String)],
}

impl Received<'_> {
    /// A standard header's value, empty when absent (the reference's rule for the fixed lines).
    fn standard(&self, name: &str) -> String {
        let values: Vec<&str> =
            self.headers.iter().filter(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str()).collect();
        values.join(",")
    }
}

/// Replaces each run of linear whitespace outside quotes by one space and trims the ends.
fn unfold(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut quoted = false;
    let mut pending_space = false;
    for c in value.trim().chars() {
        if c == '"' {
            quoted = !quoted;
        }
        if !quoted && (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
            pending_space = true;
            continue;
        }
        if pending_space {
            out.push(' ');
            pending_space = false;
        }
        out.push(c);
    }
    out
}

/// The canonicalized `x-ms-*` headers: names lowercased and sorted, one `name:value\n` each,
/// values of a repeated header joined with commas.
fn canonical_headers(r: &Received<'_>) -> String {
    let mut by_name: std::collections::BTreeMap<String, Vec<String>> = std::collections::BTreeMap::new();
    for (k, v) in r.headers {
        let name = k.trim().to_ascii_lowercase();
        if name.starts_with("x-ms-") {
            by_name.entry(name).or_default().push(unfold(v));
        }
    }
    by_name.into_iter().map(|(k, vs)| format!("{k}:{}\n", vs.join(","))).collect()
}

/// The canonicalized resource: `/ACCOUNT` + the encoded path, then each query parameter as
/// `\nname:value` (names lowercased and sorted, a parameter's values sorted and comma-joined).
fn canonical_resource(account: &str, r: &Received<'_>) -> String {
    let mut s = format!("/{account}{}", if r.raw_path.is_empty() { "/" } else { r.raw_path });
    let mut params: std::collections::BTreeMap<String, Vec<&str>> = std::collections::BTreeMap::new();
    for (k, v) in r.query {
        params.entry(k.to_ascii_lowercase()).or_default().push(v);
    }
    for (k, mut vs) in params {
        vs.sort_unstable();
        s.push('\n');
        s.push_str(&k);
        s.push(':');
        s.push_str(&vs.join(","));
    }
    s
}

/// The Shared Key string-to-sign of the Blob, Queue and File services (2009-09-19 and later;
/// from 2015-02-21 a zero Content-Length signs as empty).
pub fn shared_key_string_to_sign(account: &str, r: &Received<'_>) -> String {
    let mut length = r.standard("content-length");
    if length == "0" {
        length.clear();
    }
    let fixed = [
        r.verb.to_ascii_uppercase(),
        r.standard("content-encoding"),
        r.standard("content-language"),
        length,
        r.standard("content-md5"),
        r.standard("content-type"),
        r.standard("date"),
        r.standard("if-modified-since"),
        r.standard("if-match"),
        r.standard("if-none-match"),
        r.standard("if-unmodified-since"),
        r.standard("range"),
    ];
    let mut s = String::new();
    for line in fixed {
        s.push_str(&line);
        s.push('\n');
    }
    s.push_str(&canonical_headers(r));
    s.push_str(&canonical_resource(account, r));
    s
}

/// A SAS token's fields, as received in the query (decoded); absent fields are empty.
#[derive(Debug, Default, Clone)]
pub struct SasToken {
    pub version: String,
    pub services: String,
    pub resource_types: String,
    pub resource: String,
    pub permissions: String,
    pub start: String,
    pub expiry: String,
    pub ip: String,
    pub protocol: String,
    pub encryption_scope: String,
    pub identifier: String,
    pub cache_control: String,
    pub content_disposition: String,
    pub content_encoding: String,
    pub content_language: String,
    pub content_type: String,
    pub signature: String,
    /// Fields of a user delegation SAS (`skoid`, ...): present means one was sent.
    pub delegation: bool,
}

impl SasToken {
    pub fn from_query(query: &[(String, String)]) -> Option<SasToken> {
        let mut t = SasToken::default();
        let mut has_sig = false;
        for (k, v) in query {
            let v = v.clone();
            match k.as_str() {
                "sv" => t.version = v,
                "ss" => t.services = v,
                "srt" => t.resource_types = v,
                "sr" => t.resource = v,
                "sp" => t.permissions = v,
                "st" => t.start = v,
                "se" => t.expiry = v,
                "sip" => t.ip = v,
                "spr" => t.protocol = v,
                "ses" => t.encryption_scope = v,
                "si" => t.identifier = v,
                "rscc" => t.cache_control = v,
                "rscd" => t.content_disposition = v,
                "rsce" => t.content_encoding = v,
                "rscl" => t.content_language = v,
                "rsct" => t.content_type = v,
                "sig" => {
                    t.signature = v;
                    has_sig = true;
                }
                "skoid" | "sktid" | "skt" | "ske" | "sks" | "skv" => t.delegation = true,
                _ => {}
            }
        }
        has_sig.then_some(t)
    }

    /// An account SAS names the services it covers (`ss`); a service SAS names its resource.
    pub fn is_account_sas(&self) -> bool {
        !self.services.is_empty()
    }
}

/// The account SAS string-to-sign; from version 2020-12-06 it has an encryption scope line.
pub fn account_sas_string_to_sign(account: &str, t: &SasToken) -> String {
    let mut lines = vec![
        account,
        &t.permissions,
        &t.services,
        &t.resource_types,
        &t.start,
        &t.expiry,
        &t.ip,
        &t.protocol,
        &t.version,
    ];
    if t.version.as_str() >= "2020-12-06" {
        lines.push(&t.encryption_scope);
    }
    let mut s = lines.join("\n");
    s.push('\n');
    s
}

/// The File service SAS string-to-sign (2015-04-05 and later); `resource` is
/// `/file/ACCOUNT/SHARE` for a share SAS or `/file/ACCOUNT/SHARE/PATH` for a file SAS.
pub fn file_sas_string_to_sign(resource: &str, t: &SasToken) -> String {
    [
        t.permissions.as_str(),
        &t.start,
        &t.expiry,
        resource,
        &t.identifier,
        &t.ip,
        &t.protocol,
        &t.version,
        &t.cache_control,
        &t.content_disposition,
        &t.content_encoding,
        &t.content_language,
        &t.content_type,
    ]
    .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
    }

    #[test]
    fn shared_key_string_has_twelve_fixed_lines_then_sorted_headers_and_resource() {
        let headers = pairs(&[
            ("X-Ms-Version", "2023-11-03"),
            ("x-ms-date", "Fri, 26 Jun 2015 23:39:12 GMT"),
            ("x-ms-meta-note", "  two   words  "),
            ("Content-Length", "0"),
            ("Content-Type", "text/plain"),
        ]);
        let query = pairs(&[("restype", "directory"), ("comp", "list"), ("include", "Timestamps")]);
        let r = Received { verb: "get", headers: &headers, raw_path: "/acct/share/a%20b", query: &query };
        assert_eq!(
            shared_key_string_to_sign("acct", &r),
            "GET\n\n\n\n\ntext/plain\n\n\n\n\n\n\nx-ms-date:Fri, 26 Jun 2015 23:39:12 GMT\nx-ms-meta-note:two words\n\
             x-ms-version:2023-11-03\n/acct/acct/share/a%20b\ncomp:list\ninclude:Timestamps\nrestype:directory"
        );
    }

    #[test]
    fn account_sas_string_gains_the_encryption_scope_line_in_2020_12_06() {
        let mut t = SasToken {
            version: "2019-12-12".into(),
            services: "f".into(),
            resource_types: "sco".into(),
            permissions: "rl".into(),
            expiry: "2030-01-01T00:00:00Z".into(),
            protocol: "https,http".into(),
            ..SasToken::default()
        };
        assert_eq!(
            account_sas_string_to_sign("a", &t),
            "a\nrl\nf\nsco\n\n2030-01-01T00:00:00Z\n\nhttps,http\n2019-12-12\n"
        );
        t.version = "2022-11-02".into();
        assert!(account_sas_string_to_sign("a", &t).ends_with("2022-11-02\n\n"));
    }

    #[test]
    fn file_sas_string_has_thirteen_lines_and_no_newline_after_the_last() {
        let t = SasToken {
            version: "2022-11-02".into(),
            permissions: "r".into(),
            content_type: "text/plain".into(),
            ..SasToken::default()
        };
        assert_eq!(
            file_sas_string_to_sign("/file/a/s/f.txt", &t),
            "r\n\n\n/file/a/s/f.txt\n\n\n\n2022-11-02\n\n\n\n\ntext/plain"
        );
    }
}
