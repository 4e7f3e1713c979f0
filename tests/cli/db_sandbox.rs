//! The sandbox's databases: two real PostgreSQL servers (primary and sync), TLS-only with the
//! sandbox's CA, written into its config, rehearsed with the shipped database runbooks through
//! the binary, stopped with the sandbox; a clear warning (and a working sandbox) without the
//! server binaries; a customer's database names kept by `sandbox up --like`.

use drscript_test_support::world;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use world::{BIN, RUNBOOKS, World};

fn zone(world: &World) -> String {
    std::fs::read_to_string(world.path().join("sbx/dns-zone.json")).unwrap()
}

fn pid_alive(pid: i32) -> bool {
    u32::try_from(pid).is_ok_and(drscript_base::sys::process_alive)
}

#[test]
fn sandbox_databases_rehearse_db_failover_and_failback_then_stop_with_the_sandbox() {
    let world = World::start(&[]);
    let config = std::fs::read_to_string(world.path().join("sbx/drscript.toml")).unwrap();
    for name in ["primary", "sync"] {
        assert!(config.contains(&format!("[databases.{name}]")), "{config}");
    }
    assert!(config.contains("tls = \"verify-full\"") && config.contains("ca_file = \"databases-ca.pem\""), "{config}");
    let status = world.status();
    let servers = &status["components"]["databases"];
    let pids: Vec<i32> = ["primary", "sync"].iter().map(|n| servers[n]["pid"].as_i64().unwrap() as i32).collect();
    assert!(pids.iter().all(|p| pid_alive(*p)), "{servers}");

    // TLS only, as on Azure: the server itself refuses a plain connection.
    let port = servers["primary"]["port"].as_u64().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let plain = rt
        .block_on(tokio_postgres::connect(
            &format!("host=127.0.0.1 port={port} user=app dbname=appdb password=x sslmode=disable"),
            tokio_postgres::NoTls,
        ))
        .err()
        .map(|e| e.as_db_error().map(|d| d.message().to_string()).unwrap_or_default());
    assert!(plain.as_deref().is_some_and(|m| m.contains("no encryption")), "{plain:?}");

    // The shipped runbooks, as an operator runs them against the sandbox.
    assert!(zone(&world).contains("pg-primary."));
    let out = Command::new(&*BIN)
        .arg("--config")
        .arg(world.path().join("sbx/drscript.toml"))
        .args(["run", &format!("{RUNBOOKS}/db_failover.rhai"), "--yes"])
        .current_dir(world.path())
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(zone(&world).contains("pg-sync.") && !zone(&world).contains("pg-primary."), "{}", zone(&world));
    let password = std::fs::read_to_string(world.path().join("sbx/secrets/db-sync.password")).unwrap();
    assert!(!stderr.contains(password.trim()), "the database password leaked");

    // db_failback has a manual step (replicating back): acknowledged explicitly, as --yes does not.
    world.run_ok("db_failback.rhai", &["--ack", "Replicate the sync database"]);
    assert!(zone(&world).contains("pg-primary.") && !zone(&world).contains("pg-sync."), "{}", zone(&world));

    // `sandbox down` stops the database servers too.
    let down =
        Command::new(&*BIN).args(["sandbox", "down", "--dir", "sbx"]).current_dir(world.path()).output().unwrap();
    assert!(down.status.success(), "{}", String::from_utf8_lossy(&down.stderr));
    let started = Instant::now();
    while pids.iter().any(|p| pid_alive(*p)) {
        assert!(started.elapsed() < Duration::from_secs(5), "postgres still running after sandbox down");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// db_failback while the application writes to the sync database: the side that serves stops
/// writing before the replication step, so the application writes nothing after it (none would
/// be copied back); the primary is checked again right before DNS moves back; the side starts
/// again. Judged with psql (the rows the application wrote), kubectl and the zone.
#[test]
fn db_failback_stops_the_writers_before_the_replication_so_no_write_is_left_behind() {
    use std::io::{BufRead, Write};
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    let world = World::start(&[]);
    world.run_ok("db_failover.rhai", &[]);
    let port = world.status()["components"]["databases"]["sync"]["port"].as_u64().unwrap();
    let password = std::fs::read_to_string(world.path().join("sbx/secrets/db-sync.password")).unwrap();
    let ca = world.path().join("sbx/databases-ca.pem");
    let mut psql = Command::new("psql")
        .arg(format!(
            "host=127.0.0.1 port={port} user=app dbname=appdb sslmode=verify-full sslrootcert={}",
            ca.display()
        ))
        .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"])
        .env("PGPASSWORD", password.trim())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("psql (postgresql-client) is installed by the test setup");
    let mut sql = psql.stdin.take().unwrap();
    // `alive`: when the application last saw its pods running before it wrote (an in-flight
    // write of a pod that is stopping lands a moment later, as on a real cluster).
    writeln!(sql, "CREATE TEMPORARY TABLE w (alive timestamptz NOT NULL);").unwrap();
    // The application: it writes to the sync database while DNS points at it and PROD's runtime
    // has pods (once DNS points back at the primary, its writes go there).
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let written = std::sync::Arc::new(AtomicUsize::new(0));
    let sbx = world.path().join("sbx");
    let app = {
        let (stop, written) = (stop.clone(), written.clone());
        std::thread::spawn(move || {
            let at_sync =
                || std::fs::read_to_string(sbx.join("dns-zone.json")).unwrap_or_default().contains("pg-sync.");
            while !stop.load(Ordering::Relaxed) && at_sync() {
                let alive = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
                let out =
                    Command::new(&*BIN).args(["sandbox", "status", "--json", "--dir"]).arg(&sbx).output().unwrap();
                // Read after the pods: DNS still at the sync database means the pods seen are
                // the ones from before the switch back (the runbook starts new ones after it).
                if !at_sync() {
                    break;
                }
                let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
                let runs = status["environments"]["prod"]["pods"]
                    .as_array()
                    .is_some_and(|pods| pods.iter().any(|p| p["name"].as_str().unwrap_or("").contains("runtime")));
                if runs {
                    writeln!(sql, "INSERT INTO w (alive) VALUES ('{alive}');").unwrap();
                    written.fetch_add(1, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            sql
        })
    };
    while written.load(Ordering::Relaxed) < 3 {
        std::thread::sleep(Duration::from_millis(20));
    }
    let runs_before = world.runs();
    let log = world.run_ok("db_failback.rhai", &["--ack", "Replicate the sync database"]);
    stop.store(true, Ordering::Relaxed);
    let mut sql = app.join().unwrap();
    let run = world.runs().difference(&runs_before).next().cloned().unwrap();
    let replication = world::journal(&run)
        .into_iter()
        .find(|r| r["event"] == "step_started" && r["title"] == "Replicate the sync database back to the primary")
        .unwrap_or_else(|| panic!("{log}"))["ts"]
        .as_str()
        .unwrap()
        .to_string();
    writeln!(sql, "SELECT count(*) FROM w;").unwrap();
    writeln!(sql, "SELECT count(*) FROM w WHERE alive >= '{replication}';").unwrap();
    drop(sql);
    let out = psql.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let counts: Vec<u64> = out.stdout.lines().map(|l| l.unwrap().trim().parse().unwrap()).collect();
    assert!(counts[0] >= 3, "the application wrote before the failback: {counts:?}");
    assert_eq!(counts[1], 0, "writes landed on the sync database after the replication started: {counts:?}\n{log}");
    // The order of the steps, and the application back.
    let at = |text: &str| log.find(text).unwrap_or_else(|| panic!("{text}: {log}"));
    assert!(at("Stop prod's writers") < at("Replicate the sync database back"), "{log}");
    assert!(at("Check the primary database again") < at("Point database DNS at the primary"), "{log}");
    assert!(at("Point database DNS at the primary") < at("Start prod's writers"), "{log}");
    assert!(log.contains("resolvers may answer the old address for up to"), "{log}");
    assert!(zone(&world).contains("pg-primary.") && !zone(&world).contains("pg-sync."), "{}", zone(&world));
    let runtime = world.kubectl("prod", &["get", "deployment", "ac-ac-runtime", "-o", "jsonpath={.spec.replicas}"]);
    assert_eq!(runtime, "2", "kubectl: PROD's runtime started again");
}

#[test]
fn without_postgres_binaries_the_sandbox_warns_how_to_install_them_and_runs_without_databases() {
    let dir = tempfile::tempdir().unwrap();
    let empty = tempfile::tempdir().unwrap();
    let log = dir.path().join("sandbox.log");
    let mut sandbox = Command::new(&*BIN)
        .args(["sandbox", "up", "--dir", "sbx", "--start-delay", "0.05", "--stop-delay", "0.05"])
        .env("DRSCRIPT_POSTGRES_BIN", empty.path())
        .env("NO_COLOR", "1")
        .current_dir(dir.path())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while !dir.path().join("sbx/sandbox.json").exists() {
        assert!(started.elapsed() < Duration::from_secs(60), "{}", std::fs::read_to_string(&log).unwrap());
        std::thread::sleep(Duration::from_millis(20));
    }
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("no PostgreSQL server binaries") && text.contains("apt-get install -y postgresql"), "{text}");
    let config = dir.path().join("sbx/drscript.toml");
    assert!(!std::fs::read_to_string(&config).unwrap().contains("[databases."));
    // The rest of the sandbox works: the preflight passes against it.
    let out = Command::new(&*BIN)
        .arg("--config")
        .arg(&config)
        .args(["run", &format!("{RUNBOOKS}/preflight.rhai"), "--yes"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let _ = Command::new(&*BIN).args(["sandbox", "down", "--dir", "sbx"]).current_dir(dir.path()).output();
    let _ = sandbox.kill();
    let _ = sandbox.wait();
}

#[test]
fn sandbox_like_a_customer_keeps_its_database_names() {
    let dir = tempfile::tempdir().unwrap();
    let customer = dir.path().join("customer.toml");
    std::fs::write(
        &customer,
        format!(
            "{}\n[databases.orders_wus2]\nurl = \"postgres://connect_app@contoso-pg-wus2.postgres.database.azure.com/integration?sslmode=verify-full\"\npassword_env = \"CONTOSO_DB_PASSWORD\"\n",
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/contoso/drscript.toml")).unwrap()
        ),
    )
    .unwrap();
    let world = World::start(&["--like", customer.to_str().unwrap()]);
    let config = std::fs::read_to_string(world.path().join("sbx/drscript.toml")).unwrap();
    assert!(config.contains("[databases.orders_wus2]") && !config.contains("[databases.primary]"), "{config}");
    assert!(config.contains("postgres://connect_app@127.0.0.1:") && config.contains("/integration\""), "{config}");
    std::fs::write(
        world.path().join("probe.rhai"),
        "let p = db_probe(\"orders_wus2\");\nprint(`role=${p.role} wrote=${p.wrote} tls=${p.tls}`);\n",
    )
    .unwrap();
    let out = world.drscript(&["run", "probe.rhai"]);
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("role=primary wrote=true tls=verify-full"), "{text}");
}

/// The outage gate in front of a sandbox database: refused while down, the same data after.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_behind_its_gate_goes_down_and_comes_back() {
    use drscript_sandbox::databases::{Databases, DbSpec};
    use drscript_sandbox::outage::GateMode;
    let dir = tempfile::tempdir().unwrap();
    let dbs = Databases::start(dir.path(), DbSpec::defaults()).await.unwrap().expect("PostgreSQL binaries");
    let sections = drscript_sandbox::Component::config_sections(&dbs).concat();
    std::fs::write(
        dir.path().join("drscript.toml"),
        format!(
            "[environments.prod]\nnamespace = \"a\"\nrelease = \"ac\"\ngateway = \"https://x.example\"\n\n{sections}"
        ),
    )
    .unwrap();
    let config = drscript_core::config::Config::load(&dir.path().join("drscript.toml")).unwrap();
    let primary = &config.databases["primary"];
    assert!(drscript_core::db::probe("primary", primary).await.unwrap().wrote);

    dbs.gate("primary").unwrap().set(GateMode::Refuse);
    let e = drscript_core::db::probe("primary", primary).await.unwrap_err().to_string();
    assert!(e.contains("cannot reach 127.0.0.1"), "{e}");
    assert!(drscript_core::db::probe("sync", &config.databases["sync"]).await.unwrap().wrote, "sync stays up");

    dbs.gate("primary").unwrap().set(GateMode::Open);
    let started = Instant::now();
    loop {
        match drscript_core::db::probe("primary", primary).await {
            Ok(r) => break assert!(r.wrote),
            Err(e) => assert!(started.elapsed() < Duration::from_secs(10), "{e}"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
