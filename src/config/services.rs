//! Top-level sections beside the environments: Azure, storage accounts, DNS, databases, webhooks.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

use crate::secret::SecretRef;

/// `[azure]`: how to authenticate to Azure Resource Manager.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Azure {
    /// `cli`, `managed_identity` or `service_principal`.
    #[serde(default = "default_azure_auth")]
    pub auth: String,
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
    #[serde(skip)]
    pub client_secret: Option<SecretRef>,
    #[serde(skip)]
    pub token: Option<SecretRef>,
}

fn default_azure_auth() -> String {
    "cli".to_string()
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
    /// `azure`, `azure_private`, `rfc2136` or `sandbox`.
    pub provider: String,
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
    /// `rollback` (a write in a transaction that is rolled back), `scratch_table` (a row written,
    /// read back and deleted in `drscript_probe`) or `read` (connect and read only, for replicas).
    #[serde(default = "default_probe")]
    pub probe: String,
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

fn default_probe() -> String {
    "rollback".to_string()
}

fn default_db_timeout() -> u64 {
    10
}

/// `[[notify]]`: a webhook that `notify` posts to.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Webhook {
    pub name: String,
    /// `generic`, `teams` or `slack`.
    #[serde(default = "default_webhook_kind")]
    pub kind: String,
    /// Webhook URLs embed their credentials, so they are secrets too.
    pub url_env: Option<String>,
    pub url_file: Option<PathBuf>,
    #[serde(skip)]
    pub url: Option<SecretRef>,
}

fn default_webhook_kind() -> String {
    "generic".to_string()
}
