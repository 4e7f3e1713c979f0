//! The emulator's endpoints: the v2.0 token endpoint (client credentials grant: secret,
//! certificate assertion, federated assertion), the tenant's OpenID configuration, and the App
//! Service managed-identity endpoint. Errors are Entra's: a JSON body with `error`,
//! `error_description` (`AADSTSnnnn: ...`), `error_codes`, `timestamp`, `trace_id`,
//! `correlation_id`, `error_uri`; `invalid_client` is 401, the other errors 400.

// The checks return Entra's error answer as their `Err`: that is the protocol's shape.
#![allow(clippy::result_large_err)]

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;

use super::{
    APP_OBJECT_ID, CLIENT_ID, Directory, FEDERATED_AUDIENCE, FEDERATED_SUBJECT, MANAGED_IDENTITY_CLIENT_ID,
    MANAGED_IDENTITY_OBJECT_ID, SKEW, jwt, now,
};

const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

fn guid() -> String {
    let v = rand::random::<u128>();
    format!(
        "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
        (v >> 96) as u32,
        (v >> 80) as u16,
        (v >> 68) as u16 & 0xfff,
        (v >> 56) as u16 & 0xfff,
        v as u64 & 0xffff_ffff_ffff
    )
}

/// An Entra error answer.
fn aad_error(status: StatusCode, error: &str, code: u32, description: &str) -> Response {
    let trace = guid();
    let correlation = guid();
    let timestamp = chrono::Utc::now().format("%Y-%m-%d %H:%M:%SZ").to_string();
    let body = json!({
        "error": error,
        "error_description": format!("AADSTS{code}: {description} Trace ID: {trace} Correlation ID: {correlation} Timestamp: {timestamp}"),
        "error_codes": [code],
        "timestamp": timestamp,
        "trace_id": trace,
        "correlation_id": correlation,
        "error_uri": format!("https://login.microsoftonline.com/error?code={code}"),
    });
    (
        status,
        [("content-type", "application/json; charset=utf-8"), ("cache-control", "no-store, no-cache")],
        body.to_string(),
    )
        .into_response()
}

fn invalid_request(code: u32, description: &str) -> Response {
    aad_error(StatusCode::BAD_REQUEST, "invalid_request", code, description)
}

fn invalid_client(code: u32, description: &str) -> Response {
    aad_error(StatusCode::UNAUTHORIZED, "invalid_client", code, description)
}

pub(super) fn login_router(directory: Arc<Directory>) -> axum::Router {
    axum::Router::new()
        .route("/{tenant}/oauth2/v2.0/token", post(token))
        .route("/{tenant}/v2.0/.well-known/openid-configuration", get(openid_configuration))
        .fallback(|| async {
            invalid_request(900561, "The endpoint only accepts POST requests to /{tenant}/oauth2/v2.0/token.")
        })
        .with_state(directory)
}

pub(super) fn identity_router(directory: Arc<Directory>) -> axum::Router {
    axum::Router::new().route("/msi/token", get(managed_identity)).with_state(directory)
}

fn unknown_tenant(tenant: &str) -> Response {
    invalid_request(
        90002,
        &format!(
            "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud. Check with your subscription administrator, this may happen if there are no active subscriptions for the tenant."
        ),
    )
}

/// `GET /{tenant}/v2.0/.well-known/openid-configuration`: what MSAL reads before a token request.
async fn openid_configuration(State(d): State<Arc<Directory>>, Path(tenant): Path<String>) -> Response {
    if !tenant.eq_ignore_ascii_case(&d.tenant) {
        return unknown_tenant(&tenant);
    }
    let base = format!("{}/{}", d.authority, d.tenant);
    let body = json!({
        "token_endpoint": d.token_endpoint(),
        "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
        "jwks_uri": format!("{base}/discovery/v2.0/keys"),
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "issuer": format!("{}/{}/v2.0", d.authority, d.tenant),
        "request_uri_parameter_supported": false,
        "authorization_endpoint": format!("{base}/oauth2/v2.0/authorize"),
        "device_authorization_endpoint": format!("{base}/oauth2/v2.0/devicecode"),
        "end_session_endpoint": format!("{base}/oauth2/v2.0/logout"),
        "tenant_region_scope": "NA",
        "cloud_instance_name": "microsoftonline.com",
    });
    (StatusCode::OK, [("content-type", "application/json; charset=utf-8")], body.to_string()).into_response()
}

