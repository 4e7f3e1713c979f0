//! A Microsoft Entra ID emulator (`sandbox up --entra`), written from the Microsoft identity
//! platform's public documentation, so that an account that refuses Shared Key can be rehearsed.
//!
//! - One tenant ([`TENANT_ID`]) with one app registration ("drscript-sandbox", [`CLIENT_ID`])
//!   that has three credentials: a client secret, a client certificate (self-signed RSA 2048) and
//!   a federated identity credential trusting the sandbox's "AKS OIDC issuer" for the service
//!   account `drscript/drscript` (the sandbox writes such a service-account token, as AKS
//!   projects one into a workload-identity pod).
//! - The v2.0 token endpoint over HTTPS (`POST /{tenant}/oauth2/v2.0/token`, the client
//!   credentials grant with a secret, a certificate assertion or a federated assertion) and the
//!   tenant's OpenID configuration, with Entra's error bodies (`AADSTS...` codes).
//! - The App Service managed-identity endpoint over plain HTTP (`GET /msi/token`,
//!   `X-IDENTITY-HEADER`), for a second principal, the managed identity.
//! - Access tokens: RS256 JWTs of the tenant's issuer key; [`TokenVerifier`] is what the Files
//!   and ARM emulators check them with, and [`Roles`] the role assignments the Files emulator
//!   enforces (changed at run time through the control endpoint's `POST /roles`).

mod jwt;
mod roles;
mod token;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{CertificateParams, DnType, KeyPair};
use serde_json::{Value, json};
use sha2::Digest;

use crate::kube_api::{SandboxCa, ServerTls};
use drscript_base::error::{Error, Result};

pub use roles::{Role, Roles};

/// The sandbox tenant.
pub const TENANT_ID: &str = "5a6d0b1c-0000-4000-8000-00000000d5c1";
/// The app registration "drscript-sandbox" (its application/client id).
pub const CLIENT_ID: &str = "5a6d0b1c-0000-4000-8000-0000000c11e0";
/// The object id of the app's service principal: the `oid` of its tokens, what roles name.
pub const APP_OBJECT_ID: &str = "5a6d0b1c-0000-4000-8000-0000000a0b01";
/// The managed identity (App Service endpoint): its client id and its principal's object id.
pub const MANAGED_IDENTITY_CLIENT_ID: &str = "5a6d0b1c-0000-4000-8000-0000000c11e1";
pub const MANAGED_IDENTITY_OBJECT_ID: &str = "5a6d0b1c-0000-4000-8000-0000000a0b02";
/// The federated identity credential's subject: the workload's Kubernetes service account.
pub const FEDERATED_SUBJECT: &str = "system:serviceaccount:drscript:drscript";
/// The audience Entra expects in a federated token.
pub const FEDERATED_AUDIENCE: &str = "api://AzureADTokenExchange";
/// The resources whose tokens the sandbox's services accept.
pub const STORAGE_RESOURCE: &str = "https://storage.azure.com";
pub const MANAGEMENT_RESOURCE: &str = "https://management.azure.com";

/// Files written into the sandbox folder (relative paths).
pub const CA_PATH: &str = "secrets/sandbox-ca.pem";
pub const CLIENT_SECRET_PATH: &str = "secrets/entra-client.secret";
pub const CLIENT_CERT_PATH: &str = "secrets/entra-client.pem";
pub const FEDERATED_TOKEN_PATH: &str = "secrets/entra-federated-token";
pub const IDENTITY_HEADER_PATH: &str = "secrets/entra-identity-header";

/// How long the service-account token the sandbox writes lives.
const FEDERATED_TOKEN_LIFETIME: i64 = 24 * 3600;
/// How often the service-account token is re-signed.
const FEDERATED_TOKEN_REFRESH: u64 = 6 * 3600;
/// How long an access token lives (`expires_in` 3599, as Entra answers).
const ACCESS_TOKEN_LIFETIME: i64 = 3599;
/// Clock skew tolerated on `nbf`/`exp`, as the services tolerate it.
const SKEW: i64 = 300;

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Signs a service-account token of the sandbox's AKS OIDC issuer (24 h) and writes it where a
/// workload-identity pod finds its projected token.
fn write_federated_token(dir: &Path, oidc_key: &KeyPair, issuer: &str) -> Result<()> {
    let iat = now();
    let token = jwt::sign(
        oidc_key,
        &json!({"alg": "RS256", "kid": "sandbox-aks-oidc"}),
        &json!({
            "aud": [FEDERATED_AUDIENCE],
            "iss": issuer,
            "sub": FEDERATED_SUBJECT,
            "iat": iat,
            "nbf": iat,
            "exp": iat + FEDERATED_TOKEN_LIFETIME,
            "kubernetes.io": {"namespace": "drscript", "serviceaccount": {"name": "drscript"}},
        }),
    )?;
    drscript_base::redact::register(&token);
    crate::folder::write_secret(&dir.join(FEDERATED_TOKEN_PATH), &token)
}

