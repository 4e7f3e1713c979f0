//! db_probe against a real PostgreSQL started by the test.

use drscript_test_support::harness;
use drscript_test_support::servers;

use drscript_core::db;
use drscript_core::exec::Mode;
use harness::{Harness, assert_no_secret};
use servers::Postgres;

fn toml(pg: &Postgres, down_port: u16) -> String {
    let base = format!("postgres://app@127.0.0.1:{}", pg.port);
    format!(
        r#"
[databases.primary]
url = "{base}/appdb"
password_file = "app.pw"

[databases.scratch]
url = "{base}/appdb"
password_file = "app.pw"
probe = "scratch_table"

[databases.readonly]
url = "{base}/rodb"
password_file = "app.pw"

[databases.readonly_read]
url = "postgresql://app@127.0.0.1:{port}/rodb"
password_file = "app.pw"
probe = "read"

[databases.badpw]
url = "{base}/appdb"
password_file = "wrong.pw"

[databases.down]
url = "postgres://app@127.0.0.1:{down_port}/appdb"
password_file = "app.pw"
timeout_secs = 20

[databases.needs_tls]
url = "{base}/appdb"
password_file = "app.pw"
tls = "require"
"#,
        port = pg.port
    )
}

fn harness(pg: &Postgres, mode: Mode) -> (Harness, u16) {
    let down = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let wrong = servers::random_password();
    let h = Harness::new(&toml(pg, down), &[("app.pw", &pg.app_password), ("wrong.pw", &wrong)], mode);
    (h, down)
}

#[test]
fn probe_writes_reads_back_and_leaves_nothing_behind() {
    let pg = Postgres::start();
    let (h, _) = harness(&pg, Mode::Live);

    let report = db::db_probe(&h.exec, "primary").unwrap();
    assert_eq!(
        (report.engine.as_str(), report.role.as_str(), report.probe.as_str()),
        ("postgres", "primary", "rollback")
    );
    assert!(report.wrote && !report.read_only);
    let version = pg.query_text("postgres", "SHOW server_version").unwrap();
    assert_eq!(report.server_version, version);
    assert_eq!(
        pg.query_text("appdb", "SELECT count(*) FROM pg_tables WHERE tablename LIKE 'drscript%'").as_deref(),
        Some("0"),
        "rolled back"
    );

    let scratch = db::db_probe(&h.exec, "scratch").unwrap();
    assert!(scratch.wrote);
    assert_eq!(
        pg.query_text("appdb", "SELECT count(*) FROM drscript_probe").as_deref(),
        Some("0"),
        "the probe row was deleted"
    );

    // Plan mode never connects.
    h.with_mode(Mode::Plan);
    let planned = db::db_probe(&h.exec, "primary").unwrap();
    assert_eq!(planned.server_version, "(plan)");

    assert_no_secret(&pg.app_password, &[&h.journal_text(), &format!("{report:?}{scratch:?}")]);

    // The same through a runbook and the real binary.
    std::fs::write(
        h.dir.path().join("probe.rhai"),
        "let p = db_probe(\"primary\");\nprint(`role=${p.role} wrote=${p.wrote} engine=${p.engine}`);\n",
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_drscript"))
        .args(["run", "probe.rhai"])
        .current_dir(h.dir.path())
        .env_remove("DRSCRIPT_CONFIG")
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{text}");
    assert!(text.contains("role=primary wrote=true engine=postgres"), "{text}");
    assert_no_secret(&pg.app_password, &[&text]);
}

#[test]
fn bad_input_read_only_bad_credentials_unreachable_and_wrong_scheme() {
    let pg = Postgres::start();
    let (h, down) = harness(&pg, Mode::Live);

    let e = db::db_probe(&h.exec, "readonly").unwrap_err().to_string();
    assert!(e.contains("read-only") && e.contains("default_transaction_read_only") && e.contains("rodb"), "{e}");
    let read = db::db_probe(&h.exec, "readonly_read").unwrap();
    assert_eq!((read.role.as_str(), read.read_only, read.wrote), ("read_only", true, false));

    let e = db::db_probe(&h.exec, "badpw").unwrap_err().to_string();
    assert!(e.contains("bad credentials for user `app`") && e.contains("28P01"), "{e}");

    let e = db::db_probe(&h.exec, "down").unwrap_err().to_string();
    assert!(e.contains(&format!("cannot reach 127.0.0.1:{down}")), "{e}");

    // This server has no TLS at all: `require` refuses to go on in plain text.
    let e = db::db_probe(&h.exec, "needs_tls").unwrap_err().to_string();
    assert!(e.contains("the server does not offer TLS (tls = \"require\" in [databases.needs_tls])"), "{e}");

    let e = db::db_probe(&h.exec, "missing").unwrap_err();
    assert!(e.is_bad_input() && e.to_string().contains("`missing` is not in [databases]"), "{e}");

    // Wrong scheme: the config refuses it, naming the key; the probe refuses it too.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("drscript.toml"),
        format!("{}\n[databases.x]\nurl = \"sqlserver://app@127.0.0.1/appdb\"\n", harness::ENVIRONMENTS),
    )
    .unwrap();
    let e = drscript_core::config::Config::load(&dir.path().join("drscript.toml")).unwrap_err().to_string();
    assert!(e.contains("databases.x.url") && e.contains("postgres://"), "{e}");
    let e = db::Target::parse("sqlserver://app@127.0.0.1/appdb").unwrap_err().to_string();
    assert!(e.contains("scheme `sqlserver` is not supported"), "{e}");

    let journal = h.journal_text();
    assert_no_secret(&pg.app_password, &[&journal]);
    assert_no_secret(&std::fs::read_to_string(h.dir.path().join("wrong.pw")).unwrap(), &[&journal]);
}

