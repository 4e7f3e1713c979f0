//! The one redaction layer every output passes through: terminal, logs, journal, report and
//! error messages.
//!
//! Three things are masked as `***`: every value read from a secret source (registered here when
//! it is resolved, with its URL-encoded and base64 forms), the `sig` value of any SAS URL, and the
//! value of `Authorization` and token-like headers or fields. Redaction is global to the process
//! because secrets may surface anywhere, including in text produced by libraries.

use std::borrow::Cow;
use std::sync::{LazyLock, RwLock};

use regex::Regex;

pub const MASK: &str = "***";

static SECRETS: RwLock<Vec<String>> = RwLock::new(Vec::new());

static PATTERNS: LazyLock<Vec<(Regex, &'static str)>> = LazyLock::new(|| {
    vec![
        // SAS signatures in URLs or query strings.
        (Regex::new(r"(?i)([?&;]sig=)[^&\s\x22'<>]+").unwrap(), "${1}***"),
        // HTTP headers and JSON/TOML-ish fields that carry credentials.
        (
            Regex::new(
                // The key must start a word: `prod-gateway.password: No such file` is a path.
                r#"(?i)(^|[^\w.\-/])((?:authorization|proxy-authorization|access_token|x-access-token|x-api-key|api[-_]key|bearer_token|client_secret|password|x-ms-copy-source-authorization)["']?\s*[:=]\s*["']?)((?:bearer|basic|sharedkey|token)\s+)?[^\s"',;&}]+"#,
            )
            .unwrap(),
            "${1}${2}${3}***",
        ),
        // A bare "Bearer <token>" anywhere.
        (Regex::new(r"(?i)\b(bearer)\s+[A-Za-z0-9\-._~+/]{8,}=*").unwrap(), "${1} ***"),
    ]
});

/// MySQL's "Access denied for user 'app'@'host' (using password: YES)" says whether a password
/// was sent, not which: that phrase is kept whole, every other match is replaced.
fn replace_keeping_mysql_flag(pattern: &Regex, text: &str, replacement: &str) -> String {
    pattern
        .replace_all(text, |c: &regex::Captures<'_>| {
            let whole = &c[0];
            let flag = whole.trim_start().strip_prefix("password: ").filter(|v| matches!(*v, "YES)" | "NO)"));
            if flag.is_some() && text[..c.get(0).map_or(0, |m| m.start())].ends_with("(using") {
                whole.to_string()
            } else {
                let mut out = String::new();
                c.expand(replacement, &mut out);
                out
            }
        })
        .into_owned()
}

/// The fields of a SAS token besides `sig` (service, account and user delegation SAS). Alone
/// they are no credential, but they say what a token grants, where and until when: in a query
/// that carries a signature their values are masked too.
const SAS_FIELDS: &[&str] = &[
    "sv", "ss", "srt", "sr", "sp", "st", "se", "sip", "spr", "si", "ses", "sdd", "skoid", "sktid", "skt", "ske", "sks",
    "skv", "saoid", "suoid", "scid", "sduoid", "rscc", "rscd", "rsce", "rscl", "rsct",
];

/// A URL query (from `?` to the end of the URL).
static QUERY: LazyLock<Regex> = LazyLock::new(|| Regex::new(r#"\?[^\s"'<>()#]+"#).unwrap());

/// `?a=1&se=2031-01-01&sig=***` → `?a=1&se=***&sig=***`: the other SAS fields of a query that
/// carries a signature. Libraries log whole request URLs at debug level.
fn mask_sas_fields(text: &str) -> Cow<'_, str> {
    QUERY.replace_all(text, |c: &regex::Captures<'_>| {
        let query = &c[0];
        if !query.to_ascii_lowercase().contains("sig=") {
            return query.to_string();
        }
        let parts: Vec<String> = query[1..]
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((k, v)) if SAS_FIELDS.contains(&k.to_ascii_lowercase().as_str()) => {
                    // Punctuation after the URL is the sentence's, not the value's.
                    let tail = &v[v.trim_end_matches([',', '.', ';', ':']).len()..];
                    format!("{k}={MASK}{tail}")
                }
                _ => pair.to_string(),
            })
            .collect();
        format!("?{}", parts.join("&"))
    })
}

