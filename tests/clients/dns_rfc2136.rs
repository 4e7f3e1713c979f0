//! set_dns / dns_lookup / wait_dns against a real BIND9 with TSIG; every change is verified
//! with `dig` against that server.

use drscript_test_support::bind;
use drscript_test_support::harness;

use std::time::Duration;

use bind::{KEY_NAME, LOCKED_ZONE, Named, ZONE};
use drscript_core::dns::{self, LookupOptions, RecordSpec, RecordType};
use drscript_core::exec::Mode;
use harness::{Harness, assert_no_secret};

fn config(named: &Named, key_name: &str) -> String {
    format!(
        r#"
[dns]
provider = "rfc2136"
server = "{server}"
tsig_key_name = "{key_name}"
tsig_secret_file = "tsig.key"

[dns.records.app]
zone = "{ZONE}"
name = "app"
type = "A"
ttl = 60
targets = {{ prod = "10.0.0.1", dr = "10.0.1.1" }}

[dns.records.db]
zone = "{ZONE}"
name = "db"
type = "CNAME"
ttl = 30
targets = {{ primary = "pg-primary.{ZONE}", sync = "pg-sync.{ZONE}" }}

[dns.records.app6]
zone = "{ZONE}"
name = "app6"
type = "AAAA"
targets = {{ prod = "fd00::1", dr = "fd00::2" }}
"#,
        server = named.server()
    )
}

fn harness(named: &Named, secret: &str, mode: Mode) -> Harness {
    Harness::new(&config(named, KEY_NAME), &[("tsig.key", &format!("{secret}\n"))], mode)
}

#[test]
fn set_dns_switches_a_record_by_role_and_bind_answers_it() {
    let named = Named::start();
    let h = harness(&named, &named.secret, Mode::Live);
    assert_eq!(named.dig(&format!("app.{ZONE}"), "A"), ["10.0.0.1"]);

    let spec = dns::record::from_config(h.exec.config().unwrap(), "app", "dr").unwrap();
    let change = dns::set_dns(&h.exec, &spec).unwrap();
    assert!(change.changed && change.applied, "{change:?}");
    assert_eq!(change.old, Some(vec!["10.0.0.1".to_string()]));
    assert_eq!(change.old_ttl, Some(300), "the zone file's TTL is what caches may hold");
    assert_eq!(change.caches_expire_after_secs, 300);
    assert_eq!(named.dig(&format!("app.{ZONE}"), "A"), ["10.0.1.1"]);
    assert_eq!(named.dig_ttl(&format!("app.{ZONE}"), "A"), Some(60));

    // Idempotent: same value again is reported unchanged and the journal says so.
    let again = dns::set_dns(&h.exec, &spec).unwrap();
    assert!(!again.changed && !again.applied, "{again:?}");
    assert!(h.journal_text().contains("\"outcome\":\"unchanged\""), "{}", h.journal_text());

    // And back.
    let back = dns::record::from_config(h.exec.config().unwrap(), "app", "prod").unwrap();
    dns::set_dns(&h.exec, &back).unwrap();
    assert_eq!(named.dig(&format!("app.{ZONE}"), "A"), ["10.0.0.1"]);

    let lookup = dns::dns_lookup(&h.exec, &format!("app.{ZONE}"), &LookupOptions::default()).unwrap();
    assert_eq!((lookup.values.clone(), lookup.ttl, lookup.found), (vec!["10.0.0.1".to_string()], 60, true));

    assert_no_secret(&named.secret, &[&h.journal_text(), &format!("{change:?} {lookup:?}")]);
}

