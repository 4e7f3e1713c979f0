//! Bearer tokens for Azure Resource Manager and for storage authorised by Entra ID, from the
//! source `[azure] auth` names.
//!
//! Every source but `static_token` goes through `azure_identity`, so that drscript authenticates
//! exactly as the Azure SDKs do; `static_token` reads a token from a secret and exists for the
//! sandbox's emulator and tests. `chain` tries the sources an operator on a laptop, a CI runner or
//! an AKS pod has, in the order of the Azure SDKs' default credential (environment, workload
//! identity, managed identity, Azure CLI), and remembers which one answered: `drscript status`
//! names it. Every token is registered with the redaction layer the moment it is obtained, so it
//! cannot surface in logs, errors or journals.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use azure_core::cloud::{CloudConfiguration, CustomConfiguration};
use azure_core::credentials::{AccessToken, Secret, TokenCredential, TokenRequestOptions};
use azure_core::http::{ClientOptions, Transport};
use azure_identity::{
    AzureCliCredential, ClientAssertionCredential, ClientAssertionCredentialOptions, ClientSecretCredential,
    ClientSecretCredentialOptions, ManagedIdentityCredential, ManagedIdentityCredentialOptions, UserAssignedId,
    WorkloadIdentityCredential, WorkloadIdentityCredentialOptions,
};

use crate::config::{Azure, AzureAuth};
use drscript_base::error::{Error, Result};
use drscript_base::redact;
use drscript_base::secret::SecretRef;

/// The Entra ID authority of each cloud, by the host of its Resource Manager endpoint.
const CLOUDS: &[(&str, &str)] = &[
    ("management.azure.com", "https://login.microsoftonline.com"),
    ("management.usgovcloudapi.net", "https://login.microsoftonline.us"),
    ("management.chinacloudapi.cn", "https://login.chinacloudapi.cn"),
];

/// How long the chain waits for the instance metadata service before it decides this machine
/// has no managed identity (the Azure SDKs' default credential probes the same way).
const IMDS_PROBE: Duration = Duration::from_secs(1);
const IMDS: &str = "169.254.169.254:80";

/// Where a service principal gets its tokens: `[azure] authority` when set, else the authority
/// of the cloud whose Resource Manager `resource_manager` names. A token from the public
/// cloud's authority is worthless to Azure Government or Azure China, and the failure it causes
/// ("invalid tenant" or a 401 at Resource Manager) says nothing about the cloud.
pub fn authority(azure: &Azure) -> Result<String> {
    let config_error = |message: String| Error::Config { message: format!("[azure]: {message}") };
    if let Some(authority) = &azure.authority {
        let authority = authority.trim().trim_end_matches('/');
        return match url::Url::parse(authority) {
            Ok(u) if u.scheme() == "https" && u.host_str().is_some() => Ok(authority.to_string()),
            _ => Err(config_error(format!("`authority` must be an https:// URL, not \"{authority}\""))),
        };
    }
    let Some(rm) = &azure.resource_manager else { return Ok(CLOUDS[0].1.to_string()) };
    let host = url::Url::parse(rm).ok().and_then(|u| u.host_str().map(str::to_ascii_lowercase)).unwrap_or_default();
    if let Some((_, authority)) = CLOUDS.iter().find(|(h, _)| *h == host) {
        return Ok(authority.to_string());
    }
    if host.starts_with("management.") {
        return Err(config_error(format!(
            "`resource_manager` {rm} is not a cloud drscript knows the sign-in authority of: set `authority` \
             (e.g. \"https://login.microsoftonline.us\")"
        )));
    }
    // An emulator (the sandbox, tests) takes static tokens; the public authority is a harmless default.
    Ok(CLOUDS[0].1.to_string())
}

/// Where tokens come from: a static secret, or one or more `azure_identity` sources.
#[derive(Clone)]
pub enum Credential {
    Static(SecretRef),
    Identity(Arc<Chain>),
}