/// A principal an access token names.
#[derive(Debug, Clone)]
pub struct Principal {
    pub oid: String,
    pub appid: String,
}

/// Why a bearer token is refused, with the detail the storage service writes
/// (`AuthenticationErrorDetail`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenError {
    Malformed,
    Signature,
    Issuer,
    Audience,
    Expired,
    NotYetValid,
}

impl TokenError {
    pub fn detail(self) -> &'static str {
        match self {
            TokenError::Malformed => "The access token is not a valid JWT.",
            TokenError::Signature => "Signature validation failed.",
            TokenError::Issuer => "Issuer validation failed. Issuer did not match.",
            TokenError::Audience => "Audience validation failed. Audience did not match.",
            TokenError::Expired => "Lifetime validation failed. The token is expired.",
            TokenError::NotYetValid => "Lifetime validation failed. The token is not yet valid.",
        }
    }
}

/// Checks access tokens of the sandbox tenant: signature with the issuer's public key, issuer,
/// audience, lifetime.
#[derive(Clone)]
pub struct TokenVerifier {
    public_key: Arc<Vec<u8>>,
    tenant: String,
}

impl std::fmt::Debug for TokenVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenVerifier").field("tenant", &self.tenant).finish_non_exhaustive()
    }
}

impl TokenVerifier {
    /// The tenant whose tokens it accepts.
    pub fn tenant(&self) -> &str {
        &self.tenant
    }

    /// The principal of `token` when it is a valid token for `resource` (with or without a
    /// trailing slash).
    pub fn verify(&self, token: &str, resource: &str) -> std::result::Result<Principal, TokenError> {
        let parsed = jwt::parse(token).ok_or(TokenError::Malformed)?;
        if !parsed.verify(&self.public_key) {
            return Err(TokenError::Signature);
        }
        let issuers = [
            format!("https://sts.windows.net/{}/", self.tenant),
            format!("https://login.microsoftonline.com/{}/v2.0", self.tenant),
        ];
        if !parsed.claim_str("iss").is_some_and(|i| issuers.iter().any(|x| x == i)) {
            return Err(TokenError::Issuer);
        }
        let wanted = resource.trim_end_matches('/');
        if !parsed.audiences().iter().any(|a| a.trim_end_matches('/') == wanted) {
            return Err(TokenError::Audience);
        }
        let t = now();
        if parsed.claim_i64("exp").is_none_or(|exp| exp + SKEW <= t) {
            return Err(TokenError::Expired);
        }
        if parsed.claim_i64("nbf").is_some_and(|nbf| nbf - SKEW > t) {
            return Err(TokenError::NotYetValid);
        }
        let oid = parsed.claim_str("oid").ok_or(TokenError::Malformed)?.to_string();
        let appid = parsed.claim_str("appid").or_else(|| parsed.claim_str("azp")).unwrap_or_default().to_string();
        Ok(Principal { oid, appid })
    }
}

/// The emulator's keys, credentials and endpoints; shared by its servers.
pub(crate) struct Directory {
    tenant: String,
    authority: String,
    oidc_issuer: String,
    issuer_key: KeyPair,
    client_secret: String,
    /// The registered certificate: SHA-1 and SHA-256 thumbprints, PKCS#1 public key.
    cert_sha1: Vec<u8>,
    cert_sha256: Vec<u8>,
    cert_public: Vec<u8>,
    oidc_public: Vec<u8>,
    identity_header: String,
    /// `jti`s of certificate assertions already redeemed (Entra refuses a replay).
    seen_jti: std::sync::Mutex<std::collections::HashSet<String>>,
}

impl Directory {
    fn token_endpoint(&self) -> String {
        format!("{}/{}/oauth2/v2.0/token", self.authority, self.tenant)
    }

