//! Bearer tokens for Azure Resource Manager, from the source `[azure] auth` names.
//!
//! `cli`, `managed_identity` and `service_principal` go through `azure_identity` so that drscript
//! authenticates exactly as the Azure SDKs do; `static_token` reads a token from a secret and
//! exists for the sandbox's emulator and tests. Every token is registered with the redaction
//! layer the moment it is obtained, so it cannot surface in logs, errors or journals.

use std::sync::Arc;

use azure_core::cloud::{CloudConfiguration, CustomConfiguration};
use azure_core::credentials::{Secret, TokenCredential};
use azure_identity::{
    AzureCliCredential, ClientSecretCredential, ClientSecretCredentialOptions, ManagedIdentityCredential,
    ManagedIdentityCredentialOptions, UserAssignedId,
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

#[derive(Clone)]
pub enum Credential {
    Static(SecretRef),
    Identity { kind: String, credential: Arc<dyn TokenCredential> },
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credential({})", self.describe())
    }
}

impl Credential {
    pub fn from_config(azure: &Azure) -> Result<Credential> {
        let config_error = |message: String| Error::Config { message: format!("[azure]: {message}") };
        let sdk_error = |e: azure_core::Error| config_error(redact::redacted(e.to_string()));
        match azure.auth {
            AzureAuth::StaticToken => azure
                .token
                .clone()
                .map(Credential::Static)
                .ok_or_else(|| config_error("auth = \"static_token\" needs token_env or token_file".into())),
            AzureAuth::Cli => Ok(Credential::Identity {
                kind: "cli".into(),
                credential: AzureCliCredential::new(None).map_err(sdk_error)?,
            }),
            AzureAuth::ManagedIdentity => {
                let options = ManagedIdentityCredentialOptions {
                    user_assigned_id: azure.client_id.clone().map(UserAssignedId::ClientId),
                    ..Default::default()
                };
                Ok(Credential::Identity {
                    kind: "managed_identity".into(),
                    credential: ManagedIdentityCredential::new(Some(options)).map_err(sdk_error)?,
                })
            }
            AzureAuth::ServicePrincipal => {
                let tenant = azure
                    .tenant_id
                    .as_deref()
                    .ok_or_else(|| config_error("auth = \"service_principal\" needs tenant_id".into()))?;
                let client = azure
                    .client_id
                    .clone()
                    .ok_or_else(|| config_error("auth = \"service_principal\" needs client_id".into()))?;
                let secret = azure.client_secret.as_ref().ok_or_else(|| {
                    config_error("auth = \"service_principal\" needs client_secret_env or client_secret_file".into())
                })?;
                let value = secret.resolve()?;
                let mut cloud = CustomConfiguration::default();
                cloud.authority_host = authority(azure)?;
                let mut options = ClientSecretCredentialOptions::default();
                options.client_options.cloud = Some(Arc::new(CloudConfiguration::from(cloud)));
                Ok(Credential::Identity {
                    kind: "service_principal".into(),
                    credential: ClientSecretCredential::new(tenant, client, Secret::from(value), Some(options))
                        .map_err(sdk_error)?,
                })
            }
        }
    }

    /// Reads the secrets this config's credential needs through `exec`, so that a rehearsal or
    /// a plan finds a missing one before anything runs.
    pub fn check_secrets(exec: &crate::exec::Exec, azure: &Azure) -> Result<()> {
        match azure.auth {
            AzureAuth::StaticToken => azure.token.as_ref().map(|t| exec.secret(t)).transpose().map(drop),
            AzureAuth::ServicePrincipal => azure.client_secret.as_ref().map(|t| exec.secret(t)).transpose().map(drop),
            AzureAuth::Cli | AzureAuth::ManagedIdentity => Ok(()),
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Credential::Static(secret) => format!("static token from {}", secret.describe()),
            Credential::Identity { kind, .. } => kind.clone(),
        }
    }

    /// A bearer token for `resource` (e.g. `https://management.azure.com`).
    pub async fn token(&self, resource: &str) -> Result<String> {
        match self {
            Credential::Static(secret) => secret.resolve(),
            Credential::Identity { kind, credential } => {
                let scope = format!("{}/.default", resource.trim_end_matches('/'));
                let token = credential.get_token(&[scope.as_str()], None).await.map_err(|e| {
                    Error::action("azure", format!("token for {resource} ({kind})"), redact::redacted(e.to_string()))
                })?;
                let value = token.token.secret().to_string();
                redact::register(&value);
                Ok(value)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
