//! `db_probe`: is this database reachable, which role does it play, and can it really take a
//! write? Answered before switching DNS to it (the document's "ensure that the Primary
//! Database is connected and performing Read/Write operations").
//!
//! The write is proven, not assumed: a row is written and read back, either inside a
//! transaction that is rolled back (nothing is left behind) or in a scratch table, as the config
//! says. A server that is read-only (a replica, `default_transaction_read_only`, `read_only`) is
//! a failed probe with a message saying so, unless the config asks only for a read probe.
//!
//! Connections use TLS as the URL (`?sslmode=`, `?ssl-mode=`) or the `tls` setting say; see
//! [`tls`] for the modes and the default. A URL is only ever echoed with its password masked.

mod mysql;
mod mysql_tls;
mod postgres;
mod postgres_tls;
pub mod tls;
mod url_mask;

use std::path::Path;
use std::time::Duration;

use serde::Serialize;

use crate::config::Database;
use crate::exec::Exec;
use drscript_base::error::{Error, Result};
pub use tls::{Tls, TlsMode};
pub use url_mask::{masked_url, url_password};

/// What a probe does once connected (the config's `probe`).
pub use crate::config::Probe as ProbeKind;

/// What `db_probe` reports.
#[derive(Debug, Clone, Serialize)]
pub struct ProbeReport {
    pub name: String,
    /// `postgres` or `mysql`.
    pub engine: String,
    /// `host:port/database`.
    pub address: String,
    pub server_version: String,
    /// `primary`, `replica` (PostgreSQL in recovery) or `read_only`.
    pub role: String,
    pub read_only: bool,
    pub probe: String,
    /// A row was written and read back.
    pub wrote: bool,
    pub connect_ms: u64,
    /// Round trip of the probe's statements after connecting.
    pub query_ms: u64,
    /// The TLS mode the connection used (`disable` … `verify-full`).
    pub tls: String,
}

/// The pieces of a database URL.
#[derive(Debug, Clone)]
pub struct Target {
    pub engine: &'static str,
    pub host: String,
    pub port: u16,
    pub user: String,
    pub database: String,
    /// `?sslmode=` (PostgreSQL) or `?ssl-mode=` (MySQL), when the URL sets it.
    pub url_tls: Option<TlsMode>,
    /// `?sslrootcert=` (PostgreSQL) or `?ssl-ca=` (MySQL), as written.
    pub url_ca: Option<String>,
}

impl Target {
    pub fn parse(url: &str) -> Result<Target> {
        Self::parse_text(url).map_err(Error::Usage)
    }

    /// As [`Target::parse`], the message naming the URL with its password masked.
    fn parse_text(url: &str) -> std::result::Result<Target, String> {
        let shown = masked_url(url);
        let parsed = url::Url::parse(url).map_err(|e| format!("database URL `{shown}` is not a URL: {e}"))?;
        let engine = match parsed.scheme() {
            "postgres" | "postgresql" => "postgres",
            "mysql" | "mariadb" => "mysql",
            other => {
                return Err(format!(
                    "database URL `{shown}`: scheme `{other}` is not supported (postgres://, postgresql://, mysql:// or mariadb://)"
                ));
            }
        };
        if parsed.password().is_some() || url_password(url).is_some() {
            return Err(format!(
                "database URL `{shown}` carries a password; a password is a secret: use password_env or password_file"
            ));
        }
        let host =
            parsed.host_str().filter(|h| !h.is_empty()).ok_or_else(|| format!("database URL `{shown}` has no host"))?;
        let user = url::form_urlencoded::parse(parsed.username().as_bytes())
            .map(|(k, _)| k.into_owned())
            .next()
            .unwrap_or_default();
        if user.is_empty() {
            return Err(format!("database URL `{shown}` has no user (scheme://user@host:port/database)"));
        }
        let (mode_key, ca_key) = if engine == "postgres" { ("sslmode", "sslrootcert") } else { ("ssl-mode", "ssl-ca") };
        let (mut url_tls, mut url_ca) = (None, None);
        for (key, value) in parsed.query_pairs() {
            if key == mode_key {
                let mode = if engine == "postgres" { TlsMode::parse(&value) } else { TlsMode::parse_mysql(&value) };
                let known = if engine == "postgres" { TlsMode::POSTGRES } else { TlsMode::MYSQL };
                url_tls = Some(
                    mode.ok_or_else(|| format!("database URL `{shown}`: {mode_key}={value} is not one of {known}"))?,
                );
            } else if key == ca_key {
                url_ca = Some(value.into_owned());
            } else {
                return Err(format!(
                    "database URL `{shown}`: parameter `{key}` is not supported (only {mode_key} and {ca_key}; the other settings are keys of [databases.NAME])"
                ));
            }
        }
        Ok(Target {
            engine,
            host: host.trim_matches(['[', ']']).to_string(),
            port: parsed.port().unwrap_or(if engine == "postgres" { 5432 } else { 3306 }),
            user,
            database: parsed.path().trim_start_matches('/').to_string(),
            url_tls,
            url_ca,
        })
    }

    /// `postgres primary (app@host:5432/appdb)`, the target in journals and errors.
    pub fn label(&self, name: &str) -> String {
        format!("{} {name} ({}@{})", self.engine, self.user, self.address())
    }

