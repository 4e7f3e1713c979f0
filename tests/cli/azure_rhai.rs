//! The Rhai primitives end to end through the real binary: a runbook fails the storage account
//! over (ARM emulator) and switches DNS (real BIND9), with confirmation, dry run and report.

use drscript_test_support::arm;
use drscript_test_support::bind;
use drscript_test_support::harness;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use bind::{KEY_NAME, Named, ZONE};
use drscript_sandbox::arm::{ArmHandle, ArmOptions};

const BIN: &str = env!("CARGO_BIN_EXE_drscript");

const SCRIPT: &str = r#"
let s = storage_status("prod");
print("RPO: last sync " + s.last_sync_time + " primary " + s.primary_location);
step("Fail over the storage account", || storage_failover("prod", #{timeout: 60}));
step("Point the application at DR", || {
    let c = set_dns("app", "dr");
    print("DNS " + c.name + ": " + c.old + " -> " + c.value);
    wait_dns("app.example.test", "10.0.1.1", #{timeout: 30});
});
step("Point the database name at the sync database", || {
    set_dns(#{zone: "example.test", name: "db", type: "CNAME", value: "pg-sync.example.test", ttl: 30});
});
let l = dns_lookup("app.example.test");
if !("10.0.1.1" in l.values) { fail("DNS was not switched"); }
let after = storage_status("prod");
print("now primary " + after.primary_location + " " + after.sku);
"#;

struct World {
    rt: tokio::runtime::Runtime,
    emu: ArmHandle,
    token: String,
    named: Named,
    dir: tempfile::TempDir,
}

fn world() -> World {
    let named = Named::start();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let token = arm::token();
    let emu = rt
        .block_on(drscript_sandbox::arm::start(ArmOptions {
            token: token.clone(),
            failover_duration: Duration::from_millis(300),
            retry_after_secs: 0,
            accounts: vec![arm::account("adeptiaprod")],
            ..ArmOptions::default()
        }))
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("arm.token"), &token).unwrap();
    std::fs::write(dir.path().join("tsig.key"), &named.secret).unwrap();
    std::fs::write(dir.path().join("script.rhai"), SCRIPT).unwrap();
    let config = format!(
        r#"{envs}
[azure]
auth = "static_token"
resource_manager = "{url}"
token_file = "arm.token"

[storage.prod]
subscription = "{sub}"
resource_group = "{rg}"
account = "adeptiaprod"

[dns]
provider = "rfc2136"
server = "{server}"
tsig_key_name = "{KEY_NAME}"
tsig_secret_file = "tsig.key"

[dns.records.app]
zone = "{ZONE}"
name = "app"
ttl = 60
targets = {{ prod = "10.0.0.1", dr = "10.0.1.1" }}
"#,
        envs = harness::ENVIRONMENTS,
        url = emu.url,
        sub = arm::SUB,
        rg = arm::RG,
        server = named.server()
    );
    std::fs::write(dir.path().join("drscript.toml"), config).unwrap();
    World { rt, emu, token, named, dir }
}

fn drscript(dir: &Path, args: &[&str]) -> (i32, String) {
    let out = Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .env_remove("DRSCRIPT_CONFIG")
        .env("NO_COLOR", "1")
        .env("HOME", dir)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = format!("{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.code().unwrap_or(-1), text)
}

/// Every file the run left in the state dir (journals, reports), concatenated.
fn state_files(dir: &Path) -> String {
    let mut out = String::new();
    let mut stack = vec![dir.join(".drscript")];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = entry.path();
            if p.is_dir() {
                stack.push(p);
            } else if let Ok(text) = std::fs::read_to_string(&p) {
                out.push_str(&format!("=== {}\n{text}\n", p.display()));
            }
        }
    }
    out
}

fn posts(emu: &ArmHandle) -> usize {
    emu.requests().iter().filter(|r| r.starts_with("POST ")).count()
}

#[test]
fn runbook_fails_storage_over_and_switches_dns_with_yes() {
    let w = world();
    let (code, output) = drscript(w.dir.path(), &["run", "script.rhai", "--yes"]);
    assert_eq!(code, 0, "{output}");
    assert!(output.contains("now primary westus Standard_LRS"), "{output}");
    assert_eq!(w.named.dig(&format!("app.{ZONE}"), "A"), ["10.0.1.1"]);
    assert_eq!(w.named.dig(&format!("db.{ZONE}"), "CNAME"), [format!("pg-sync.{ZONE}")]);
    assert_eq!(posts(&w.emu), 1);
    let state = state_files(w.dir.path());
    assert!(state.contains("| storage_last_sync_time | adeptiaprod 20"), "the RPO evidence is in the report:\n{state}");
    assert!(state.contains("| storage_failover | adeptiaprod unplanned failover eastus → westus in"), "{state}");
    assert!(state.contains("caches of the old value expire by") && state.contains("(old TTL 300 s)"), "{state}");
    assert!(state.contains("10.0.0.1 → 10.0.1.1"), "{state}");
    for secret in [&w.token, &w.named.secret] {
        harness::assert_no_secret(secret, &[&output, &state]);
    }

    // Run again (an operator reruns the runbook after a crash): the failover is found done, so
    // nothing is asked and nothing is sent, even without a terminal or --yes.
    let (code, output) = drscript(w.dir.path(), &["run", "script.rhai"]);
    assert_eq!(code, 0, "{output}");
    assert!(output.contains("already failed over at") && output.contains("no failover started"), "{output}");
    assert_eq!(posts(&w.emu), 1, "no second failover request");
    drop(w.rt);
}

#[test]
fn unplanned_failover_without_confirmation_stops_before_anything_changes() {
    let w = world();
    // No terminal and no --yes: the confirmation cannot be given, the run stops (exit 3).
    let (code, output) = drscript(w.dir.path(), &["run", "script.rhai"]);
    assert_eq!(code, 3, "{output}");
    assert!(
        output.contains("locally redundant storage (LRS)")
            || state_files(w.dir.path()).contains("locally redundant storage (LRS)"),
        "{output}"
    );
    assert_eq!(posts(&w.emu), 0, "no failover was started");
    assert_eq!(w.named.dig(&format!("app.{ZONE}"), "A"), ["10.0.0.1"]);
}

#[test]
fn dry_run_and_plan_change_nothing() {
    let w = world();
    let (code, output) = drscript(w.dir.path(), &["run", "script.rhai", "--dry-run"]);
    // The script's own check fails in a dry run (DNS was not switched): that is the point.
    assert_eq!(code, 1, "{output}");
    assert!(output.contains("DNS was not switched"), "{output}");
    assert_eq!(posts(&w.emu), 0);
    assert_eq!(w.named.dig(&format!("app.{ZONE}"), "A"), ["10.0.0.1"]);

    let before = w.emu.requests().len();
    let (code, output) = drscript(w.dir.path(), &["plan", "script.rhai"]);
    assert_eq!(code, 0, "{output}");
    assert!(output.contains("storage_failover") && output.contains("set_dns"), "{output}");
    assert_eq!(w.emu.requests().len(), before, "a plan sends nothing");
}