/// `azure_identity` sources tried in order; a chain of one is a single source.
pub struct Chain {
    links: Vec<Link>,
    /// The link that last gave a token: asked first from then on.
    answered: Mutex<Option<usize>>,
}

struct Link {
    kind: &'static str,
    /// The source, or why this machine does not have it (nothing configured, nothing installed).
    source: std::result::Result<Arc<dyn TokenCredential>, String>,
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credential({})", self.describe())
    }
}

/// What the `azure_identity` sources share: the cloud's authority (unless the environment names
/// one, as AKS's workload identity webhook does with `AZURE_AUTHORITY_HOST`) and an HTTP client
/// trusting `ca_file`.
fn client_options(azure: &Azure) -> Result<ClientOptions> {
    let mut options = ClientOptions::default();
    if azure.authority.is_some() || std::env::var_os("AZURE_AUTHORITY_HOST").is_none() {
        let mut cloud = CustomConfiguration::default();
        cloud.authority_host = authority(azure)?;
        options.cloud = Some(Arc::new(CloudConfiguration::from(cloud)));
    }
    if let Some(pem) = &azure.extra_roots {
        let http = reqwest::Client::builder().connect_timeout(Duration::from_secs(10)).timeout(Duration::from_secs(60));
        let http = drscript_sync::http::trusting(http, Some(pem))
            .build()
            .map_err(|e| config_error(format!("ca_file: {}", drscript_base::error::chain(&e))))?;
        options.transport = Some(Transport::new(Arc::new(http)));
    }
    Ok(options)
}

fn config_error(message: String) -> Error {
    Error::Config { message: format!("[azure]: {message}") }
}

fn sdk_error(e: azure_core::Error) -> String {
    redact::redacted(drscript_base::error::chain(&e))
}

/// A key: the config's value, else the environment variable the Azure SDKs read.
fn setting(value: &Option<String>, var: &str) -> Option<String> {
    value.clone().or_else(|| std::env::var(var).ok()).filter(|v| !v.trim().is_empty())
}

fn client_secret(
    azure: &Azure,
    tenant: String,
    client: String,
    secret: String,
) -> std::result::Result<Arc<dyn TokenCredential>, String> {
    let options = ClientSecretCredentialOptions { client_options: client_options(azure).map_err(|e| e.to_string())? };
    Ok(ClientSecretCredential::new(&tenant, client, Secret::from(secret), Some(options)).map_err(sdk_error)?)
}

/// An app's certificate (PEM: the certificate and its RSA key) as a client assertion.
fn client_certificate(
    azure: &Azure,
    tenant: String,
    client: String,
    path: &std::path::Path,
) -> std::result::Result<Arc<dyn TokenCredential>, String> {
    let pem = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let options = client_options(azure).map_err(|e| e.to_string())?;
    let authority = match (&options.cloud, std::env::var("AZURE_AUTHORITY_HOST")) {
        (None, Ok(host)) => host,
        _ => authority(azure).map_err(|e| e.to_string())?,
    };
    let endpoint = format!("{}/{tenant}/oauth2/v2.0/token", authority.trim_end_matches('/'));
    let assertion = super::certificate::CertificateAssertion::from_pem(&pem, &client, &endpoint)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let options = ClientAssertionCredentialOptions { client_options: options };
    Ok(ClientAssertionCredential::new(tenant, client, assertion, Some(options)).map_err(sdk_error)?)
}

fn workload_identity(azure: &Azure) -> std::result::Result<Arc<dyn TokenCredential>, String> {
    let options = WorkloadIdentityCredentialOptions {
        credential_options: ClientAssertionCredentialOptions {
            client_options: client_options(azure).map_err(|e| e.to_string())?,
        },
        client_id: azure.client_id.clone(),
        tenant_id: azure.tenant_id.clone(),
        token_file_path: azure.federated_token_file.clone(),
    };
    Ok(WorkloadIdentityCredential::new(Some(options)).map_err(sdk_error)?)
}

