//! The PostgreSQL probe (`tokio-postgres`, over TLS as [`super::tls`] says).
//!
//! The write is proven with the privileges an application account has since PostgreSQL 15 (no
//! CREATE on `public`): inside a transaction that is rolled back, a transaction id is assigned
//! (impossible on a standby) and a row is written to a temporary table and read back (TEMP is
//! granted to every role by default). `pg_is_in_recovery()` and `transaction_read_only` say
//! whether the server would take the application's writes at all.

use std::time::{Duration, Instant};

use tokio_postgres::config::SslMode;
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, NoTls};

use super::postgres_tls::MakeRustls;
use super::tls::{self, Tls, TlsMode};
use super::{ProbeKind, ProbeReport, Target, probe_token};

pub async fn probe(
    target: &Target,
    password: Option<&str>,
    kind: ProbeKind,
    timeout: Duration,
    tls: &Tls,
) -> Result<ProbeReport, String> {
    let started = Instant::now();
    let mut config = tokio_postgres::Config::new();
    config
        .host(&target.host)
        .port(target.port)
        .user(&target.user)
        .connect_timeout(timeout)
        .application_name("drscript db_probe")
        .ssl_mode(match tls.mode {
            TlsMode::Disable => SslMode::Disable,
            TlsMode::Prefer => SslMode::Prefer,
            _ => SslMode::Require,
        });
    if !target.database.is_empty() {
        config.dbname(&target.database);
    }
    if let Some(p) = password {
        config.password(p);
    }
    let explain_connect = |e: tokio_postgres::Error| explain(&e, target, tls);
    let (client, driver) = if tls.mode == TlsMode::Disable {
        let (client, connection) = config.connect(NoTls).await.map_err(explain_connect)?;
        (client, tokio::spawn(async move { drop(connection.await) }))
    } else {
        let make = MakeRustls::new(tls::client_config(tls)?);
        let (client, connection) = config.connect(make).await.map_err(explain_connect)?;
        (client, tokio::spawn(async move { drop(connection.await) }))
    };
    let connect_ms = started.elapsed().as_millis() as u64;
    let result = run(&client, target, kind, tls).await;
    drop(client);
    driver.abort();
    let (version, in_recovery, read_only, wrote, query_ms) = result?;
    Ok(ProbeReport {
        name: String::new(),
        engine: "postgres".into(),
        address: target.address(),
        server_version: version,
        role: if in_recovery {
            "replica"
        } else if read_only {
            "read_only"
        } else {
            "primary"
        }
        .into(),
        read_only: in_recovery || read_only,
        probe: String::new(),
        wrote,
        connect_ms,
        query_ms,
        tls: String::new(),
    })
}

type Outcome = (String, bool, bool, bool, u64);

async fn run(client: &Client, target: &Target, kind: ProbeKind, tls: &Tls) -> Result<Outcome, String> {
    let started = Instant::now();
    let err = |e: tokio_postgres::Error| explain(&e, target, tls);
    let row = client
        .query_one(
            "SELECT current_setting('server_version'), pg_is_in_recovery(), current_setting('transaction_read_only')",
            &[],
        )
        .await
        .map_err(err)?;
    let version: String = row.get(0);
    let in_recovery: bool = row.get(1);
    let read_only = row.get::<_, String>(2) == "on";
    if kind == ProbeKind::Read {
        return Ok((version, in_recovery, read_only, false, started.elapsed().as_millis() as u64));
    }
    if in_recovery || read_only {
        return Err(format!(
            "the server is read-only ({}): it cannot take writes (PostgreSQL {version})",
            if in_recovery {
                "pg_is_in_recovery() = true, a standby"
            } else {
                "transaction_read_only = on, from default_transaction_read_only"
            }
        ));
    }
    let token = probe_token();
    let back: String = match kind {
        ProbeKind::Rollback => {
            client.batch_execute("BEGIN").await.map_err(err)?;
            let result = async {
                client.batch_execute("SELECT txid_current()").await?;
                client.batch_execute("CREATE TEMPORARY TABLE drscript_probe_tx (token text NOT NULL)").await?;
                client.execute("INSERT INTO drscript_probe_tx (token) VALUES ($1)", &[&token]).await?;
                client
                    .query_one("SELECT token FROM drscript_probe_tx WHERE token = $1", &[&token])
                    .await
                    .map(|r| r.get(0))
            }
            .await;
            client.batch_execute("ROLLBACK").await.map_err(err)?;
            result.map_err(err)?
        }
        _ => {
            client
                .batch_execute("CREATE TABLE IF NOT EXISTS drscript_probe (token text NOT NULL, at timestamptz NOT NULL DEFAULT now())")
                .await
                .map_err(err)?;
            client.execute("INSERT INTO drscript_probe (token) VALUES ($1)", &[&token]).await.map_err(err)?;
            let back: String = client
                .query_one("SELECT token FROM drscript_probe WHERE token = $1", &[&token])
                .await
                .map_err(err)?
                .get(0);
            client.execute("DELETE FROM drscript_probe WHERE token = $1", &[&token]).await.map_err(err)?;
            back
        }
    };
    if back != token {
        return Err(format!("wrote `{token}` but read back `{back}`"));
    }
    Ok((version, in_recovery, read_only, true, started.elapsed().as_millis() as u64))
}

fn explain(e: &tokio_postgres::Error, target: &Target, tls: &Tls) -> String {
    if let Some(db) = e.as_db_error() {
        let code = db.code();
        let message = db.message();
        let what = if *code == SqlState::INVALID_AUTHORIZATION_SPECIFICATION && message.contains("no encryption") {
            // pg_hba.conf has only `hostssl` lines for us: the password was never even asked for.
            format!("the server requires TLS ({})", tls.origin)
        } else if *code == SqlState::INVALID_AUTHORIZATION_SPECIFICATION && message.contains("pg_hba.conf") {
            format!("the server's pg_hba.conf admits no connection for user `{}` from this host", target.user)
        } else if *code == SqlState::INVALID_PASSWORD || *code == SqlState::INVALID_AUTHORIZATION_SPECIFICATION {
            format!("bad credentials for user `{}`", target.user)
        } else if *code == SqlState::READ_ONLY_SQL_TRANSACTION {
            "the server is read-only".to_string()
        } else if *code == SqlState::INVALID_CATALOG_NAME {
            format!("database `{}` does not exist", target.database)
        } else if *code == SqlState::INSUFFICIENT_PRIVILEGE {
            format!("user `{}` lacks a privilege the probe needs", target.user)
        } else {
            "the server refused the probe".to_string()
        };
        return format!("{what}: {message} (SQLSTATE {})", code.code());
    }
    let text = e.to_string();
    let source = std::error::Error::source(e).map(|s| s.to_string()).unwrap_or_default();
    let both = if source.is_empty() { text.clone() } else { format!("{text}: {source}") };
    if source.contains("server does not support TLS") {
        format!("the server does not offer TLS ({}); set sslmode=disable only on a trusted network", tls.origin)
    } else if text.contains("TLS") || source.contains("certificate") || source.contains("tls") {
        tls::explain(&both, tls)
    } else if text.contains("error connecting") || source.contains("refused") || text.contains("timed out") {
        format!("cannot reach {}:{}: {both}", target.host, target.port)
    } else {
        both
    }
}
