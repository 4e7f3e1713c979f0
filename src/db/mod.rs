//! `db_probe`: is this database reachable, which role does it play, and can it really take a
//! write? Answered before switching DNS to it (the document's "ensure that the Primary
//! Database is connected and performing Read/Write operations").
//!
//! The write is proven, not assumed: a row is written and read back, either inside a
//! transaction that is rolled back (nothing is left behind) or in a scratch table, as the config
//! says. A server that is read-only (a replica, `default_transaction_read_only`, `read_only`) is
//! a failed probe with a message saying so, unless the config asks only for a read probe.

mod mysql;
mod postgres;

use std::time::Duration;

use serde::Serialize;

use crate::config::Database;
use crate::error::{Error, Result};
use crate::exec::Exec;

/// How the probe proves a write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeKind {
    /// Write and read back inside a transaction that is rolled back.
    Rollback,
    /// Write, read back and delete a row of the table `drscript_probe` (created if missing).
    ScratchTable,
    /// Connect and read only: for replicas, where a write is expected to fail.
    Read,
}

impl ProbeKind {
    pub fn parse(text: &str) -> Result<ProbeKind> {
        match text {
            "rollback" => Ok(ProbeKind::Rollback),
            "scratch_table" => Ok(ProbeKind::ScratchTable),
            "read" => Ok(ProbeKind::Read),
            other => Err(Error::Usage(format!("probe `{other}` is not one of rollback, scratch_table, read"))),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ProbeKind::Rollback => "rollback",
            ProbeKind::ScratchTable => "scratch_table",
            ProbeKind::Read => "read",
        }
    }
}

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
}

/// The pieces of a database URL.
#[derive(Debug, Clone)]
pub struct Target {
    pub engine: &'static str,
    pub host: String,
    pub port: u16,
    pub user: String,
    pub database: String,
}

impl Target {
    pub fn parse(url: &str) -> Result<Target> {
        let parsed =
            url::Url::parse(url).map_err(|e| Error::Usage(format!("database URL `{url}` is not a URL: {e}")))?;
        let engine = match parsed.scheme() {
            "postgres" | "postgresql" => "postgres",
            "mysql" | "mariadb" => "mysql",
            other => {
                return Err(Error::Usage(format!(
                    "database URL `{}`: scheme `{other}` is not supported (postgres://, postgresql://, mysql:// or mariadb://)",
                    crate::redact::redacted(url)
                )));
            }
        };
        if parsed.password().is_some() {
            return Err(Error::Usage(
                "a database URL must not carry a password: use password_env or password_file".into(),
            ));
        }
        let host = parsed
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| Error::Usage(format!("database URL `{url}` has no host")))?;
        let user = url::form_urlencoded::parse(parsed.username().as_bytes())
            .map(|(k, _)| k.into_owned())
            .next()
            .unwrap_or_default();
        if user.is_empty() {
            return Err(Error::Usage(format!("database URL `{url}` has no user (scheme://user@host:port/database)")));
        }
        Ok(Target {
            engine,
            host: host.trim_matches(['[', ']']).to_string(),
            port: parsed.port().unwrap_or(if engine == "postgres" { 5432 } else { 3306 }),
            user,
            database: parsed.path().trim_start_matches('/').to_string(),
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
    ProbeKind::parse(&db.probe)?;
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
        probe: db.probe.clone(),
        wrote: false,
        connect_ms: 0,
        query_ms: 0,
    };
    exec.query("db_probe", &label, || placeholder, || exec.block_on(probe(name, db)))
}

/// Connects within the configured timeout and runs the probe.
pub async fn probe(name: &str, db: &Database) -> Result<ProbeReport> {
    let target = Target::parse(&db.url)?;
    let kind = ProbeKind::parse(&db.probe)?;
    let password = db.password.as_ref().map(|p| p.resolve()).transpose()?;
    let timeout = Duration::from_secs(db.timeout_secs.max(1));
    let label = target.label(name);
    let run = async {
        match target.engine {
            "postgres" => postgres::probe(&target, password.as_deref(), kind, timeout).await,
            _ => mysql::probe(&target, password.as_deref(), kind, timeout).await,
        }
    };
    let outcome = tokio::time::timeout(timeout, run).await.map_err(|_| {
        Error::action("db_probe", &label, format!("no answer within {} s (timeout_secs)", timeout.as_secs()))
    })?;
    match outcome {
        Ok(mut report) => {
            report.name = name.to_string();
            report.probe = kind.as_str().to_string();
            Ok(report)
        }
        Err(message) => Err(Error::action("db_probe", label, crate::redact::redacted(message))),
    }
}

/// A value the probe writes and expects back; unique per probe so a stale row cannot pass.
fn probe_token() -> String {
    format!("drscript-{:016x}", rand::random::<u64>())
}
