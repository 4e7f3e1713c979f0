//! What clients are told after a switch: the sandbox's resolvers, checked with the real `dig`,
//! and `wait_resolvers` in runbooks: resolvers that still hold the old value in their caches
//! are waited for, and named when the wait is over; a resolver that does not answer is a warning
//! in the report, not a failed switch.

use drscript_test_support::world;

use std::process::Command;

use world::{RUNBOOKS, World};

/// The `[dns] resolvers` the sandbox wrote into its config.
fn resolvers(world: &World) -> Vec<String> {
    let config = std::fs::read_to_string(world.path().join("sbx/drscript.toml")).unwrap();
    let line = config.lines().find(|l| l.starts_with("resolvers = ")).expect("the sandbox lists its resolvers");
    line.split('"').skip(1).step_by(2).map(str::to_string).collect()
}

/// `dig` against one resolver: the whole answer text.
fn dig(resolver: &str, extra: &[&str], name: &str, record_type: &str) -> String {
    let (host, port) = resolver.rsplit_once(':').unwrap();
    let out = Command::new("dig")
        .args([&format!("@{host}"), "-p", port, "+time=3", "+tries=1"])
        .args(extra)
        .args([name, record_type])
        .output()
        .expect("dig is installed by tests/support/requirements-azure.sh");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn run_script(world: &World, script: &str) -> (i32, String) {
    let path = world.path().join("script.rhai");
    std::fs::write(&path, script).unwrap();
    let out = world.drscript(&["run", path.to_str().unwrap(), "--yes"]);
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn the_sandbox_resolvers_answer_as_resolvers_do_over_udp_and_tcp() {
    let world = World::start(&[]);
    let list = resolvers(&world);
    assert_eq!(list.len(), 2, "{list:?}");
    for resolver in &list {
        for transport in [&[][..], &["+tcp"][..]] {
            let answer = dig(resolver, transport, "app.adeptia.sandbox", "A");
            assert!(answer.contains("status: NOERROR"), "{answer}");
            assert!(
                answer.contains("flags: qr rd ra;"),
                "a resolver: recursion available, not authoritative\n{answer}"
            );
            assert!(answer.contains("app.adeptia.sandbox.\t60\tIN\tA\t127.0.1.10"), "{answer}");
        }
        let db = dig(resolver, &[], "db.adeptia.sandbox", "A");
        assert!(db.contains("IN\tCNAME\tpg-primary.adeptia.sandbox."), "a CNAME is given for an A question\n{db}");
        assert!(dig(resolver, &[], "nothing.adeptia.sandbox", "A").contains("status: NXDOMAIN"));
        assert!(dig(resolver, &[], "app.adeptia.sandbox", "AAAA").contains("status: NOERROR, id"));
        assert!(dig(resolver, &[], "www.example.com", "A").contains("status: REFUSED"));
    }
    // A failover repoints the record; both resolvers answer DR at once (no cache by default).
    let log = world.run_ok("failover.rhai", &[]);
    assert!(log.contains("DNS app.adeptia.sandbox → 127.0.2.10: 2 of 2 resolvers agree"), "{log}");
    for resolver in &list {
        assert!(dig(resolver, &["+short"], "app.adeptia.sandbox", "A").contains("127.0.2.10"));
    }
}

#[test]
fn a_resolver_holding_the_old_value_is_waited_for_and_named_when_the_wait_is_too_short() {
    let world = World::start(&["--dns-cache", "5"]);
    let list = resolvers(&world);
    // A client asks the first resolver just before the switch: it caches PROD's address.
    let (code, log) = run_script(
        &world,
        &r#"
        let seen = dns_lookup("app.adeptia.sandbox", "RESOLVER");
        info(`seen: ${seen.values}`);
        set_dns("app", "dr");
        let quick = wait_resolvers("app", "dr", #{ timeout: 0.3 });
        info(`quick: ${quick.agreed} of ${quick.total}`);
        let full = wait_resolvers("app", "dr");
        info(`full: ${full.agreed} of ${full.total}`);
        "#
        .replace("RESOLVER", &list[0]),
    );
    assert_eq!(code, 0, "{log}");
    assert!(log.contains("seen: [\"127.0.1.10\"]"), "{log}");
    assert!(log.contains("quick: 1 of 2"), "{log}");
    assert!(log.contains(&format!("{} still answers 127.0.1.10 (TTL ", list[0])), "the laggard is named\n{log}");
    assert!(log.contains("full: 2 of 2"), "its cache expired and it answers DR\n{log}");
}

#[test]
fn a_resolver_that_does_not_answer_is_a_warning_in_the_report_not_a_failed_switch() {
    let world = World::start(&[]);
    let list = resolvers(&world);
    // One real resolver and one address where nothing answers (a resolver in a region that is
    // down), with the default wait (the record's TTL + 10 s).
    let config = std::fs::read_to_string(world.path().join("sbx/drscript.toml")).unwrap().replace(
        &format!("resolvers = [\"{}\", \"{}\"]", list[0], list[1]),
        &format!("resolvers = [\"{}\", \"127.0.0.1:9\"]", list[0]),
    );
    let path = world.path().join("sbx/one-dead.toml");
    std::fs::write(&path, config).unwrap();
    let out = Command::new(&*world::BIN)
        .args(["--config", path.to_str().unwrap(), "run", &format!("{RUNBOOKS}/failover.rhai"), "--yes"])
        .current_dir(world.path())
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "the switch is done: DNS answers DR at the authority\n{log}");
    assert!(log.contains("1 of 2 resolvers agree"), "{log}");
    assert!(log.contains("127.0.0.1:9: "), "the silent resolver is named\n{log}");
    // It is not waited for until the 70 s are over: no cache expiry makes it answer.
    let waited: f64 = log
        .split("1 of 2 resolvers agree after ")
        .nth(1)
        .and_then(|rest| rest.split(" s").next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{log}"));
    assert!(waited < 60.0, "gave up on the silent resolver after {waited} s\n{log}");
    let report = std::fs::read_to_string(world.the_run().join("report.md")).unwrap();
    assert!(report.contains("warning: DNS app.adeptia.sandbox → 127.0.2.10: 1 of 2 resolvers agree"), "{report}");
    assert!(
        report.contains("| dns_resolvers | DNS app.adeptia.sandbox → 127.0.2.10: 1 of 2 resolvers agree"),
        "{report}"
    );
}

#[test]
fn a_resolver_that_is_no_address_is_a_config_error_naming_the_key() {
    let world = World::start(&[]);
    let config = std::fs::read_to_string(world.path().join("sbx/drscript.toml")).unwrap();
    let bad = config.replacen("resolvers = [", "resolvers = [\"not a host!\", ", 1);
    let path = world.path().join("sbx/bad.toml");
    std::fs::write(&path, bad).unwrap();
    let out = Command::new(&*world::BIN).args(["check", "--config", path.to_str().unwrap()]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0));
    assert!(stderr.contains("dns.resolvers") && stderr.contains("`not a host!`"), "{stderr}");
}

#[test]
fn status_shows_a_resolver_that_tells_clients_otherwise_than_the_authority() {
    let world = World::start(&["--dns-cache", "30"]);
    let list = resolvers(&world);
    assert!(dig(&list[0], &["+short"], "app.adeptia.sandbox", "A").contains("127.0.1.10"));
    let (code, log) = run_script(&world, r#"set_dns("app", "dr");"#);
    assert_eq!(code, 0, "{log}");
    let out = world.drscript(&["status"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!("resolver {} still answers 127.0.1.10 (TTL ", list[0])),
        "the primed resolver still has PROD's address\n{text}"
    );
    assert!(!text.contains(&format!("resolver {}", list[1])), "the other one agrees with the authority\n{text}");
    let out = world.drscript(&["status", "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let answers = json["dns"]["resolvers"].as_array().unwrap_or_else(|| panic!("{json}"));
    assert_eq!(answers.iter().map(|a| a["agrees"].as_bool().unwrap()).collect::<Vec<_>>(), [false, true]);
}
