//! set_dns / dns_lookup through Azure public and private DNS zones (ARM emulator).

use drscript_test_support::arm;
use drscript_test_support::harness;

use drscript_core::dns::{self, LookupOptions, RecordSpec, RecordType};
use drscript_core::exec::Mode;
use drscript_sandbox::arm::{ArmHandle, ArmOptions};
use harness::assert_no_secret;
use serde_json::Value;

fn toml(provider: &str) -> String {
    format!(
        r#"
[dns]
provider = "{provider}"
subscription = "{sub}"
resource_group = "{rg}"

[dns.records.app]
zone = "contoso.example"
name = "app"
ttl = 60
targets = {{ prod = "10.0.0.1", dr = "10.0.1.1" }}

[dns.records.db]
zone = "contoso.example"
name = "db"
type = "CNAME"
targets = {{ primary = "pg1.contoso.example", sync = "pg2.contoso.example" }}
"#,
        sub = arm::SUB,
        rg = arm::RG
    )
}

fn records(emu: &ArmHandle, private: bool) -> Vec<Value> {
    let state = emu.state_json();
    state["dns_zones"]
        .as_array()
        .unwrap()
        .iter()
        .find(|z| z["zone"] == "contoso.example" && z["private"] == private)
        .map(|z| z["records"].as_array().unwrap().clone())
        .unwrap_or_default()
}

fn record<'a>(records: &'a [Value], name: &str, rtype: &str) -> Option<&'a Value> {
    records.iter().find(|r| r["name"] == name && r["type"] == rtype)
}

/// The ARM URL of the record set `app` (A) of the public zone `contoso.example`.
fn app_record_url(emu: &ArmHandle) -> String {
    format!(
        "{}/subscriptions/{}/resourceGroups/{}/providers/Microsoft.Network/dnsZones/contoso.example/A/app?api-version=2018-05-01",
        emu.url,
        arm::SUB,
        arm::RG
    )
}

fn puts(emu: &ArmHandle) -> Vec<String> {
    emu.requests().into_iter().filter(|r| r.starts_with("PUT ")).collect()
}

#[test]
fn public_zone_record_set_is_replaced_with_if_match_and_reads_back() {
    let options = ArmOptions { zones: vec![arm::zone("contoso.example", false)], ..ArmOptions::default() };
    let (h, emu, token) = arm::start(options, &toml("azure"), None, Mode::Live);
    let etag_before = record(&records(&emu, false), "app", "A").unwrap()["etag"].as_str().unwrap().to_string();

    let spec = dns::record::from_config(h.exec.config().unwrap(), "app", "dr").unwrap();
    let change = dns::set_dns(&h.exec, &spec).unwrap();
    assert_eq!(change.old, Some(vec!["10.0.0.1".to_string()]));
    let rs = records(&emu, false);
    let app = record(&rs, "app", "A").unwrap();
    assert_eq!(app["values"], serde_json::json!(["10.0.1.1"]));
    assert_eq!(app["ttl"], 60);
    assert_ne!(app["etag"].as_str().unwrap(), etag_before);
    assert_eq!(puts(&emu).len(), 1);
    assert!(puts(&emu)[0].contains("/dnsZones/contoso.example/A/app?api-version=2018-05-01"), "{:?}", puts(&emu));
    assert!(puts(&emu)[0].ends_with(&format!("if-match={etag_before}")), "{:?}", puts(&emu));

    // Idempotent: no second PUT.
    assert!(!dns::set_dns(&h.exec, &spec).unwrap().changed);
    assert_eq!(puts(&emu).len(), 1);

    // A new CNAME record set is created (If-None-Match: *).
    dns::set_dns(&h.exec, &dns::record::from_config(h.exec.config().unwrap(), "db", "sync").unwrap()).unwrap();
    assert_eq!(
        record(&records(&emu, false), "db", "CNAME").unwrap()["values"],
        serde_json::json!(["pg2.contoso.example"])
    );
    assert!(puts(&emu)[1].ends_with("if-none-match=*"), "{:?}", puts(&emu));

    let lookup = dns::dns_lookup(&h.exec, "db.contoso.example", &LookupOptions::default()).unwrap();
    assert_eq!(
        (lookup.record_type, lookup.values.clone()),
        (RecordType::Cname, vec!["pg2.contoso.example".to_string()])
    );
    let seen = dns::wait_dns(&h.exec, "app.contoso.example", "10.0.1.1", &LookupOptions::default()).unwrap();
    assert_eq!(seen.ttl, 60);
    assert_no_secret(&token, &[&h.journal_text(), &format!("{change:?}{lookup:?}")]);
}

