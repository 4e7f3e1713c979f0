//! Request authorisation as the File service does it: a SAS (account or file service SAS) or
//! Shared Key, checked against the account key with the emulator's own verifier
//! ([`super::signature`]), never with drscript's client signing; with Entra ID
//! ([`super::EntraAuth`]) also a bearer token, as Azure Files OAuth over REST admits it.

use std::net::IpAddr;

use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use chrono::{DateTime, Duration, Utc};

use super::State;
use super::responses::{error, rfc1123};
use super::signature::{self, Received, SasToken};

/// How far a Shared Key request's date may lag behind the service's clock.
const DATE_LAG: Duration = Duration::minutes(15);

/// What an operation needs from a SAS.
#[derive(Debug, Clone, Copy)]
pub struct Need {
    pub permission: char,
    /// `c` (share/directory level) or `o` (file level).
    pub resource_type: char,
}

/// The request as authorisation sees it.
pub struct Incoming<'a> {
    pub method: &'a str,
    pub raw_path: &'a str,
    /// Decoded query pairs.
    pub query: &'a [(String, String)],
    pub headers: &'a HeaderMap,
    /// The caller's address (SAS `sip`); `None` when the transport did not say.
    pub peer: Option<IpAddr>,
}

fn auth_failed(detail: &str) -> Response {
    error(
        StatusCode::FORBIDDEN,
        "AuthenticationFailed",
        "Server failed to authenticate the request. Make sure the value of Authorization header is formed correctly including the signature.",
        Some(detail),
    )
}

fn mismatch(code: &str, what: &str) -> Response {
    error(
        StatusCode::FORBIDDEN,
        code,
        &format!("This request is not authorized to perform this operation {what}."),
        None,
    )
}

fn parse_sas_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|d| d.with_timezone(&Utc))
        .or_else(|| chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()?.and_hms_opt(0, 0, 0).map(|d| d.and_utc()))
}

/// `sip`: one IPv4/IPv6 address or an inclusive range `FROM-TO`.
fn ip_allowed(sip: &str, peer: Option<IpAddr>) -> bool {
    let Some(peer) = peer else { return false };
    let (from, to) = sip.split_once('-').unwrap_or((sip, sip));
    match (from.trim().parse::<IpAddr>(), to.trim().parse::<IpAddr>()) {
        (Ok(IpAddr::V4(a)), Ok(IpAddr::V4(b))) => match peer {
            IpAddr::V4(p) => a <= p && p <= b,
            IpAddr::V6(p) => p.to_ipv4_mapped().is_some_and(|p| a <= p && p <= b),
        },
        (Ok(IpAddr::V6(a)), Ok(IpAddr::V6(b))) => matches!(peer, IpAddr::V6(p) if a <= p && p <= b),
        _ => false,
    }
}

/// Checks a SAS for `account`/`share`/`path` (decoded) against `need`.
pub fn check_sas(
    state: &State,
    account: &str,
    share: &str,
    path: &str,
    token: &SasToken,
    peer: Option<IpAddr>,
    need: Need,
) -> Result<(), Response> {
    let Some(key) = state.accounts.get(account) else {
        return Err(auth_failed(&format!("The account {account} does not exist")));
    };
    if token.delegation {
        return Err(auth_failed("A user delegation SAS needs Microsoft Entra ID, which this emulator does not serve."));
    }
    let string = if token.is_account_sas() {
        signature::account_sas_string_to_sign(account, token)
    } else {
        let resource = match token.resource.as_str() {
            "s" => format!("/file/{account}/{share}"),
            "f" => format!("/file/{account}/{share}/{path}"),
            "" => return Err(auth_failed("sr is mandatory. Cannot be empty")),
            other => return Err(auth_failed(&format!("Invalid signed resource '{other}'"))),
        };
        signature::file_sas_string_to_sign(&resource, token)
    };
    let expected = signature::hmac_sha256(key, &string).unwrap_or_default();
    if !signature::same_signature(&expected, &token.signature) {
        return Err(auth_failed(&format!(
            "Signature did not match. String to sign used was {}",
            string.replace('\n', "\\n")
        )));
    }
    if !token.identifier.is_empty() {
        return Err(auth_failed(
            "The signed identifier names a stored access policy, which this emulator does not keep.",
        ));
    }
    let now = Utc::now();
    let Some(expiry) = parse_sas_time(&token.expiry) else {
        return Err(auth_failed("se is mandatory. Cannot be empty"));
    };
    if expiry <= now {
        return Err(auth_failed(&format!(
            "Signed expiry time [{}] must be after current time [{}]",
            rfc1123(expiry),
            rfc1123(now)
        )));
    }
    if let Some(start) = parse_sas_time(&token.start)
        && start > now
    {
        return Err(auth_failed(&format!(
            "Signed start time [{}] must be before current time [{}]",
            rfc1123(start),
            rfc1123(now)
        )));
    }
    if !token.ip.is_empty() && !ip_allowed(&token.ip, peer) {
        let shown = peer.map(|p| p.to_string()).unwrap_or_default();
        return Err(mismatch("AuthorizationSourceIPMismatch", &format!("using this source IP {shown}")));
    }
    // A SAS that allows HTTPS only is refused over plain HTTP, as the service refuses it.
    match token.protocol.as_str() {
        "" | "https,http" => {}
        "https" if state.https => {}
        "https" => return Err(mismatch("AuthorizationProtocolMismatch", "using this protocol")),
        other => return Err(auth_failed(&format!("Invalid signed protocol '{other}'"))),
    }
    if token.is_account_sas() && !token.services.contains('f') {
        return Err(mismatch("AuthorizationServiceMismatch", "using this service"));
    }
    if token.is_account_sas() && !token.resource_types.contains(need.resource_type) {
        return Err(mismatch("AuthorizationResourceTypeMismatch", "using this resource type"));
    }
    let granted =
        token.permissions.contains(need.permission) || (need.permission == 'c' && token.permissions.contains('w'));
    if !granted {
        return Err(mismatch("AuthorizationPermissionMismatch", "using this permission"));
    }
    Ok(())
}

