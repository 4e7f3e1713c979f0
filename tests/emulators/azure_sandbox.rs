//! The sandbox's Azure and DNS pieces as `drscript sandbox` starts them: the config sections
//! they contribute load, and the primitives work against them.

use drscript_test_support::harness;

use std::time::Duration;

use drscript_core::azure::storage::{self, FailoverOptions};
use drscript_core::dns;
use drscript_core::exec::Mode;
use drscript_sandbox::{arm, zone as dns_zone};

#[test]
fn sandbox_storage_account_and_zone_work_with_the_config_they_write() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (emu, arm_config) = rt.block_on(arm::start_for_sandbox(dir.path(), Duration::from_millis(200), None)).unwrap();
    let (zone, dns_config) = dns_zone::create_for_sandbox(dir.path()).unwrap();
    let token = std::fs::read_to_string(dir.path().join(arm::SANDBOX_TOKEN_PATH)).unwrap();
    let h = harness::Harness::in_dir(rt, dir, &format!("{arm_config}\n{dns_config}"), &[], Mode::Live);

    let status = storage::storage_status(&h.exec, "prod").unwrap();
    assert_eq!((status.account.as_str(), status.primary_location.as_str()), (arm::SANDBOX_ACCOUNT, "eastus"));
    let result =
        storage::storage_failover(&h.exec, "prod", FailoverOptions { planned: true, timeout: Duration::from_secs(60) })
            .unwrap();
    assert_eq!(result.after.unwrap().primary_location, "westus");
    assert_eq!(emu.state_json()["storage_accounts"][0]["location"], "westus");

    let config = h.exec.config().unwrap().clone();
    dns::set_dns(&h.exec, &dns::record::from_config(&config, "app", "dr").unwrap()).unwrap();
    dns::set_dns(&h.exec, &dns::record::from_config(&config, "db", "sync").unwrap()).unwrap();
    let app = zone.get(dns_zone::SANDBOX_ZONE, "app", "A").unwrap().unwrap();
    let db = zone.get(dns_zone::SANDBOX_ZONE, "db", "CNAME").unwrap().unwrap();
    assert_eq!((app.values, db.values), (vec!["127.0.2.10".to_string()], vec!["pg-sync.adeptia.sandbox".to_string()]));

    // A restart resets the zone to the DR model's initial state.
    let (zone, _) = dns_zone::create_for_sandbox(h.dir.path()).unwrap();
    assert_eq!(zone.get(dns_zone::SANDBOX_ZONE, "app", "A").unwrap().unwrap().values, ["127.0.1.10"]);

    harness::assert_no_secret(
        token.trim(),
        &[&h.journal_text(), &std::fs::read_to_string(h.dir.path().join("drscript.toml")).unwrap()],
    );
}