fn managed_identity(azure: &Azure) -> std::result::Result<Arc<dyn TokenCredential>, String> {
    let options = ManagedIdentityCredentialOptions {
        user_assigned_id: azure.client_id.clone().map(UserAssignedId::ClientId),
        client_options: client_options(azure).map_err(|e| e.to_string())?,
    };
    Ok(ManagedIdentityCredential::new(Some(options)).map_err(sdk_error)?)
}

fn cli() -> std::result::Result<Arc<dyn TokenCredential>, String> {
    Ok(AzureCliCredential::new(None).map_err(sdk_error)?)
}

/// The chain's first source: a service principal from this section (`client_secret_*`,
/// `client_certificate_file`) or from the variables the Azure SDKs' environment credential reads.
fn environment(azure: &Azure) -> std::result::Result<Arc<dyn TokenCredential>, String> {
    let tenant = setting(&azure.tenant_id, "AZURE_TENANT_ID");
    let client = setting(&azure.client_id, "AZURE_CLIENT_ID");
    let secret = match &azure.client_secret {
        Some(s) => Some(s.resolve().map_err(|e| e.to_string())?),
        None => std::env::var("AZURE_CLIENT_SECRET").ok(),
    };
    let certificate = azure
        .client_certificate_file
        .clone()
        .or_else(|| std::env::var_os("AZURE_CLIENT_CERTIFICATE_PATH").map(Into::into));
    match (tenant, client, secret, certificate) {
        (Some(t), Some(c), Some(s), _) => client_secret(azure, t, c, s),
        (Some(t), Some(c), None, Some(path)) => client_certificate(azure, t, c, &path),
        _ => {
            Err("not configured (a tenant, a client id and AZURE_CLIENT_SECRET or AZURE_CLIENT_CERTIFICATE_PATH)"
                .into())
        }
    }
}

/// Managed identity in a chain: asked only where one can exist (App Service's or Arc's
/// `IDENTITY_ENDPOINT`, or an instance metadata service that accepts a connection within
/// [`IMDS_PROBE`]); elsewhere a request to the metadata address would hang until its timeout.
#[derive(Debug)]
struct Probed(Arc<dyn TokenCredential>);

#[async_trait::async_trait]
impl TokenCredential for Probed {
    async fn get_token(
        &self,
        scopes: &[&str],
        options: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        if std::env::var_os("IDENTITY_ENDPOINT").is_none()
            && !matches!(tokio::time::timeout(IMDS_PROBE, tokio::net::TcpStream::connect(IMDS)).await, Ok(Ok(_)))
        {
            return Err(azure_core::Error::with_message(
                azure_core::error::ErrorKind::Credential,
                format!("no managed identity here (no IDENTITY_ENDPOINT, no metadata service at {IMDS} within 1 s)"),
            ));
        }
        self.0.get_token(scopes, options).await
    }
}