/// Registers a secret value so that it is masked in every later output.
pub fn register(secret: &str) {
    if secret.len() < 4 {
        // Masking one- to three-character strings would shred ordinary output; such values are
        // not credentials anyway.
        return;
    }
    let mut forms = vec![secret.to_string()];
    let encoded = url::form_urlencoded::byte_serialize(secret.as_bytes()).collect::<String>();
    if encoded != secret {
        forms.push(encoded);
    }
    let mut secrets = SECRETS.write().unwrap_or_else(|e| e.into_inner());
    for form in forms {
        if !secrets.contains(&form) {
            secrets.push(form);
        }
    }
    // Longest first, so that a secret containing another is masked whole.
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
}

/// Registers a SAS query string (with or without the leading `?`): the whole token and its
/// signature, in the forms a URL or a message may carry them. The other fields (`se`, `sp`, `sv`,
/// ...) are not secret on their own and too ordinary to mask everywhere (dates, letters); errors
/// keep them out by dropping query strings from URLs ([`strip_url_queries`]).
pub fn register_sas(query: &str) {
    let query = query.trim().trim_start_matches('?');
    register(query);
    for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
        if k == "sig" {
            register(&v);
            let pct = percent_encoding::utf8_percent_encode(&v, percent_encoding::NON_ALPHANUMERIC).to_string();
            register(&pct);
            register(&pct.to_ascii_lowercase());
        }
    }
}

static URL_QUERY: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r#"(?i)\b((?:[a-z]+\+)?https?://[^\s?#"'<>()]+)\?[^\s"'<>()]*"#).unwrap());

/// `text` with the query string of every URL in it removed: a URL in an error names the object,
/// and its query may carry a SAS whose fields (`sig`, but also `se`, `sp`, `sv`) do not belong in
/// a message. Libraries (reqwest, the Azure SDK) put whole URLs into their errors.
pub fn strip_url_queries(text: &str) -> Cow<'_, str> {
    URL_QUERY.replace_all(text, "${1}")
}

static SAS_QUERY: LazyLock<Regex> = LazyLock::new(|| Regex::new(r#"(?i)[^\s"'<>()?]*\bsig=[^\s"'<>()]*"#).unwrap());

/// What an error message of a storage client may show: URL queries dropped, any other
/// query-like run that carries a signature (a service echoing the query it was sent) masked
/// whole, and secrets masked.
pub fn for_error(text: impl AsRef<str>) -> String {
    let text = strip_url_queries(text.as_ref());
    let text = SAS_QUERY.replace_all(&text, MASK);
    redacted(text)
}

/// Masks every known secret and credential pattern in `text`.
pub fn redact(text: &str) -> Cow<'_, str> {
    let mut out: Cow<'_, str> = Cow::Borrowed(text);
    {
        let secrets = SECRETS.read().unwrap_or_else(|e| e.into_inner());
        for secret in secrets.iter() {
            if out.contains(secret.as_str()) {
                out = Cow::Owned(out.replace(secret.as_str(), MASK));
            }
        }
    }
    for (pattern, replacement) in PATTERNS.iter() {
        if pattern.is_match(&out) {
            out = Cow::Owned(replace_keeping_mysql_flag(pattern, &out, replacement));
        }
    }
    if out.contains('?')
        && let Cow::Owned(masked) = mask_sas_fields(&out)
    {
        out = Cow::Owned(masked);
    }
    out
}

/// `redact` into an owned string.
pub fn redacted(text: impl AsRef<str>) -> String {
    redact(text.as_ref()).into_owned()
}

/// A writer that redacts what passes through it, line by line. Used for the log sinks.
pub struct RedactingWriter<W: std::io::Write> {
    inner: W,
    pending: Vec<u8>,
}

impl<W: std::io::Write> RedactingWriter<W> {
    pub fn new(inner: W) -> Self {
        Self { inner, pending: Vec::new() }
    }

    fn flush_lines(&mut self, all: bool) -> std::io::Result<()> {
        while let Some(pos) = self.pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.pending.drain(..=pos).collect();
            let text = String::from_utf8_lossy(&line);
            self.inner.write_all(redact(&text).as_bytes())?;
        }
        if all && !self.pending.is_empty() {
            let rest = std::mem::take(&mut self.pending);
            let text = String::from_utf8_lossy(&rest);
            self.inner.write_all(redact(&text).as_bytes())?;
        }
        Ok(())
    }
}