/// The resource of a client-credentials `scope`: exactly one `RESOURCE/.default`.
fn resource_of(scope: &str) -> Result<String, Response> {
    let scopes: Vec<&str> = scope.split_whitespace().collect();
    match scopes.as_slice() {
        [] => Err(aad_error(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            70011,
            "The provided request must include a 'scope' input parameter.",
        )),
        [one] if one.ends_with("/.default") && one.len() > "/.default".len() => {
            Ok(one.trim_end_matches("/.default").to_string())
        }
        [one] => Err(aad_error(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            1002012,
            &format!(
                "The provided value for scope {one} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI)."
            ),
        )),
        _ => Err(aad_error(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            70011,
            &format!(
                "The provided value for the input parameter 'scope' is not valid. The scope {scope} is not valid. .default scope can't be combined with resource-specific scopes."
            ),
        )),
    }
}

fn token_answer(d: &Directory, resource: &str, oid: &str, appid: &str) -> Response {
    match d.access_token(resource, oid, appid) {
        Ok((token, _)) => {
            let body = json!({
                "token_type": "Bearer",
                "expires_in": super::ACCESS_TOKEN_LIFETIME,
                "ext_expires_in": super::ACCESS_TOKEN_LIFETIME,
                "access_token": token,
            });
            (
                StatusCode::OK,
                [("content-type", "application/json; charset=utf-8"), ("cache-control", "no-store, no-cache")],
                body.to_string(),
            )
                .into_response()
        }
        Err(e) => aad_error(StatusCode::INTERNAL_SERVER_ERROR, "server_error", 50000, &e.to_string()),
    }
}

/// `POST /{tenant}/oauth2/v2.0/token`.
async fn token(
    State(d): State<Arc<Directory>>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: String,
) -> Response {
    if !tenant.eq_ignore_ascii_case(&d.tenant) {
        return unknown_tenant(&tenant);
    }
    let is_form = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return invalid_request(900144, "The request body must contain the following parameter: 'grant_type'.");
    }
    let form: HashMap<String, String> = url::form_urlencoded::parse(body.as_bytes()).into_owned().collect();
    let field = |name: &str| form.get(name).map(String::as_str).filter(|v| !v.is_empty());
    let Some(grant) = field("grant_type") else {
        return invalid_request(900144, "The request body must contain the following parameter: 'grant_type'.");
    };
    if grant != "client_credentials" {
        return aad_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            70003,
            &format!("The app requested an unsupported grant type '{grant}'."),
        );
    }
    let Some(client_id) = field("client_id") else {
        return invalid_request(900144, "The request body must contain the following parameter: 'client_id'.");
    };
    if !client_id.eq_ignore_ascii_case(CLIENT_ID) {
        return aad_error(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            700016,
            &format!(
                "Application with identifier '{client_id}' was not found in the directory '{}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.",
                d.tenant
            ),
        );
    }
    let resource = match resource_of(field("scope").unwrap_or("")) {
        Ok(r) => r,
        Err(r) => return r,
    };
    let checked = match (field("client_secret"), field("client_assertion_type"), field("client_assertion")) {
        (Some(_), Some(_), _) | (Some(_), _, Some(_)) => Err(invalid_request(
            700025,
            "Client is public so neither 'client_assertion' nor 'client_secret' should be presented.",
        )),
        (Some(secret), None, None) => check_secret(&d, secret),
        (None, Some(kind), Some(assertion)) if kind == JWT_BEARER => check_assertion(&d, assertion),
        (None, Some(kind), _) if kind != JWT_BEARER => {
            Err(invalid_request(50027, &format!("Invalid client_assertion_type '{kind}'. Expected '{JWT_BEARER}'.")))
        }
        (None, _, _) => Err(invalid_client(
            7000218,
            "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
        )),
    };
    match checked {
        Ok(()) => token_answer(&d, &resource, APP_OBJECT_ID, CLIENT_ID),
        Err(r) => r,
    }
}

