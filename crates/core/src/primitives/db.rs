//! `db_probe`: database checks from scripts, over [`crate::db`].

use rhai::plugin::*;
use rhai::{Dynamic, EvalAltResult, NativeCallContext};
use serde_json::json;

use super::dns::to_value;
use super::{exec_of, to_rhai};

type RhaiResult<T = Dynamic> = Result<T, Box<EvalAltResult>>;

#[export_module]
pub mod db_api {
    use super::*;

    /// Connects to the database `name` of `[databases]` within its `timeout_secs`, over TLS as
    /// its `tls` setting or URL (`sslmode`, `ssl-mode`) says (default `require`, `prefer` on the
    /// loopback), and proves it can take writes without needing CREATE: the server's read-only
    /// switches are read and a row is written to a temporary table in a transaction that is
    /// rolled back (`probe = "scratch_table"` writes to a table instead; `probe = "read"` only
    /// reads). Fails with a clear message on bad credentials, a server that requires TLS, a
    /// certificate that does not verify, an unreachable host or a read-only server. Returns
    /// `#{name, engine, address, server_version, role, read_only, wrote, connect_ms, query_ms,
    /// tls}`; `role` is `primary`, `replica` (PostgreSQL in recovery) or `read_only`; `wrote` is
    /// false when the account may write no table the probe can use (MySQL without CREATE
    /// TEMPORARY TABLES): the read-only switches and a read-write transaction are then the proof.
    ///
    /// ```rhai
    /// let p = db_probe("primary");
    /// if p.role != "primary" { fail("the primary database is " + p.role); }
    /// ```
    #[rhai_fn(return_raw)]
    pub fn db_probe(ctx: NativeCallContext, name: &str) -> RhaiResult {
        let exec = exec_of(&ctx);
        let report = crate::db::db_probe(&exec, name).map_err(to_rhai)?;
        if report.server_version != "(plan)" {
            exec.metric(
                "db_probe",
                json!(format!(
                    "{}: {} {} ({}), tls {}, wrote {}, connect {} ms, probe {} ms",
                    report.name,
                    report.engine,
                    report.role,
                    report.server_version,
                    report.tls,
                    report.wrote,
                    report.connect_ms,
                    report.query_ms
                )),
            )
            .map_err(to_rhai)?;
        }
        to_value(&report)
    }
}

pub fn register(engine: &mut rhai::Engine) {
    engine.register_global_module(rhai::exported_module!(db_api).into());
}