#[test]
fn cname_and_aaaa_records_are_created_and_replaced() {
    let named = Named::start();
    let h = harness(&named, &named.secret, Mode::Live);
    let cfg = h.exec.config().unwrap().clone();

    let db = dns::record::from_config(&cfg, "db", "primary").unwrap();
    let created = dns::set_dns(&h.exec, &db).unwrap();
    assert_eq!(created.old, Some(vec![]), "the record did not exist");
    assert_eq!(named.dig(&format!("db.{ZONE}"), "CNAME"), [format!("pg-primary.{ZONE}")]);
    dns::set_dns(&h.exec, &dns::record::from_config(&cfg, "db", "sync").unwrap()).unwrap();
    assert_eq!(named.dig(&format!("db.{ZONE}"), "CNAME"), [format!("pg-sync.{ZONE}")]);

    dns::set_dns(&h.exec, &dns::record::from_config(&cfg, "app6", "dr").unwrap()).unwrap();
    assert_eq!(named.dig(&format!("app6.{ZONE}"), "AAAA"), ["fd00::2"]);

    // An explicit record, not from the config.
    let explicit = RecordSpec::new(ZONE, "extra", RecordType::A, "192.0.2.7", 120).unwrap();
    dns::set_dns(&h.exec, &explicit).unwrap();
    assert_eq!(named.dig(&format!("extra.{ZONE}"), "A"), ["192.0.2.7"]);
}

#[test]
fn dry_run_shows_old_and_new_and_changes_nothing() {
    let named = Named::start();
    let h = harness(&named, &named.secret, Mode::DryRun);
    let spec = dns::record::from_config(h.exec.config().unwrap(), "app", "dr").unwrap();
    let change = dns::set_dns(&h.exec, &spec).unwrap();
    assert!(change.changed && !change.applied);
    assert_eq!(named.dig(&format!("app.{ZONE}"), "A"), ["10.0.0.1"], "dry run must not write");
    let journal = h.journal_text();
    assert!(journal.contains("10.0.0.1 → 10.0.1.1 (ttl 60)"), "{journal}");
    assert!(journal.contains("\"outcome\":\"planned\""), "{journal}");

    // Plan mode: no network at all, the old value is unknown.
    h.with_mode(Mode::Plan);
    let planned = dns::set_dns(&h.exec, &spec).unwrap();
    assert_eq!(planned.old, None);
    assert!(h.journal_text().contains("(current value not read in plan mode) → 10.0.1.1"));
}

#[test]
fn wait_dns_returns_once_the_authority_answers_and_reports_the_ttl() {
    let named = Named::start();
    let h = harness(&named, &named.secret, Mode::Live);
    let spec = dns::record::from_config(h.exec.config().unwrap(), "app", "dr").unwrap();

    // Change it behind drscript's back from another thread after a moment, like a colleague
    // or a slow provider would; wait_dns must pick it up by polling.
    let server = named.server();
    let secret = named.secret.clone();
    let writer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        let out = std::process::Command::new("nsupdate")
            .arg("-y")
            .arg(format!("hmac-sha256:{KEY_NAME}:{secret}"))
            .arg("-v")
            .stdin(std::process::Stdio::piped())
            .spawn()
            .and_then(|mut child| {
                use std::io::Write;
                let (host, port) = server.split_once(':').unwrap();
                writeln!(
                    child.stdin.as_mut().unwrap(),
                    "server {host} {port}\nzone {ZONE}\nupdate delete app.{ZONE} A\nupdate add app.{ZONE} 60 A 10.0.1.1\nsend\n"
                )?;
                drop(child.stdin.take());
                child.wait_with_output()
            })
            .expect("nsupdate (bind9-dnsutils) is needed");
        assert!(out.status.success(), "nsupdate failed");
    });
    let opts = LookupOptions { timeout: Some(Duration::from_secs(60)), ..Default::default() };
    let seen = dns::wait_dns(&h.exec, &spec.fqdn(), "10.0.1.1", &opts).unwrap();
    writer.join().unwrap();
    assert_eq!(seen.values, ["10.0.1.1"]);
    assert_eq!(seen.ttl, 60);
    assert!(seen.caches_expire_at.is_some());

    let timeout = LookupOptions { timeout: Some(Duration::from_millis(300)), ..Default::default() };
    let e = dns::wait_dns(&h.exec, &spec.fqdn(), "10.9.9.9", &timeout).unwrap_err().to_string();
    assert!(e.contains("still answers 10.0.1.1"), "{e}");
}