/// The server as Azure's flexible servers are set up: TLS only (`hostssl`), a CA the client
/// must be given.
fn tls_toml(port: u16) -> String {
    let db = |name: &str, user: &str, host: &str, database: &str, extra: &str| {
        format!(
            "\n[databases.{name}]\nurl = \"postgres://{user}@{host}:{port}/{database}\"\npassword_file = \"app.pw\"\n{extra}\n"
        )
    };
    [
        db("full_url", "app", "localhost", "appdb?sslmode=verify-full", "ca_file = \"ca.pem\""),
        db("full", "app", "localhost", "appdb", "tls = \"verify-full\"\nca_file = \"ca.pem\""),
        db("wrong_ca", "app", "localhost", "appdb", "tls = \"verify-full\"\nca_file = \"other-ca.pem\""),
        db("wrong_name", "app", "127.0.0.1", "appdb", "tls = \"verify-full\"\nca_file = \"ca.pem\""),
        db("any_name", "app", "127.0.0.1", "appdb", "tls = \"verify-ca\"\nca_file = \"ca.pem\""),
        db("require", "app", "127.0.0.1", "appdb", "tls = \"require\""),
        db("loopback_default", "app", "127.0.0.1", "appdb", ""),
        db("plain", "app", "127.0.0.1", "appdb?sslmode=disable", ""),
        db("system_store", "app", "localhost", "appdb", "tls = \"verify-full\""),
        db("appuser", "appuser", "localhost", "appdb", "tls = \"verify-full\"\nca_file = \"ca.pem\""),
        db(
            "appuser_scratch",
            "appuser",
            "localhost",
            "appdb",
            "tls = \"verify-full\"\nca_file = \"ca.pem\"\nprobe = \"scratch_table\"",
        ),
        db("appuser_readonly", "appuser", "localhost", "rodb", "tls = \"verify-full\"\nca_file = \"ca.pem\""),
    ]
    .concat()
}

