//! Request authorisation as the File service does it: SAS (account or file service SAS) or
//! Shared Key, checked against the account key.

use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use chrono::{DateTime, Utc};

use super::State;
use super::responses::{error, rfc1123};
use crate::azure_files::auth::{self, SasFields, SignedRequest};

/// What an operation needs from a SAS.
#[derive(Debug, Clone, Copy)]
pub struct Need {
    pub permission: char,
    /// `c` (share/directory level) or `o` (file level).
    pub resource_type: char,
}

fn auth_failed(detail: &str) -> Response {
    error(
        StatusCode::FORBIDDEN,
        "AuthenticationFailed",
        "Server failed to authenticate the request. Make sure the value of Authorization header is formed correctly including the signature.",
        Some(detail),
    )
}

fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|d| d.with_timezone(&Utc))
        .or_else(|| chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()?.and_hms_opt(0, 0, 0).map(|d| d.and_utc()))
}

/// Checks a SAS for `account`/`share`/`path` (decoded) against `need`.
pub fn check_sas(
    state: &State,
    account: &str,
    share: &str,
    path: &str,
    query: &str,
    need: Need,
) -> Result<(), Response> {
    let Some(key) = state.accounts.get(account) else {
        return Err(auth_failed(&format!("The account {account} does not exist")));
    };
    let f = SasFields::parse(query);
    let string = if f.is_account_sas() {
        auth::account_sas_string(account, &f)
    } else {
        let resource = match f.sr.as_deref() {
            Some("s") => format!("/file/{account}/{share}"),
            Some("f") => format!("/file/{account}/{share}/{path}"),
            _ => return Err(auth_failed("sr is mandatory. Cannot be empty")),
        };
        auth::file_sas_string(&resource, &f)
    };
    let expected = auth::sign(key, &string).unwrap_or_default();
    if expected != f.sig {
        return Err(auth_failed(&format!(
            "Signature did not match. String to sign used was {}",
            string.replace('\n', "\\n")
        )));
    }
    let now = Utc::now();
    let Some(expiry) = parse_time(&f.se) else {
        return Err(auth_failed("se is mandatory. Cannot be empty"));
    };
    if expiry <= now {
        return Err(auth_failed(&format!(
            "Signed expiry time [{}] must be after current time [{}]",
            rfc1123(expiry),
            rfc1123(now)
        )));
    }
    if let Some(start) = parse_time(&f.st)
        && start > now
    {
        return Err(auth_failed(&format!(
            "Signed start time [{}] must be before current time [{}]",
            rfc1123(start),
            rfc1123(now)
        )));
    }
    if f.spr == "https" {
        return Err(error(
            StatusCode::FORBIDDEN,
            "AuthorizationProtocolMismatch",
            "This request is not authorized to perform this operation using this protocol.",
            None,
        ));
    }
    if let Some(ss) = &f.ss
        && !ss.contains('f')
    {
        return Err(error(
            StatusCode::FORBIDDEN,
            "AuthorizationServiceMismatch",
            "This request is not authorized to perform this operation using this service.",
            None,
        ));
    }
    if let Some(srt) = &f.srt
        && !srt.contains(need.resource_type)
    {
        return Err(error(
            StatusCode::FORBIDDEN,
            "AuthorizationResourceTypeMismatch",
            "This request is not authorized to perform this operation using this resource type.",
            None,
        ));
    }
    let granted = f.sp.contains(need.permission) || (need.permission == 'c' && f.sp.contains('w'));
    if !granted {
        return Err(error(
            StatusCode::FORBIDDEN,
            "AuthorizationPermissionMismatch",
            "This request is not authorized to perform this operation using this permission.",
            None,
        ));
    }
    Ok(())
}

/// Authorises a request: SAS in the query, or `Authorization: SharedKey`.
#[allow(clippy::too_many_arguments)]
pub fn authorize(
    state: &State,
    method: &str,
    raw_path: &str,
    raw_query: &str,
    headers: &HeaderMap,
    account: &str,
    share: &str,
    path: &str,
    need: Need,
) -> Result<(), Response> {
    let pairs: Vec<(String, String)> =
        url::form_urlencoded::parse(raw_query.as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
    if pairs.iter().any(|(k, _)| k == "sig") {
        return check_sas(state, account, share, path, raw_query, need);
    }
    let Some(authz) = headers.get("authorization").and_then(|v| v.to_str().ok()) else {
        return Err(error(
            StatusCode::UNAUTHORIZED,
            "NoAuthenticationInformation",
            "Server failed to authenticate the request. Please refer to the information in the www-authenticate header.",
            None,
        ));
    };
    let Some(key) = state.accounts.get(account) else {
        return Err(auth_failed(&format!("The account {account} does not exist")));
    };
    let hs: Vec<(String, String)> = headers
        .iter()
        .filter(|(k, _)| k.as_str() != "authorization")
        .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
        .collect();
    let signed = SignedRequest { method, headers: &hs, path: raw_path, query: &pairs };
    let expected = auth::shared_key_authorization(account, key, &signed).unwrap_or_default();
    if expected != authz {
        let sts = auth::shared_key_string(account, &signed);
        return Err(auth_failed(&format!(
            "The MAC signature found in the HTTP request is not the same as any computed signature. Server used following string to sign: '{}'.",
            sts.replace('\n', "\\n")
        )));
    }
    Ok(())
}
