//! The MySQL / MariaDB probe (`mysql_async`, TCP only).
//!
//! DDL commits implicitly in MySQL, so the rollback probe keeps an (empty) table
//! `drscript_probe` and writes its row inside a transaction that is rolled back. `read_only` is
//! checked explicitly because accounts with SUPER bypass it and would "prove" a write that the
//! application's account could not make.

use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, OptsBuilder, TxOpts};

use super::{ProbeKind, ProbeReport, Target, probe_token};

const CREATE: &str = "CREATE TABLE IF NOT EXISTS drscript_probe (token VARCHAR(64) NOT NULL, at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP) ENGINE=InnoDB";

pub async fn probe(
    target: &Target,
    password: Option<&str>,
    kind: ProbeKind,
    _timeout: Duration,
) -> Result<ProbeReport, String> {
    let started = Instant::now();
    let opts = OptsBuilder::default()
        .ip_or_hostname(target.host.clone())
        .tcp_port(target.port)
        .user(Some(target.user.clone()))
        .pass(password.map(str::to_string))
        .db_name((!target.database.is_empty()).then(|| target.database.clone()))
        // Stay on the address in the config: a local socket would authenticate as another host.
        .prefer_socket(false);
    let mut conn = Conn::new(opts).await.map_err(|e| explain(&e, target))?;
    let connect_ms = started.elapsed().as_millis() as u64;
    let result = run(&mut conn, target, kind).await;
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
    })
}

async fn run(conn: &mut Conn, target: &Target, kind: ProbeKind) -> Result<(String, bool, bool, u64), String> {
    let started = Instant::now();
    let err = |e: mysql_async::Error| explain(&e, target);
    let (version, read_only): (String, i64) = conn
        .query_first("SELECT VERSION(), @@global.read_only")
        .await
        .map_err(err)?
        .ok_or("no answer to SELECT VERSION()")?;
    let read_only = read_only != 0;
    if kind == ProbeKind::Read {
        return Ok((version, read_only, false, started.elapsed().as_millis() as u64));
    }
    if read_only {
        return Err(format!("the server is read-only (@@read_only = 1): it cannot take writes ({version})"));
    }
    let token = probe_token();
    conn.query_drop(CREATE).await.map_err(err)?;
    let back: Option<String> = match kind {
        ProbeKind::Rollback => {
            let mut tx = conn.start_transaction(TxOpts::default()).await.map_err(err)?;
            tx.exec_drop("INSERT INTO drscript_probe (token) VALUES (?)", (token.clone(),)).await.map_err(err)?;
            let back = tx
                .exec_first("SELECT token FROM drscript_probe WHERE token = ?", (token.clone(),))
                .await
                .map_err(err)?;
            tx.rollback().await.map_err(err)?;
            back
        }
        _ => {
            conn.exec_drop("INSERT INTO drscript_probe (token) VALUES (?)", (token.clone(),)).await.map_err(err)?;
            let back = conn
                .exec_first("SELECT token FROM drscript_probe WHERE token = ?", (token.clone(),))
                .await
                .map_err(err)?;
            conn.exec_drop("DELETE FROM drscript_probe WHERE token = ?", (token.clone(),)).await.map_err(err)?;
            back
        }
    };
    if back.as_deref() != Some(token.as_str()) {
        return Err(format!("wrote `{token}` but read back {back:?}"));
    }
    Ok((version, read_only, true, started.elapsed().as_millis() as u64))
}

fn explain(e: &mysql_async::Error, target: &Target) -> String {
    match e {
        mysql_async::Error::Server(s) => {
            let what = match s.code {
                1045 => format!("bad credentials for user `{}`", target.user),
                1044 | 1142 => format!("user `{}` lacks a privilege", target.user),
                1049 => format!("database `{}` does not exist", target.database),
                1290 | 1836 => "the server is read-only".to_string(),
                _ => "the server refused the probe".to_string(),
            };
            format!("{what}: {} (error {}, SQLSTATE {})", s.message, s.code, s.state)
        }
        mysql_async::Error::Io(io) => format!("cannot reach {}:{}: {io}", target.host, target.port),
        other => other.to_string(),
    }
}