#[test]
fn bad_input_record_missing_wrong_type_unknown_role() {
    let named = Named::start();
    let h = harness(&named, &named.secret, Mode::Live);
    let cfg = h.exec.config().unwrap().clone();
    let e = dns::record::from_config(&cfg, "web", "dr").unwrap_err();
    assert!(e.is_bad_input());
    assert!(e.to_string().contains("`web` is not in [dns.records]") && e.to_string().contains("app, app6, db"), "{e}");
    let e = dns::record::from_config(&cfg, "app", "staging").unwrap_err().to_string();
    assert!(e.contains("no target for role `staging`") && e.contains("dr, prod"), "{e}");
    let e = RecordType::parse("TXT").unwrap_err().to_string();
    assert!(e.contains("`TXT` is not supported"), "{e}");
    let e = RecordSpec::new(ZONE, "app", RecordType::A, "fd00::1", 60).unwrap_err().to_string();
    assert!(e.contains("not a valid A record value"), "{e}");

    // The config rejects a wrong type too, naming the key.
    let bad = config(&named, KEY_NAME).replace("type = \"CNAME\"", "type = \"MX\"");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("drscript.toml"), format!("{}{bad}", harness::ENVIRONMENTS)).unwrap();
    let e = drscript_core::config::Config::load(&dir.path().join("drscript.toml")).unwrap_err().to_string();
    assert!(e.contains("dns.records.db.type") && e.contains("`MX` is not supported"), "{e}");
}

#[test]
fn bad_input_zone_that_does_not_exist_or_refuses_updates() {
    let named = Named::start();
    let h = harness(&named, &named.secret, Mode::Live);
    let missing = RecordSpec::new("nowhere.test", "app", RecordType::A, "10.0.0.2", 60).unwrap();
    let e = dns::set_dns(&h.exec, &missing).unwrap_err().to_string();
    // BIND answers REFUSED for a zone it does not have; the message says so and names the
    // primitive the script called.
    assert!(e.starts_with("set_dns ") && e.contains("nowhere.test"), "{e}");
    assert!(e.contains("REFUSED: the server has no zone that holds this name"), "{e}");

    let locked = RecordSpec::new(LOCKED_ZONE, "app", RecordType::A, "10.0.0.2", 60).unwrap();
    let e = dns::set_dns(&h.exec, &locked).unwrap_err().to_string();
    assert!(e.contains("REFUSED") && e.contains(LOCKED_ZONE), "{e}");
    assert_eq!(named.dig(&format!("app.{LOCKED_ZONE}"), "A"), ["10.0.0.1"]);
}

#[test]
fn bad_input_wrong_tsig_key_or_secret() {
    let named = Named::start();
    let spec = RecordSpec::new(ZONE, "app", RecordType::A, "10.0.1.1", 60).unwrap();

    // Right key name, wrong secret: BADSIG.
    let wrong_secret = "d3JvbmctYnV0LXZhbGlkLWJhc2U2NC1zZWNyZXQtMzJi";
    let h = harness(&named, wrong_secret, Mode::Live);
    let e = dns::set_dns(&h.exec, &spec).unwrap_err().to_string();
    assert!(e.contains("BADSIG") && e.contains(KEY_NAME), "{e}");
    assert_no_secret(wrong_secret, &[&e, &h.journal_text()]);

    // A key the server does not know: BADKEY.
    let h = Harness::new(&config(&named, "stranger-key"), &[("tsig.key", &named.secret)], Mode::Live);
    let e = dns::set_dns(&h.exec, &spec).unwrap_err().to_string();
    assert!(e.contains("BADKEY") && e.contains("stranger-key"), "{e}");
    assert_no_secret(&named.secret, &[&e, &h.journal_text()]);

    assert_eq!(named.dig(&format!("app.{ZONE}"), "A"), ["10.0.0.1"], "nothing was written");
}

#[test]
fn unreachable_server_is_a_clear_error() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let toml = format!(
        "[dns]\nprovider = \"rfc2136\"\nserver = \"127.0.0.1:{port}\"\n[dns.records.app]\nzone = \"{ZONE}\"\nname = \"app\"\ntargets = {{ dr = \"10.0.1.1\" }}\n"
    );
    let h = Harness::new(&toml, &[], Mode::Live);
    let spec = dns::record::from_config(h.exec.config().unwrap(), "app", "dr").unwrap();
    let e = dns::set_dns(&h.exec, &spec).unwrap_err().to_string();
    assert!(e.contains(&format!("127.0.0.1:{port}")) && e.contains("cannot reach the DNS server"), "{e}");
}

