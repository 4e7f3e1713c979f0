//! Top-level sections beside the environments: Azure, storage accounts, DNS, databases, webhooks.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

use drscript_base::secret::SecretRef;

/// An enum a config key takes as a lower-case word: parsed when the file is read, so that an
/// unknown value is an error at its line (`dns.provider: must be one of ...`; the key is added
/// where the file is parsed).
macro_rules! config_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $text:literal,)+ }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
        #[serde(try_from = "String")]
        pub enum $name {
            $($(#[$vdoc])* $variant,)+
        }

        impl $name {
            /// The word the config file uses.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }
        }

        impl TryFrom<String> for $name {
            type Error = String;

            fn try_from(text: String) -> std::result::Result<Self, String> {
                match text.as_str() {
                    $($text => Ok($name::$variant),)+
                    _ => Err(format!("must be one of {} (not `{text}`)", [$($text),+].join(", "))),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

config_enum! {
    /// `[azure] auth`: where the tokens for Resource Manager and Entra-authorised storage come from.
    AzureAuth {
        /// The Azure CLI's login (`az login`).
        Cli = "cli",
        ManagedIdentity = "managed_identity",
        ServicePrincipal = "service_principal",
        /// An app registration's certificate (`client_certificate_file`).
        ClientCertificate = "client_certificate",
        /// AKS workload identity: a federated Kubernetes token (`federated_token_file`, or the
        /// `AZURE_FEDERATED_TOKEN_FILE` the webhook sets) exchanged for an Entra token.
        WorkloadIdentity = "workload_identity",
        /// The first that answers of: the environment (`AZURE_*` or this section's service
        /// principal), workload identity, managed identity, the Azure CLI.
        Chain = "chain",
        /// A bearer token from `token_env`/`token_file` (emulators and tests).
        StaticToken = "static_token",
    }
}

config_enum! {
    /// A share's `auth`: how its requests are authorised (by default, by the secret it names).
    ShareAuth {
        /// `sas_env`/`sas_file`.
        Sas = "sas",
        /// `account_key_env`/`account_key_file` (Shared Key).
        AccountKey = "account_key",
        /// A Microsoft Entra ID token from the `[azure]` credential (`x-ms-file-request-intent:
        /// backup` on Azure Files): for accounts that refuse keys (`allowSharedKeyAccess=false`).
        Entra = "entra",
    }
}

config_enum! {
    /// `[dns] provider`: where the records live.
    DnsProvider {
        Azure = "azure",
        AzurePrivate = "azure_private",
        Rfc2136 = "rfc2136",
        /// The sandbox's zone file.
        Sandbox = "sandbox",
    }
}

config_enum! {
    /// `[databases.NAME] probe`: what `db_probe` does once connected.
    Probe {
        /// Write and read back inside a transaction that is rolled back.
        Rollback = "rollback",
        /// Write, read back and delete a row of the table `drscript_probe` (created if missing).
        ScratchTable = "scratch_table",
        /// Connect and read only: for replicas, where a write is expected to fail.
        Read = "read",
    }
}

config_enum! {
    /// `[[notify]] kind`: the JSON a webhook accepts.
    WebhookKind {
        Generic = "generic",
        Teams = "teams",
        Slack = "slack",
    }
}

/// `[azure]`: how to authenticate to Azure Resource Manager.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Azure {
    #[serde(default = "default_azure_auth")]
    pub auth: AzureAuth,
    pub tenant_id: Option<String>,
    pub client_id: Option<String>,
    pub client_secret_env: Option<String>,
    pub client_secret_file: Option<PathBuf>,
    /// Resource Manager endpoint; the public cloud when absent (the sandbox sets its own).
    pub resource_manager: Option<String>,
    /// Microsoft Entra authority (`https://login.microsoftonline.us`) for `service_principal`;
    /// derived from `resource_manager` for the public, US Government and China clouds.
    pub authority: Option<String>,
    /// A static bearer token for emulators and tests.
    pub token_env: Option<String>,
    pub token_file: Option<PathBuf>,
    /// `client_certificate`: the app's certificate with its RSA private key, PEM (what
    /// `az ad sp create-for-rbac --create-cert` writes).
    pub client_certificate_file: Option<PathBuf>,
    /// `workload_identity`: the Kubernetes service account token (`AZURE_FEDERATED_TOKEN_FILE` when
    /// absent).
    pub federated_token_file: Option<PathBuf>,
    /// Certificate authorities (PEM) trusted besides the system's for the authority, Resource
    /// Manager and storage: a TLS-inspecting proxy's, an emulator's.
    pub ca_file: Option<PathBuf>,
    /// The certificates of `ca_file`, read when the config is.
    #[serde(skip)]
    pub extra_roots: Option<std::sync::Arc<[u8]>>,
    #[serde(skip)]
    pub client_secret: Option<SecretRef>,
    #[serde(skip)]
    pub token: Option<SecretRef>,
}

fn default_azure_auth() -> AzureAuth {
    AzureAuth::Cli
}

impl Default for Azure {
    /// What an `[azure]` section with no keys means.
    fn default() -> Azure {
        toml::from_str("").expect("every key of [azure] is optional")
    }
}

/// `[storage.NAME]`: a storage account that can be failed over.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageAccount {
    pub subscription: String,
    pub resource_group: String,
    pub account: String,
}

/// `[dns]`: the provider and the records with one target per role.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dns {
    pub provider: DnsProvider,
    /// rfc2136: the primary server, `host:port`.
    pub server: Option<String>,
    pub tsig_key_name: Option<String>,
    pub tsig_algorithm: Option<String>,
    pub tsig_secret_env: Option<String>,
    pub tsig_secret_file: Option<PathBuf>,
    /// azure / azure_private: where the zones live.
    pub subscription: Option<String>,
    pub resource_group: Option<String>,
    /// sandbox: the zone file that the sandbox serves.
    pub zone_file: Option<PathBuf>,
    /// The resolvers clients use (`host[:port]`, port 53 by default): after a switch, the
    /// runbooks wait until they answer the new value (`wait_resolvers`).
    #[serde(default)]
    pub resolvers: Vec<String>,
    /// The longest wait for the resolvers; default the record's TTL plus 10 s.
    pub resolver_wait_secs: Option<u64>,
    #[serde(default)]
    pub records: BTreeMap<String, DnsRecord>,
    #[serde(skip)]
    pub tsig_secret: Option<SecretRef>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DnsRecord {
    pub zone: String,
    pub name: String,
    #[serde(rename = "type", default = "default_record_type")]
    pub record_type: String,
    #[serde(default = "default_ttl")]
    pub ttl: u32,
    /// Target per role: `prod`/`dr`, `primary`/`sync`, ...
    pub targets: BTreeMap<String, String>,
}

fn default_record_type() -> String {
    "A".to_string()
}

fn default_ttl() -> u32 {
    300
}

/// `[databases.NAME]`: a database that `db_probe` can check.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Database {
    /// `postgres://user@host:port/db` or `mysql://user@host:port/db`, without a password.
    pub url: String,
    pub password_env: Option<String>,
    pub password_file: Option<PathBuf>,
    #[serde(default = "default_probe")]
    pub probe: Probe,
    #[serde(default = "default_db_timeout")]
    pub timeout_secs: u64,
    /// `disable`, `prefer`, `require`, `verify-ca` or `verify-full` (see `db::tls`); else the
    /// URL's `sslmode`/`ssl-mode`, else `require` (`prefer` for a loopback host).
    pub tls: Option<String>,
    /// PEM bundle of the CAs that sign the server's certificate (instead of the system's).
    pub ca_file: Option<PathBuf>,
    #[serde(skip)]
    pub password: Option<SecretRef>,
}

fn default_probe() -> Probe {
    Probe::Rollback
}

fn default_db_timeout() -> u64 {
    10
}

/// `[[notify]]`: a webhook that `notify` posts to.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Webhook {
    pub name: String,
    #[serde(default = "default_webhook_kind")]
    pub kind: WebhookKind,
    /// Webhook URLs embed their credentials, so they are secrets too.
    pub url_env: Option<String>,
    pub url_file: Option<PathBuf>,
    /// The run events the engine posts here (`started`, `manual`, `stopped`, `interrupted`,
    /// `failed`, `refused`, `finished`); all when absent, none with `[]` (then only the script's
    /// `notify`).
    pub events: Option<Vec<String>>,
    #[serde(skip)]
    pub url: Option<SecretRef>,
}

fn default_webhook_kind() -> WebhookKind {
    WebhookKind::Generic
}