    /// An access token for `principal` (object id) of application `appid`, audience `resource`.
    fn access_token(&self, resource: &str, oid: &str, appid: &str) -> Result<(String, i64)> {
        let iat = now();
        let exp = iat + ACCESS_TOKEN_LIFETIME;
        let claims = json!({
            "aud": resource,
            "iss": format!("https://sts.windows.net/{}/", self.tenant),
            "iat": iat,
            "nbf": iat,
            "exp": exp,
            "appid": appid,
            "appidacr": "1",
            "idtyp": "app",
            "oid": oid,
            "sub": oid,
            "tid": self.tenant,
            "ver": "1.0",
            "uti": format!("{:022x}", rand::random::<u128>() >> 40),
        });
        let header = json!({"typ": "JWT", "alg": "RS256", "kid": "sandbox-issuer"});
        Ok((jwt::sign(&self.issuer_key, &header, &claims)?, exp))
    }
}

struct Servers {
    authority: String,
    identity_endpoint: String,
    directory: Arc<Directory>,
    roles: Arc<Roles>,
    ca: SandboxCa,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Servers {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// A running Entra ID emulator; clones share it, the last one dropped stops it.
#[derive(Clone)]
pub struct Entra {
    inner: Arc<Servers>,
}

fn entra_error(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Other(format!("sandbox Entra ID: {what}: {e}"))
}

impl Entra {
    /// Starts the emulator for the sandbox in `dir`: makes the sandbox CA and the credentials,
    /// writes them under `dir/secrets/`, and gives both principals the Contributor role on every
    /// account of `accounts`.
    pub async fn start(dir: &Path, accounts: &[String]) -> Result<Entra> {
        let ca = SandboxCa::generate()?;
        crate::folder::write_secret(&dir.join(CA_PATH), ca.pem().trim_end())?;
        let tls = ca.server_tls("login.sandbox")?;

        let tcp = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .map_err(|e| Error::io("sandbox Entra ID: cannot bind 127.0.0.1", e))?;
        let addr: SocketAddr = tcp.local_addr().map_err(|e| Error::io("sandbox Entra ID address", e))?;
        let authority = format!("https://{addr}");
        let oidc_issuer = format!("{authority}/aks-oidc/{TENANT_ID}/5a6d0b1c-0000-4000-8000-00000000a175/");

        // The app's client secret and certificate.
        let client_secret = format!("sbx~{:032x}", rand::random::<u128>());
        drscript_base::redact::register(&client_secret);
        crate::folder::write_secret(&dir.join(CLIENT_SECRET_PATH), &client_secret)?;
        let cert_key = jwt::rsa_key()?;
        let mut params = CertificateParams::new(Vec::<String>::new()).map_err(|e| entra_error("certificate", e))?;
        params.distinguished_name.push(DnType::CommonName, "drscript-sandbox");
        let cert = params.self_signed(&cert_key).map_err(|e| entra_error("certificate", e))?;
        let private_pem = cert_key.serialize_pem();
        drscript_base::redact::register(private_pem.trim());
        crate::folder::write_secret(&dir.join(CLIENT_CERT_PATH), format!("{}{}", cert.pem(), private_pem).trim_end())?;
        let cert_sha1 = {
            use sha1::Digest as _;
            sha1::Sha1::digest(cert.der()).to_vec()
        };
        let cert_sha256 = sha2::Sha256::digest(cert.der()).to_vec();

        // The AKS OIDC issuer and the service-account token it signs, re-signed well before it
        // expires (as the kubelet refreshes a projected token).
        let oidc_key = Arc::new(jwt::rsa_key()?);
        write_federated_token(dir, &oidc_key, &oidc_issuer)?;

        let identity_header = format!("{:032x}", rand::random::<u128>());
        drscript_base::redact::register(&identity_header);
        crate::folder::write_secret(&dir.join(IDENTITY_HEADER_PATH), &identity_header)?;

        let directory = Arc::new(Directory {
            tenant: TENANT_ID.to_string(),
            authority: authority.clone(),
            oidc_issuer,
            issuer_key: jwt::rsa_key()?,
            client_secret,
            cert_sha1,
            cert_sha256,
            cert_public: cert_key.public_key_raw().to_vec(),
            oidc_public: oidc_key.public_key_raw().to_vec(),
            identity_header,
            seen_jti: Default::default(),
        });
        let mut tasks = Vec::new();
        let router = token::login_router(directory.clone());
        let listener = tls.listener(tcp)?;
        tasks.push(tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        }));
        let msi = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .map_err(|e| Error::io("sandbox managed identity endpoint: cannot bind 127.0.0.1", e))?;
        let msi_addr = msi.local_addr().map_err(|e| Error::io("sandbox managed identity endpoint", e))?;
        let router = token::identity_router(directory.clone());
        tasks.push(tokio::spawn(async move {
            let _ = axum::serve(msi, router).await;
        }));
        let (token_dir, issuer) = (dir.to_path_buf(), directory.oidc_issuer.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                tokio::time::sleep(std::time::Duration::from_secs(FEDERATED_TOKEN_REFRESH)).await;
                if let Err(e) = write_federated_token(&token_dir, &oidc_key, &issuer) {
                    tracing::warn!("sandbox Entra ID: cannot refresh the federated token: {e}");
                }
            }
        }));
        let roles = Arc::new(Roles::default());
        for account in accounts {
            roles.set(account, APP_OBJECT_ID, Some(Role::Contributor));
            roles.set(account, MANAGED_IDENTITY_OBJECT_ID, Some(Role::Contributor));
        }
        Ok(Entra {
            inner: Arc::new(Servers {
                authority,
                identity_endpoint: format!("http://{msi_addr}/msi/token"),
                directory,
                roles,
                ca,
                tasks,
            }),
        })
    }

    /// `https://127.0.0.1:PORT`: the authority host (the tenant is the first path segment).
    pub fn authority(&self) -> &str {
        &self.inner.authority
    }

    /// The App Service managed-identity endpoint (`IDENTITY_ENDPOINT`).
    pub fn identity_endpoint(&self) -> &str {
        &self.inner.identity_endpoint
    }

    pub fn verifier(&self) -> TokenVerifier {
        TokenVerifier {
            public_key: Arc::new(self.inner.directory.issuer_key.public_key_raw().to_vec()),
            tenant: self.inner.directory.tenant.clone(),
        }
    }

    pub fn roles(&self) -> Arc<Roles> {
        self.inner.roles.clone()
    }

    /// TLS for another sandbox server (`common_name`), under the sandbox CA.
    pub fn server_tls(&self, common_name: &str) -> Result<ServerTls> {
        self.inner.ca.server_tls(common_name)
    }

    /// The sandbox CA file, relative to the sandbox folder.
    pub fn ca_file(&self) -> PathBuf {
        PathBuf::from(CA_PATH)
    }

    /// The `[azure]` section of the sandbox's config: workload identity against this emulator.
    pub fn azure_section(&self, resource_manager: &str) -> String {
        format!(
            "[azure]\nauth = \"workload_identity\"\ntenant_id = \"{TENANT_ID}\"\nclient_id = \"{CLIENT_ID}\"\nauthority = \"{}\"\nca_file = \"{CA_PATH}\"\nfederated_token_file = \"{FEDERATED_TOKEN_PATH}\"\nresource_manager = \"{resource_manager}\"\n",
            self.inner.authority
        )
    }

    /// What `sandbox status --json` shows (no secrets: the files hold them).
    pub fn status(&self) -> Value {
        let d = &self.inner.directory;
        json!({
            "tenant_id": d.tenant,
            "authority": self.inner.authority,
            "token_endpoint": d.token_endpoint(),
            "identity_endpoint": self.inner.identity_endpoint,
            "oidc_issuer": d.oidc_issuer,
            "ca_file": CA_PATH,
            "app": {
                "name": "drscript-sandbox",
                "client_id": CLIENT_ID,
                "object_id": APP_OBJECT_ID,
                "client_secret_file": CLIENT_SECRET_PATH,
                "client_certificate_file": CLIENT_CERT_PATH,
                "federated_credential": {"issuer": d.oidc_issuer, "subject": FEDERATED_SUBJECT, "audience": FEDERATED_AUDIENCE},
                "federated_token_file": FEDERATED_TOKEN_PATH,
            },
            "managed_identity": {
                "client_id": MANAGED_IDENTITY_CLIENT_ID,
                "object_id": MANAGED_IDENTITY_OBJECT_ID,
                "identity_header_file": IDENTITY_HEADER_PATH,
            },
            "role_assignments": self.inner.roles.to_json(),
        })
    }
}

/// The emulator as a sandbox component (its state is served by the control endpoint).
pub struct EntraComponent(pub Entra);

impl crate::Component for EntraComponent {
    fn name(&self) -> &str {
        "entra"
    }
    fn config_sections(&self) -> Vec<String> {
        Vec::new()
    }
    fn status(&self) -> Value {
        self.0.status()
    }
}
