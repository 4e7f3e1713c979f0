//! Signing for Azure Storage: Shared Key request signatures and SAS tokens (account SAS and
//! file service SAS), after the "Authorize with Shared Key" and "Create an account/service SAS"
//! references. The client's only: the sandbox's emulator verifies with code of its own
//! (`sandbox/azure_files/signature.rs`), so that a misreading here cannot pass unnoticed.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

fn hmac_b64(key_b64: &str, text: &str) -> Option<String> {
    let key = STANDARD.decode(key_b64.trim()).ok()?;
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).ok()?;
    mac.update(text.as_bytes());
    Some(STANDARD.encode(mac.finalize().into_bytes()))
}

/// The parts of a request that Shared Key signs.
pub struct SignedRequest<'a> {
    pub method: &'a str,
    /// Header name (any case) → value.
    pub headers: &'a [(String, String)],
    /// The URL path as sent (percent-encoded), e.g. `/share/dir/file` or `/acct/share/dir`.
    pub path: &'a str,
    /// Decoded query pairs.
    pub query: &'a [(String, String)],
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> &'a str {
    headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str()).unwrap_or("")
}

/// The Shared Key string-to-sign (Blob, Queue and File services, version 2009-09-19 and later).
pub fn shared_key_string(account: &str, r: &SignedRequest<'_>) -> String {
    let length = header(r.headers, "content-length");
    let length = if length == "0" { "" } else { length };
    let mut s = format!(
        "{}\n{}\n{}\n{}\n{}\n{}\n{}\n{}\n{}\n{}\n{}\n{}\n",
        r.method.to_ascii_uppercase(),
        header(r.headers, "content-encoding"),
        header(r.headers, "content-language"),
        length,
        header(r.headers, "content-md5"),
        header(r.headers, "content-type"),
        header(r.headers, "date"),
        header(r.headers, "if-modified-since"),
        header(r.headers, "if-match"),
        header(r.headers, "if-none-match"),
        header(r.headers, "if-unmodified-since"),
        header(r.headers, "range"),
    );
    let mut ms: Vec<(String, String)> = r
        .headers
        .iter()
        .filter(|(k, _)| k.to_ascii_lowercase().starts_with("x-ms-"))
        .map(|(k, v)| (k.to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    ms.sort();
    for (k, v) in ms {
        s.push_str(&format!("{k}:{v}\n"));
    }
    s.push_str(&format!("/{account}{}", r.path));
    let mut q: Vec<(String, Vec<String>)> = Vec::new();
    for (k, v) in r.query {
        let k = k.to_ascii_lowercase();
        match q.iter_mut().find(|(n, _)| *n == k) {
            Some((_, vs)) => vs.push(v.clone()),
            None => q.push((k, vec![v.clone()])),
        }
    }
    q.sort();
    for (k, mut vs) in q {
        vs.sort();
        s.push_str(&format!("\n{k}:{}", vs.join(",")));
    }
    s
}

/// `SharedKey account:signature`.
pub fn shared_key_authorization(account: &str, key_b64: &str, r: &SignedRequest<'_>) -> Option<String> {
    let sig = hmac_b64(key_b64, &shared_key_string(account, r))?;
    Some(format!("SharedKey {account}:{sig}"))
}

/// The fields of a SAS token.
#[derive(Debug, Clone, Default)]
pub struct SasFields {
    pub sv: String,
    pub ss: Option<String>,
    pub srt: Option<String>,
    pub sr: Option<String>,
    pub sp: String,
    pub st: String,
    pub se: String,
    pub sip: String,
    pub spr: String,
    pub ses: String,
    pub si: String,
    pub sig: String,
}

impl SasFields {
    pub fn parse(query: &str) -> SasFields {
        let mut f = SasFields::default();
        for (k, v) in url::form_urlencoded::parse(query.trim_start_matches('?').as_bytes()) {
            let v = v.into_owned();
            match k.as_ref() {
                "sv" => f.sv = v,
                "ss" => f.ss = Some(v),
                "srt" => f.srt = Some(v),
                "sr" => f.sr = Some(v),
                "sp" => f.sp = v,
                "st" => f.st = v,
                "se" => f.se = v,
                "sip" => f.sip = v,
                "spr" => f.spr = v,
                "ses" => f.ses = v,
                "si" => f.si = v,
                "sig" => f.sig = v,
                _ => {}
            }
        }
        f
    }

    pub fn is_account_sas(&self) -> bool {
        self.ss.is_some()
    }
}

/// The account SAS string-to-sign; the encryption scope line exists from version 2020-12-06.
pub fn account_sas_string(account: &str, f: &SasFields) -> String {
    let mut s = format!(
        "{account}\n{}\n{}\n{}\n{}\n{}\n{}\n{}\n{}\n",
        f.sp,
        f.ss.as_deref().unwrap_or(""),
        f.srt.as_deref().unwrap_or(""),
        f.st,
        f.se,
        f.sip,
        f.spr,
        f.sv
    );
    if f.sv.as_str() >= "2020-12-06" {
        s.push_str(&format!("{}\n", f.ses));
    }
    s
}

/// The file service SAS string-to-sign (version 2015-04-05 and later), for a share (`sr=s`) or a
/// file (`sr=f`); `resource` is `/file/ACCOUNT/SHARE[/PATH]`. Response-header overrides are
/// not supported and sign as empty.
pub fn file_sas_string(resource: &str, f: &SasFields) -> String {
    format!("{}\n{}\n{}\n{resource}\n{}\n{}\n{}\n{}\n\n\n\n\n", f.sp, f.st, f.se, f.si, f.sip, f.spr, f.sv)
}

/// Signs a string-to-sign with the account key.
pub fn sign(key_b64: &str, string_to_sign: &str) -> Option<String> {
    hmac_b64(key_b64, string_to_sign)
}

/// An account SAS query string (`ss=bfqt&srt=sco` like the runbook's tokens).
pub fn account_sas(account: &str, key_b64: &str, permissions: &str, expiry: chrono::DateTime<chrono::Utc>) -> String {
    let f = SasFields {
        sv: "2022-11-02".into(),
        ss: Some("bfqt".into()),
        srt: Some("sco".into()),
        sp: permissions.into(),
        se: expiry.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        spr: "https,http".into(),
        ..SasFields::default()
    };
    let sig = sign(key_b64, &account_sas_string(account, &f)).unwrap_or_default();
    drscript_base::redact::register(&sig);
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    q.append_pair("sv", &f.sv)
        .append_pair("ss", "bfqt")
        .append_pair("srt", "sco")
        .append_pair("sp", &f.sp)
        .append_pair("se", &f.se)
        .append_pair("spr", &f.spr)
        .append_pair("sig", &sig);
    let query = q.finish();
    drscript_base::redact::register_sas(&query);
    query
}

/// A file service SAS for a whole share (`sr=s`), valid from `start` to `expiry`: what a service
/// needs to read a source for a server-side copy when drscript holds only the account key.
pub fn share_sas(
    account: &str,
    share: &str,
    key_b64: &str,
    permissions: &str,
    start: chrono::DateTime<chrono::Utc>,
    expiry: chrono::DateTime<chrono::Utc>,
) -> Option<String> {
    let f = SasFields {
        sv: super::API_VERSION.into(),
        sr: Some("s".into()),
        sp: permissions.into(),
        st: start.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        se: expiry.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        spr: "https,http".into(),
        ..SasFields::default()
    };
    let sig = sign(key_b64, &file_sas_string(&format!("/file/{account}/{share}"), &f))?;
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    q.append_pair("sv", &f.sv)
        .append_pair("sr", "s")
        .append_pair("sp", &f.sp)
        .append_pair("st", &f.st)
        .append_pair("se", &f.se)
        .append_pair("spr", &f.spr)
        .append_pair("sig", &sig);
    let query = q.finish();
    drscript_base::redact::register_sas(&query);
    Some(query)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_key_string_follows_the_reference_layout() {
        let headers = vec![
            ("x-ms-version".to_string(), "2023-11-03".to_string()),
            ("x-ms-date".to_string(), "Fri, 26 Jun 2015 23:39:12 GMT".to_string()),
            ("Content-Length".to_string(), "0".to_string()),
        ];
        let query = vec![("restype".to_string(), "directory".to_string()), ("comp".to_string(), "list".to_string())];
        let r = SignedRequest { method: "GET", headers: &headers, path: "/share/dir", query: &query };
        assert_eq!(
            shared_key_string("acct", &r),
            "GET\n\n\n\n\n\n\n\n\n\n\n\nx-ms-date:Fri, 26 Jun 2015 23:39:12 GMT\nx-ms-version:2023-11-03\n\
             /acct/share/dir\ncomp:list\nrestype:directory"
        );
    }
}