fn check_secret(d: &Directory, secret: &str) -> Result<(), Response> {
    let same = secret.len() == d.client_secret.len()
        && secret.bytes().zip(d.client_secret.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0;
    if same {
        Ok(())
    } else {
        Err(invalid_client(
            7000215,
            &format!(
                "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{CLIENT_ID}'."
            ),
        ))
    }
}

/// A federated token (the OIDC issuer's) or a certificate assertion (the app's own).
fn check_assertion(d: &Directory, assertion: &str) -> Result<(), Response> {
    let Some(parsed) = jwt::parse(assertion) else {
        return Err(invalid_client(50027, "JWT token is invalid or malformed."));
    };
    let t = now();
    let in_time = |p: &jwt::Parsed| {
        p.claim_i64("exp").is_some_and(|exp| exp + SKEW > t) && p.claim_i64("nbf").is_none_or(|nbf| nbf - SKEW <= t)
    };
    let iss = parsed.claim_str("iss").unwrap_or_default();
    let sub = parsed.claim_str("sub").unwrap_or_default();
    if iss == d.oidc_issuer {
        // Workload identity federation: the issuer's key, then the credential's subject and
        // audience, then the lifetime.
        if !parsed.verify(&d.oidc_public) {
            return Err(invalid_client(
                700211,
                &format!(
                    "No matching federated identity record found for presented assertion issuer '{iss}'. The assertion's signature does not verify with the issuer's keys."
                ),
            ));
        }
        if sub != FEDERATED_SUBJECT || !parsed.audiences().contains(&FEDERATED_AUDIENCE) {
            return Err(invalid_request(
                70021,
                &format!(
                    "No matching federated identity record found for presented assertion. Assertion Issuer: '{iss}'. Assertion Subject: '{sub}'. Assertion Audience: '{}'.",
                    parsed.audiences().join(",")
                ),
            ));
        }
        if !in_time(&parsed) {
            return Err(invalid_client(
                700024,
                "Client assertion is not within its valid time range. Review the documentation at https://learn.microsoft.com/entra/identity-platform/certificate-credentials .",
            ));
        }
        return Ok(());
    }
    // A certificate assertion: the app signs it with the registered certificate's key.
    if !iss.eq_ignore_ascii_case(CLIENT_ID) || !sub.eq_ignore_ascii_case(CLIENT_ID) {
        return Err(invalid_client(
            700021,
            &format!(
                "Client assertion application identifier doesn't match 'client_id' parameter. Review the documentation at https://learn.microsoft.com/entra/identity-platform/certificate-credentials . (iss '{iss}', sub '{sub}')"
            ),
        ));
    }
    let sha1 = parsed.header["x5t"].as_str().and_then(jwt::thumbprint_decode);
    let sha256 = parsed.header["x5t#S256"].as_str().and_then(jwt::thumbprint_decode);
    let registered = sha256.as_deref() == Some(d.cert_sha256.as_slice())
        || (sha256.is_none() && sha1.as_deref() == Some(d.cert_sha1.as_slice()));
    if !registered {
        let shown = parsed.header["x5t#S256"].as_str().or(parsed.header["x5t"].as_str()).unwrap_or("none");
        return Err(invalid_client(
            700027,
            &format!(
                "The certificate with identifier used to sign the client assertion is not registered on application. [Reason - The key was not found., Thumbprint of key used by client: '{shown}', Please visit the Azure Portal, Graph Explorer or directly use MS Graph to see configured keys for app Id '{CLIENT_ID}'.]"
            ),
        ));
    }
    if !parsed.verify(&d.cert_public) {
        return Err(invalid_client(700027, "Client assertion failed signature validation."));
    }
    let endpoint = d.token_endpoint();
    if !parsed.audiences().iter().any(|a| a.trim_end_matches('/').eq_ignore_ascii_case(&endpoint)) {
        return Err(invalid_client(
            700212,
            &format!(
                "The client assertion's audience claim does not match the token endpoint '{endpoint}'. (aud '{}')",
                parsed.audiences().join(",")
            ),
        ));
    }
    if parsed.claim_i64("exp").is_none() || !in_time(&parsed) {
        return Err(invalid_client(
            700024,
            "Client assertion is not within its valid time range. Review the documentation at https://learn.microsoft.com/entra/identity-platform/certificate-credentials .",
        ));
    }
    let Some(jti) = parsed.claim_str("jti") else {
        return Err(invalid_client(50027, "JWT token is invalid or malformed: it has no 'jti' claim."));
    };
    if !d.seen_jti.lock().unwrap().insert(jti.to_string()) {
        return Err(invalid_client(
            700023,
            "The client assertion has already been used (its jti was redeemed before); sign a new one.",
        ));
    }
    Ok(())
}

fn msi_error(status: StatusCode, message: &str) -> Response {
    (
        status,
        [("content-type", "application/json")],
        json!({"statusCode": status.as_u16(), "message": message}).to_string(),
    )
        .into_response()
}

/// `GET /msi/token?api-version=2019-08-01&resource=R[&client_id|principal_id|mi_res_id]` with
/// `X-IDENTITY-HEADER`: the App Service managed-identity protocol.
async fn managed_identity(
    State(d): State<Arc<Directory>>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let secret = headers.get("x-identity-header").and_then(|v| v.to_str().ok());
    if secret != Some(d.identity_header.as_str()) {
        return msi_error(StatusCode::UNAUTHORIZED, "The X-IDENTITY-HEADER header is missing or wrong.");
    }
    if query.get("api-version").map(String::as_str) != Some("2019-08-01") {
        return msi_error(
            StatusCode::BAD_REQUEST,
            "The api-version is missing or not supported (expected 2019-08-01).",
        );
    }
    let Some(resource) = query.get("resource").filter(|r| !r.is_empty()) else {
        return msi_error(StatusCode::BAD_REQUEST, "The resource parameter is required.");
    };
    let other = [
        ("client_id", MANAGED_IDENTITY_CLIENT_ID),
        ("principal_id", MANAGED_IDENTITY_OBJECT_ID),
        ("object_id", MANAGED_IDENTITY_OBJECT_ID),
    ]
    .iter()
    .any(|(k, v)| query.get(*k).is_some_and(|x| !x.eq_ignore_ascii_case(v)))
        || query.contains_key("mi_res_id")
        || query.contains_key("msi_res_id");
    if other {
        return msi_error(StatusCode::BAD_REQUEST, "The requested identity has not been assigned to this resource.");
    }
    let resource = resource.trim_end_matches("/.default");
    match d.access_token(resource, MANAGED_IDENTITY_OBJECT_ID, MANAGED_IDENTITY_CLIENT_ID) {
        Ok((token, exp)) => {
            let body = json!({
                "access_token": token,
                "expires_on": exp.to_string(),
                "resource": resource,
                "token_type": "Bearer",
                "client_id": MANAGED_IDENTITY_CLIENT_ID,
            });
            (StatusCode::OK, [("content-type", "application/json")], body.to_string()).into_response()
        }
        Err(e) => msi_error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn directory() -> (Directory, rcgen::KeyPair) {
        let oidc = jwt::rsa_key().unwrap();
        let cert = jwt::rsa_key().unwrap();
        let d = Directory {
            tenant: super::super::TENANT_ID.to_string(),
            authority: "https://127.0.0.1:1".to_string(),
            oidc_issuer: "https://127.0.0.1:1/aks-oidc/x/".to_string(),
            issuer_key: jwt::rsa_key().unwrap(),
            client_secret: "s".to_string(),
            cert_sha1: vec![1; 20],
            cert_sha256: vec![2; 32],
            cert_public: cert.public_key_raw().to_vec(),
            oidc_public: oidc.public_key_raw().to_vec(),
            identity_header: "h".to_string(),
            seen_jti: Default::default(),
        };
        (d, oidc)
    }

    fn federated(d: &Directory, key: &rcgen::KeyPair, sub: &str, exp_in: i64) -> String {
        let t = now();
        let claims =
            json!({"iss": d.oidc_issuer, "sub": sub, "aud": [FEDERATED_AUDIENCE], "iat": t, "exp": t + exp_in});
        jwt::sign(key, &json!({"alg": "RS256"}), &claims).unwrap()
    }

    fn code(r: Result<(), Response>) -> (u16, u32) {
        let r = r.unwrap_err();
        let status = r.status().as_u16();
        let body = futures::executor::block_on(axum::body::to_bytes(r.into_body(), 1 << 16)).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        (status, v["error_codes"][0].as_u64().unwrap() as u32)
    }

    #[test]
    fn a_federated_token_must_be_current_and_name_the_credentials_subject() {
        let (d, key) = directory();
        assert!(check_assertion(&d, &federated(&d, &key, FEDERATED_SUBJECT, 3600)).is_ok());
        assert_eq!(code(check_assertion(&d, &federated(&d, &key, FEDERATED_SUBJECT, -3600))), (401, 700024));
        assert_eq!(code(check_assertion(&d, &federated(&d, &key, "system:serviceaccount:x:y", 3600))), (400, 70021));
        let stranger = jwt::rsa_key().unwrap();
        assert_eq!(code(check_assertion(&d, &federated(&d, &stranger, FEDERATED_SUBJECT, 3600))), (401, 700211));
    }

    #[test]
    fn the_client_credentials_scope_is_one_resource_with_default() {
        assert_eq!(resource_of("https://storage.azure.com/.default").unwrap(), "https://storage.azure.com");
        assert!(resource_of("https://storage.azure.com").is_err());
        assert!(resource_of("").is_err());
        assert!(resource_of("a/.default b/.default").is_err());
    }
}
