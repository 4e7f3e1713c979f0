//! `drscript.toml`: environments and the services around them.
//!
//! Parsing is strict: an unknown key, a missing key or a wrong type is an error that names the
//! key, the file and the line. Secrets are never values in the file: a key ending in `_env` names
//! an environment variable and one ending in `_file` names a file; a plain-text secret is rejected
//! with a pointer to those forms. Nothing here touches the network or reads a secret's value.

mod environment;
mod services;

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::de::{DeTable, DeValue};

pub use environment::{Environment, GatewayAuth, Share};
pub use services::{
    Azure, AzureAuth, Database, Dns, DnsProvider, DnsRecord, Probe, ShareAuth, StorageAccount, Webhook, WebhookKind,
};

use drscript_base::diagnostic;
use drscript_base::error::{Error, Result};
use drscript_base::secret::SecretRef;

/// Keys whose value would be a secret written in plain text.
const PLAIN_SECRET_KEYS: &[&str] =
    &["password", "token", "secret", "sas", "client_secret", "account_key", "tsig_secret", "value", "api_key"];

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// A folder of `.rhai` modules that replaces the stdlib compiled into the binary.
    pub stdlib_dir: Option<PathBuf>,
    /// Where runs, journals and reports are kept (`./.drscript` by default).
    pub state_dir: Option<PathBuf>,
    /// The environment that serves in normal times (failover goes from it, failback to it).
    /// Default: `prod` when there is one, else the first environment by name.
    pub primary: Option<String>,
    /// The environment that takes over in a DR event. Default: `dr` when there is one, else the
    /// other environment when there are exactly two.
    pub standby: Option<String>,
}

/// Where the state is kept: this machine's state directory alone (`local`, the default) or, in
/// addition, a Blob container every operator's drscript reads and writes (`azure-blob`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StateBackend {
    #[default]
    Local,
    AzureBlob,
}

/// `[state]`: the shared lock, journals and run history (see `crate::shared`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SharedState {
    #[serde(default)]
    pub backend: StateBackend,
    /// `https://ACCOUNT.blob.core.windows.net/CONTAINER[/PREFIX]`; an account that survives the
    /// loss of either region (RA-GZRS, or one in a third region).
    pub url: Option<String>,
    pub sas_env: Option<String>,
    pub sas_file: Option<PathBuf>,
    pub account_key_env: Option<String>,
    pub account_key_file: Option<PathBuf>,
    /// How long the lock's lease lasts without renewal (15–60, default 60).
    pub lease_seconds: Option<u32>,
    /// `entra`: a token from `[azure]`'s credential ("Storage Blob Data Contributor" on the
    /// container) instead of a SAS or key.
    pub auth: Option<ShareAuth>,
    #[serde(skip)]
    pub sas: Option<SecretRef>,
    #[serde(skip)]
    pub account_key: Option<SecretRef>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub settings: Settings,
    pub environments: BTreeMap<String, Environment>,
    pub azure: Option<Azure>,
    /// `[azure]`'s credential, shared by Resource Manager and the Entra-authorised shares.
    #[serde(skip)]
    pub credential: crate::azure::LazyCredential,
    #[serde(default)]
    pub storage: BTreeMap<String, StorageAccount>,
    pub dns: Option<Dns>,
    #[serde(default)]
    pub databases: BTreeMap<String, Database>,
    #[serde(default)]
    pub notify: Vec<Webhook>,
    /// `[state]`: where the lock, the journals and the run history are shared.
    pub state: Option<SharedState>,
    #[serde(skip)]
    pub path: PathBuf,
    #[serde(skip)]
    pub source: String,
    /// The environments' names in the order the file lists them (the map above sorts them).
    #[serde(skip)]
    pub order: Vec<String>,
}

impl Config {
    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<Config> {
        let source = std::fs::read_to_string(path).map_err(|e| Error::Config {
            message: format!(
                "cannot read config {}: {e}\nhint: pass --config FILE, set DRSCRIPT_CONFIG, or run `drscript sandbox up` to get one",
                path.display()
            ),
        })?;
        Self::parse(path, &source)
    }