impl Credential {
    pub fn from_config(azure: &Azure) -> Result<Credential> {
        let one = |kind: &'static str, source: std::result::Result<Arc<dyn TokenCredential>, String>| {
            source.map_err(config_error).map(|source| Credential::chain(vec![Link { kind, source: Ok(source) }]))
        };
        let needs = |value: &Option<String>, var: &str, key: &str| {
            setting(value, var).ok_or_else(|| config_error(format!("auth = \"{}\" needs {key} (or {var})", azure.auth)))
        };
        match azure.auth {
            AzureAuth::StaticToken => azure
                .token
                .clone()
                .map(Credential::Static)
                .ok_or_else(|| config_error("auth = \"static_token\" needs token_env or token_file".into())),
            AzureAuth::Cli => one("cli", cli()),
            AzureAuth::ManagedIdentity => one("managed_identity", managed_identity(azure)),
            AzureAuth::WorkloadIdentity => {
                if azure.federated_token_file.is_none() && std::env::var_os("AZURE_FEDERATED_TOKEN_FILE").is_none() {
                    return Err(config_error(
                        "auth = \"workload_identity\" needs federated_token_file (or AZURE_FEDERATED_TOKEN_FILE)"
                            .into(),
                    ));
                }
                needs(&azure.tenant_id, "AZURE_TENANT_ID", "tenant_id")?;
                needs(&azure.client_id, "AZURE_CLIENT_ID", "client_id")?;
                one("workload_identity", workload_identity(azure))
            }
            AzureAuth::ServicePrincipal => {
                let tenant = azure
                    .tenant_id
                    .clone()
                    .ok_or_else(|| config_error("auth = \"service_principal\" needs tenant_id".into()))?;
                let client = azure
                    .client_id
                    .clone()
                    .ok_or_else(|| config_error("auth = \"service_principal\" needs client_id".into()))?;
                let secret = azure.client_secret.as_ref().ok_or_else(|| {
                    config_error("auth = \"service_principal\" needs client_secret_env or client_secret_file".into())
                })?;
                one("service_principal", client_secret(azure, tenant, client, secret.resolve()?))
            }
            AzureAuth::ClientCertificate => {
                let tenant = needs(&azure.tenant_id, "AZURE_TENANT_ID", "tenant_id")?;
                let client = needs(&azure.client_id, "AZURE_CLIENT_ID", "client_id")?;
                let path = azure.client_certificate_file.as_ref().ok_or_else(|| {
                    config_error("auth = \"client_certificate\" needs client_certificate_file".into())
                })?;
                one("client_certificate", client_certificate(azure, tenant, client, path))
            }
            AzureAuth::Chain => {
                let workload = if azure.federated_token_file.is_some()
                    || std::env::var_os("AZURE_FEDERATED_TOKEN_FILE").is_some()
                {
                    workload_identity(azure)
                } else {
                    Err("not configured (no federated_token_file, no AZURE_FEDERATED_TOKEN_FILE)".into())
                };
                let managed = managed_identity(azure).map(|m| Arc::new(Probed(m)) as Arc<dyn TokenCredential>);
                Ok(Credential::chain(vec![
                    Link { kind: "environment", source: environment(azure) },
                    Link { kind: "workload_identity", source: workload },
                    Link { kind: "managed_identity", source: managed },
                    Link { kind: "cli", source: cli() },
                ]))
            }
        }
    }

    fn chain(links: Vec<Link>) -> Credential {
        Credential::Identity(Arc::new(Chain { links, answered: Mutex::new(None) }))
    }

    /// Reads the secrets and files this config's credential needs through `exec`, so that a
    /// rehearsal or a plan finds a missing one before anything runs.
    pub fn check_secrets(exec: &crate::exec::Exec, azure: &Azure) -> Result<()> {
        let secret = match azure.auth {
            AzureAuth::StaticToken => azure.token.as_ref(),
            AzureAuth::ServicePrincipal => azure.client_secret.as_ref(),
            AzureAuth::Cli
            | AzureAuth::ManagedIdentity
            | AzureAuth::WorkloadIdentity
            | AzureAuth::ClientCertificate
            | AzureAuth::Chain => None,
        };
        secret.map(|t| exec.secret(t)).transpose()?;
        let files = match azure.auth {
            AzureAuth::WorkloadIdentity => vec![("federated_token_file", &azure.federated_token_file)],
            AzureAuth::ClientCertificate => vec![("client_certificate_file", &azure.client_certificate_file)],
            _ => Vec::new(),
        };
        for (key, path) in files {
            if let Some(path) = path
                && let Err(e) = std::fs::metadata(path)
            {
                return Err(Error::Secret(format!("azure.{key}: cannot read {}: {e}", path.display())));
            }
        }
        Ok(())
    }

    /// The source, and for a chain the one that answered last (`None` before any token).
    pub fn describe(&self) -> String {
        match self {
            Credential::Static(secret) => format!("static token from {}", secret.describe()),
            Credential::Identity(chain) if chain.links.len() == 1 => chain.links[0].kind.to_string(),
            Credential::Identity(chain) => match chain.answered() {
                Some(kind) => format!("chain: {kind} answered"),
                None => "chain (environment, workload_identity, managed_identity, cli)".to_string(),
            },
        }
    }

    /// A bearer token for `resource` (e.g. `https://management.azure.com`).
    pub async fn token(&self, resource: &str) -> Result<String> {
        let scope = format!("{}/.default", resource.trim_end_matches('/'));
        match self {
            Credential::Static(secret) => secret.resolve(),
            Credential::Identity(chain) => {
                chain.get_token(&[scope.as_str()], None).await.map(|t| t.token.secret().to_string()).map_err(|e| {
                    Error::action("azure", format!("token for {resource} ({})", self.describe()), sdk_error(e))
                })
            }
        }
    }
}