#[test]
fn tls_only_server_verify_full_passes_wrong_ca_and_name_fail_plain_is_told_tls_is_required() {
    let pki_dir = tempfile::tempdir().unwrap();
    let pki = servers::Pki::new(pki_dir.path());
    let pg = Postgres::start_tls(&pki);
    let ca = std::fs::read_to_string(&pki.ca).unwrap();
    let other = std::fs::read_to_string(&pki.other_ca).unwrap();
    let h = Harness::new(
        &tls_toml(pg.port),
        &[("app.pw", &pg.app_password), ("ca.pem", &ca), ("other-ca.pem", &other)],
        Mode::Live,
    );

    for name in ["full_url", "full", "any_name", "require", "loopback_default"] {
        let r = db::db_probe(&h.exec, name).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(r.wrote && r.role == "primary", "{name}: {r:?}");
    }
    assert_eq!(db::db_probe(&h.exec, "full").unwrap().tls, "verify-full");
    assert_eq!(db::db_probe(&h.exec, "loopback_default").unwrap().tls, "prefer");
    // The server saw TLS on every connection: pg_stat_ssl of a probe's own backend.
    assert_eq!(
        pg.query_text("postgres", "SELECT count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) WHERE a.client_addr IS NOT NULL AND NOT s.ssl").as_deref(),
        Some("0")
    );

    let e = db::db_probe(&h.exec, "wrong_ca").unwrap_err().to_string();
    assert!(e.contains("not signed by a CA in ca_file") && e.contains("other-ca.pem"), "{e}");
    let e = db::db_probe(&h.exec, "wrong_name").unwrap_err().to_string();
    assert!(e.contains("not issued for this host name") && e.contains("127.0.0.1"), "{e}");
    let e = db::db_probe(&h.exec, "plain").unwrap_err().to_string();
    assert!(
        e.contains("the server requires TLS (sslmode=disable in the URL)") && !e.contains("bad credentials"),
        "{e}"
    );

    // An application's account: no CREATE on public (PostgreSQL 15), yet the probe proves a write.
    assert_eq!(
        pg.query_text("appdb", "SELECT has_schema_privilege('appuser', 'public', 'CREATE')").as_deref(),
        Some("f")
    );
    let r = db::db_probe(&h.exec, "appuser").unwrap();
    assert!(r.wrote && !r.read_only && r.role == "primary", "{r:?}");
    let e = db::db_probe(&h.exec, "appuser_scratch").unwrap_err().to_string();
    assert!(e.contains("lacks a privilege") && e.contains("42501"), "{e}");
    let e = db::db_probe(&h.exec, "appuser_readonly").unwrap_err().to_string();
    assert!(e.contains("read-only") && e.contains("transaction_read_only"), "{e}");

    // Through the binary: the operator reads the diagnosis, never the password.
    std::fs::write(
        h.dir.path().join("probe.rhai"),
        "let p = db_probe(\"full\");\nprint(`full: role=${p.role} tls=${p.tls}`);\ndb_probe(\"plain\");\n",
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_drscript"))
        .args(["run", "probe.rhai", "--yes"])
        .current_dir(h.dir.path())
        .env_remove("DRSCRIPT_CONFIG")
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!out.status.success());
    assert!(format!("{stdout}{stderr}").contains("full: role=primary tls=verify-full"), "{stdout}{stderr}");
    assert!(stderr.contains("the server requires TLS (sslmode=disable in the URL)"), "{stderr}");
    assert_no_secret(&pg.app_password, &[&stdout, &stderr, &h.journal_text()]);
}