    /// Parses and validates config text; `path` is used for messages and relative paths.
    pub fn parse(path: &Path, source: &str) -> Result<Config> {
        let doc = DeTable::parse(source).map_err(|e| toml_error(path, source, &e))?;
        reject_plain_secrets(path, source, doc.get_ref(), &mut Vec::new())?;
        let mut config: Config = toml::from_str(source).map_err(|e| {
            // Name the key a value error is about (`databases.x.probe: must be one of ...`).
            let key = e.span().and_then(|span| key_path_at(doc.get_ref(), span.start));
            let message = match key {
                Some(key) if !e.message().starts_with(&key) => format!("{key}: {}", e.message().trim()),
                _ => e.message().trim().to_string(),
            };
            config_error(path, source, e.span(), &message)
        })?;
        config.path = path.to_path_buf();
        config.source = source.to_string();
        config.order = config.environments.keys().cloned().collect();
        config.order.sort_by_key(|name| span_of(source, &["environments", name]).map_or(usize::MAX, |s| s.start));
        // Absolute, so that paths in the config mean the same wherever they are used from.
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let base =
            if base.is_absolute() { base } else { std::env::current_dir().map(|cwd| cwd.join(&base)).unwrap_or(base) };
        config.validate(&base)?;
        Ok(config)
    }

    /// The environment called `name`, or an error that lists the known ones.
    pub fn environment(&self, name: &str) -> Result<&Environment> {
        self.environments.get(name).ok_or_else(|| Error::Config {
            message: format!(
                "unknown environment `{name}` (known: {}) in {}",
                self.environments.keys().cloned().collect::<Vec<_>>().join(", "),
                self.path.display()
            ),
        })
    }

    /// Whether the config says which side is the primary: `[settings] primary`/`standby`, or
    /// the document's names (`prod`). Without declared roles, `failover.rhai` and `failback.rhai`
    /// take the direction from the live state (the side that serves is the source).
    pub fn roles_declared(&self) -> bool {
        self.settings.primary.is_some() || self.settings.standby.is_some() || self.environments.contains_key("prod")
    }

    /// The primary environment (`[settings] primary`, else `prod`, else the first the file lists).
    pub fn primary(&self) -> &str {
        match &self.settings.primary {
            Some(name) => name,
            None if self.environments.contains_key("prod") => "prod",
            None => self.order.first().map_or("", String::as_str),
        }
    }

    /// The standby environment (`[settings] standby`, else `dr`, else the one that is not the
    /// primary); `None` when the config cannot say.
    pub fn standby(&self) -> Option<&str> {
        if let Some(name) = &self.settings.standby {
            return Some(name);
        }
        if self.environments.contains_key("dr") && self.primary() != "dr" {
            return Some("dr");
        }
        let mut others = self.order.iter().filter(|k| k.as_str() != self.primary());
        match (others.next(), others.next()) {
            (Some(one), None) => Some(one),
            _ => None,
        }
    }

    /// An error pointing at the key `path` of this file.
    pub fn error_at(&self, key_path: &[&str], message: &str) -> Error {
        let span = span_of(&self.source, key_path);
        config_error(&self.path, &self.source, span, &format!("{}: {message}", key_path.join(".")))
    }

    fn validate(&mut self, base: &Path) -> Result<()> {
        let names: Vec<String> = self.environments.keys().cloned().collect();
        if names.is_empty() {
            return Err(self.error_at(&["environments"], "at least one environment is required"));
        }
        let storage_names: Vec<String> = self.storage.keys().cloned().collect();
        let (path, source) = (self.path.clone(), self.source.clone());
        let err = |key: &[&str], msg: &str| {
            config_error(&path, &source, span_of(&source, key), &format!("{}: {msg}", key.join(".")))
        };
        for (key, role) in [("primary", &self.settings.primary), ("standby", &self.settings.standby)] {
            if let Some(name) = role
                && !names.contains(name)
            {
                return Err(err(&["settings", key], &format!("no environment `{name}` (known: {})", names.join(", "))));
            }
        }
        if self.settings.primary.is_some() && self.settings.primary == self.settings.standby {
            return Err(err(&["settings", "standby"], "must name another environment than `primary`"));
        }
        for (name, env) in &mut self.environments {
            validate_environment(&err, name, env, base, &storage_names)?;
        }
        if let Some(azure) = &mut self.azure {
            validate_azure(&err, azure, base)?;
        }
        self.attach_azure_credential();
        if let Some(state) = &mut self.state {
            validate_state(&err, state, base)?;
        }
        if let Some(dns) = &mut self.dns {
            validate_dns(&err, dns, base)?;
        }
        for (db_name, db) in &mut self.databases {
            validate_database(&err, db_name, db, base)?;
        }
        for (i, hook) in self.notify.iter_mut().enumerate() {
            let idx = i.to_string();
            let key = ["notify", idx.as_str()];
            hook.url =
                Some(required_secret(&key, "url", &hook.url_env, &hook.url_file, base).map_err(|m| err(&key, &m))?);
            if let Some(unknown) =
                hook.events.iter().flatten().find(|e| !crate::notify::RUN_EVENTS.contains(&e.as_str()))
            {
                return Err(err(
                    &["notify", idx.as_str(), "events"],
                    &format!("unknown event `{unknown}` (known: {})", crate::notify::RUN_EVENTS.join(", ")),
                ));
            }
        }
        if let Some(p) = self.settings.stdlib_dir.as_mut() {
            *p = base.join(&*p);
        }
        if let Some(p) = self.settings.state_dir.as_mut() {
            *p = base.join(&*p);
        }
        Ok(())
    }
}

