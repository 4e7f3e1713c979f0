//! The ARM emulator cross-checked with a real client: Microsoft's Python management SDKs
//! (azure-mgmt-storage, azure-mgmt-dns) read the account, run an unplanned failover through
//! their own long-running-operation poller, and update a record set with etags; they read and
//! create the record sets that hold no records (empty, alias) in the shapes the emulator serves.

use drscript_test_support::arm;
use drscript_test_support::harness;

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use drscript_sandbox::arm::ArmOptions;

const PIP: &str = "/subscriptions/00000000-0000-0000-0000-0000000000aa/resourceGroups/rg-adeptia/providers/Microsoft.Network/publicIPAddresses/pip-prod";

fn python() -> PathBuf {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".tools/venv-azure/bin/python");
    assert!(
        p.exists(),
        "{} is missing: run tests/support/requirements-azure.sh (it installs azure-mgmt-storage and azure-mgmt-dns into .tools/venv-azure)",
        p.display()
    );
    p
}

#[test]
fn microsofts_python_sdk_fails_over_and_updates_dns_against_the_emulator() {
    let python = python();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let token = arm::token();
    let emu = rt
        .block_on(drscript_sandbox::arm::start(ArmOptions {
            token: token.clone(),
            failover_duration: Duration::from_millis(1500),
            retry_after_secs: 0,
            accounts: vec![arm::account("adeptiaprod")],
            zones: vec![{
                let mut zone = arm::zone("contoso.example", false);
                zone.records.push(("vacant".into(), "A".into(), 300, vec![]));
                zone.aliases.push(("@".into(), "A".into(), 60, PIP.into()));
                zone
            }],
            ..ArmOptions::default()
        }))
        .unwrap();
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/support/arm_sdk_client.py");
    let mut child = Command::new(python)
        .arg(script)
        .args([emu.url.as_str(), arm::SUB, arm::RG, "adeptiaprod", "contoso.example"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "{token}").unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "the SDK failed against the emulator:\n{stderr}");
    let seen: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();

    assert_eq!(seen["before"]["primary"], "eastus");
    assert_eq!(seen["before"]["secondary"], "westus");
    assert_eq!(seen["before"]["geo_status"], "Live");
    assert_eq!(seen["before"]["can_failover"], true);
    assert!(seen["before"]["last_sync_time"].as_str().is_some_and(|t| t.starts_with("20")), "{seen}");
    assert_eq!(seen["during"]["failover_in_progress"], true, "{seen}");
    assert_eq!(seen["during"]["second_request"], 409, "{seen}");
    assert_eq!(seen["during"]["second_request_code"], "FailoverInProgress", "{seen}");
    assert_eq!(seen["after"]["primary"], "westus");
    assert_eq!(seen["after"]["sku"], "Standard_LRS");
    // `failoverInProgress` is absent once over (the SDK reads None), `lastGeoFailoverTime` set.
    assert_eq!(seen["after"]["failover_in_progress"], serde_json::Value::Null, "{seen}");
    assert!(seen["after"]["last_geo_failover_time"].as_str().is_some_and(|t| t.starts_with("20")), "{seen}");
    assert_eq!(seen["after"]["can_failover"], false, "{seen}");
    assert_eq!(seen["dns_before"], serde_json::json!(["10.0.0.1"]));
    assert_eq!(seen["dns_after"], serde_json::json!(["10.0.9.9"]));
    assert_eq!(seen["dns_ttl"], 30);
    assert_eq!(seen["stale_etag"], 412, "{seen}");
    assert_eq!(seen["stale_etag_code"], "PreconditionFailed", "{seen}");
    assert_eq!(seen["vacant"], serde_json::json!({"records": [], "etag": true, "target": null}), "{seen}");
    assert_eq!(seen["alias"], serde_json::json!({"records": [], "target": PIP}), "{seen}");
    assert_eq!(seen["created_empty"], serde_json::json!([]), "{seen}");
    assert_eq!(seen["created_alias"], PIP, "{seen}");
    assert_eq!(seen["records_and_alias"], 400, "{seen}");

    let requests = emu.requests();
    assert!(
        requests.iter().any(|r| r.starts_with("POST ") && r.contains("/failover?") && !r.contains("failoverType")),
        "{requests:?}"
    );
    assert!(
        requests.iter().any(|r| r.contains("/asyncoperations/")),
        "the SDK followed Azure-AsyncOperation: {requests:?}"
    );
    // The failover's final state is read from `Location` (final-state-via), with the caller's
    // api-version carried into the operation URLs.
    assert!(
        requests.iter().any(|r| r.contains("/operationresults/") && r.contains("api-version=2026-09-01")),
        "{requests:?}"
    );
    harness::assert_no_secret(&token, &[&stderr, &String::from_utf8_lossy(&out.stdout)]);
}