/// Operations Azure serves to the account owner only (Get Share Stats, Set Share Properties):
/// Shared Key or an account SAS, never a share or file SAS.
pub fn owner_only(query: &[(String, String)]) -> Result<(), Response> {
    match SasToken::from_query(query) {
        Some(token) if !token.is_account_sas() => Err(error(
            StatusCode::FORBIDDEN,
            "AuthorizationFailure",
            "This request is not authorized to perform this operation.",
            None,
        )),
        _ => Ok(()),
    }
}

fn header<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Shared Key: the scheme, the account, a version, a fresh date, then the signature.
fn check_shared_key(state: &State, account: &str, authz: &str, r: &Incoming<'_>) -> Result<(), Response> {
    let Some((scheme, credential)) = authz.trim().split_once(' ') else {
        return Err(auth_failed(&format!(
            "The authorization header '{authz}' is not in the form SCHEME ACCOUNT:SIGNATURE"
        )));
    };
    if scheme != "SharedKey" {
        return Err(auth_failed(&format!("Authentication scheme {scheme} is not supported by this emulator.")));
    }
    let (who, sig) = credential.trim().split_once(':').unwrap_or((credential, ""));
    if who != account {
        return Err(auth_failed(&format!(
            "The account {who} in the Authorization header is not the account {account} of the URL"
        )));
    }
    let Some(key) = state.accounts.get(account) else {
        return Err(auth_failed(&format!("The account {account} does not exist")));
    };
    if header(r.headers, "x-ms-version").is_none() {
        return Err(auth_failed("Unversioned authenticated access is not allowed."));
    }
    let Some(date) = header(r.headers, "x-ms-date").or_else(|| header(r.headers, "date")) else {
        return Err(auth_failed("Request date header not specified"));
    };
    let Ok(date) = DateTime::parse_from_rfc2822(date.trim()).map(|d| d.with_timezone(&Utc)) else {
        return Err(auth_failed("The Date header in the request is incorrect."));
    };
    if date < Utc::now() - DATE_LAG {
        return Err(auth_failed(&format!("Request date header too old: '{}'", rfc1123(date))));
    }
    let headers: Vec<(String, String)> = r
        .headers
        .iter()
        .filter(|(k, _)| k.as_str() != "authorization")
        .map(|(k, v)| (k.as_str().to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
        .collect();
    let received = Received { verb: r.method, headers: &headers, raw_path: r.raw_path, query: r.query };
    let string = signature::shared_key_string_to_sign(account, &received);
    let expected = signature::hmac_sha256(key, &string).unwrap_or_default();
    if !signature::same_signature(&expected, sig) {
        return Err(auth_failed(&format!(
            "The MAC signature found in the HTTP request is not the same as any computed signature. Server used following string to sign: '{}'.",
            string.replace('\n', "\\n")
        )));
    }
    Ok(())
}

/// What an account with `allowSharedKeyAccess: false` answers to Shared Key and account-key SAS.
fn key_not_permitted() -> Response {
    error(
        StatusCode::FORBIDDEN,
        "KeyBasedAuthenticationNotPermitted",
        "Key based authentication is not permitted on this storage account.",
        None,
    )
}

/// The bearer challenge of a storage account of `tenant`.
fn challenge(mut r: Response, tenant: &str) -> Response {
    let value = format!(
        "Bearer authorization_uri=https://login.microsoftonline.com/{tenant}/oauth2/authorize resource_id={}",
        crate::entra::STORAGE_RESOURCE
    );
    if let Ok(v) = axum::http::HeaderValue::from_str(&value) {
        r.headers_mut().insert("www-authenticate", v);
    }
    r
}

/// The first version that admits a bearer token on file and directory operations, and the
/// first that admits one on the share's own operations (the "management" APIs of the data
/// plane: share properties, stats).
const OAUTH_FILES_VERSION: &str = "2022-11-02";
const OAUTH_SHARE_VERSION: &str = "2024-11-04";

/// `Authorization: Bearer TOKEN` (Azure Files OAuth over REST): version, transport, the token,
/// the backup intent, then the principal's role on the account.
fn check_bearer(
    state: &State,
    entra: &super::EntraAuth,
    account: &str,
    token: &str,
    r: &Incoming<'_>,
    need: Need,
) -> Result<(), Response> {
    let Some(version) = header(r.headers, "x-ms-version") else {
        return Err(auth_failed("Unversioned authenticated access is not allowed."));
    };
    if version < OAUTH_FILES_VERSION {
        return Err(auth_failed("Authentication scheme Bearer is not supported in this version."));
    }
    if !state.https {
        return Err(auth_failed("Bearer token authentication is not permitted over HTTP; use HTTPS."));
    }
    let principal = entra.verifier.verify(token, crate::entra::STORAGE_RESOURCE).map_err(|e| {
        challenge(
            error(
                StatusCode::UNAUTHORIZED,
                "InvalidAuthenticationInfo",
                "Server failed to authenticate the request. Please refer to the information in the www-authenticate header.",
                Some(e.detail()),
            ),
            entra.verifier.tenant(),
        )
    })?;
    match header(r.headers, "x-ms-file-request-intent") {
        None => {
            return Err(super::responses::error_fields(
                StatusCode::BAD_REQUEST,
                "MissingRequiredHeader",
                "An HTTP header that's mandatory for this request is not specified.",
                &[("HeaderName", "x-ms-file-request-intent")],
            ));
        }
        Some(v) if !v.trim().eq_ignore_ascii_case("backup") => {
            return Err(super::responses::error_fields(
                StatusCode::BAD_REQUEST,
                "InvalidHeaderValue",
                "The value for one of the HTTP headers is not in the correct format.",
                &[("HeaderName", "x-ms-file-request-intent"), ("HeaderValue", v)],
            ));
        }
        Some(_) => {}
    }
    let share_level = r.query.iter().any(|(k, v)| k.eq_ignore_ascii_case("restype") && v.eq_ignore_ascii_case("share"));
    if share_level && version < OAUTH_SHARE_VERSION {
        return Err(error(
            StatusCode::FORBIDDEN,
            "AuthorizationFailure",
            "This request is not authorized to perform this operation.",
            None,
        ));
    }
    match entra.roles.role(account, &principal.oid) {
        Some(role) if role.allows(need.permission) => Ok(()),
        _ => Err(mismatch("AuthorizationPermissionMismatch", "using this permission")),
    }
}

/// Authorises a request: a SAS in the query, `Authorization: SharedKey`, or (with Entra ID)
/// `Authorization: Bearer`.
pub fn authorize(
    state: &State,
    r: &Incoming<'_>,
    account: &str,
    share: &str,
    path: &str,
    need: Need,
) -> Result<(), Response> {
    let keys_refused = state.entra.as_ref().is_some_and(|e| !e.allow_shared_key);
    if let Some(token) = SasToken::from_query(r.query) {
        if keys_refused && !token.delegation {
            return Err(key_not_permitted());
        }
        return check_sas(state, account, share, path, &token, r.peer, need);
    }
    let Some(authz) = header(r.headers, "authorization") else {
        let refused = error(
            StatusCode::UNAUTHORIZED,
            "NoAuthenticationInformation",
            "Server failed to authenticate the request. Please refer to the information in the www-authenticate header.",
            None,
        );
        return Err(match &state.entra {
            Some(e) => challenge(refused, e.verifier.tenant()),
            None => refused,
        });
    };
    let (scheme, credential) = authz.trim().split_once(' ').unwrap_or((authz.trim(), ""));
    if scheme.eq_ignore_ascii_case("Bearer") {
        return match &state.entra {
            Some(e) => check_bearer(state, e, account, credential.trim(), r, need),
            None => Err(auth_failed(
                "Authentication scheme Bearer is not supported by this emulator without Entra ID (`sandbox up --entra`).",
            )),
        };
    }
    if keys_refused && (scheme == "SharedKey" || scheme == "SharedKeyLite") {
        return Err(key_not_permitted());
    }
    check_shared_key(state, account, authz, r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sip_takes_one_address_or_an_inclusive_range() {
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        assert!(ip_allowed("127.0.0.1", Some(lo)));
        assert!(ip_allowed("127.0.0.0-127.0.0.255", Some(lo)));
        assert!(!ip_allowed("10.0.0.1-10.0.0.9", Some(lo)));
        assert!(!ip_allowed("127.0.0.1", None));
        assert!(ip_allowed("127.0.0.1", Some("::ffff:127.0.0.1".parse().unwrap())));
    }
}
