//! The MySQL / MariaDB probe (`mysql_async`, TCP, TLS as [`super::tls`] says).
//!
//! Application accounts commonly have only SELECT/INSERT/UPDATE/DELETE, so the rollback probe
//! needs no CREATE: the server's read-only switches are read (`read_only`, `super_read_only`,
//! `innodb_read_only`, the session's `transaction_read_only`), a `START TRANSACTION READ WRITE`
//! is opened, and a row is written and read back in a temporary table when the account may
//! create one (or in `drscript_probe` when it exists) before everything is rolled back.
//! `read_only` is judged from the variables even for accounts with SUPER, which bypass it and
//! would "prove" a write that the application's account could not make.

use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, OptsBuilder, TxOpts};

use super::tls::{self, Tls, TlsMode};
use super::{ProbeKind, ProbeReport, Target, probe_token};

const CREATE: &str = "CREATE TABLE IF NOT EXISTS drscript_probe (token VARCHAR(64) NOT NULL, at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP) ENGINE=InnoDB";

pub async fn probe(
    target: &Target,
    password: Option<&str>,
    kind: ProbeKind,
    timeout: Duration,
    tls: &Tls,
) -> Result<ProbeReport, String> {
    let started = Instant::now();
    let mut conn = connect(target, password, timeout, tls).await?;
    let connect_ms = started.elapsed().as_millis() as u64;
    let result = run(&mut conn, target, kind, tls).await;
    let _ = conn.disconnect().await;
    let (version, read_only, wrote, query_ms) = result?;
    Ok(ProbeReport {
        name: String::new(),
        engine: "mysql".into(),
        address: target.address(),
        server_version: version,
        role: if read_only { "read_only" } else { "primary" }.into(),
        read_only,
        probe: String::new(),
        wrote,
        connect_ms,
        query_ms,
        tls: String::new(),
    })
}

async fn connect(target: &Target, password: Option<&str>, timeout: Duration, tls: &Tls) -> Result<Conn, String> {
    let opts = |ssl: Option<mysql_async::SslOpts>| {
        OptsBuilder::default()
            .ip_or_hostname(target.host.clone())
            .tcp_port(target.port)
            .user(Some(target.user.clone()))
            .pass(password.map(str::to_string))
            .db_name((!target.database.is_empty()).then(|| target.database.clone()))
            // Stay on the address in the config: a local socket would authenticate as another host.
            .prefer_socket(false)
            .ssl_opts(ssl)
    };
    let ssl = super::mysql_tls::ssl_opts(target, tls, timeout).await?;
    match Conn::new(opts(ssl)).await {
        Ok(conn) => Ok(conn),
        Err(mysql_async::Error::Driver(mysql_async::DriverError::NoClientSslFlagFromServer))
            if tls.mode == TlsMode::Prefer =>
        {
            Conn::new(opts(None)).await.map_err(|e| explain(&e, target, tls))
        }
        Err(mysql_async::Error::Server(s)) if s.code == 1045 && tls.mode == TlsMode::Disable => {
            // The same refusal whether the password is wrong or the account/server insists on
            // TLS: ask once more over TLS (certificate unchecked) to tell which.
            let retry = mysql_async::SslOpts::default().with_danger_accept_invalid_certs(true);
            match Conn::new(opts(Some(retry))).await {
                Ok(conn) => {
                    let _ = conn.disconnect().await;
                    Err(requires_tls(&s.message, s.code, tls))
                }
                Err(_) => Err(explain(&mysql_async::Error::Server(s), target, tls)),
            }
        }
        Err(e) => Err(explain(&e, target, tls)),
    }
}

fn requires_tls(message: &str, code: u16, tls: &Tls) -> String {
    format!("the server requires TLS ({}): {message} (error {code})", tls.origin)
}