/// `[environments.NAME]`: URLs, paths made absolute, the storage account known, the gateway's
/// and the shares' secrets resolvable.
fn validate_environment(
    err: &impl Fn(&[&str], &str) -> Error,
    name: &str,
    env: &mut Environment,
    base: &Path,
    storage_names: &[String],
) -> Result<()> {
    env.name = name.to_string();
    env.validate()?;
    let at = |k: &'static str| vec!["environments", name, k];
    check_url(&env.gateway).map_err(|m| err(&at("gateway"), &m))?;
    if let Some(p) = env.kubeconfig.as_mut() {
        *p = base.join(&*p);
    }
    if let Some(p) = env.gateway_ca_file.as_mut() {
        *p = base.join(&*p);
    }
    if let Some(account) = &env.storage_account
        && !storage_names.contains(account)
    {
        return Err(err(
            &at("storage_account"),
            &format!("no [storage.{account}] section (known: {})", storage_names.join(", ")),
        ));
    }
    let auth_key = ["environments", name, "gateway_auth"];
    match &env.gateway_auth {
        GatewayAuth::None => {}
        GatewayAuth::Basic { password_env, password_file, .. }
        | GatewayAuth::AdeptiaLogin { password_env, password_file, .. }
        | GatewayAuth::FormLogin { password_env, password_file, .. } => {
            required_secret(&auth_key, "password", password_env, password_file, base)
                .map_err(|m| err(&auth_key, &m))?;
        }
        GatewayAuth::Bearer { token_env, token_file } => {
            required_secret(&auth_key, "token", token_env, token_file, base).map_err(|m| err(&auth_key, &m))?;
        }
        GatewayAuth::Header { value_env, value_file, .. } => {
            required_secret(&auth_key, "value", value_env, value_file, base).map_err(|m| err(&auth_key, &m))?;
        }
    }
    // Secret files are relative to the config file, like every other path in it.
    match &mut env.gateway_auth {
        GatewayAuth::Basic { password_file: Some(p), .. }
        | GatewayAuth::AdeptiaLogin { password_file: Some(p), .. }
        | GatewayAuth::Bearer { token_file: Some(p), .. }
        | GatewayAuth::Header { value_file: Some(p), .. } => *p = base.join(&*p),
        _ => {}
    }
    for (share_name, share) in &mut env.shares {
        let key = ["environments", name, "shares", share_name];
        match (&mut share.path, &share.url) {
            (Some(p), None) => *p = base.join(&*p),
            (None, Some(u)) => {
                // `blob+http://` / `files+http://` say which service an emulator URL is.
                let plain = u
                    .split_once('+')
                    .filter(|(kind, _)| ["blob", "files"].contains(kind))
                    .map_or(u.as_str(), |(_, rest)| rest);
                check_url(plain).map_err(|m| err(&key, &m))?;
                if u.contains("sig=") {
                    return Err(err(
                        &key,
                        "the URL carries a SAS signature; a SAS is a secret: put it in sas_env or sas_file",
                    ));
                }
            }
            _ => return Err(err(&key, "needs exactly one of `path` or `url`")),
        }
        share.sas = optional_secret(&key, "sas", &share.sas_env, &share.sas_file, base).map_err(|m| err(&key, &m))?;
        share.account_key = optional_secret(&key, "account_key", &share.account_key_env, &share.account_key_file, base)
            .map_err(|m| err(&key, &m))?;
        let auth_key = ["environments", name, "shares", share_name, "auth"];
        match share.auth {
            Some(ShareAuth::Entra) if share.url.is_none() => {
                return Err(err(&auth_key, "\"entra\" authorises a `url` share (Azure Files or Blob), not a `path`"));
            }
            Some(ShareAuth::Entra)
                if !share
                    .url
                    .as_deref()
                    .is_some_and(|u| u.split("://").next().is_some_and(|s| s.ends_with("https"))) =>
            {
                return Err(err(&auth_key, "\"entra\" needs an https:// URL: Azure refuses a token over HTTP"));
            }
            Some(ShareAuth::Entra) if share.sas.is_some() || share.account_key.is_some() => {
                return Err(err(
                    &auth_key,
                    "\"entra\" uses the [azure] credential: remove the share's sas_* and account_key_* keys",
                ));
            }
            Some(ShareAuth::Sas) if share.sas.is_none() => {
                return Err(err(&auth_key, "\"sas\" needs `sas_env` or `sas_file`"));
            }
            Some(ShareAuth::AccountKey) if share.account_key.is_none() => {
                return Err(err(&auth_key, "\"account_key\" needs `account_key_env` or `account_key_file`"));
            }
            Some(ShareAuth::Sas) => share.account_key = None,
            Some(ShareAuth::AccountKey) => share.sas = None,
            _ => {}
        }
    }
    Ok(())
}