/// The `[azure]` credential, made on first use and shared by Resource Manager and the
/// Entra-authorised shares, so that one token cache serves them all and `status` can name the
/// source that answered. Making it may read a secret; a command that never talks to Azure never
/// does.
#[derive(Clone, Default)]
pub struct LazyCredential {
    azure: Option<Arc<Azure>>,
    made: Arc<std::sync::OnceLock<std::result::Result<Credential, String>>>,
}

impl std::fmt::Debug for LazyCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.made.get() {
            Some(Ok(c)) => c.fmt(f),
            _ => f.write_str("Credential(not made yet)"),
        }
    }
}

impl LazyCredential {
    /// The credential of `azure` (an empty `[azure]` when the config has none).
    pub fn new(azure: Option<&Azure>) -> LazyCredential {
        LazyCredential { azure: Some(Arc::new(azure.cloned().unwrap_or_default())), made: Default::default() }
    }

    pub fn get(&self) -> Result<Credential> {
        let azure = self.azure.clone().unwrap_or_default();
        self.made
            .get_or_init(|| Credential::from_config(&azure).map_err(|e| e.to_string()))
            .clone()
            .map_err(|message| Error::Config { message })
    }

    /// What answered so far: `None` when nothing asked Azure for a token.
    pub fn used(&self) -> Option<String> {
        match self.made.get()? {
            Ok(c @ Credential::Identity(chain)) if chain.answered().is_some() => Some(c.describe()),
            Ok(c @ Credential::Static(_)) => Some(c.describe()),
            _ => None,
        }
    }
}

impl Chain {
    /// The kind of the link that gave the last token.
    pub fn answered(&self) -> Option<&'static str> {
        let answered = *self.answered.lock().unwrap_or_else(|e| e.into_inner());
        answered.map(|i| self.links[i].kind)
    }
}

impl std::fmt::Debug for Chain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.links.iter().map(|l| l.kind)).finish()
    }
}

#[async_trait::async_trait]
impl TokenCredential for Chain {
    async fn get_token(
        &self,
        scopes: &[&str],
        options: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        let first = *self.answered.lock().unwrap_or_else(|e| e.into_inner());
        let order = first.into_iter().chain((0..self.links.len()).filter(|i| Some(*i) != first));
        let mut failures = Vec::new();
        for i in order {
            let link = &self.links[i];
            let source = match &link.source {
                Ok(source) => source,
                Err(why) => {
                    failures.push(format!("{}: {why}", link.kind));
                    continue;
                }
            };
            match source.get_token(scopes, options.clone()).await {
                Ok(token) => {
                    redact::register(token.token.secret());
                    *self.answered.lock().unwrap_or_else(|e| e.into_inner()) = Some(i);
                    return Ok(token);
                }
                Err(e) => failures.push(format!("{}: {}", link.kind, sdk_error(e))),
            }
        }
        let message = if self.links.len() == 1 {
            failures.join("")
        } else {
            format!("no source of the chain gave a token: {}", failures.join("; "))
        };
        Err(azure_core::Error::with_message(azure_core::error::ErrorKind::Credential, message))
    }
}

