//! Database URLs in messages: the password, wherever it was written (`user:PASSWORD@` or
//! `?password=`), never appears — also when the URL is too broken to parse, which is exactly
//! when it is echoed back to the user.

use drscript_base::redact::MASK;

/// `url` with any password replaced by `***`. Works on text that is not a valid URL; when in
/// doubt it masks more (everything between the first `:` of the user part and the last `@`).
pub fn masked_url(url: &str) -> String {
    let mut out = url.to_string();
    if let Some((start, end)) = userinfo_password(url) {
        out.replace_range(start..end, MASK);
    }
    for (start, end) in query_passwords(&out).into_iter().rev() {
        out.replace_range(start..end, MASK);
    }
    drscript_base::redact::redacted(out)
}

/// The password a URL carries, if any (so that it can be registered as a secret before a
/// message quoting the URL's line is printed).
pub fn url_password(url: &str) -> Option<String> {
    userinfo_password(url)
        .map(|(s, e)| url[s..e].to_string())
        .or_else(|| query_passwords(url).first().map(|(s, e)| url[*s..*e].to_string()))
        .filter(|p| !p.is_empty())
}

/// Byte range of the password in `scheme://user:PASSWORD@host`.
fn userinfo_password(url: &str) -> Option<(usize, usize)> {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    let rest = &url[after_scheme..];
    let at = rest.rfind('@')?;
    let colon = rest[..at].find(':')?;
    Some((after_scheme + colon + 1, after_scheme + at))
}

/// Byte ranges of the values of `password=` parameters.
fn query_passwords(url: &str) -> Vec<(usize, usize)> {
    let Some(query_start) = url.find('?') else { return Vec::new() };
    let mut ranges = Vec::new();
    let mut pos = query_start + 1;
    for part in url[query_start + 1..].split(['&', ';']) {
        if let Some((key, _)) = part.split_once('=')
            && key.eq_ignore_ascii_case("password")
        {
            ranges.push((pos + key.len() + 1, pos + part.len()));
        }
        pos += part.len() + 1;
    }
    ranges
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_the_password_of_urls_that_do_not_parse() {
        let broken = "postgres://app:s3cret-pw@db.example:99999/appdb";
        assert!(url::Url::parse(broken).is_err());
        assert_eq!(masked_url(broken), "postgres://app:***@db.example:99999/appdb");
        assert_eq!(url_password(broken).as_deref(), Some("s3cret-pw"));
        // An unencoded `@` in the password: everything up to the last `@` goes.
        assert_eq!(masked_url("mysql://app:p@ss@db:3306/x"), "mysql://app:***@db:3306/x");
        let query = masked_url("postgres://app@db/x?sslmode=require&password=hunter22&x=1");
        assert!(!query.contains("hunter22") && query.contains("sslmode=require") && query.contains("&x=1"), "{query}");
        assert_eq!(url_password("postgres://app@db:5432/x?sslmode=require"), None);
        assert_eq!(masked_url("postgres://app@db:5432/x"), "postgres://app@db:5432/x");
    }
}