/// `[state]`: a container URL without a SAS in it, its credential a reference, a lease the
/// service accepts.
fn validate_state(err: &impl Fn(&[&str], &str) -> Error, state: &mut SharedState, base: &Path) -> Result<()> {
    let key = ["state"];
    match state.backend {
        StateBackend::Local => return Ok(()),
        StateBackend::AzureBlob => {}
    }
    let Some(url) = &state.url else {
        return Err(err(&key, "backend \"azure-blob\" needs `url` (https://ACCOUNT.blob.core.windows.net/CONTAINER)"));
    };
    if url.contains("sig=") {
        return Err(err(&key, "the URL carries a SAS signature; a SAS is a secret: put it in sas_env or sas_file"));
    }
    let plain = url.strip_prefix("blob+").unwrap_or(url);
    check_url(plain).map_err(|m| err(&key, &m))?;
    if let Some(seconds) = state.lease_seconds
        && !(15..=60).contains(&seconds)
    {
        return Err(err(&key, &format!("lease_seconds = {seconds}: Azure accepts leases of 15 to 60 seconds")));
    }
    state.sas = optional_secret(&key, "sas", &state.sas_env, &state.sas_file, base).map_err(|m| err(&key, &m))?;
    state.account_key = optional_secret(&key, "account_key", &state.account_key_env, &state.account_key_file, base)
        .map_err(|m| err(&key, &m))?;
    let entra = state.auth == Some(ShareAuth::Entra);
    if entra && (state.sas.is_some() || state.account_key.is_some()) {
        return Err(err(&["state", "auth"], "\"entra\" uses the [azure] credential: remove sas_* and account_key_*"));
    }
    if entra && !plain.starts_with("https://") {
        return Err(err(&["state", "auth"], "\"entra\" needs an https:// URL: Azure refuses a token over HTTP"));
    }
    if !entra && state.sas.is_none() && state.account_key.is_none() {
        return Err(err(
            &key,
            "needs a credential: sas_env, sas_file, account_key_env, account_key_file or auth = \"entra\"",
        ));
    }
    Ok(())
}

impl Config {
    /// Gives every `auth = "entra"` share the config's one `[azure]` credential (made on first
    /// use), and every remote share `[azure] ca_file`'s certificates.
    fn attach_azure_credential(&mut self) {
        self.credential = crate::azure::LazyCredential::new(self.azure.as_ref());
        let roots = self.azure.as_ref().and_then(|a| a.extra_roots.clone());
        for share in self.environments.values_mut().flat_map(|e| e.shares.values_mut()) {
            if share.auth == Some(ShareAuth::Entra) {
                share.entra = Some(self.credential.clone());
            }
            if share.url.is_some() {
                share.extra_roots = roots.clone();
            }
        }
    }
}