/// Storage clients ask for their tokens through this (the scope is theirs); a static token is
/// handed out as it is, valid for an hour as far as the client knows.
#[async_trait::async_trait]
impl TokenCredential for Credential {
    async fn get_token(
        &self,
        scopes: &[&str],
        options: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        match self {
            Credential::Static(secret) => {
                let token = secret.resolve().map_err(|e| {
                    azure_core::Error::with_message(azure_core::error::ErrorKind::Credential, e.to_string())
                })?;
                let expires = azure_core::time::OffsetDateTime::now_utc() + azure_core::time::Duration::hours(1);
                Ok(AccessToken::new(token, expires))
            }
            Credential::Identity(chain) => chain.get_token(scopes, options).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A source that answers with `token`, or refuses.
    #[derive(Debug)]
    struct Source(Option<&'static str>);

    #[async_trait::async_trait]
    impl TokenCredential for Source {
        async fn get_token(&self, _: &[&str], _: Option<TokenRequestOptions<'_>>) -> azure_core::Result<AccessToken> {
            match self.0 {
                Some(t) => Ok(AccessToken::new(t, azure_core::time::OffsetDateTime::now_utc())),
                None => Err(azure_core::Error::with_message(azure_core::error::ErrorKind::Credential, "refused")),
            }
        }
    }

    fn link(kind: &'static str, source: std::result::Result<Option<&'static str>, &str>) -> Link {
        Link { kind, source: source.map(|t| Arc::new(Source(t)) as Arc<dyn TokenCredential>).map_err(str::to_string) }
    }

    #[tokio::test]
    async fn the_chain_takes_the_first_source_that_answers_and_names_it() {
        let credential = Credential::chain(vec![
            link("environment", Err("not configured")),
            link("workload_identity", Ok(None)),
            link("managed_identity", Ok(Some("token-from-mi-7f3a"))),
            link("cli", Ok(Some("token-from-cli"))),
        ]);
        assert_eq!(credential.describe(), "chain (environment, workload_identity, managed_identity, cli)");
        assert_eq!(credential.token("https://storage.azure.com").await.unwrap(), "token-from-mi-7f3a");
        assert_eq!(credential.describe(), "chain: managed_identity answered");
        assert_eq!(redact::redacted("got token-from-mi-7f3a"), "got ***", "a token is masked once obtained");
    }

    #[tokio::test]
    async fn a_chain_that_gets_no_token_says_why_each_source_failed() {
        let credential = Credential::chain(vec![link("environment", Err("not configured")), link("cli", Ok(None))]);
        let e = credential.token("https://management.azure.com").await.unwrap_err().to_string();
        assert!(e.contains("no source of the chain gave a token"), "{e}");
        assert!(e.contains("environment: not configured") && e.contains("cli: refused"), "{e}");
        assert!(e.contains("https://management.azure.com"), "{e}");
    }

    fn azure(resource_manager: Option<&str>, authority: Option<&str>) -> Azure {
        let toml = format!(
            "auth = \"service_principal\"\n{}{}",
            resource_manager.map(|r| format!("resource_manager = \"{r}\"\n")).unwrap_or_default(),
            authority.map(|a| format!("authority = \"{a}\"\n")).unwrap_or_default()
        );
        toml::from_str(&toml).unwrap()
    }

    #[test]
    fn the_authority_follows_the_cloud_of_resource_manager() {
        for (rm, expected) in [
            (None, "https://login.microsoftonline.com"),
            (Some("https://management.azure.com"), "https://login.microsoftonline.com"),
            (Some("https://management.usgovcloudapi.net/"), "https://login.microsoftonline.us"),
            (Some("https://management.chinacloudapi.cn"), "https://login.chinacloudapi.cn"),
            (Some("http://127.0.0.1:8443"), "https://login.microsoftonline.com"),
        ] {
            assert_eq!(authority(&azure(rm, None)).unwrap(), expected, "{rm:?}");
        }
        let set = azure(Some("https://management.usgovcloudapi.net"), Some("https://login.example.test/"));
        assert_eq!(authority(&set).unwrap(), "https://login.example.test", "the setting wins");
        let e = authority(&azure(Some("https://management.example.cloud"), None)).unwrap_err().to_string();
        assert!(e.contains("set `authority`"), "{e}");
        let e = authority(&azure(None, Some("http://login.example.test"))).unwrap_err().to_string();
        assert!(e.contains("[azure]") && e.contains("https://"), "{e}");
    }
}
