//! set_dns / dns_lookup / wait_dns through the sandbox's zone file.

use drscript_test_support::harness;

use drscript_base::dns_zone::DnsZoneFile;
use drscript_core::dns::{self, LookupOptions, RecordSpec, RecordType};
use drscript_core::exec::Mode;
use harness::Harness;

const TOML: &str = r#"
[dns]
provider = "sandbox"
zone_file = "dns.json"

[dns.records.app]
zone = "adeptia.sandbox"
name = "app"
ttl = 30
targets = { prod = "127.0.0.10", dr = "127.0.0.20" }
"#;

#[test]
fn set_dns_writes_the_zone_file_and_lookup_reads_it() {
    let h = Harness::new(TOML, &[], Mode::Live);
    let zone = DnsZoneFile::new(h.dir.path().join("dns.json"));
    zone.create(&["adeptia.sandbox"]).unwrap();
    zone.set("adeptia.sandbox", "app", "A", 30, vec!["127.0.0.10".into()]).unwrap();

    let spec = dns::record::from_config(h.exec.config().unwrap(), "app", "dr").unwrap();
    let change = dns::set_dns(&h.exec, &spec).unwrap();
    assert_eq!(change.old, Some(vec!["127.0.0.10".to_string()]));
    let on_disk = zone.get("adeptia.sandbox", "app", "A").unwrap().unwrap();
    assert_eq!(on_disk.values, ["127.0.0.20"]);

    let again = dns::set_dns(&h.exec, &spec).unwrap();
    assert!(!again.changed);

    let seen = dns::wait_dns(&h.exec, "app.adeptia.sandbox", "127.0.0.20", &LookupOptions::default()).unwrap();
    assert_eq!((seen.values, seen.ttl), (vec!["127.0.0.20".to_string()], 30));
    let missing = dns::dns_lookup(&h.exec, "nothing.adeptia.sandbox", &LookupOptions::default()).unwrap();
    assert!(!missing.found);
}

#[test]
fn a_zone_the_sandbox_does_not_have_is_named() {
    let h = Harness::new(TOML, &[], Mode::Live);
    DnsZoneFile::new(h.dir.path().join("dns.json")).create(&["adeptia.sandbox"]).unwrap();
    let spec = RecordSpec::new("other.zone", "app", RecordType::A, "127.0.0.1", 30).unwrap();
    let e = dns::set_dns(&h.exec, &spec).unwrap_err().to_string();
    assert!(e.contains("`other.zone` does not exist") && e.contains("adeptia.sandbox"), "{e}");
    let e = dns::dns_lookup(&h.exec, "www.elsewhere.org", &LookupOptions::default()).unwrap_err().to_string();
    assert!(e.contains("cannot tell which zone holds `www.elsewhere.org`"), "{e}");
}

#[test]
fn provider_settings_are_checked_when_the_config_loads() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("drscript.toml");
    let cases = [
        ("[dns]\nprovider = \"rfc2136\"\n", "provider `rfc2136` needs `server`"),
        ("[dns]\nprovider = \"sandbox\"\n", "provider `sandbox` needs `zone_file`"),
        ("[dns]\nprovider = \"azure\"\nresource_group = \"rg\"\n", "provider `azure` needs `subscription`"),
        (
            "[dns]\nprovider = \"rfc2136\"\nserver = \"127.0.0.1:53\"\ntsig_key_name = \"k\"\n",
            "set both `tsig_key_name`",
        ),
        ("[dns]\nprovider = \"route53\"\n", "must be one of azure, azure_private, rfc2136, sandbox"),
        (
            "[databases.x]\nurl = \"postgres://app@db/x\"\nprobe = \"write\"\n",
            "databases.x.probe: must be one of rollback, scratch_table, read",
        ),
    ];
    for (toml, expected) in cases {
        std::fs::write(&path, format!("{}{toml}", harness::ENVIRONMENTS)).unwrap();
        let e = drscript_core::config::Config::load(&path).unwrap_err();
        assert!(e.is_bad_input() && e.to_string().contains(expected), "{toml}: {e}");
    }
}

#[test]
fn a_plan_finds_a_missing_tsig_secret_before_anything_runs() {
    let toml = "[dns]\nprovider = \"rfc2136\"\nserver = \"127.0.0.1:9\"\ntsig_key_name = \"k\"\ntsig_secret_file = \"missing.key\"\n";
    let h = Harness::new(toml, &[], Mode::Plan);
    let spec = RecordSpec::new("example.test", "app", RecordType::A, "10.0.0.2", 60).unwrap();
    let e = dns::set_dns(&h.exec, &spec).unwrap_err();
    assert!(e.is_bad_input() && e.to_string().contains("missing.key"), "{e}");
}

#[test]
fn script_level_bad_input_is_named_before_anything_runs() {
    let h = Harness::new(TOML, &[], Mode::Live);
    DnsZoneFile::new(h.dir.path().join("dns.json")).create(&["adeptia.sandbox"]).unwrap();
    let cases = [
        (r#"set_dns(#{zone: "adeptia.sandbox", name: "app"});"#, "set_dns: `value` is required"),
        (
            r#"set_dns(#{zone: "adeptia.sandbox", name: "app", value: "127.0.0.9", tll: 5});"#,
            "set_dns: unknown option `tll`",
        ),
        (r#"set_dns(#{zone: "adeptia.sandbox", name: "app", type: "MX", value: "x"});"#, "`MX` is not supported"),
        (r#"set_dns("web", "dr");"#, "`web` is not in [dns.records]"),
        (r#"wait_dns("app.adeptia.sandbox", "127.0.0.20", #{timout: 5});"#, "wait_dns: unknown option `timout`"),
    ];
    for (script, expected) in cases {
        std::fs::write(h.dir.path().join("bad.rhai"), script).unwrap();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_drscript"))
            .args(["run", "bad.rhai", "--yes"])
            .current_dir(h.dir.path())
            .env_remove("DRSCRIPT_CONFIG")
            .env("NO_COLOR", "1")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{script}: {text}");
        assert!(text.contains(expected), "{script}: {text}");
    }
    let zone = DnsZoneFile::new(h.dir.path().join("dns.json")).read().unwrap();
    assert!(zone.zones["adeptia.sandbox"].records.is_empty(), "nothing was written");
}