    pub fn address(&self) -> String {
        format!("{}:{}/{}", self.host, self.port, self.database)
    }
}

/// Probes the database `name` of `[databases]` (a read: it runs in dry runs too).
pub fn db_probe(exec: &Exec, name: &str) -> Result<ProbeReport> {
    let config = exec.config()?;
    let db = config.databases.get(name).ok_or_else(|| {
        Error::Usage(format!(
            "database `{name}` is not in [databases] of {} (known: {})",
            config.path.display(),
            config.databases.keys().cloned().collect::<Vec<_>>().join(", ")
        ))
    })?;
    let target = Target::parse(&db.url)?;
    let tls = tls_of(name, db, &target).map_err(|(key, m)| Error::Usage(format!("databases.{name}.{key}: {m}")))?;
    if let Some(password) = &db.password {
        exec.secret(password)?;
    }
    let label = target.label(name);
    let placeholder = ProbeReport {
        name: name.to_string(),
        engine: target.engine.to_string(),
        address: target.address(),
        server_version: "(plan)".into(),
        role: "(plan)".into(),
        read_only: false,
        probe: db.probe.as_str().to_string(),
        wrote: false,
        connect_ms: 0,
        query_ms: 0,
        tls: tls.mode.as_str().to_string(),
    };
    exec.query("db_probe", &label, || placeholder, || exec.block_on(probe(name, db)))
}

/// Connects within the configured timeout and runs the probe.
pub async fn probe(name: &str, db: &Database) -> Result<ProbeReport> {
    let target = Target::parse(&db.url)?;
    let tls = tls_of(name, db, &target).map_err(|(key, m)| Error::Usage(format!("databases.{name}.{key}: {m}")))?;
    let kind = db.probe;
    let password = db.password.as_ref().map(|p| p.resolve()).transpose()?;
    let timeout = Duration::from_secs(db.timeout_secs.max(1));
    let label = target.label(name);
    let run = async {
        match target.engine {
            "postgres" => postgres::probe(&target, password.as_deref(), kind, timeout, &tls).await,
            _ => mysql::probe(&target, password.as_deref(), kind, timeout, &tls).await,
        }
    };
    let outcome = tokio::time::timeout(timeout, run).await.map_err(|_| {
        Error::action("db_probe", &label, format!("no answer within {} s (timeout_secs)", timeout.as_secs()))
    })?;
    match outcome {
        Ok(mut report) => {
            report.name = name.to_string();
            report.probe = kind.as_str().to_string();
            report.tls = tls.mode.as_str().to_string();
            Ok(report)
        }
        Err(message) => Err(Error::action("db_probe", label, drscript_base::redact::redacted(message))),
    }
}

/// A value the probe writes and expects back; unique per probe so a stale row cannot pass.
fn probe_token() -> String {
    format!("drscript-{:016x}", rand::random::<u64>())
}

/// The TLS of database `name`: the `tls` setting, else the URL's mode, else the default for its
/// host. Errors name the key (`tls`) and say what is wrong.
pub fn tls_of(name: &str, db: &Database, target: &Target) -> std::result::Result<Tls, (&'static str, String)> {
    let setting = match db.tls.as_deref() {
        Some(text) => {
            Some(TlsMode::parse(text).ok_or(("tls", format!("`{text}` is not one of {}", TlsMode::SETTINGS)))?)
        }
        None => None,
    };
    let (mode, origin) = match (setting, target.url_tls) {
        (Some(s), Some(u)) if s != u => {
            return Err((
                "tls",
                format!(
                    "`{}` disagrees with {} in the URL; set the mode in one place",
                    s.as_str(),
                    u.url_spelling(target.engine)
                ),
            ));
        }
        (Some(s), _) => (s, format!("tls = \"{}\" in [databases.{name}]", s.as_str())),
        (None, Some(u)) => (u, format!("{} in the URL", u.url_spelling(target.engine))),
        (None, None) => {
            let mode = TlsMode::default_for(&target.host);
            let kind = if mode == TlsMode::Prefer { "a loopback" } else { "a non-loopback" };
            (mode, format!("tls = \"{}\", the default for {kind} host", mode.as_str()))
        }
    };
    Ok(Tls { mode, ca_file: db.ca_file.clone(), origin })
}

/// Checks the URL and TLS settings of `[databases.NAME]` when the config is loaded, and makes
/// the CA file absolute (relative to the config's folder, whether set as `ca_file` or in the
/// URL). Errors name the key they are about.
pub fn settle(name: &str, db: &mut Database, base: &Path) -> std::result::Result<(), (&'static str, String)> {
    let target = Target::parse_text(&db.url).map_err(|m| ("url", m))?;
    match (&db.ca_file, &target.url_ca) {
        (Some(_), Some(_)) => {
            return Err(("ca_file", "the URL names a CA file too; set the CA in one place".to_string()));
        }
        (Some(path), None) => db.ca_file = Some(base.join(path)),
        (None, Some(path)) => db.ca_file = Some(base.join(path)),
        (None, None) => {}
    }
    let tls = tls_of(name, db, &target)?;
    if tls.mode == TlsMode::Disable && tls.ca_file.is_some() {
        return Err(("ca_file", format!("a CA file has no use with TLS disabled ({})", tls.origin)));
    }
    Ok(())
}