#[test]
fn private_zone_uses_the_private_dns_api() {
    let options = ArmOptions { zones: vec![arm::zone("contoso.example", true)], ..ArmOptions::default() };
    let (h, emu, _) = arm::start(options, &toml("azure_private"), None, Mode::Live);
    let spec = dns::record::from_config(h.exec.config().unwrap(), "app", "dr").unwrap();
    dns::set_dns(&h.exec, &spec).unwrap();
    assert_eq!(record(&records(&emu, true), "app", "A").unwrap()["values"], serde_json::json!(["10.0.1.1"]));
    assert!(puts(&emu)[0].contains("/privateDnsZones/contoso.example/A/app?api-version="), "{:?}", puts(&emu));

    let aaaa = RecordSpec::new("contoso.example", "app6", RecordType::Aaaa, "fd00::5", 30).unwrap();
    dns::set_dns(&h.exec, &aaaa).unwrap();
    assert_eq!(record(&records(&emu, true), "app6", "AAAA").unwrap()["values"], serde_json::json!(["fd00::5"]));
}

#[test]
fn a_zone_that_does_not_exist_is_a_clear_error() {
    let options = ArmOptions { zones: vec![arm::zone("contoso.example", false)], ..ArmOptions::default() };
    let (h, emu, _) = arm::start(options, &toml("azure"), None, Mode::Live);
    let spec = RecordSpec::new("nowhere.example", "app", RecordType::A, "10.0.0.9", 60).unwrap();
    let e = dns::set_dns(&h.exec, &spec).unwrap_err().to_string();
    assert!(e.contains("404") && e.contains("ParentResourceNotFound") && e.contains("nowhere.example"), "{e}");
    assert!(puts(&emu).is_empty());
}

#[test]
fn emulator_enforces_etags_like_azure() {
    let options = ArmOptions { zones: vec![arm::zone("contoso.example", false)], ..ArmOptions::default() };
    let (h, emu, token) = arm::start(options, &toml("azure"), None, Mode::Live);
    let url = app_record_url(&emu);
    let body = serde_json::json!({"properties": {"TTL": 5, "ARecords": [{"ipv4Address": "10.9.9.9"}]}}).to_string();
    let status = |req: reqwest::RequestBuilder| h.rt.block_on(async { req.send().await.unwrap().status().as_u16() });
    let client = reqwest::Client::new();
    let put = || client.put(&url).bearer_auth(&token).header("content-type", "application/json").body(body.clone());
    assert_eq!(status(put().header("If-Match", "\"stale-etag\"")), 412);
    assert_eq!(status(put().header("If-None-Match", "*")), 412, "exists already");
    assert_eq!(status(client.get(&url)), 401, "no token");
    assert_eq!(status(put()), 200);
}

const PIP: &str = "/subscriptions/00000000-0000-0000-0000-0000000000aa/resourceGroups/rg-adeptia/providers/Microsoft.Network/publicIPAddresses/pip-prod";

fn zone_with(
    records: Vec<(String, String, u32, Vec<String>)>,
    aliases: Vec<(String, String, u32, String)>,
) -> ArmOptions {
    let mut zone = arm::zone("contoso.example", false);
    zone.records.extend(records);
    zone.aliases = aliases;
    ArmOptions { zones: vec![zone], ..ArmOptions::default() }
}

