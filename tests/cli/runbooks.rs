//! Every shipped runbook end to end against a sandbox running in its own process, the final state
//! checked through `drscript sandbox status --json` and through the real kubectl; and a failover
//! killed at step boundaries and finished with `drscript resume`.

use drscript_test_support::world;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use world::{BIN, RUNBOOKS, World, assert_no_step_ran_twice, journal};

/// The journal of the test's only run.
fn the_journal(world: &World) -> Vec<serde_json::Value> {
    journal(&world.the_run())
}

#[test]
fn preflight_then_failover_then_failback() {
    let world = World::start(&[]);
    let plan = world.drscript(&["plan", &format!("{RUNBOOKS}/failover.rhai")]);
    let plan = String::from_utf8_lossy(&plan.stdout);
    assert!(plan.contains("no earlier run of failover.rhai"), "{plan}");
    assert!(plan.contains("(pictured for the plan, nothing was read: `drscript status` reads it)"), "{plan}");
    world.run_ok("preflight.rhai", &[]);
    assert_serving_initially(&world);
    let log = world.run_ok("failover.rhai", &[]);
    assert!(log.contains("no storage account failover needed"), "{log}");
    world.assert_serving_kubectl("dr", "prod");
    world.run_ok("failback.rhai", &[]);
    world.assert_serving_kubectl("prod", "dr");
    // The plan of the next failover: every step with what it took last time, parallel ones marked.
    let plan = world.drscript(&["plan", &format!("{RUNBOOKS}/failover.rhai")]);
    let plan = String::from_utf8_lossy(&plan.stdout);
    let is_step = |l: &&str| {
        let l = l.trim_start_matches(['‖', ' ']);
        l.starts_with(char::is_numeric) && l.split_once(". ").is_some_and(|(n, _)| !n.contains(' '))
    };
    let steps: Vec<&str> = plan.lines().filter(is_step).collect();
    assert!(steps.len() > 10, "{plan}");
    assert!(steps.iter().all(|l| l.ends_with(" s")), "a step without an expected time:\n{plan}");
    assert!(plan.contains("2. Quiesce prod"), "{plan}");
    assert!(plan.contains("‖ at the same time: 2.1, 2.2"), "{plan}");
    assert!(plan.contains("2.1. Scale down the runtime and listener of prod (step 1)"), "{plan}");
    assert!(plan.contains("Expected total: "), "{plan}");
}

fn assert_serving_initially(world: &World) {
    let status = world.status();
    assert_eq!(status["environments"]["dr"]["workloads"]["ac-ac-listener"]["replicas"], 0);
    assert_eq!(status["environments"]["prod"]["workloads"]["ac-ac-runtime"]["replicas"], 2);
}

#[test]
fn preflight_names_what_is_not_ready() {
    let world = World::start(&[]);
    world.kubectl("dr", &["scale", "deployment", "ac-ac-listener", "--replicas=1"]);
    let out = world.drscript(&["run", &format!("{RUNBOOKS}/preflight.rhai"), "--yes"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("dr listener has 1 replicas; it must be 0"), "{stderr}");
    assert!(stderr.contains("preflight check(s) failed"), "{stderr}");
}

/// Each region pulls from its own registry: the same tag is the same version; another tag is not.
#[test]
fn preflight_compares_versions_by_tag_not_by_registry() {
    let world = World::start(&[]);
    let image = world.kubectl(
        "dr",
        &["get", "deployment", "ac-ac-runtime", "-o", "jsonpath={.spec.template.spec.containers[0].image}"],
    );
    let (_, tag) = image.rsplit_once(':').expect("a tagged image");
    let preflight = || world.drscript(&["run", &format!("{RUNBOOKS}/preflight.rhai"), "--yes"]);
    let regional = format!("northeurope.azurecr.io/adeptia/runtime:{tag}");
    world.kubectl("dr", &["set", "image", "deployment/ac-ac-runtime", &format!("ac-runtime={regional}")]);
    let out = preflight();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "the same tag from another registry is the same version:\n{stderr}");
    world.kubectl(
        "dr",
        &["set", "image", "deployment/ac-ac-runtime", "ac-runtime=northeurope.azurecr.io/adeptia/runtime:0.0.1"],
    );
    let out = preflight();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("application versions differ"), "{stderr}");
}