#[test]
fn tls_settings_are_checked_when_the_config_loads_and_urls_are_echoed_masked() {
    let load = |db: &str| {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("drscript.toml"), format!("{}\n[databases.x]\n{db}\n", harness::ENVIRONMENTS))
            .unwrap();
        drscript_core::config::Config::load(&dir.path().join("drscript.toml")).map(|_| ()).map_err(|e| e.to_string())
    };
    let e = load("url = \"postgres://app@db.example/appdb\"\ntls = \"verify_full\"").unwrap_err();
    assert!(e.contains("databases.x.tls") && e.contains("verify-full"), "{e}");
    let e = load("url = \"postgres://app@db.example/appdb?sslmode=VERIFY_IDENTITY\"").unwrap_err();
    assert!(e.contains("databases.x.url") && e.contains("sslmode=VERIFY_IDENTITY is not one of"), "{e}");
    let e = load("url = \"mysql://app@db.example/appdb?sslmode=require\"").unwrap_err();
    assert!(e.contains("databases.x.url") && e.contains("parameter `sslmode` is not supported"), "{e}");
    let e = load("url = \"postgres://app@db.example/appdb?sslmode=require\"\ntls = \"verify-full\"").unwrap_err();
    assert!(e.contains("databases.x.tls") && e.contains("disagrees with sslmode=require"), "{e}");
    load("url = \"mysql://app@db.example/appdb?ssl-mode=VERIFY_IDENTITY\"\nca_file = \"ca.pem\"").unwrap();

    // A URL that does not parse, with a password in it: named, never echoed whole.
    let secret = "Hunter2-not-for-eyes";
    let broken = format!("postgres://app:{secret}@db.example:99999/appdb");
    let e = db::Target::parse(&broken).unwrap_err().to_string();
    assert!(e.contains("is not a URL") && e.contains("postgres://app:***@db.example:99999/appdb"), "{e}");
    assert_no_secret(secret, &[&e]);
    // The config error quotes the line; every output passes through the redaction layer, where
    // loading the config registered the password.
    let e = drscript_base::redact::redacted(load(&format!("url = \"{broken}\"")).unwrap_err());
    assert!(e.contains("databases.x.url"), "{e}");
    assert_no_secret(secret, &[&e]);

    // And through the binary, where the error quotes the config line.
    let query_secret = "Query-secret-9981";
    for url in [broken.clone(), format!("postgres://app@db.example:1/appdb?password={query_secret}")] {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("drscript.toml"),
            format!("{}\n[databases.x]\nurl = \"{url}\"\n", harness::ENVIRONMENTS),
        )
        .unwrap();
        std::fs::write(dir.path().join("probe.rhai"), "db_probe(\"x\");\n").unwrap();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_drscript"))
            .args(["run", "probe.rhai"])
            .current_dir(dir.path())
            .env_remove("DRSCRIPT_CONFIG")
            .env("NO_COLOR", "1")
            .output()
            .unwrap();
        let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(!out.status.success() && stderr.contains("databases.x.url"), "{stderr}");
        assert_no_secret(secret, &[&stdout, &stderr]);
        assert_no_secret(query_secret, &[&stdout, &stderr]);
    }
}

#[test]
fn a_hot_standby_probes_as_a_read_only_replica() {
    let pg = Postgres::start();
    let standby = pg.standby();
    let url = format!("postgres://app@127.0.0.1:{}/appdb", standby.port);
    let h = Harness::new(
        &format!(
            "[databases.replica]\nurl = \"{url}\"\npassword_file = \"app.pw\"\n\n[databases.replica_read]\nurl = \"{url}\"\npassword_file = \"app.pw\"\nprobe = \"read\"\n"
        ),
        &[("app.pw", &pg.app_password)],
        Mode::Live,
    );
    let e = db::db_probe(&h.exec, "replica").unwrap_err().to_string();
    assert!(e.contains("the server is read-only") && e.contains("pg_is_in_recovery() = true, a standby"), "{e}");
    let r = db::db_probe(&h.exec, "replica_read").unwrap();
    assert_eq!((r.role.as_str(), r.read_only, r.wrote), ("replica", true, false));
    // The same account writes on the primary it replicates from.
    let config = h.exec.config().unwrap();
    let on_primary = drscript_core::config::Database {
        url: format!("postgres://app@127.0.0.1:{}/appdb", pg.port),
        ..config.databases["replica"].clone()
    };
    let report = h.rt.block_on(db::probe("primary", &on_primary)).unwrap();
    assert!(report.wrote && report.role == "primary", "{report:?}");
}