/// A record set that exists with no records is replaced with If-Match, not created with
/// If-None-Match: * (which would meet 412 every round).
#[test]
fn a_record_set_without_records_is_replaced_not_created() {
    let options =
        zone_with(vec![("app".into(), "A".into(), 300, vec![]), ("db".into(), "CNAME".into(), 300, vec![])], vec![]);
    // The seed's `app` A record set is replaced by the empty one above (same key).
    let (h, emu, _) = arm::start(options, &toml("azure"), None, Mode::Live);
    let app = record(&records(&emu, false), "app", "A").unwrap().clone();
    assert_eq!(app["values"], serde_json::json!([]));
    let spec = dns::record::from_config(h.exec.config().unwrap(), "app", "dr").unwrap();
    let change = dns::set_dns(&h.exec, &spec).unwrap();
    assert_eq!(change.old, Some(vec![]), "read as existing and empty");
    assert_eq!(record(&records(&emu, false), "app", "A").unwrap()["values"], serde_json::json!(["10.0.1.1"]));
    let cname = dns::record::from_config(h.exec.config().unwrap(), "db", "sync").unwrap();
    dns::set_dns(&h.exec, &cname).unwrap();
    let puts = puts(&emu);
    assert_eq!(puts.len(), 2, "one PUT each, no 412 round: {puts:?}");
    assert!(puts[0].ends_with(&format!("if-match={}", app["etag"].as_str().unwrap())), "{puts:?}");
    assert!(puts.iter().all(|p| !p.contains("if-none-match")), "{puts:?}");
}

/// An alias record set is refused with a message that names it and its resource, before any
/// write; a lookup says the same instead of reporting "no record".
#[test]
fn an_alias_record_set_is_refused_clearly_and_left_alone() {
    let options = zone_with(vec![], vec![("app".into(), "A".into(), 60, PIP.into())]);
    let (h, emu, _) = arm::start(options, &toml("azure"), None, Mode::Live);
    let spec = dns::record::from_config(h.exec.config().unwrap(), "app", "dr").unwrap();
    let e = dns::set_dns(&h.exec, &spec).unwrap_err().to_string();
    assert!(e.contains("alias record set") && e.contains("pip-prod") && e.contains("app.contoso.example"), "{e}");
    assert!(puts(&emu).is_empty(), "{:?}", emu.requests());
    assert_eq!(record(&records(&emu, false), "app", "A").unwrap()["target_resource"], PIP);
    let e = dns::dns_lookup(&h.exec, "app.contoso.example", &LookupOptions::default()).unwrap_err().to_string();
    assert!(e.contains("alias record set"), "{e}");
}

/// A record set's metadata (tags such as `owner` or `managed-by`) survives a switch: the PUT
/// replaces the whole set, so drscript sends back what it read.
#[test]
fn a_record_set_put_keeps_its_metadata() {
    let options = ArmOptions { zones: vec![arm::zone("contoso.example", false)], ..ArmOptions::default() };
    let (h, emu, token) = arm::start(options, &toml("azure"), None, Mode::Live);
    let url = app_record_url(&emu);
    let tags = serde_json::json!({"owner": "platform-team", "change": "CHG0042"});
    let body =
        serde_json::json!({"properties": {"TTL": 60, "ARecords": [{"ipv4Address": "10.0.0.1"}], "metadata": tags}});
    let put = reqwest::Client::new().put(&url).bearer_auth(&token).json(&body);
    assert_eq!(h.rt.block_on(async { put.send().await.unwrap().status().as_u16() }), 200);
    assert_eq!(record(&records(&emu, false), "app", "A").unwrap()["metadata"], tags, "the emulator keeps metadata");

    let spec = dns::record::from_config(h.exec.config().unwrap(), "app", "dr").unwrap();
    dns::set_dns(&h.exec, &spec).unwrap();
    let rs = records(&emu, false);
    let app = record(&rs, "app", "A").unwrap();
    assert_eq!(app["values"], serde_json::json!(["10.0.1.1"]));
    assert_eq!(app["metadata"], tags, "the switch dropped the record set's metadata");
}