/// `[azure]`: its secrets resolvable, its Resource Manager a URL.
fn validate_azure(err: &impl Fn(&[&str], &str) -> Error, azure: &mut Azure, base: &Path) -> Result<()> {
    let key = ["azure"];
    azure.client_secret =
        optional_secret(&key, "client_secret", &azure.client_secret_env, &azure.client_secret_file, base)
            .map_err(|m| err(&key, &m))?;
    azure.token =
        optional_secret(&key, "token", &azure.token_env, &azure.token_file, base).map_err(|m| err(&key, &m))?;
    for p in
        [&mut azure.client_certificate_file, &mut azure.federated_token_file, &mut azure.ca_file].into_iter().flatten()
    {
        *p = base.join(&*p);
    }
    if let Some(path) = &azure.ca_file {
        let pem = std::fs::read(path)
            .map_err(|e| err(&["azure", "ca_file"], &format!("cannot read {}: {e}", path.display())))?;
        drscript_sync::http::certificates(&pem).map_err(|e| {
            err(&["azure", "ca_file"], &format!("{} is not a PEM bundle of certificates: {e}", path.display()))
        })?;
        azure.extra_roots = Some(pem.into());
    }
    if let Some(url) = &azure.resource_manager {
        check_url(url).map_err(|m| err(&["azure", "resource_manager"], &m))?;
    }
    Ok(())
}

/// `[dns]`: record types and targets, resolvers, and what the provider needs.
fn validate_dns(err: &impl Fn(&[&str], &str) -> Error, dns: &mut Dns, base: &Path) -> Result<()> {
    let key = ["dns"];
    dns.tsig_secret = optional_secret(&key, "tsig_secret", &dns.tsig_secret_env, &dns.tsig_secret_file, base)
        .map_err(|m| err(&key, &m))?;
    if let Some(p) = dns.zone_file.as_mut() {
        *p = base.join(&*p);
    }
    for (record_name, record) in &dns.records {
        let key = ["dns", "records", record_name.as_str()];
        if !["A", "AAAA", "CNAME"].contains(&record.record_type.as_str()) {
            return Err(err(
                &["dns", "records", record_name.as_str(), "type"],
                &format!("`{}` is not supported (A, AAAA or CNAME)", record.record_type),
            ));
        }
        if record.targets.is_empty() {
            return Err(err(&key, "`targets` needs at least one role = value"));
        }
    }
    if let Some(bad) = dns.resolvers.iter().find(|r| !crate::dns::resolvers::valid_form(r)) {
        return Err(err(&["dns", "resolvers"], &format!("`{bad}` is not host, host:port, IP or IP:port")));
    }
    // Provider settings after the records: a record's own mistake is the more specific one.
    let missing = match dns.provider {
        DnsProvider::Rfc2136 if dns.server.is_none() => Some("server"),
        DnsProvider::Sandbox if dns.zone_file.is_none() => Some("zone_file"),
        DnsProvider::Azure | DnsProvider::AzurePrivate if dns.subscription.is_none() => Some("subscription"),
        DnsProvider::Azure | DnsProvider::AzurePrivate if dns.resource_group.is_none() => Some("resource_group"),
        _ => None,
    };
    if let Some(k) = missing {
        return Err(err(&["dns"], &format!("provider `{}` needs `{k}`", dns.provider)));
    }
    if dns.tsig_key_name.is_some() != (dns.tsig_secret_env.is_some() || dns.tsig_secret_file.is_some()) {
        return Err(err(&["dns"], "set both `tsig_key_name` and `tsig_secret_env`/`tsig_secret_file`, or neither"));
    }
    Ok(())
}

/// `[databases.NAME]`: a known scheme, no password in the URL, its secret and TLS settings.
fn validate_database(
    err: &impl Fn(&[&str], &str) -> Error,
    db_name: &str,
    db: &mut Database,
    base: &Path,
) -> Result<()> {
    let key = ["databases", db_name];
    let scheme = db.url.split("://").next().unwrap_or("");
    if !["postgres", "postgresql", "mysql", "mariadb"].contains(&scheme) || !db.url.contains("://") {
        return Err(err(
            &["databases", db_name, "url"],
            "must start with postgres://, postgresql://, mysql:// or mariadb://",
        ));
    }
    if let Some(password) = crate::db::url_password(&db.url) {
        // The message quotes the line: the password must not get out with it.
        drscript_base::redact::register(&password);
        return Err(err(
            &["databases", db_name, "url"],
            "the URL carries a password; a password is a secret: put it in password_env or password_file",
        ));
    }
    db.password =
        optional_secret(&key, "password", &db.password_env, &db.password_file, base).map_err(|m| err(&key, &m))?;
    crate::db::settle(db_name, db, base).map_err(|(k, m)| err(&["databases", db_name, k], &m))?;
    Ok(())
}

