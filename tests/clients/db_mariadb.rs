//! db_probe against a real MariaDB started by the test.

use drscript_test_support::harness;
use drscript_test_support::servers;

use drscript_core::db;
use drscript_core::exec::Mode;
use harness::{Harness, assert_no_secret};
use servers::Mariadb;

fn harness(m: &Mariadb) -> (Harness, String, u16) {
    let down = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let wrong = servers::random_password();
    let toml = format!(
        r#"
[databases.primary]
url = "mysql://app@127.0.0.1:{port}/appdb"
password_file = "app.pw"

[databases.scratch]
url = "mariadb://app@127.0.0.1:{port}/appdb"
password_file = "app.pw"
probe = "scratch_table"

[databases.replica]
url = "mysql://app@127.0.0.1:{port}/appdb"
password_file = "app.pw"
probe = "read"

[databases.badpw]
url = "mysql://app@127.0.0.1:{port}/appdb"
password_file = "wrong.pw"

[databases.down]
url = "mysql://app@127.0.0.1:{down}/appdb"
password_file = "app.pw"

[databases.needs_tls]
url = "mysql://app@127.0.0.1:{port}/appdb?ssl-mode=REQUIRED"
password_file = "app.pw"
"#,
        port = m.port
    );
    let h = Harness::new(&toml, &[("app.pw", &m.app_password), ("wrong.pw", &wrong)], Mode::Live);
    (h, wrong, down)
}

#[test]
fn probe_proves_writes_then_reports_a_read_only_server() {
    let m = Mariadb::start();
    let (h, wrong, down) = harness(&m);

    let report = db::db_probe(&h.exec, "primary").unwrap();
    assert_eq!((report.engine.as_str(), report.role.as_str()), ("mysql", "primary"));
    assert!(report.wrote && !report.read_only);
    assert_eq!(report.server_version, m.sql("SELECT VERSION()"));
    assert_eq!(
        m.sql("SELECT COUNT(*) FROM information_schema.tables WHERE table_name LIKE 'drscript%'"),
        "0",
        "a temporary table, rolled back: nothing left behind"
    );

    let scratch = db::db_probe(&h.exec, "scratch").unwrap();
    assert!(scratch.wrote);
    assert_eq!(m.sql("SELECT COUNT(*) FROM appdb.drscript_probe"), "0", "the probe row was deleted");

    let e = db::db_probe(&h.exec, "badpw").unwrap_err().to_string();
    assert!(e.contains("bad credentials for user `app`") && e.contains("1045"), "{e}");

    let e = db::db_probe(&h.exec, "down").unwrap_err().to_string();
    assert!(e.contains(&format!("cannot reach 127.0.0.1:{down}")), "{e}");

    // This server has no TLS configured: REQUIRED does not fall back to plain text.
    let e = db::db_probe(&h.exec, "needs_tls").unwrap_err().to_string();
    assert!(e.contains("the server does not offer TLS (ssl-mode=REQUIRED in the URL)"), "{e}");

    // Now make the server read-only, as a replica or a fenced primary is.
    m.sql("SET GLOBAL read_only = 1");
    let e = db::db_probe(&h.exec, "primary").unwrap_err().to_string();
    assert!(e.contains("read-only") && e.contains("@@read_only = ON") && e.contains("appdb"), "{e}");
    let replica = db::db_probe(&h.exec, "replica").unwrap();
    assert_eq!((replica.role.as_str(), replica.read_only, replica.wrote), ("read_only", true, false));

    let journal = h.journal_text();
    assert_no_secret(&m.app_password, &[&journal, &format!("{report:?}{scratch:?}")]);
    assert_no_secret(&wrong, &[&journal]);
}

#[test]
fn tls_required_server_verify_identity_application_account_and_read_only() {
    let pki_dir = tempfile::tempdir().unwrap();
    let pki = servers::Pki::new(pki_dir.path());
    let m = Mariadb::start_tls(&pki);
    assert_eq!(m.sql("SELECT @@require_secure_transport"), "1");
    let db = |name: &str, user: &str, host: &str, query: &str, extra: &str| {
        format!(
            "\n[databases.{name}]\nurl = \"mysql://{user}@{host}:{}/appdb{query}\"\npassword_file = \"app.pw\"\n{extra}\n",
            m.port
        )
    };
    let toml = [
        db("full_url", "app", "localhost", "?ssl-mode=VERIFY_IDENTITY", "ca_file = \"ca.pem\""),
        db("full", "app", "localhost", "", "tls = \"verify-full\"\nca_file = \"ca.pem\""),
        db("wrong_ca", "app", "localhost", "", "tls = \"verify-full\"\nca_file = \"other-ca.pem\""),
        db("wrong_name", "app", "127.0.0.1", "", "tls = \"verify-full\"\nca_file = \"ca.pem\""),
        db("any_name", "app", "127.0.0.1", "?ssl-mode=VERIFY_CA", "ca_file = \"ca.pem\""),
        db("require", "app", "127.0.0.1", "?ssl-mode=REQUIRED", ""),
        db("plain", "app", "127.0.0.1", "?ssl-mode=DISABLED", ""),
        db("appuser", "appuser", "localhost", "", "tls = \"verify-full\"\nca_file = \"ca.pem\""),
        db("appuser_read", "appuser", "localhost", "", "tls = \"verify-full\"\nca_file = \"ca.pem\"\nprobe = \"read\""),
    ]
    .concat();
    let ca = std::fs::read_to_string(&pki.ca).unwrap();
    let other = std::fs::read_to_string(&pki.other_ca).unwrap();
    let h = Harness::new(&toml, &[("app.pw", &m.app_password), ("ca.pem", &ca), ("other-ca.pem", &other)], Mode::Live);

    for name in ["full_url", "full", "any_name", "require"] {
        let r = db::db_probe(&h.exec, name).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(r.wrote && r.role == "primary", "{name}: {r:?}");
    }
    let e = db::db_probe(&h.exec, "wrong_ca").unwrap_err().to_string();
    assert!(e.contains("not signed by a CA in ca_file") && e.contains("other-ca.pem"), "{e}");
    let e = db::db_probe(&h.exec, "wrong_name").unwrap_err().to_string();
    assert!(e.contains("not issued for this host name") && e.contains("127.0.0.1"), "{e}");
    let e = db::db_probe(&h.exec, "plain").unwrap_err().to_string();
    assert!(
        e.contains("the server requires TLS (ssl-mode=DISABLED in the URL)") && !e.contains("bad credentials"),
        "{e}"
    );

    // Only SELECT/INSERT/UPDATE/DELETE: no CREATE, not even of a temporary table.
    assert!(!m.sql("SHOW GRANTS FOR 'appuser'@'%'").contains("CREATE"));
    let r = db::db_probe(&h.exec, "appuser").unwrap();
    assert!(!r.read_only && r.role == "primary", "{r:?}");
    assert_eq!(m.sql("SELECT COUNT(*) FROM information_schema.tables WHERE table_name LIKE 'drscript%'"), "0");

    // A read-only server, as a replica is: the application's account cannot write.
    m.sql("SET GLOBAL read_only = 1");
    let e = db::db_probe(&h.exec, "appuser").unwrap_err().to_string();
    assert!(e.contains("read-only") && e.contains("@@read_only = ON"), "{e}");
    let r = db::db_probe(&h.exec, "appuser_read").unwrap();
    assert_eq!((r.role.as_str(), r.read_only), ("read_only", true));
    assert_no_secret(&m.app_password, &[&h.journal_text()]);
}