/// A TCP proxy in front of `upstream` that closes the first `drop_first` connections unanswered
/// (a server restarting, a load balancer resetting) and forwards the rest.
fn flaky_proxy(upstream: String, drop_first: usize) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let seen = std::sync::Arc::new(AtomicUsize::new(0));
    let counter = seen.clone();
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(client) = client else { continue };
            if counter.fetch_add(1, Ordering::SeqCst) < drop_first {
                drop(client);
                continue;
            }
            let server = std::net::TcpStream::connect(&upstream).unwrap();
            let (mut c2, mut s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
            let (mut c, mut s) = (client, server);
            std::thread::spawn(move || std::io::copy(&mut c2, &mut s2));
            std::thread::spawn(move || std::io::copy(&mut s, &mut c));
        }
    });
    (addr, seen)
}

#[test]
fn dropped_connections_are_retried_and_a_server_that_keeps_dropping_them_is_named() {
    let named = Named::start();
    // Two dropped connections, then BIND: the update gets through on its third attempt.
    let (proxy, seen) = flaky_proxy(named.server(), 2);
    let toml = config(&named, KEY_NAME).replace(&named.server(), &proxy);
    let h = Harness::new(&toml, &[("tsig.key", &format!("{}\n", named.secret))], Mode::Live);
    let spec = dns::record::from_config(h.exec.config().unwrap(), "app", "dr").unwrap();
    let change = dns::set_dns(&h.exec, &spec).unwrap();
    assert!(change.applied, "{change:?}");
    assert_eq!(named.dig(&format!("app.{ZONE}"), "A"), ["10.0.1.1"]);
    assert!(seen.load(std::sync::atomic::Ordering::SeqCst) >= 3);

    // A server that drops every connection: three attempts, then an error naming it.
    let (proxy, seen) = flaky_proxy(named.server(), usize::MAX);
    let toml = config(&named, KEY_NAME).replace(&named.server(), &proxy);
    let h = Harness::new(&toml, &[("tsig.key", &format!("{}\n", named.secret))], Mode::Live);
    let back = dns::record::from_config(h.exec.config().unwrap(), "app", "prod").unwrap();
    let e = dns::set_dns(&h.exec, &back).unwrap_err().to_string();
    assert!(e.contains(&proxy) && e.contains("cannot reach the DNS server") && e.contains("after 3 attempts"), "{e}");
    assert_eq!(seen.load(std::sync::atomic::Ordering::SeqCst), 3, "one exchange, three attempts");
    assert_eq!(named.dig(&format!("app.{ZONE}"), "A"), ["10.0.1.1"], "nothing changed");
}

#[test]
fn wait_resolvers_asks_a_real_server_and_names_one_that_still_answers_the_old_value() {
    let named = Named::start();
    let toml =
        config(&named, KEY_NAME).replacen("[dns]\n", &format!("[dns]\nresolvers = [\"{}\"]\n", named.server()), 1);
    let h = Harness::new(&toml, &[("tsig.key", &format!("{}\n", named.secret))], Mode::Live);
    let spec = dns::record::from_config(h.exec.config().unwrap(), "app", "dr").unwrap();
    // Before the switch the server answers PROD's address: a short wait ends with it named.
    let before = dns::resolvers::wait_resolvers(&h.exec, &spec, Some(Duration::from_millis(300))).unwrap();
    assert_eq!((before.agreed, before.total), (0, 1), "{before:?}");
    assert_eq!(before.laggards(), [format!("{} still answers 10.0.0.1 (TTL 300 s)", named.server())]);
    dns::set_dns(&h.exec, &spec).unwrap();
    let after = dns::resolvers::wait_resolvers(&h.exec, &spec, None).unwrap();
    assert_eq!((after.agreed, after.total), (1, 1), "{after:?}");
    assert_eq!(after.answers[0].values, ["10.0.1.1"]);
    assert_eq!(after.answers[0].ttl, named.dig_ttl(&format!("app.{ZONE}"), "A").unwrap(), "dig sees the same TTL");
    assert!(h.journal_text().contains("\"dns_resolvers\""), "the report gets the figure");
}