fn check_url(url: &str) -> std::result::Result<(), String> {
    let parsed = url::Url::parse(url).map_err(|e| format!("`{url}` is not a URL: {e}"))?;
    if !["http", "https"].contains(&parsed.scheme()) {
        return Err(format!("`{url}`: only http and https URLs are supported"));
    }
    Ok(())
}

fn optional_secret(
    table: &[&str],
    base_key: &str,
    env: &Option<String>,
    file: &Option<PathBuf>,
    dir: &Path,
) -> std::result::Result<Option<SecretRef>, String> {
    let key = format!("{}.{base_key}", table.join("."));
    match (env, file) {
        (Some(_), Some(_)) => Err(format!("set only one of `{base_key}_env` and `{base_key}_file`")),
        (Some(var), None) if var.is_empty() => Err(format!("`{base_key}_env` is empty")),
        (Some(var), None) => Ok(Some(SecretRef::Env { key, var: var.clone() })),
        (None, Some(path)) => Ok(Some(SecretRef::File { key, path: dir.join(path) })),
        (None, None) => Ok(None),
    }
}

fn required_secret(
    table: &[&str],
    base_key: &str,
    env: &Option<String>,
    file: &Option<PathBuf>,
    dir: &Path,
) -> std::result::Result<SecretRef, String> {
    optional_secret(table, base_key, env, file, dir)?
        .ok_or_else(|| format!("missing `{base_key}_env` or `{base_key}_file`"))
}

fn toml_error(path: &Path, source: &str, e: &toml::de::Error) -> Error {
    config_error(path, source, e.span(), e.message().trim())
}

fn config_error(path: &Path, source: &str, span: Option<Range<usize>>, message: &str) -> Error {
    let (line, col) = diagnostic::line_col(source, span.map_or(0, |s| s.start));
    Error::Config {
        message: diagnostic::render(
            &path.display().to_string(),
            source,
            line,
            col,
            &format!("invalid config: {message}"),
        ),
    }
}

fn reject_plain_secrets(path: &Path, source: &str, table: &DeTable<'_>, at: &mut Vec<String>) -> Result<()> {
    for (key, value) in table {
        let name = key.get_ref().as_ref();
        at.push(name.to_string());
        if let (true, DeValue::String(plain)) = (PLAIN_SECRET_KEYS.contains(&name), value.get_ref()) {
            // The message quotes the line; make sure the value itself never gets out.
            drscript_base::redact::register(plain);
            return Err(config_error(
                path,
                source,
                Some(key.span()),
                &format!(
                    "`{}` holds a secret in plain text; write `{name}_env = \"VARIABLE\"` or `{name}_file = \"PATH\"` instead",
                    at.join(".")
                ),
            ));
        }
        match value.get_ref() {
            DeValue::Table(inner) => reject_plain_secrets(path, source, inner, at)?,
            DeValue::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    if let DeValue::Table(inner) = item.get_ref() {
                        at.push(i.to_string());
                        reject_plain_secrets(path, source, inner, at)?;
                        at.pop();
                    }
                }
            }
            _ => {}
        }
        at.pop();
    }
    Ok(())
}

/// The dotted path of the key whose value holds the byte `offset` (array items by index).
fn key_path_at(table: &DeTable<'_>, offset: usize) -> Option<String> {
    for (key, value) in table {
        let name = key.get_ref().as_ref();
        let inner = match value.get_ref() {
            DeValue::Table(inner) => key_path_at(inner, offset),
            DeValue::Array(items) => items.iter().enumerate().find_map(|(i, item)| match item.get_ref() {
                DeValue::Table(inner) => key_path_at(inner, offset).map(|rest| format!("{i}.{rest}")),
                _ => None,
            }),
            _ => None,
        };
        if let Some(rest) = inner {
            return Some(format!("{name}.{rest}"));
        }
        if value.span().contains(&offset) && !matches!(value.get_ref(), DeValue::Table(_)) {
            return Some(name.to_string());
        }
    }
    None
}