#[test]
fn preflight_fails_when_a_gateway_refuses_the_credentials() {
    let world = World::start(&[]);
    std::fs::write(world.path().join("sbx/secrets/dr-gateway.password"), "Wr0ngGatewayPassw0rd").unwrap();
    let out = world.drscript(&["run", &format!("{RUNBOOKS}/preflight.rhai"), "--yes"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("the gateway of dr refuses drscript's credentials"), "{stderr}");
    assert!(!stderr.contains("Wr0ngGatewayPassw0rd"), "{stderr}");
}

#[test]
fn drill_fails_over_and_back_with_checks() {
    let world = World::start(&[]);
    world.run_ok("drill.rhai", &[]);
    world.assert_serving_kubectl("prod", "dr");
    let j = the_journal(&world);
    let titles: Vec<&str> = j
        .iter()
        .filter(|e| e["event"] == "step_finished" && e["outcome"] == "ok")
        .filter_map(|e| e["id"].as_str())
        .collect();
    assert!(titles.iter().any(|t| t.starts_with("Verify DR serves")), "{titles:?}");
}

#[test]
fn storage_failover_swaps_the_regions_only_when_the_shares_are_down_and_reports_the_last_sync_time() {
    let world = World::start(&["--remote-shares"]);
    let primary = || {
        let out = world
            .command(&["repl"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .and_then(|mut child| {
                use std::io::Write;
                child.stdin.take().unwrap().write_all(b"storage_status(\"prod\").primary_location\n")?;
                child.wait_with_output()
            })
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    assert_eq!(primary(), "=> \"eastus\"");
    let run = |vars: &[&str]| {
        let script = format!("{RUNBOOKS}/storage_failover.rhai");
        let mut args = vec!["run", script.as_str(), "--yes"];
        for v in vars {
            args.extend(["--var", v]);
        }
        let out = world.drscript(&args);
        (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    // No default environment: the operator names it.
    let (code, err) = run(&[]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("--var env=prod (account prod)"), "{err}");
    // PROD's shares answer: an irreversible failover would cure nothing.
    let (code, err) = run(&["env=prod"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("prod's share app answers") && err.contains("--var force=true"), "{err}");
    assert_eq!(primary(), "=> \"eastus\"", "a refused failover changed nothing");
    // The shares go down with the region's storage: now it fails over.
    let out = Command::new(&*BIN)
        .args(["sandbox", "outage", "prod", "share", "--dir", "sbx"])
        .current_dir(world.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (code, log) = run(&["env=prod"]);
    assert_eq!(code, Some(0), "{log}");
    assert!(log.contains("last sync"), "{log}");
    assert!(log.contains("of writes"), "the data-loss window is shown before the failover: {log}");
    assert_eq!(primary(), "=> \"westus\"", "the secondary region became the primary");
    let report = world.runs().into_iter().map(|r| r.join("report.md")).filter_map(|r| std::fs::read_to_string(r).ok());
    assert!(report.into_iter().any(|r| r.contains("storage_last_sync_time")), "the last sync time is in a report");
}

#[test]
fn failover_fails_the_storage_over_when_told_to() {
    let world = World::start(&[]);
    let log = world.run_ok("failover.rhai", &["--var", "storage_failover=always"]);
    assert!(log.contains("storage_failover"), "{log}");
    assert!(!log.contains("no storage account failover needed"), "{log}");
    world.assert_serving_kubectl("dr", "prod");
}

#[test]
fn database_runbooks_switch_the_database_record_after_probing() {
    // The sandbox's own primary and sync PostgreSQL servers (TLS, verify-full).
    let world = World::start(&[]);
    let password = std::fs::read_to_string(world.path().join("sbx/secrets/db-sync.password")).unwrap();
    let log = world.run_ok("db_failover.rhai", &[]);
    assert!(!log.contains(password.trim()), "the database password leaked");
    let zone = std::fs::read_to_string(world.path().join("sbx/dns-zone.json")).unwrap();
    assert!(zone.contains("pg-sync."), "{zone}");
    // A second run finds the record already at the sync database and changes nothing.
    let again = world.run_ok("db_failover.rhai", &[]);
    assert!(again.contains("already points at the sync database: nothing to do"), "{again}");
    assert!(!again.contains("set_dns"), "{again}");
    assert_eq!(std::fs::read_to_string(world.path().join("sbx/dns-zone.json")).unwrap(), zone);

    // --yes does not acknowledge the manual replication: without a terminal the run stops there
    // (exit 3) and the record still points at the sync database.
    let script = format!("{RUNBOOKS}/db_failback.rhai");
    let out = world.drscript(&["run", &script, "--yes"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("--yes does not acknowledge manual steps"), "{stderr}");
    assert_eq!(std::fs::read_to_string(world.path().join("sbx/dns-zone.json")).unwrap(), zone, "DNS was touched");

    // Acknowledged explicitly, the failback completes and the report records who acknowledged.
    let log = world.run_ok("db_failback.rhai", &["--ack", "Replicate the sync database"]);
    assert!(log.contains("acknowledged up front by --ack"), "{log}");
    let zone = std::fs::read_to_string(world.path().join("sbx/dns-zone.json")).unwrap();
    assert!(zone.contains("pg-primary.") && !zone.contains("pg-sync."), "{zone}");
}

/// Kills the failover with SIGKILL right after a given step finished, resumes it, and checks the
/// end state and that no finished step ran twice.
fn kill_after_and_resume(step_prefix: &str) {
    let world = World::start(&[]);
    let mut child = world
        .command(&["run", &format!("{RUNBOOKS}/failover.rhai"), "--yes"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let finished = |r: &serde_json::Value| {
        r["event"] == "step_finished" && r["id"].as_str().is_some_and(|id| id.starts_with(step_prefix))
    };
    while !world.runs().iter().any(|run| journal(run).iter().any(finished)) {
        assert!(child.try_wait().unwrap().is_none(), "the failover ended before {step_prefix}");
        assert!(started.elapsed() < Duration::from_secs(120), "never reached {step_prefix}");
        std::thread::sleep(Duration::from_millis(5));
    }
    drscript_base::sys::signal(child.id(), drscript_base::sys::Signal::Kill);
    child.wait().unwrap();
    let out = world.drscript(&["resume", "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    world.assert_serving_kubectl("dr", "prod");
    let j = the_journal(&world);
    assert_eq!(assert_no_step_ran_twice(&j, step_prefix), 1, "one resume");
    assert!(j.iter().any(|e| e["event"] == "step_skipped"), "resume skipped nothing");
}

#[test]
fn failover_killed_after_quiescing_is_finished_by_resume() {
    kill_after_and_resume("Quiesce prod");
}

#[test]
fn failover_killed_after_copying_is_finished_by_resume() {
    kill_after_and_resume("Copy state prod");
}

#[test]
fn failover_killed_after_activating_is_finished_by_resume() {
    kill_after_and_resume("Scale up the runtime and listener of dr");
}

/// Runs a customer folder's runbook against a sandbox shaped like its config.
fn run_example(customer: &str, extra_up: &[&str]) -> World {
    let config = format!("{}/examples/{customer}/drscript.toml", env!("CARGO_MANIFEST_DIR"));
    let mut up = vec!["--like", config.as_str()];
    up.extend_from_slice(extra_up);
    let world = World::start(&up);
    let script = format!("{}/examples/{customer}/failover.rhai", env!("CARGO_MANIFEST_DIR"));
    let out = world.drscript(&["run", &script, "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    world
}

#[test]
fn contoso_example_fails_over_with_its_own_names_and_counts() {
    let world = run_example("contoso", &[]);
    let status = world.status();
    let dr = &status["environments"]["dr"];
    assert_eq!(dr["namespace"], "integration");
    assert_eq!(dr["workloads"]["connect-ac-runtime"]["ready"], 3, "{dr}");
    assert_eq!(dr["workloads"]["connect-ac-listener"]["ready"], 2);
    assert_eq!(status["environments"]["prod"]["workloads"]["connect-ac-runtime"]["replicas"], 0);
    let zone = std::fs::read_to_string(world.path().join("sbx/dns-zone.json")).unwrap();
    assert!(zone.contains("connect-eus2.contoso.com"), "{zone}");
    let pods = world.kubectl_ns("dr", "integration", &["get", "pods", "-o", "name"]);
    assert!(pods.lines().filter(|l| l.contains("connect-ac-runtime")).count() == 3, "{pods}");
}

#[test]
fn fabrikam_example_switches_between_its_regions() {
    let world = run_example("fabrikam", &["--active", "westeurope"]);
    let status = world.status();
    let neu = &status["environments"]["northeurope"];
    assert_eq!(neu["namespace"], "adeptia-prod");
    assert_eq!(neu["workloads"]["ac-ac-runtime"]["ready"], 1, "{neu}");
    assert_eq!(status["environments"]["westeurope"]["workloads"]["ac-ac-listener"]["replicas"], 0);
    let zone = std::fs::read_to_string(world.path().join("sbx/dns-zone.json")).unwrap();
    assert!(zone.contains("10.30.1.40") && !zone.contains("10.20.1.40"), "{zone}");
}

/// A new customer with only the binary: `drscript init` writes the runbooks, the stdlib and a
/// starter config that `check` accepts; it never overwrites without `--force`; `plan failover`
/// (a name, no path) uses the folder's runbook and says so; an edited stdlib is named as
/// shadowing the built-in one; the folder's runbook runs against the sandbox (judged with kubectl).
#[test]
fn init_writes_a_customer_folder_that_plans_and_runs_and_names_an_edited_stdlib() {
    let world = World::start(&[]);
    let dir = world.path().join("customer");
    let init = |extra: &[&str]| {
        let mut args = vec!["init", "customer"];
        args.extend_from_slice(extra);
        Command::new(&*BIN).args(&args).current_dir(world.path()).output().unwrap()
    };
    let out = init(&[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    for file in ["drscript.toml", "runbooks/failover.rhai", "runbooks/failback.rhai", "stdlib/adeptia.rhai"] {
        assert!(dir.join(file).exists(), "{file}");
    }
    assert_eq!(
        std::fs::read_to_string(dir.join("runbooks/failover.rhai")).unwrap(),
        std::fs::read_to_string(format!("{RUNBOOKS}/failover.rhai")).unwrap()
    );
    // Never overwritten without --force: an edit survives.
    std::fs::write(dir.join("drscript.toml"), "# edited\n").unwrap();
    let out = init(&[]);
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nothing was written"));
    assert_eq!(std::fs::read_to_string(dir.join("drscript.toml")).unwrap(), "# edited\n");
    let out = init(&["--force"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // The secrets the starter config names (a plan checks that they are set).
    let secrets: Vec<(&str, &str)> = ["PROD_APP_SAS", "PROD_RABBITMQ_SAS", "DR_APP_SAS", "DR_RABBITMQ_SAS"]
        .map(|v| (v, "sv=2022-11-02&sp=rwdlc&sig=placeholder"))
        .into_iter()
        .chain(["PROD_GATEWAY_PASSWORD", "DR_GATEWAY_PASSWORD"].map(|v| (v, "placeholder")))
        .collect();
    let in_dir = |args: &[&str]| {
        Command::new(&*BIN).args(args).current_dir(&dir).env("NO_COLOR", "1").envs(secrets.clone()).output().unwrap()
    };
    let out = in_dir(&["check", "--config", "drscript.toml"]);
    assert!(out.status.success(), "{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let out = in_dir(&["--config", "drscript.toml", "plan", "failover"]);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{err}");
    assert!(err.contains("failover: using runbooks/failover.rhai"), "{err}");
    assert!(!err.contains("differs from the one built into"), "an unedited stdlib is not a shadow: {err}");
    // An edited stdlib is named at the start of every run.
    let stdlib = dir.join("stdlib/adeptia.rhai");
    let text = std::fs::read_to_string(&stdlib).unwrap();
    std::fs::write(&stdlib, format!("// Fabrikam's edit\n{text}")).unwrap();
    let out = in_dir(&["--config", "drscript.toml", "plan", "failover"]);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("module adeptia.rhai comes from ")
            && err.contains("customer/stdlib/adeptia.rhai")
            && err.contains("first difference at line 1"),
        "{err}"
    );
    // The folder's runbook against the sandbox.
    let config = world.path().join("sbx/drscript.toml");
    let out = in_dir(&["--config", config.to_str().unwrap(), "run", "failover", "--yes"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    world.assert_serving_kubectl("dr", "prod");
}

/// Northwind's folder, made with `drscript init` and edited: its own workload names
/// (`nw-{component}`), a component of its own (a web runner, scaled with the runtime and
/// listener), a folder of its own in the config (`archive`), a step added (its job ledger) and
/// one removed (the storage account failover). Against a sandbox shaped like its config, the
/// edited failover is refused with nothing changed in a split brain; then it runs in its own
/// order, is killed after the copy and finished by `resume` with no step run twice; the extra
/// folder and component moved with it (judged with kubectl and the shares' bytes).
#[test]
fn northwind_edited_failover_keeps_the_interlocks_runs_in_its_order_and_resumes() {
    let root = env!("CARGO_MANIFEST_DIR");
    let config = format!("{root}/examples/northwind/drscript.toml");
    let script = format!("{root}/examples/northwind/runbooks/failover.rhai");
    let world = World::start(&["--like", &config]);
    let replicas = |env: &str, workload: &str| {
        world.kubectl_ns(env, "adeptia", &["get", "deployment", workload, "-o", "jsonpath={.spec.replicas}"])
    };
    assert_eq!(replicas("prod", "nw-webrunner"), "2", "the sandbox runs the customer's own component");
    assert_eq!(replicas("dr", "nw-webrunner"), "0");
    let archive = |env: &str| world::tree(&world.path().join(format!("sbx/shares/{env}/app/archive")));
    assert_eq!(archive("prod").len(), 5, "the sandbox seeds the customer's own folder");
    assert!(archive("dr").is_empty());

    // A split brain: DR's listener started by hand. Refused, nothing changed.
    world.kubectl_ns("dr", "adeptia", &["scale", "deployment", "nw-listener", "--replicas=1"]);
    let out = world.drscript(&["run", &script, "--yes"]);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("SPLIT"), "{err}");
    assert_eq!(replicas("prod", "nw-runtime"), "2", "PROD untouched");
    assert_eq!(replicas("prod", "nw-webrunner"), "2");
    assert!(archive("dr").is_empty(), "nothing copied");
    world.kubectl_ns("dr", "adeptia", &["scale", "deployment", "nw-listener", "--replicas=0"]);

    // The edited failover, killed once the copy finished, then resumed.
    let mut child =
        world.command(&["run", &script, "--yes"]).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let started = Instant::now();
    let copied = |r: &serde_json::Value| {
        r["event"] == "step_finished" && r["id"].as_str().is_some_and(|id| id.starts_with("Copy state prod"))
    };
    while !world.runs().iter().any(|run| journal(run).iter().any(copied)) {
        assert!(child.try_wait().unwrap().is_none(), "the failover ended before the copy finished");
        assert!(started.elapsed() < Duration::from_secs(120), "never reached the copy");
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let out = world.drscript(&["resume", "--yes"]);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(0), "{err}");
    // (The refused run has a folder of its own, with nothing changed in it.)
    let run = world.runs().into_iter().find(|run| journal(run).iter().any(copied)).unwrap();
    let records = journal(&run);
    assert_no_step_ran_twice(&records, "northwind");
    // The top-level steps, in the order the edited list gives them.
    let mut order: Vec<String> = Vec::new();
    for r in records.iter().filter(|r| r["event"] == "step_started") {
        let top = r["id"].as_str().unwrap().split('/').next().unwrap().to_string();
        if !order.contains(&top) {
            order.push(top);
        }
    }
    let at = |title: &str| {
        order.iter().position(|t| t.starts_with(title)).unwrap_or_else(|| panic!("no {title}: {order:?}"))
    };
    assert!(at("Quiesce prod") < at("Copy state prod"), "{order:?}");
    assert!(at("Check dr serves") < at("Stamp the job ledger of dr"), "{order:?}");
    assert!(at("Stamp the job ledger of dr") < at("Update DNS to route all requests to dr"), "{order:?}");
    assert!(!order.iter().any(|t| t.contains("Storage account failover")), "the removed step ran: {order:?}");
    assert!(err.contains("job ledger: switched prod → dr"), "{err}");
    // What moved, judged with kubectl and the shares' bytes.
    assert_eq!(replicas("dr", "nw-webrunner"), "2");
    assert_eq!(replicas("prod", "nw-webrunner"), "0");
    assert_eq!(replicas("dr", "nw-runtime"), "2");
    assert_eq!(replicas("prod", "nw-listener"), "0");
    assert_eq!(archive("dr"), archive("prod"), "the folder named only in the config was copied");
}
