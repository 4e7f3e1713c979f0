//! Bearer tokens for Azure Resource Manager, from the source `[azure] auth` names.
//!
//! `cli`, `managed_identity` and `service_principal` go through `azure_identity` so that drscript
//! authenticates exactly as the Azure SDKs do; `static_token` reads a token from a secret and
//! exists for the sandbox's emulator and tests. Every token is registered with the redaction
//! layer the moment it is obtained, so it cannot surface in logs, errors or journals.

use std::sync::Arc;

use azure_core::credentials::{Secret, TokenCredential};
use azure_identity::{
    AzureCliCredential, ClientSecretCredential, ManagedIdentityCredential, ManagedIdentityCredentialOptions,
    UserAssignedId,
};

use crate::config::Azure;
use crate::error::{Error, Result};
use crate::redact;
use crate::secret::SecretRef;

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
        match azure.auth.as_str() {
            "static_token" => azure
                .token
                .clone()
                .map(Credential::Static)
                .ok_or_else(|| config_error("auth = \"static_token\" needs token_env or token_file".into())),
            "cli" => Ok(Credential::Identity {
                kind: "cli".into(),
                credential: AzureCliCredential::new(None).map_err(sdk_error)?,
            }),
            "managed_identity" => {
                let options = ManagedIdentityCredentialOptions {
                    user_assigned_id: azure.client_id.clone().map(UserAssignedId::ClientId),
                    ..Default::default()
                };
                Ok(Credential::Identity {
                    kind: "managed_identity".into(),
                    credential: ManagedIdentityCredential::new(Some(options)).map_err(sdk_error)?,
                })
            }
            "service_principal" => {
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
                Ok(Credential::Identity {
                    kind: "service_principal".into(),
                    credential: ClientSecretCredential::new(tenant, client, Secret::from(value), None)
                        .map_err(sdk_error)?,
                })
            }
            other => Err(config_error(format!("auth `{other}` is not supported"))),
        }
    }

    /// Reads the secrets this config's credential needs through `exec`, so that a rehearsal or
    /// a plan finds a missing one before anything runs.
    pub fn check_secrets(exec: &crate::exec::Exec, azure: &Azure) -> Result<()> {
        match azure.auth.as_str() {
            "static_token" => azure.token.as_ref().map(|t| exec.secret(t)).transpose().map(drop),
            "service_principal" => azure.client_secret.as_ref().map(|t| exec.secret(t)).transpose().map(drop),
            _ => Ok(()),
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