/// The byte span of the key at `key_path` (array items by index), as far as it can be found.
fn span_of(source: &str, key_path: &[&str]) -> Option<Range<usize>> {
    let doc = DeTable::parse(source).ok()?;
    let mut table: &DeTable<'_> = doc.get_ref();
    let mut best = None;
    let mut items = key_path.iter().peekable();
    while let Some(part) = items.next() {
        let (key, value) = table.iter().find(|(k, _)| k.get_ref().as_ref() == *part)?;
        best = Some(key.span());
        match value.get_ref() {
            DeValue::Table(inner) => table = inner,
            DeValue::Array(array) => {
                let index: usize = items.next()?.parse().ok()?;
                match array.get(index)?.get_ref() {
                    DeValue::Table(inner) => {
                        best = Some(array.get(index)?.span());
                        table = inner;
                    }
                    _ => return best,
                }
            }
            _ => return best,
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
[environments.prod]
namespace = "adeptia"
release = "ac"
gateway = "https://prod.example.com"
"#;

    fn parse(text: &str) -> Result<Config> {
        Config::parse(Path::new("drscript.toml"), text)
    }

    #[test]
    fn without_settings_the_primary_is_the_first_environment_the_file_lists_not_the_first_by_name() {
        let env = |name: &str| {
            format!(
                "[environments.{name}]\nnamespace = \"a\"\nrelease = \"ac\"\ngateway = \"https://{name}.example\"\n"
            )
        };
        let config = parse(&format!("{}{}", env("westeurope"), env("northeurope"))).unwrap();
        assert_eq!(config.order, ["westeurope", "northeurope"]);
        assert_eq!((config.primary(), config.standby()), ("westeurope", Some("northeurope")));
    }

    #[test]
    fn a_shared_state_needs_a_url_without_a_sas_a_credential_reference_and_a_lease_azure_accepts() {
        let state = |body: &str| parse(&format!("{MINIMAL}\n[state]\nbackend = \"azure-blob\"\n{body}"));
        let ok = state("url = \"https://acct.blob.core.windows.net/drscript\"\nsas_env = \"STATE_SAS\"\n").unwrap();
        let shared = ok.state.unwrap();
        assert_eq!(shared.backend, StateBackend::AzureBlob);
        assert_eq!(shared.sas.unwrap().describe(), "$STATE_SAS");
        let msg = |body: &str| state(body).unwrap_err().to_string();
        assert!(msg("sas_env = \"S\"\n").contains("needs `url`"));
        assert!(msg("url = \"https://acct.blob.core.windows.net/c\"\n").contains("needs a credential"));
        assert!(
            msg("url = \"https://acct.blob.core.windows.net/c?sv=1&sig=abc\"\nsas_env = \"S\"\n")
                .contains("SAS is a secret")
        );
        assert!(
            msg("url = \"https://acct.blob.core.windows.net/c\"\nsas_env = \"S\"\nlease_seconds = 90\n")
                .contains("15 to 60")
        );
        assert!(msg("url = \"https://acct.blob.core.windows.net/c\"\nsas = \"sv=1\"\n").contains("sas_env"));
        let local = parse(&format!("{MINIMAL}\n[state]\nbackend = \"local\"\n")).unwrap();
        assert_eq!(local.state.unwrap().backend, StateBackend::Local);
    }

    #[test]
    fn an_unknown_word_names_its_key_its_line_and_the_words_known() {
        let text = format!("{MINIMAL}\n[[notify]]\nname = \"ops\"\nkind = \"pager\"\nurl_env = \"HOOK\"\n");
        let msg = parse(&text).unwrap_err().to_string();
        assert!(msg.contains("notify.0.kind: must be one of generic, teams, slack (not `pager`)"), "{msg}");
        assert!(msg.contains("drscript.toml:9:"), "{msg}");
        let text = format!("{MINIMAL}[azure]\nauth = \"password\"\n");
        let msg = parse(&text).unwrap_err().to_string();
        assert!(
            msg.contains(
                "azure.auth: must be one of cli, managed_identity, service_principal, client_certificate, \
                 workload_identity, chain, static_token"
            ),
            "{msg}"
        );
    }

    #[test]
    fn an_entra_share_takes_the_azure_credential_and_no_key_of_its_own() {
        let share = |body: &str, azure: &str| {
            parse(&format!("{MINIMAL}{azure}[environments.prod.shares]\napp = {{ {body} }}\n"))
        };
        let msg = |body: &str| share(body, "").unwrap_err().to_string();
        let e = msg("path = \"/srv/app\", auth = \"entra\"");
        assert!(e.contains("environments.prod.shares.app.auth") && e.contains("not a `path`"), "{e}");
        let e = msg("url = \"https://a.file.core.windows.net/app\", auth = \"entra\", sas_env = \"S\"");
        assert!(e.contains("remove the share's sas_*"), "{e}");
        let e = msg("url = \"https://a.file.core.windows.net/app\", auth = \"sas\", account_key_env = \"K\"");
        assert!(e.contains("\"sas\" needs `sas_env`"), "{e}");
        let e = msg("url = \"https://a.file.core.windows.net/app\", auth = \"token\"");
        assert!(e.contains("must be one of sas, account_key, entra"), "{e}");

        // The credential is made on first use, and one for all: a missing tenant is found then.
        let azure = "[azure]\nauth = \"client_certificate\"\nclient_certificate_file = \"sp.pem\"\n";
        let config = share("url = \"https://a.file.core.windows.net/app\", auth = \"entra\"", azure).unwrap();
        let app = &config.environments["prod"].shares["app"];
        assert!(app.entra.is_some() && app.sas.is_none());
        assert!(config.credential.used().is_none(), "nothing asked for a token yet");
        if std::env::var_os("AZURE_TENANT_ID").is_none() {
            let e = app.endpoint("").unwrap_err().to_string();
            assert!(e.contains("[azure]") && e.contains("tenant_id"), "{e}");
        }
        let e = share("url = \"http://a.example/app\", auth = \"entra\"", "").unwrap_err().to_string();
        assert!(e.contains("https"), "{e}");
    }

    #[test]
    fn a_ca_file_must_hold_certificates() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ca.pem"), "not a certificate").unwrap();
        let text = format!("{MINIMAL}[azure]\nca_file = \"ca.pem\"\n");
        let e = Config::parse(&dir.path().join("drscript.toml"), &text).unwrap_err().to_string();
        assert!(e.contains("azure.ca_file") && e.contains("not a PEM bundle"), "{e}");
    }

    #[test]
    fn minimal_config_parses_with_defaults() {
        let c = parse(MINIMAL).unwrap();
        let prod = c.environment("prod").unwrap();
        assert_eq!(prod.name, "prod");
        // A count the config omits is not assumed.
        assert_eq!(prod.replicas_of("runtime"), None);
        assert_eq!(prod.workload_name("runtime"), "ac-ac-runtime");
        assert_eq!(prod.kind_of("rabbitmq"), "statefulset");
    }

    #[test]
    fn unknown_key_names_key_and_line() {
        let text = MINIMAL.replace("release = \"ac\"", "release = \"ac\"\nnamspace = \"x\"");
        let msg = parse(&text).unwrap_err().to_string();
        assert!(msg.contains("namspace"), "{msg}");
        assert!(msg.contains("drscript.toml:5:"), "{msg}");
    }

    #[test]
    fn wrong_type_names_line() {
        let text = format!("{MINIMAL}[environments.prod.replicas]\nruntime = \"three\"\n");
        let msg = parse(&text).unwrap_err().to_string();
        assert!(msg.contains("drscript.toml:7:"), "{msg}");
    }

    #[test]
    fn missing_key_is_named() {
        let text = MINIMAL.replace("release = \"ac\"\n", "");
        let msg = parse(&text).unwrap_err().to_string();
        assert!(msg.contains("release"), "{msg}");
    }

    #[test]
    fn plain_text_secret_is_rejected_with_a_pointer() {
        let text = format!(
            "{MINIMAL}[environments.prod.gateway_auth]\ntype = \"basic\"\nusername = \"u\"\npassword = \"hunter22\"\n"
        );
        let msg = drscript_base::redact::redacted(parse(&text).unwrap_err().to_string());
        assert!(msg.contains("password_env"), "{msg}");
        assert!(!msg.contains("hunter22"), "{msg}");
    }

    #[test]
    fn unknown_environment_lists_known_ones() {
        let c = parse(MINIMAL).unwrap();
        let msg = c.environment("drr").unwrap_err().to_string();
        assert!(msg.contains("known: prod"), "{msg}");
    }

    #[test]
    fn share_url_with_signature_is_rejected() {
        let text = format!(
            "{MINIMAL}[environments.prod.shares]\napp = {{ url = \"https://a.file.core.windows.net/s?sv=1&sig=abc\" }}\n"
        );
        let msg = parse(&text).unwrap_err().to_string();
        assert!(msg.contains("sas_env"), "{msg}");
    }
}
