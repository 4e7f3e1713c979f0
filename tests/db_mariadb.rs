//! db_probe against a real MariaDB started by the test.

#[path = "dns_support/harness.rs"]
mod harness;
#[path = "db_support/servers.rs"]
mod servers;

use drscript::db;
use drscript::exec::Mode;
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
    assert_eq!(m.sql("SELECT COUNT(*) FROM appdb.drscript_probe"), "0", "the write was rolled back");

    let scratch = db::db_probe(&h.exec, "scratch").unwrap();
    assert!(scratch.wrote);
    assert_eq!(m.sql("SELECT COUNT(*) FROM appdb.drscript_probe"), "0", "the probe row was deleted");

    let e = db::db_probe(&h.exec, "badpw").unwrap_err().to_string();
    assert!(e.contains("bad credentials for user `app`") && e.contains("1045"), "{e}");

    let e = db::db_probe(&h.exec, "down").unwrap_err().to_string();
    assert!(e.contains(&format!("cannot reach 127.0.0.1:{down}")), "{e}");

    // Now make the server read-only, as a replica or a fenced primary is.
    m.sql("SET GLOBAL read_only = 1");
    let e = db::db_probe(&h.exec, "primary").unwrap_err().to_string();
    assert!(e.contains("read-only") && e.contains("@@read_only = 1") && e.contains("appdb"), "{e}");
    let replica = db::db_probe(&h.exec, "replica").unwrap();
    assert_eq!((replica.role.as_str(), replica.read_only, replica.wrote), ("read_only", true, false));

    let journal = h.journal_text();
    assert_no_secret(&m.app_password, &[&journal, &format!("{report:?}{scratch:?}")]);
    assert_no_secret(&wrong, &[&journal]);
}