impl<W: std::io::Write> std::io::Write for RedactingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.pending.extend_from_slice(buf);
        self.flush_lines(false)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.flush_lines(true)?;
        self.inner.flush()
    }
}

impl<W: std::io::Write> Drop for RedactingWriter<W> {
    fn drop(&mut self) {
        let _ = std::io::Write::flush(self);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_sas_signature() {
        let url = "https://a.file.core.windows.net/s/web?sv=2021-06-08&sp=rl&sig=VxxAbc%3D&se=x";
        assert_eq!(redact(url), "https://a.file.core.windows.net/s/web?sv=***&sp=***&sig=***&se=***");
        // Only a query with a signature: an ordinary one keeps its values.
        assert_eq!(redact("GET /x?restype=container&sp=rl"), "GET /x?restype=container&sp=rl");
        assert_eq!(
            redact("url: http://h/a?restype=container&se=2098-07-08T09%3A10%3A11Z&sig=abc&sv=2021-08-06, method"),
            "url: http://h/a?restype=container&se=***&sig=***&sv=***, method"
        );
    }

    #[test]
    fn masks_authorization_headers() {
        let r = redacted("authorization: Bearer eyJhbGciOiJIUzI1NiJ9.abc");
        assert_eq!(r, "authorization: Bearer ***");
        let r = redacted(r#"{"ACCESS_TOKEN":"abc123456789"}"#);
        assert!(!r.contains("abc123456789"), "{r}");
    }

    #[test]
    fn masks_registered_secrets_and_their_url_form() {
        register("p@ss w0rd!unique");
        assert_eq!(redact("login with p@ss w0rd!unique now"), "login with *** now");
        assert_eq!(redact("pw=p%40ss+w0rd%21unique"), "pw=***");
    }

    #[test]
    fn error_text_loses_url_queries_and_registered_signatures() {
        let text = "error sending request for url (http://127.0.0.1:9/acct/share/f?sv=2031-01-01&se=2031-02-03T04%3A05%3A06Z&sig=Ab%2Bc): connection refused";
        assert_eq!(
            for_error(text),
            "error sending request for url (http://127.0.0.1:9/acct/share/f): connection refused"
        );
        assert_eq!(
            strip_url_queries("blob+http://h/a/c?sig=x and https://a.b/c"),
            "blob+http://h/a/c and https://a.b/c"
        );
        assert_eq!(for_error("for /a/c (query restype=c&se=2031&sig=x&sv=1)"), "for /a/c (query ***)");
        register_sas("?sv=2031-01-01&sig=Zq9%2BUniqueSig%2Fabc%3D");
        assert_eq!(redact("sig Zq9+UniqueSig/abc= or Zq9%2BUniqueSig%2Fabc%3D"), "sig *** or ***");
    }

    #[test]
    fn mysql_saying_a_password_was_used_keeps_its_words_and_a_real_one_does_not() {
        let text = "Access denied for user 'app'@'10.0.0.4' (using password: YES)";
        assert_eq!(redact(text), text);
        assert_eq!(redact("(using password: NO)"), "(using password: NO)");
        assert_eq!(redact("password: YES)"), "password: ***");
        assert_eq!(redact("using password: hunter2"), "using password: ***");
    }

    #[test]
    fn a_file_named_password_is_not_a_password() {
        let text = "cannot read /tmp/sbx/secrets/dr-gateway.password: No such file";
        assert_eq!(redact(text), text);
    }

    #[test]
    fn leaves_ordinary_text_alone() {
        assert_eq!(redact("scale deployment ac-runtime to 0"), "scale deployment ac-runtime to 0");
    }
}
