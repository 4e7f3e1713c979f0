//! db_probe against a real PostgreSQL started by the test.

#[path = "dns_support/harness.rs"]
mod harness;
#[path = "db_support/servers.rs"]
mod servers;

use drscript::db;
use drscript::exec::Mode;
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

    let e = db::db_probe(&h.exec, "missing").unwrap_err();
    assert!(e.is_bad_input() && e.to_string().contains("`missing` is not in [databases]"), "{e}");

    // Wrong scheme: the config refuses it, naming the key; the probe refuses it too.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("drscript.toml"),
        format!("{}\n[databases.x]\nurl = \"sqlserver://app@127.0.0.1/appdb\"\n", harness::ENVIRONMENTS),
    )
    .unwrap();
    let e = drscript::config::Config::load(&dir.path().join("drscript.toml")).unwrap_err().to_string();
    assert!(e.contains("databases.x.url") && e.contains("postgres://"), "{e}");
    let e = db::Target::parse("sqlserver://app@127.0.0.1/appdb").unwrap_err().to_string();
    assert!(e.contains("scheme `sqlserver` is not supported"), "{e}");

    let journal = h.journal_text();
    assert_no_secret(&pg.app_password, &[&journal]);
    assert_no_secret(&std::fs::read_to_string(h.dir.path().join("wrong.pw")).unwrap(), &[&journal]);
}