/// (version, read-only, wrote, ms).
async fn run(
    conn: &mut Conn,
    target: &Target,
    kind: ProbeKind,
    tls: &Tls,
) -> Result<(String, bool, bool, u64), String> {
    let started = Instant::now();
    let err = |e: mysql_async::Error| explain(&e, target, tls);
    let version: String =
        conn.query_first("SELECT VERSION()").await.map_err(err)?.ok_or("no answer to SELECT VERSION()")?;
    let switches: Vec<(String, String)> = conn
        .query(
            "SHOW VARIABLES WHERE Variable_name IN \
             ('read_only', 'super_read_only', 'innodb_read_only', 'tx_read_only', 'transaction_read_only')",
        )
        .await
        .map_err(err)?;
    let on: Vec<String> = switches
        .iter()
        .filter(|(_, v)| !v.eq_ignore_ascii_case("OFF") && v != "0")
        .map(|(k, v)| format!("@@{k} = {v}"))
        .collect();
    let read_only = !on.is_empty();
    if kind == ProbeKind::Read {
        return Ok((version, read_only, false, started.elapsed().as_millis() as u64));
    }
    if read_only {
        return Err(format!("the server is read-only ({}): it cannot take writes ({version})", on.join(", ")));
    }
    let token = probe_token();
    let back: Option<Option<String>> = match kind {
        ProbeKind::Rollback => {
            let mut options = TxOpts::default();
            options.with_readonly(Some(false));
            let mut tx = conn.start_transaction(options).await.map_err(err)?;
            let temporary = tx
                .query_drop("CREATE TEMPORARY TABLE drscript_probe_tx (token VARCHAR(64) NOT NULL) ENGINE=InnoDB")
                .await;
            let table = match temporary {
                Ok(()) => Some("drscript_probe_tx"),
                Err(mysql_async::Error::Server(s)) if [1044, 1142].contains(&s.code) => {
                    let exists: Option<u8> = tx
                        .query_first("SELECT 1 FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = 'drscript_probe'")
                        .await
                        .map_err(err)?;
                    exists.map(|_| "drscript_probe")
                }
                Err(e) => return Err(err(e)),
            };
            let back = match table {
                Some(table) => {
                    tx.exec_drop(format!("INSERT INTO {table} (token) VALUES (?)"), (token.clone(),))
                        .await
                        .map_err(err)?;
                    Some(
                        tx.exec_first(format!("SELECT token FROM {table} WHERE token = ?"), (token.clone(),))
                            .await
                            .map_err(err)?,
                    )
                }
                // No table the account may write: the read-only switches and the read-write
                // transaction are the proof.
                None => None,
            };
            tx.rollback().await.map_err(err)?;
            let _ = conn.query_drop("DROP TEMPORARY TABLE IF EXISTS drscript_probe_tx").await;
            back
        }
        _ => {
            conn.query_drop(CREATE).await.map_err(err)?;
            conn.exec_drop("INSERT INTO drscript_probe (token) VALUES (?)", (token.clone(),)).await.map_err(err)?;
            let back = conn
                .exec_first("SELECT token FROM drscript_probe WHERE token = ?", (token.clone(),))
                .await
                .map_err(err)?;
            conn.exec_drop("DELETE FROM drscript_probe WHERE token = ?", (token.clone(),)).await.map_err(err)?;
            Some(back)
        }
    };
    match back {
        Some(back) if back.as_deref() != Some(token.as_str()) => Err(format!("wrote `{token}` but read back {back:?}")),
        Some(_) => Ok((version, false, true, started.elapsed().as_millis() as u64)),
        None => Ok((version, false, false, started.elapsed().as_millis() as u64)),
    }
}

fn explain(e: &mysql_async::Error, target: &Target, tls: &Tls) -> String {
    match e {
        mysql_async::Error::Server(s) => {
            let what = match s.code {
                // MySQL's ER_SECURE_TRANSPORT_REQUIRED.
                3159 => return requires_tls(&s.message, s.code, tls),
                1045 => format!("bad credentials for user `{}`", target.user),
                1044 | 1142 => format!("user `{}` lacks a privilege", target.user),
                1049 => format!("database `{}` does not exist", target.database),
                1290 | 1836 | 1792 => "the server is read-only".to_string(),
                _ => "the server refused the probe".to_string(),
            };
            format!("{what}: {} (error {}, SQLSTATE {})", s.message, s.code, s.state)
        }
        mysql_async::Error::Driver(mysql_async::DriverError::NoClientSslFlagFromServer) => {
            format!("the server does not offer TLS ({}); set ssl-mode=DISABLED only on a trusted network", tls.origin)
        }
        mysql_async::Error::Io(io) => {
            let text = io.to_string();
            if matches!(io, mysql_async::IoError::Tls(_)) || text.contains("certificate") || text.contains("peer") {
                tls::explain(&text, tls)
            } else {
                format!("cannot reach {}:{}: {text}", target.host, target.port)
            }
        }
        other => other.to_string(),
    }
}
