//! Where service is, and switches that read it first: `drscript status` in every verdict, the
//! interlocks of failover/failback (wrong direction, run twice, split brain, an unfinished switch),
//! the RabbitMQ volume made identical, the storage decision, and the region-down failover with its
//! return. Everything through the binary against the sandbox; the final state judged with kubectl,
//! the shares' bytes, the DNS zone and the journal.

use drscript_test_support::world;

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use world::{BIN, RUNBOOKS, World, journal, tree};

fn runbook(name: &str) -> String {
    format!("{RUNBOOKS}/{name}")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Everything a switch could change: both sides' share bytes, the DNS zone, and per environment
/// the workloads' replicas and the names of their pods (a restarted pod has a new name).
fn snapshot(world: &World) -> (Value, String, Value) {
    let shares = serde_json::to_value(tree(&world.path().join("sbx/shares"))).unwrap();
    let zone = std::fs::read_to_string(world.path().join("sbx/dns-zone.json")).unwrap();
    let status = world.status();
    let mut kube = serde_json::Map::new();
    for (env, e) in status["environments"].as_object().unwrap() {
        let replicas: Value = e["workloads"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(w, v)| (w.clone(), v["replicas"].clone()))
            .collect::<serde_json::Map<_, _>>()
            .into();
        let mut pods: Vec<String> =
            e["pods"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap().to_string()).collect();
        pods.sort();
        kube.insert(env.clone(), serde_json::json!({"replicas": replicas, "pods": pods, "scheduler": e["scheduler"]}));
    }
    (shares, zone, Value::Object(kube))
}

fn status_json(world: &World) -> (Option<i32>, Value) {
    status_json_with(world, &[])
}

/// `drscript status --json` with the default budget per part, or `extra` flags.
fn status_json_with(world: &World, extra: &[&str]) -> (Option<i32>, Value) {
    let mut args = vec!["status", "--json"];
    args.extend_from_slice(extra);
    let out = world.drscript(&args);
    let v = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}\n{}", stdout(&out), stderr(&out)));
    (out.status.code(), v)
}

fn env_of<'a>(status: &'a Value, name: &str) -> &'a Value {
    status["environments"].as_array().unwrap().iter().find(|e| e["name"] == name).unwrap()
}

/// Runs a one-off script against the sandbox (to change its state the way an operator would).
fn script(world: &World, text: &str) {
    let path = world.path().join("adhoc.rhai");
    std::fs::write(&path, text).unwrap();
    let out = world.drscript(&["run", path.to_str().unwrap(), "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

fn metric<'a>(records: &'a [Value], name: &str) -> Vec<&'a Value> {
    records.iter().filter(|r| r["event"] == "metric" && r["name"] == name).map(|r| &r["value"]).collect()
}

/// A failback typed while PROD serves (in a fresh state folder: nothing records a switch): the
/// state a failback asks for holds, so nothing changes and it exits 0, naming the command that
/// moves service the other way — a command that is then accepted as typed.
#[test]
fn failback_while_prod_serves_changes_nothing_and_names_the_switch_the_other_way() {
    let world = World::start(&[]);
    let before = snapshot(&world);
    let out = world.drscript(&["run", &runbook("failback.rhai"), "--yes"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("Nothing to do: prod already serves and dr is quiesced"), "{err}");
    assert!(err.contains("no switch dr → prod is recorded"), "{err}");
    assert!(err.contains("to move service from prod to dr instead: drscript failover.rhai"), "{err}");
    assert_eq!(snapshot(&world), before, "a failback with nothing to do changed something");
    // Nothing to resume after it.
    let resume = world.drscript(&["resume", "--yes"]);
    assert_eq!(resume.status.code(), Some(2), "{}", stderr(&resume));
    assert!(stderr(&resume).contains("nothing to resume"), "{}", stderr(&resume));
    // `status` names the same command as its next step.
    let (_, s) = status_json(&world);
    assert_eq!(s["next"][0]["command"], "drscript failover.rhai", "{s}");
}

/// DR's RabbitMQ volume holds many files PROD's lacks: the mirror's deletion guard refuses before
/// PROD is touched, with the real count and the option that raises it; that option then works.
#[test]
fn the_rabbitmq_guard_refuses_before_prod_is_touched_and_names_the_option_that_raises_it() {
    let world = World::start(&[]);
    let extra = world.path().join("sbx/shares/dr/rabbitmq/mnesia/stale");
    std::fs::create_dir_all(&extra).unwrap();
    for i in 0..300 {
        std::fs::write(extra.join(format!("{i}.rdq")), format!("old message {i}")).unwrap();
    }
    // What a mirror deletes: DR's files that PROD lacks.
    let prod = tree(&world.path().join("sbx/shares/prod/rabbitmq"));
    let extras = tree(&world.path().join("sbx/shares/dr/rabbitmq")).keys().filter(|k| !prod.contains_key(*k)).count();
    assert!(extras >= 300, "{extras}");
    let before = snapshot(&world);
    let out = world.drscript(&["run", &runbook("failover.rhai"), "--yes"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains(&format!("would delete {extras} of dr's")), "the guard's real count: {err}");
    assert!(err.contains(&format!("--var max_delete={extras}")), "the option that raises it: {err}");
    assert_eq!(snapshot(&world), before, "a refused failover changed something");
    let replicas = world.kubectl("prod", &["get", "deployment", "ac-ac-runtime", "-o", "jsonpath={.spec.replicas}"]);
    assert_eq!(replicas, "2", "kubectl sees PROD's runtime untouched");
    let runs_before = world.runs();
    world.run_ok("failover.rhai", &["--var", &format!("max_delete={extras}")]);
    let run = world.runs().difference(&runs_before).next().cloned().expect("the run's folder");
    let confirmed = journal(&run).iter().any(|r| r.to_string().contains(&format!("guard: max_delete {extras}")));
    assert!(confirmed, "the confirmation shows the guard's figure");
    world.assert_serving_kubectl("dr", "prod");
    assert!(!extra.exists() || std::fs::read_dir(&extra).unwrap().next().is_none(), "the mirror deleted them");
}

/// A wrong gateway password is found before PROD is stopped, not at "Pause" with PROD down.
#[test]
fn a_wrong_gateway_password_is_refused_before_anything_changes() {
    let world = World::start(&[]);
    let secret = world.path().join("sbx/secrets/prod-gateway.password");
    let right = std::fs::read_to_string(&secret).unwrap();
    std::fs::write(&secret, "Wr0ngGatewayPassw0rd").unwrap();
    let before = snapshot(&world);
    let out = world.drscript(&["run", &runbook("failover.rhai"), "--yes"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("the gateway of prod refuses drscript's credentials"), "{err}");
    assert!(err.contains("fix environments.prod.gateway_auth"), "{err}");
    assert!(!err.contains("Wr0ngGatewayPassw0rd"), "the password is masked: {err}");
    assert_eq!(snapshot(&world), before, "a refused failover changed something");
    let replicas = world.kubectl("prod", &["get", "deployment", "ac-ac-runtime", "-o", "jsonpath={.spec.replicas}"]);
    assert_eq!(replicas, "2", "kubectl sees PROD's runtime untouched");
    let status = stdout(&world.drscript(&["status"]));
    assert!(status.contains("prod: the gateway refuses drscript's credentials"), "{status}");
    // With the right password the same command switches.
    std::fs::write(&secret, right).unwrap();
    world.run_ok("failover.rhai", &[]);
    world.assert_serving_kubectl("dr", "prod");
}

/// DR's cluster identity may read but not scale (a viewer's RBAC): the switch asks the API server
/// (a SelfSubjectAccessReview) before its first change and is refused, naming the identity, the
/// right and the fix; kubectl sees nothing changed on either side. Preflight fails on it too.
#[test]
fn a_cluster_identity_that_may_not_scale_is_refused_before_anything_changes() {
    let world = World::start(&[]);
    let sbx = world.path().join("sbx");
    let config = std::fs::read_to_string(sbx.join("drscript.toml")).unwrap();
    assert!(config.contains("kube_context = \"dr\""), "{config}");
    std::fs::write(sbx.join("viewer.toml"), config.replace("kube_context = \"dr\"", "kube_context = \"dr-viewer\""))
        .unwrap();
    let run = |args: &[&str]| {
        Command::new(&*BIN)
            .args(["--config", "sbx/viewer.toml"])
            .args(args)
            .current_dir(world.path())
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap()
    };
    let before = snapshot(&world);
    let out = run(&["run", &runbook("failover.rhai"), "--yes"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("the cluster of dr refuses drscript's credentials"), "{err}");
    assert!(err.contains("may not update deployments/scale, statefulsets/scale (RBAC:"), "{err}");
    assert!(err.contains("in namespace adeptia"), "{err}");
    assert!(err.contains("kubectl auth can-i update deployments/scale"), "the fix: {err}");
    assert_eq!(snapshot(&world), before, "a refused failover changed something");
    for env in ["prod", "dr"] {
        let listener = world.kubectl(env, &["get", "deployment", "ac-ac-listener", "-o", "jsonpath={.spec.replicas}"]);
        assert_eq!(listener, if env == "prod" { "1" } else { "0" }, "kubectl: {env} untouched");
    }
    let out = run(&["run", &runbook("preflight.rhai"), "--yes"]);
    assert_ne!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).contains("the cluster of dr: the identity of context dr-viewer may not"), "{}", stderr(&out));
    // With the admin context the same command switches.
    world.run_ok("failover.rhai", &[]);
    world.assert_serving_kubectl("dr", "prod");
}

/// A region outage needs remote shares; without them it is refused whole: the cluster and the
/// gateway stay up, not half of the region.
#[test]
fn a_partial_outage_is_all_or_nothing() {
    let world = World::start(&[]);
    let out = Command::new(&*BIN)
        .args(["sandbox", "outage", "prod", "region", "--dir", "sbx"])
        .current_dir(world.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("--remote-shares") && stderr(&out).contains("nothing was taken down"),
        "{}",
        stderr(&out)
    );
    let status = world.status();
    assert_eq!(status["environments"]["prod"]["outage"]["cluster"], "open", "{status}");
    assert_eq!(status["environments"]["prod"]["outage"]["gateway"], "open", "{status}");
    let (code, s) = status_json(&world);
    assert_eq!((code, &s["verdict"]["kind"]), (Some(0), &serde_json::json!("ACTIVE")), "{s}");
}

/// A failover stopped at its confirmation changed nothing: it is nothing to resume, and resumed by
/// name after another operator switched it decides afresh instead of quiescing the side that now
/// serves and mirroring PROD's old RabbitMQ volume over it.
#[test]
fn a_stale_run_stopped_at_its_confirmation_is_never_replayed_over_the_serving_side() {
    let world = World::start(&[]);
    // No terminal and no --yes: it stops at the confirmation (exit 3) having changed nothing.
    let out = world.drscript(&["run", &runbook("failover.rhai")]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let stale = world.the_run();
    // Another operator, another state folder, fails over; DR takes new messages.
    let out = world.drscript(&["--state-dir", "elsewhere", "run", &runbook("failover.rhai"), "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let message = world.path().join("sbx/shares/dr/rabbitmq/new-message.rdq");
    std::fs::write(&message, "taken by DR after the switch").unwrap();
    let before = snapshot(&world);
    let resume = world.drscript(&["resume", "--yes"]);
    assert_eq!(resume.status.code(), Some(2), "{}", stderr(&resume));
    assert!(stderr(&resume).contains("nothing to resume"), "{}", stderr(&resume));
    let id = stale.file_name().unwrap().to_str().unwrap();
    let resume = world.drscript(&["resume", id, "--yes"]);
    let err = stderr(&resume);
    assert_eq!(resume.status.code(), Some(0), "decided afresh, the stale failover finds it done: {err}");
    assert!(err.contains("Nothing to do: dr already serves and prod is quiesced"), "{err}");
    assert_eq!(snapshot(&world), before, "the stale resume changed something");
    assert_eq!(std::fs::read_to_string(&message).unwrap(), "taken by DR after the switch");
    let runtime =
        |env: &str| world.kubectl(env, &["get", "deployment", "ac-ac-runtime", "-o", "jsonpath={.spec.replicas}"]);
    assert_eq!((runtime("dr").as_str(), runtime("prod").as_str()), ("2", "0"), "kubectl: DR still serves alone");
}

/// A dry run of a normal failover rehearses it to the end: what it scaled and resumed is pictured
/// as done, so "Check dr serves" checks the picture; it exits 0, changes nothing, and is not a
/// failed or unfinished run.
#[test]
fn a_dry_run_of_a_failover_rehearses_to_the_end_and_changes_nothing() {
    let world = World::start(&[]);
    let before = snapshot(&world);
    let out = world.drscript(&["run", &runbook("failover.rhai"), "--dry-run", "--yes"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("Check dr serves"), "{err}");
    assert_eq!(snapshot(&world), before, "a dry run changed something");
    let runs = world.drscript(&["runs", "--json"]);
    let runs: Value = serde_json::from_slice(&runs.stdout).unwrap();
    assert_eq!(runs[0]["outcome"], "ok", "{runs}");
    let resume = world.drscript(&["resume", "--yes"]);
    assert!(stderr(&resume).contains("nothing to resume"), "{}", stderr(&resume));
}

#[test]
fn a_failover_run_twice_does_nothing_the_second_time() {
    let world = World::start(&[]);
    world.run_ok("failover.rhai", &[]);
    world.assert_serving_kubectl("dr", "prod");
    let before = snapshot(&world);
    let log = world.run_ok("failover.rhai", &[]);
    assert!(log.contains("Nothing to do: dr already serves and prod is quiesced (run"), "{log}");
    assert!(log.contains("already switched prod → dr"), "{log}");
    assert!(!log.contains("▶"), "a step ran: {log}");
    assert_eq!(snapshot(&world), before, "the second failover changed something");
    let runs = world.drscript(&["runs", "--json"]);
    let runs: Value = serde_json::from_slice(&runs.stdout).unwrap();
    assert_eq!(runs[0]["decision"], "done");
    assert_eq!(runs[1]["decision"], "switch");
    assert_eq!(runs[1]["from"], "prod");
    assert_eq!(runs[1]["to"], "dr");
    assert!(runs[1]["downtime_seconds"].as_f64().unwrap() > 0.0, "{runs}");
    assert!(runs[1]["total_seconds"].as_f64().unwrap() >= runs[1]["downtime_seconds"].as_f64().unwrap());
}

#[test]
fn a_split_brain_is_refused_until_the_side_to_keep_is_named() {
    let world = World::start(&[]);
    // DR's listener started by hand: DR takes work in too.
    world.kubectl("dr", &["scale", "deployment", "ac-ac-listener", "--replicas=1"]);
    let before = snapshot(&world);
    let out = world.drscript(&["run", &runbook("failover.rhai"), "--yes"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("SPLIT: both prod and dr process"), "{err}");
    assert!(err.contains("--var keep=prod"), "{err}");
    assert_eq!(snapshot(&world), before);
    let (code, status) = status_json(&world);
    assert_eq!(code, Some(1));
    assert_eq!(status["verdict"]["kind"], "SPLIT");
    assert_eq!(status["verdict"]["side"], serde_json::json!(["prod", "dr"]));

    let log = world.run_ok("failover.rhai", &["--var", "keep=prod"]);
    assert!(log.contains("Quiesce dr"), "dr is quiesced first: {log}");
    world.assert_serving_kubectl("dr", "prod");
}

#[test]
fn the_rabbitmq_volume_ends_identical_even_where_dr_has_a_newer_file_of_the_same_size() {
    let world = World::start(&[]);
    let prod = world.path().join("sbx/shares/prod/rabbitmq");
    let dr = world.path().join("sbx/shares/dr/rabbitmq");
    // A DR queue file with PROD's size, other bytes, and a newer time: DR's RabbitMQ ran.
    let (name, bytes) = tree(&prod).into_iter().find(|(_, b)| b.len() > 16).unwrap();
    let stale: Vec<u8> = bytes.iter().map(|b| b.wrapping_add(1)).collect();
    let target = dr.join(&name);
    std::fs::create_dir_all(target.parent().unwrap()).unwrap();
    std::fs::write(&target, &stale).unwrap();
    let newer = std::fs::metadata(prod.join(&name)).unwrap().modified().unwrap() + Duration::from_secs(3600);
    std::fs::File::options().write(true).open(&target).unwrap().set_modified(newer).unwrap();
    world.run_ok("failover.rhai", &[]);
    assert!(std::fs::read(&target).unwrap() == bytes, "{name}: DR's newer file was kept");
    assert!(tree(&prod) == tree(&dr), "the two volumes differ");
}

/// Writes a config where `env`'s `share` uses a SAS (permissions `sp`, expiring at `expiry`)
/// instead of the account key; returns the config's file name under `sbx/`.
fn config_with_sas(world: &World, env: &str, share: &str, sp: &str, expiry: chrono::DateTime<chrono::Utc>) -> String {
    let sbx = world.path().join("sbx");
    let key = std::fs::read_to_string(sbx.join(format!("secrets/{env}-files.key"))).unwrap();
    let sas = drscript_sync::azure_files::auth::account_sas(env, key.trim(), sp, expiry);
    std::fs::write(sbx.join(format!("secrets/{env}-{share}.sas")), &sas).unwrap();
    let config = std::fs::read_to_string(sbx.join("drscript.toml")).unwrap();
    let edited: String = config
        .lines()
        .map(|l| {
            if l.starts_with(&format!("{share} = ")) && l.contains(&format!("/{env}/{share}")) {
                l.replace(
                    &format!("account_key_file = \"secrets/{env}-files.key\""),
                    &format!("sas_file = \"secrets/{env}-{share}.sas\""),
                )
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    assert_ne!(edited, config, "the share line was found");
    let name = format!("{env}-{share}-{sp}.toml");
    std::fs::write(sbx.join(&name), edited).unwrap();
    name
}

/// What would fail inside the downtime is refused before it: a SAS that expires before the
/// switch can end, a destination share whose SAS cannot write. Nothing changes on either side.
#[test]
fn a_sas_expiring_during_the_switch_or_a_read_only_destination_is_refused_before_anything_changes() {
    let world = World::start(&["--remote-shares"]);
    let run = |config: &str| {
        Command::new(&*BIN)
            .args(["--config", &format!("sbx/{config}"), "run", &runbook("failover.rhai"), "--yes"])
            .current_dir(world.path())
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap()
    };
    let before = snapshot(&world);
    let soon = config_with_sas(&world, "prod", "app", "rl", chrono::Utc::now() + chrono::Duration::minutes(20));
    let out = run(&soon);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("prod's share app: its SAS expires in 19 min")
            || err.contains("prod's share app: its SAS expires in 20 min"),
        "{err}"
    );
    assert!(err.contains("--var sas_margin=SECONDS"), "{err}");
    assert_eq!(snapshot(&world), before, "a refused failover changed something");
    let read_only = config_with_sas(&world, "dr", "app", "rl", chrono::Utc::now() + chrono::Duration::days(30));
    let out = run(&read_only);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("dr's share app is read-only for drscript: its SAS grants sp=rl"), "{err}");
    assert!(err.contains("(lacks wdc)"), "{err}");
    assert_eq!(snapshot(&world), before, "a refused failover changed something");
    let listener = world.kubectl("prod", &["get", "deployment", "ac-ac-listener", "-o", "jsonpath={.spec.replicas}"]);
    assert_eq!(listener, "1", "kubectl: PROD untouched");
}

#[test]
fn a_share_with_an_expired_sas_proposes_no_storage_failover() {
    let world = World::start(&["--remote-shares"]);
    let sbx = world.path().join("sbx");
    let key = std::fs::read_to_string(sbx.join("secrets/prod-files.key")).unwrap();
    let expired = drscript_sync::azure_files::auth::account_sas(
        "prod",
        key.trim(),
        "rl",
        chrono::Utc::now() - chrono::Duration::days(3),
    );
    std::fs::write(sbx.join("secrets/prod-app.sas"), &expired).unwrap();
    let config = std::fs::read_to_string(sbx.join("drscript.toml")).unwrap();
    let edited: String = config
        .lines()
        .map(|l| {
            if l.starts_with("app = ") && l.contains("/prod/app") {
                l.replace("account_key_file = \"secrets/prod-files.key\"", "sas_file = \"secrets/prod-app.sas\"")
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(sbx.join("expired.toml"), edited).unwrap();
    let before = snapshot(&world);
    let out = Command::new(&*BIN)
        .args(["--config", "sbx/expired.toml", "run", &runbook("failover.rhai"), "--yes"])
        .current_dir(world.path())
        .output()
        .unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("SAS expired 3 day(s) ago"), "{err}");
    assert!(err.contains("no storage failover is proposed"), "{err}");
    assert!(!err.contains("storage_failover"), "{err}");
    let sig = expired.split('&').find_map(|kv| kv.strip_prefix("sig=")).unwrap();
    assert!(!err.contains(sig), "the SAS signature leaked");
    assert_eq!(snapshot(&world), before);
    // status tells the same, as a denied share with its expiry, and shows no SAS field either.
    let out = Command::new(&*BIN)
        .args(["--config", "sbx/expired.toml", "status", "--json"])
        .current_dir(world.path())
        .output()
        .unwrap();
    let text = format!("{}{}", stdout(&out), stderr(&out));
    let status: Value = serde_json::from_slice(&out.stdout).unwrap();
    let app = &env_of(&status, "prod")["shares"]["app"];
    assert_eq!(app["problem"], "denied", "{app}");
    assert_eq!(app["sas_days_left"], -3, "{app}");
    assert!(app["error"].as_str().unwrap().contains("SAS expired 3 day(s) ago"), "{app}");
    for field in expired.split('&').filter_map(|kv| kv.split_once('=')).map(|(_, v)| v).filter(|v| v.len() > 4) {
        assert!(!text.contains(field), "status printed a SAS field value {field}");
    }
    let arm = &world.status()["components"]["arm"];
    assert_eq!(arm["storage_accounts"][0]["properties"]["failoverInProgress"], Value::Null, "{arm}");
}

/// The DR document's prerequisites deploy the standby with only its listener at 0 and its
/// scheduler paused at boot; its runtime runs (failback step 1 scales it down). That standby is a
/// standby, not a split brain: it fails over and back.
#[test]
fn the_documents_standby_with_its_runtime_running_fails_over_and_back() {
    let world = World::start(&[]);
    let replicas = |env: &str, workload: &str| {
        world.kubectl(env, &["get", "deployment", workload, "-o", "jsonpath={.spec.replicas}"])
    };
    assert_eq!(replicas("dr", "ac-ac-runtime"), "2", "the sandbox seeds DR as the document deploys it");
    assert_eq!(replicas("dr", "ac-ac-listener"), "0");
    let (code, s) = status_json(&world);
    assert_eq!(code, Some(0), "{s}");
    assert_eq!(s["verdict"], serde_json::json!({"kind": "ACTIVE", "side": "prod"}), "{s}");
    assert_eq!(env_of(&s, "dr")["quiesced"], true, "{s}");
    world.run_ok("failover.rhai", &[]);
    world.assert_serving_kubectl("dr", "prod");
    let (code, s) = status_json(&world);
    assert_eq!((code, &s["verdict"]), (Some(0), &serde_json::json!({"kind": "ACTIVE", "side": "dr"})), "{s}");
    world.run_ok("failback.rhai", &[]);
    world.assert_serving_kubectl("prod", "dr");
    // Started by hand, DR's listener makes it process: now that is a split brain.
    world.kubectl("dr", &["scale", "deployment", "ac-ac-listener", "--replicas=1"]);
    let (code, s) = status_json(&world);
    assert_ne!(code, Some(0));
    assert_eq!(s["verdict"]["kind"], "SPLIT", "{s}");
}

#[test]
fn status_tells_each_situation_apart() {
    let world = World::start(&[]);
    // ACTIVE, healthy: exit 0.
    let out = world.drscript(&["status"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.starts_with("ACTIVE prod — healthy\n"), "{text}");
    assert!(text.contains("DNS app.adeptia.sandbox points at prod"), "{text}");
    let (code, s) = status_json(&world);
    assert_eq!(code, Some(0));
    assert_eq!(s["verdict"], serde_json::json!({"kind": "ACTIVE", "side": "prod"}));
    assert_eq!(s["healthy"], true);
    assert_eq!(s["dns"]["points_at"], "prod");
    let prod = env_of(&s, "prod");
    assert_eq!(prod["serving"], true);
    assert_eq!(prod["scheduler"], "running");
    assert_eq!(
        prod["workloads"]["runtime"],
        serde_json::json!({"name": "ac-ac-runtime", "desired": 2, "ready": 2, "configured": 2})
    );
    assert_eq!(prod["version"], "4.2.1");
    assert_eq!(prod["shares"]["app"]["reachable"], true);
    assert_eq!(env_of(&s, "dr")["quiesced"], true);
    assert_eq!(env_of(&s, "dr")["scheduler"], "paused");

    // One environment unreachable: shown with its error, the command does not fail.
    world.sandbox(&["outage", "dr", "cluster"]);
    let (code, s) = status_json(&world);
    assert_eq!(code, Some(1));
    assert_eq!(s["verdict"]["kind"], "ACTIVE");
    assert_eq!(s["healthy"], false);
    let dr = env_of(&s, "dr");
    assert_eq!(dr["cluster"]["reachable"], false);
    assert!(dr["cluster"]["error"].as_str().unwrap().to_lowercase().contains("connection refused"), "{dr}");
    assert_eq!(dr["gateway"]["reachable"], true);
    let text = stdout(&world.drscript(&["status"]));
    assert!(text.contains("dr cluster: ") && text.contains("DOWN"), "{text}");
    world.sandbox(&["outage", "dr", "cluster", "--hang"]);
    let started = Instant::now();
    let (_, s) = status_json_with(&world, &["--timeout", "3"]);
    assert!(started.elapsed() < Duration::from_secs(10), "status waited {:?} on a hanging cluster", started.elapsed());
    assert!(env_of(&s, "dr")["cluster"]["error"].as_str().unwrap().contains("timed out"), "{s}");
    world.sandbox(&["restore", "dr"]);

    // DNS MISMATCH: the record points at a side that does not process.
    script(&world, "set_dns(\"app\", \"dr\");");
    let (code, s) = status_json(&world);
    assert_eq!(code, Some(1));
    assert_eq!(s["verdict"], serde_json::json!({"kind": "DNS_MISMATCH", "side": "dr"}));
    assert!(stdout(&world.drscript(&["status"])).starts_with("DNS MISMATCH (points at dr)"));
    script(&world, "set_dns(\"app\", \"prod\");");

    // SPLIT: DR's listener started by hand (its runtime runs anyway, as the document deploys it).
    world.kubectl("dr", &["scale", "deployment", "ac-ac-listener", "--replicas=1"]);
    let (_, s) = status_json(&world);
    assert_eq!(s["verdict"]["kind"], "SPLIT");
    world.kubectl("dr", &["scale", "deployment", "ac-ac-listener", "--replicas=0"]);

    // NONE: PROD quiesced by hand.
    script(
        &world,
        "let p = env(\"prod\"); scale(p, \"deployment\", \"ac-ac-runtime\", 0); scale(p, \"deployment\", \"ac-ac-listener\", 0); pause_scheduler(p);",
    );
    let (code, s) = status_json(&world);
    assert_eq!(code, Some(1));
    assert_eq!(s["verdict"], serde_json::json!({"kind": "NONE"}));
    assert!(s["reasons"].as_array().unwrap().iter().any(|r| r == "prod is quiesced"), "{s}");
    script(
        &world,
        "let p = env(\"prod\"); scale(p, \"deployment\", \"ac-ac-runtime\", 2); scale(p, \"deployment\", \"ac-ac-listener\", 1); resume_scheduler(p);",
    );

    // SWITCHING: a failover killed half-way; a new one is refused and points at resume.
    let run = kill_run_after(&world, "failover.rhai", &[], "Quiesce prod");
    let (code, s) = status_json(&world);
    assert_eq!(code, Some(1));
    assert_eq!(s["verdict"], serde_json::json!({"kind": "SWITCHING", "side": run}));
    assert_eq!(s["unfinished_run"]["run_id"], run.as_str());
    let text = stdout(&world.drscript(&["status"]));
    assert!(text.contains(&format!("continue it with `drscript resume {run}`")), "{text}");
    let again = world.drscript(&["run", &runbook("failover.rhai"), "--yes"]);
    assert_eq!(again.status.code(), Some(2), "{}", stderr(&again));
    assert!(stderr(&again).contains(&format!("drscript resume {run}")), "{}", stderr(&again));
    let runs = stdout(&world.drscript(&["runs"]));
    assert!(
        runs.contains(&format!("unfinished: {run} (failover.rhai) — continue with `drscript resume {run}`")),
        "{runs}"
    );
    let resumed = world.drscript(&["resume", "--yes"]);
    assert_eq!(resumed.status.code(), Some(0), "{}", stderr(&resumed));
    world.assert_serving_kubectl("dr", "prod");
    let (code, s) = status_json(&world);
    assert_eq!(code, Some(0), "{s}");
    assert_eq!(s["verdict"], serde_json::json!({"kind": "ACTIVE", "side": "dr"}));
}

#[test]
fn status_writes_openmetrics_gauges() {
    let world = World::start(&[]);
    let file = world.path().join("drscript.prom");
    let out = world.drscript(&["status", "--openmetrics", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = std::fs::read_to_string(&file).unwrap();
    for line in [
        "drscript_healthy 1",
        "drscript_active{env=\"prod\"} 1",
        "drscript_active{env=\"dr\"} 0",
        "drscript_replicas_ready{env=\"prod\",component=\"runtime\"} 2",
        "drscript_scheduler_running{env=\"dr\"} 0",
        "drscript_share_reachable{env=\"dr\",share=\"rabbitmq\"} 1",
    ] {
        assert!(text.lines().any(|l| l == line), "missing `{line}` in\n{text}");
    }
    assert!(text.contains("drscript_storage_last_sync_age_seconds{env=\"prod\",account=\"prod\"}"), "{text}");
    assert!(text.ends_with("# EOF\n"));
}

fn assert_dr_serves_alone(world: &World) {
    let runtime =
        world.kubectl("dr", &["get", "deployment", "ac-ac-runtime", "-o", "jsonpath={.status.readyReplicas}"]);
    assert_eq!(runtime, "2");
    let zone = std::fs::read_to_string(world.path().join("sbx/dns-zone.json")).unwrap();
    assert!(zone.contains("127.0.2.10") && !zone.contains("127.0.1.10"), "DNS does not point at dr: {zone}");
    assert_eq!(world.status()["environments"]["dr"]["scheduler"], "RUNNING");
}

#[test]
fn region_down_failover_fails_the_storage_over_and_prod_returns_fenced_by_failback() {
    let world = World::start(&["--remote-shares"]);
    world.sandbox(&["outage", "prod", "region"]);
    let status = world.status();
    assert_eq!(
        status["environments"]["prod"]["outage"],
        serde_json::json!({"cluster": "refuse", "gateway": "refuse", "share": "refuse"})
    );
    let text = String::from_utf8_lossy(
        &Command::new(&*BIN)
            .args(["sandbox", "status", "--dir", "sbx"])
            .current_dir(world.path())
            .output()
            .unwrap()
            .stdout,
    )
    .into_owned();
    assert!(text.contains("OUTAGE: cluster (refuses connections)"), "{text}");

    let log = world.run_ok("failover.rhai", &[]);
    assert!(log.contains("does not answer (cluster, gateway): treat it as lost"), "{log}");
    assert!(
        log.contains("prod is treated as lost: its gateway, cluster and shares are not checked"),
        "the lost side is skipped and said so: {log}"
    );
    assert!(log.contains("Fail the storage account"), "{log}");
    assert_dr_serves_alone(&world);
    let arm = &world.status()["components"]["arm"]["storage_accounts"][0];
    assert_eq!(arm["properties"]["primaryLocation"], "westus", "the storage account failed over: {arm}");
    assert_eq!(
        tree(&world.path().join("sbx/shares/dr/rabbitmq")),
        tree(&world.path().join("sbx/shares/prod/rabbitmq"))
    );
    let run = world.the_run();
    let records = journal(&run);
    let fencing = metric(&records, "fencing");
    assert_eq!(fencing[0]["unfenced"], serde_json::json!(["scheduler", "workloads"]));
    let rpo = metric(&records, "rpo");
    assert!(rpo[0].as_str().unwrap().starts_with("storage last sync "), "{rpo:?}");
    let report = std::fs::read_to_string(run.join("report.md")).unwrap();
    assert!(report.contains("prod was unreachable"), "{report}");
    assert!(report.contains("storage last sync"), "{report}");

    // PROD comes back as it was, its pods wanting to run: fencing pending, a split brain.
    world.sandbox(&["restore", "prod"]);
    let (code, s) = status_json(&world);
    assert_eq!(code, Some(1));
    assert_eq!(s["verdict"]["kind"], "SPLIT");
    assert_eq!(s["fencing_pending"], serde_json::json!(["prod"]));
    assert!(
        s["reasons"].as_array().unwrap().iter().any(|r| r
            .as_str()
            .unwrap()
            .contains("came back and processes: quiesce it now: drscript fence.rhai --var env=prod")),
        "{s}"
    );

    // Failback fences PROD first (scheduler paused before anything else), copies DR's data.
    std::fs::write(world.path().join("sbx/shares/dr/app/recovery/written-on-dr.xml"), b"<dr/>").unwrap();
    let log = world.run_ok("failback.rhai", &["--ack", "geo-redundancy"]);
    let fence = log.find("▶ 1 Fence prod").expect(&log);
    let pause = log.find("Pause prod scheduler").unwrap();
    assert!(fence < pause && pause < log.find("Scale down prod runtime").unwrap(), "{log}");
    world.assert_serving_kubectl("prod", "dr");
    assert_eq!(std::fs::read(world.path().join("sbx/shares/prod/app/recovery/written-on-dr.xml")).unwrap(), b"<dr/>");
    assert_eq!(
        tree(&world.path().join("sbx/shares/prod/rabbitmq")),
        tree(&world.path().join("sbx/shares/dr/rabbitmq"))
    );
    assert!(log.contains("acknowledged up front by --ack \"geo-redundancy\""), "{log}");
    let (code, s) = status_json(&world);
    assert_eq!(code, Some(0), "{s}");
    assert_eq!(s["fencing_pending"], serde_json::json!([]));
}

/// The region-down failover, PROD back and fenced, then a failback stopped at its manual step
/// after PROD serves again: the fencing obligation is discharged by the failback, and its resume
/// finishes without fencing the PROD it brought back (which once left nothing serving, exit 0).
#[test]
fn a_resumed_failback_after_a_region_loss_never_fences_the_prod_it_brought_back() {
    let world = World::start(&["--remote-shares"]);
    world.sandbox(&["outage", "prod", "region"]);
    world.run_ok("failover.rhai", &[]);
    world.sandbox(&["restore", "prod"]);
    world.run_ok("fence.rhai", &[]);
    let (_, s) = status_json(&world);
    assert_eq!(s["verdict"], serde_json::json!({"kind": "ACTIVE", "side": "dr"}), "{s}");
    // No --ack: the failback stops at "Re-enable geo-redundancy", after DNS points at PROD.
    let out = world.drscript(&["run", &runbook("failback.rhai"), "--yes"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let (_, s) = status_json(&world);
    assert_eq!(s["fencing_pending"], serde_json::json!([]), "the failback discharged it: {s}");
    assert!(!s.to_string().contains("fence.rhai --var env=prod"), "{s}");
    let resume = world.drscript(&["resume", "--yes", "--ack", "geo-redundancy"]);
    let err = stderr(&resume);
    assert_eq!(resume.status.code(), Some(0), "{err}");
    assert!(!err.contains("Fence prod"), "the resume fenced the PROD it brought back: {err}");
    let runtime =
        |env: &str| world.kubectl(env, &["get", "deployment", "ac-ac-runtime", "-o", "jsonpath={.spec.replicas}"]);
    assert_eq!((runtime("prod").as_str(), runtime("dr").as_str()), ("2", "0"), "kubectl: PROD serves, DR is quiesced");
    let zone = std::fs::read_to_string(world.path().join("sbx/dns-zone.json")).unwrap();
    assert!(zone.contains("127.0.1.10") && !zone.contains("127.0.2.10"), "DNS points at PROD: {zone}");
    let (code, s) = status_json(&world);
    assert_eq!((code, &s["verdict"]), (Some(0), &serde_json::json!({"kind": "ACTIVE", "side": "prod"})), "{s}");
}

#[test]
fn cluster_down_gateway_up_pauses_the_scheduler_and_records_the_workloads_unfenced() {
    let world = World::start(&[]);
    world.sandbox(&["outage", "prod", "cluster", "--hang"]);
    let log = world.run_ok("failover.rhai", &["--var", "state_timeout=2"]);
    assert!(log.contains("Pause the scheduler of prod (step 2)"), "{log}");
    assert_dr_serves_alone(&world);
    assert_eq!(world.status()["environments"]["prod"]["scheduler"], "PAUSED");
    let records = journal(&world.the_run());
    assert_eq!(metric(&records, "fencing")[0]["unfenced"], serde_json::json!(["workloads"]));
    // The workloads kept running behind the outage: status says what must still be fenced.
    world.sandbox(&["restore", "prod"]);
    let (_, s) = status_json(&world);
    assert_eq!(s["fencing_pending"], serde_json::json!(["prod"]));
    let out = world.drscript(&["run", &runbook("fence.rhai"), "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let (code, s) = status_json(&world);
    assert_eq!(code, Some(0), "{s}");
    assert_eq!(s["verdict"], serde_json::json!({"kind": "ACTIVE", "side": "dr"}));
    // Fencing the side that serves is refused.
    let out = world.drscript(&["run", &runbook("fence.rhai"), "--yes", "--var", "env=dr"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}

#[test]
fn a_storage_outage_alone_fails_the_account_over_then_switches_as_usual() {
    let world = World::start(&["--remote-shares"]);
    world.sandbox(&["outage", "prod", "share"]);
    let log = world.run_ok("failover.rhai", &[]);
    assert!(log.contains("does not answer"), "{log}");
    assert!(log.contains("Quiesce prod"), "PROD answers: it is quiesced as usual: {log}");
    world.assert_serving_kubectl("dr", "prod");
    let arm = &world.status()["components"]["arm"]["storage_accounts"][0];
    assert_eq!(arm["properties"]["primaryLocation"], "westus", "{arm}");
}

/// The account failed over earlier (storage_failover.rhai) and its shares are down again: no
/// second failover is possible, which is read once before anything changes, and the operator
/// is asked about the real alternative (DR's own data) instead of a wait that cannot succeed.
#[test]
fn an_account_that_already_failed_over_is_recognised_once_before_anything_changes() {
    let world = World::start(&["--remote-shares"]);
    world.sandbox(&["outage", "prod", "share"]);
    world.run_ok("storage_failover.rhai", &["--var", "env=prod"]);
    let arm = &world.status()["components"]["arm"]["storage_accounts"][0];
    assert_eq!(arm["sku"]["name"], "Standard_LRS", "{arm}");
    world.sandbox(&["outage", "prod", "share"]);
    // Without a terminal the run stops at the question, before PROD is touched.
    let prod_runtime =
        || world.kubectl("prod", &["get", "deployment", "ac-ac-runtime", "-o", "jsonpath={.spec.replicas}"]);
    let out = world.drscript(&["run", &runbook("failover.rhai")]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert_eq!(prod_runtime(), "2", "PROD untouched while the storage question is open");
    let started = Instant::now();
    let log = world.run_ok("failover.rhai", &[]);
    assert!(started.elapsed() < Duration::from_secs(120), "no wait for a share that cannot come back: {log}");
    let mentions: Vec<&str> = log.lines().filter(|l| l.contains("already failed over")).collect();
    assert!(!mentions.is_empty(), "{log}");
    assert!(mentions.iter().all(|l| l.contains("SECOND CONFIRMATION")), "said in the question only: {mentions:#?}");
    let second = log.find("SECOND CONFIRMATION").expect(&log);
    assert!(second < log.find("Scale down prod runtime").expect(&log), "asked before PROD is quiesced: {log}");
    assert!(!log.contains("Fail the storage"), "no second failover: {log}");
    assert_eq!(prod_runtime(), "0");
    assert_dr_serves_alone(&world);
}

#[test]
fn region_down_without_a_storage_account_needs_a_second_confirmation_naming_the_rpo() {
    let world = World::start(&["--remote-shares"]);
    let sbx = world.path().join("sbx");
    let config = std::fs::read_to_string(sbx.join("drscript.toml")).unwrap();
    let edited: String =
        config.lines().filter(|l| !l.starts_with("storage_account")).map(|l| format!("{l}\n")).collect();
    std::fs::write(sbx.join("nostorage.toml"), edited).unwrap();
    world.sandbox(&["outage", "prod", "region"]);
    let dr_before = tree(&sbx.join("shares/dr"));
    let dr_kube = world.status()["environments"]["dr"]["workloads"].clone();
    let run = |extra: &[&str]| {
        Command::new(&*BIN)
            .args(["--config", "sbx/nostorage.toml", "run", &runbook("failover.rhai")])
            .args(extra)
            .current_dir(world.path())
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap()
    };
    let out = run(&[]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert_eq!(tree(&sbx.join("shares/dr")), dr_before);
    assert_eq!(world.status()["environments"]["dr"]["workloads"], dr_kube, "DR changed");
    let out = run(&["--yes"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("SECOND CONFIRMATION"), "{err}");
    assert!(err.contains("RPO: never copied by drscript in this state directory"), "{err}");
    assert!(err.contains("was not copied"), "{err}");
    assert_dr_serves_alone(&world);
    let after = tree(&sbx.join("shares/dr"));
    assert!(
        dr_before.iter().filter(|(k, _)| k.starts_with("app/")).all(|(k, v)| after.get(k) == Some(v)),
        "DR kept its own data"
    );
}

#[test]
fn an_outage_in_the_middle_of_the_copy_is_resumed_down_the_region_down_branch() {
    let world = World::start(&["--remote-shares"]);
    // Enough files that the copy over HTTP takes a while.
    let bulk = world.path().join("sbx/shares/prod/app/web/repository/bulk");
    std::fs::create_dir_all(&bulk).unwrap();
    for i in 0..1500 {
        std::fs::write(bulk.join(format!("f{i:04}.xml")), format!("<f n=\"{i}\"/>").repeat(20)).unwrap();
    }
    // Without the pre-copy, the whole copy happens inside the downtime, where the outage lands.
    let mut child =
        world.command(&["run", &runbook("failover.rhai"), "--yes", "--var", "precopy=false"]).spawn().unwrap();
    let started = Instant::now();
    loop {
        if let Some(run) = world.runs().into_iter().next()
            && journal(&run).iter().any(|r| r["event"] == "step_started" && r["title"] == "Copy state prod → dr")
        {
            break;
        }
        assert!(child.try_wait().unwrap().is_none(), "the failover ended before the copy");
        assert!(started.elapsed() < Duration::from_secs(60));
        std::thread::sleep(Duration::from_millis(5));
    }
    world.sandbox(&["outage", "prod", "region"]);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let run = world.the_run();
    let resumed = world.drscript(&["resume", "--yes"]);
    let err = stderr(&resumed);
    assert_eq!(resumed.status.code(), Some(0), "{err}");
    assert!(err.contains("treat it as lost"), "{err}");
    assert!(err.contains("prod was quiesced by an earlier attempt of this run"), "{err}");
    assert_dr_serves_alone(&world);
    let records = journal(&run);
    world::assert_no_step_ran_twice(&records, "outage mid-copy");
    let bulk_dr = tree(&world.path().join("sbx/shares/dr/app/web/repository/bulk"));
    assert_eq!(bulk_dr.len(), 1500, "the copy finished from the failed-over storage");
}

/// A region-down failover killed right after its scale-down found PROD's cluster unreachable
/// (the step finished as "not done"), then PROD's cluster returns with its pods running: the
/// resume scales down the PROD that came back before DR takes over, instead of skipping a step its
/// first attempt finished as a no-op (which once left both sides processing, exit 0).
#[test]
fn a_region_down_failover_killed_after_its_no_op_scale_down_stops_the_prod_that_came_back_on_resume() {
    let world = World::start(&[]);
    world.sandbox(&["outage", "prod", "cluster"]);
    let scale_down = "Scale down the runtime and listener of prod (step 1)";
    let run = failover_killed_after(&world, scale_down);
    world.sandbox(&["restore", "prod"]);
    let runtime = world.kubectl("prod", &["get", "deployment", "ac-ac-runtime", "-o", "jsonpath={.spec.replicas}"]);
    assert_eq!(runtime, "2", "PROD's cluster came back as it was");

    let resumed = world.drscript(&["resume", "--yes"]);
    let err = stderr(&resumed);
    assert_eq!(resumed.status.code(), Some(0), "{err}");
    world.assert_serving_kubectl("dr", "prod");
    assert_dr_serves_alone(&world);
    let records = journal(&run);
    let started = |title: &str| records.iter().filter(|r| r["event"] == "step_started" && r["title"] == title).count();
    assert_eq!(started(&format!("{scale_down}: not done, prod's cluster does not answer")), 1, "not run again");
    assert_eq!(started(scale_down), 1, "the real scale-down ran on resume");
}

#[test]
fn a_plan_with_prod_marked_down_shows_the_region_down_branch() {
    let world = World::start(&[]);
    let out = world.drscript(&["plan", &runbook("failover.rhai"), "--var", "down=prod"]);
    let plan = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // The step is there (and journaled), but scales nothing of the lost side.
    assert!(plan.contains("Scale down the runtime and listener of prod (step 1)"), "{plan}");
    assert!(!plan.contains("Scale down prod runtime"), "{plan}");
    let normal = stdout(&world.drscript(&["plan", &runbook("failover.rhai")]));
    assert!(normal.contains("Scale down prod runtime"), "{normal}");
}

/// Writes `n` small files into PROD's web/repository, so that a copy over HTTP takes a while.
fn bulk(world: &World, n: usize) {
    let dir = world.path().join("sbx/shares/prod/app/web/repository/bulk");
    std::fs::create_dir_all(&dir).unwrap();
    for i in 0..n {
        std::fs::write(dir.join(format!("f{i:04}.xml")), format!("<f n=\"{i}\"/>").repeat(20)).unwrap();
    }
}

/// Waits until the newest run's journal shows a step whose title starts with `title` finished.
fn wait_for_step(
    world: &World,
    earlier: &std::collections::BTreeSet<std::path::PathBuf>,
    title: &str,
    child: &mut std::process::Child,
) -> std::path::PathBuf {
    let started = Instant::now();
    loop {
        if let Some(run) = world.runs().difference(earlier).next().cloned() {
            let records = journal(&run);
            let id = records
                .iter()
                .find(|r| r["event"] == "step_started" && r["title"].as_str().is_some_and(|t| t.starts_with(title)))
                .map(|r| r["id"].clone());
            if let Some(id) = id
                && records.iter().any(|r| r["event"] == "step_finished" && r["id"] == id)
            {
                return run;
            }
        }
        assert!(child.try_wait().unwrap().is_none(), "the run ended before {title}");
        assert!(started.elapsed() < Duration::from_secs(90), "never reached {title}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Starts `failover.rhai --yes`, kills it once a step whose title starts with `title` finished,
/// and returns its run folder.
fn failover_killed_after(world: &World, title: &str) -> std::path::PathBuf {
    let earlier = world.runs();
    let mut child = world
        .command(&["run", &runbook("failover.rhai"), "--yes"])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let run = wait_for_step(world, &earlier, title, &mut child);
    child.kill().unwrap();
    child.wait().unwrap();
    run
}

#[test]
fn a_planned_failover_precopies_while_prod_serves_and_moves_only_the_delta_inside_the_downtime() {
    let world = World::start(&["--remote-shares"]);
    bulk(&world, 600);
    let prod = world.path().join("sbx/shares/prod");
    let dr = world.path().join("sbx/shares/dr");
    let rabbit_file = tree(&prod.join("rabbitmq"))
        .into_keys()
        .find(|k| k.contains("msg_store"))
        .unwrap_or_else(|| tree(&prod.join("rabbitmq")).into_keys().next().unwrap());
    let earlier = world.runs();
    let mut child = world.command(&["run", &runbook("failover.rhai"), "--yes"]).spawn().unwrap();
    let run = wait_for_step(&world, &earlier, "Pre-copy state prod → dr while prod serves", &mut child);
    // PROD still serves: it changes, adds and deletes files before it is quiesced.
    std::fs::write(prod.join("app/recovery/changed-after-precopy.xml"), b"<late/>").unwrap();
    std::fs::write(prod.join("app/web/repository/bulk/f0001.xml"), b"<rewritten-after-precopy/>").unwrap();
    std::fs::remove_file(prod.join("app/web/repository/bulk/f0002.xml")).unwrap();
    std::fs::remove_file(prod.join("rabbitmq").join(&rabbit_file)).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));

    world.assert_serving_kubectl("dr", "prod");
    assert_eq!(std::fs::read(dr.join("app/recovery/changed-after-precopy.xml")).unwrap(), b"<late/>");
    assert_eq!(std::fs::read(dr.join("app/web/repository/bulk/f0001.xml")).unwrap(), b"<rewritten-after-precopy/>");
    assert!(dr.join("app/web/repository/bulk/f0002.xml").exists(), "application folders are not mirrored");
    assert!(!dr.join("rabbitmq").join(&rabbit_file).exists(), "the final mirror deletes on the RabbitMQ volume");
    assert!(tree(&prod.join("rabbitmq")) == tree(&dr.join("rabbitmq")), "the RabbitMQ volumes differ");

    let records = journal(&run);
    let pre = metric(&records, "precopy_bytes")[0].as_i64().unwrap();
    let last = metric(&records, "final_copy_bytes")[0].as_i64().unwrap();
    assert!(pre > 100_000, "pre-copy moved {pre} bytes");
    // The RabbitMQ volume is rewritten whole inside the downtime (azcopy's --mirror-mode,
    // decision #8); of the application folders, only the delta moves.
    let rabbit: i64 = tree(&prod.join("rabbitmq")).values().map(|v| v.len() as i64).sum();
    let app = last - rabbit;
    assert!(rabbit > 0 && last >= rabbit, "the RabbitMQ volume ({rabbit} bytes) was not rewritten whole: {last}");
    assert!(
        app > 0 && app * 10 < pre,
        "the application folders moved {app} bytes inside the downtime after a pre-copy of {pre}"
    );
    let started =
        |title: &str| records.iter().position(|r| r["event"] == "step_started" && r["title"] == title).unwrap();
    assert!(started("Pre-copy state prod → dr while prod serves") < started("Quiesce prod"));
    let runs: Value = serde_json::from_slice(&world.drscript(&["runs", "--json"]).stdout).unwrap();
    let (total, downtime) = (runs[0]["total_seconds"].as_f64().unwrap(), runs[0]["downtime_seconds"].as_f64().unwrap());
    assert!(downtime < total, "downtime {downtime} s, total {total} s");
    let report = std::fs::read_to_string(run.join("report.md")).unwrap();
    assert!(report.contains("Copied while the source served (pre-copy)"), "{report}");
    assert!(report.contains("Downtime (first quiescing change"), "{report}");
    // Figures read as sentences, not JSON.
    assert!(report.contains("deployment/ac-ac-runtime: 2 → 0 in "), "{report}");
    assert!(report.contains("| sync_share | ") && report.contains(" copied, "), "{report}");

    let plan = stdout(&world.drscript(&["plan", &runbook("failback.rhai")]));
    assert!(
        plan.contains("Pre-copy state dr → prod while dr serves") && plan.contains("Copy state dr → prod"),
        "{plan}"
    );
}

#[test]
fn a_failover_killed_during_the_precopy_resumes_in_the_precopy_and_stops_prod_once() {
    let world = World::start(&["--remote-shares"]);
    bulk(&world, 600);
    let run = failover_killed_after(&world, "Pre-copy RabbitMQ volume prod → dr");
    let records = journal(&run);
    assert!(!records.iter().any(|r| r["title"] == "Quiesce prod"), "PROD was touched before the kill");
    let (_, s) = status_json(&world);
    assert_eq!(s["verdict"], serde_json::json!({"kind": "ACTIVE", "side": "prod"}), "nothing was stopped yet");
    let resumed = world.drscript(&["resume", "--yes"]);
    assert_eq!(resumed.status.code(), Some(0), "{}", stderr(&resumed));
    world.assert_serving_kubectl("dr", "prod");
    let records = journal(&run);
    world::assert_no_step_ran_twice(&records, "killed in the pre-copy");
    let quiesced = records.iter().filter(|r| r["event"] == "step_started" && r["title"] == "Quiesce prod").count();
    assert_eq!(quiesced, 1, "PROD stopped once");
}

#[test]
fn precopy_false_skips_the_precopy_and_says_so() {
    let world = World::start(&[]);
    let log = world.run_ok("failover.rhai", &["--var", "precopy=false"]);
    assert!(log.contains("no pre-copy: --var precopy=false"), "{log}");
    assert!(!log.contains("Pre-copy"), "{log}");
    world.assert_serving_kubectl("dr", "prod");
}

#[test]
fn with_the_primary_database_down_db_failover_switches_to_the_sync_database() {
    let world = World::start(&[]);
    world.sandbox(&["outage", "primary", "database"]);
    let probe = world.path().join("probe.rhai");
    std::fs::write(&probe, "db_probe(\"primary\");").unwrap();
    let out = world.drscript(&["run", probe.to_str().unwrap(), "--yes"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("cannot reach"), "{}", stderr(&out));
    world.run_ok("db_failover.rhai", &[]);
    let zone = std::fs::read_to_string(world.path().join("sbx/dns-zone.json")).unwrap();
    assert!(zone.contains("pg-sync."), "{zone}");
    world.sandbox(&["restore", "primary"]);
    let out = world.drscript(&["run", probe.to_str().unwrap(), "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

/// Runs a hint exactly as drscript printed it (`drscript failover.rhai --var ...`) from the
/// world's folder, which has no runbooks of its own: the built-in ones answer, as for an
/// operator who installed only the binary.
fn follow(world: &World, hint: &str) -> Output {
    let words: Vec<&str> = hint.split_whitespace().collect();
    assert_eq!(words.first(), Some(&"drscript"), "a hint is a drscript command: {hint}");
    let mut args = words[1..].to_vec();
    args.push("--yes");
    world.drscript(&args)
}

fn listeners(world: &World, env: &str) -> String {
    world.kubectl_ns(env, "adeptia-prod", &["get", "deployment", "ac-ac-listener", "-o", "jsonpath={.spec.replicas}"])
}

/// Fabrikam's config declares no primary: `failover.rhai` takes the direction from the side that
/// serves (northeurope here, although the file lists westeurope first), refuses when no side
/// serves alone, and every "next" line of `status` — typed as shown — is accepted and does what
/// it says. Judged with kubectl.
#[test]
fn without_declared_roles_the_serving_side_is_the_source_and_every_hint_works_as_typed() {
    let config = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/fabrikam/drscript.toml");
    let world = World::start(&["--like", config, "--active", "northeurope"]);
    let (_, s) = status_json(&world);
    assert_eq!(s["verdict"], serde_json::json!({"kind": "ACTIVE", "side": "northeurope"}), "{s}");
    assert_eq!(s["next"][0]["command"], "drscript failover.rhai --var from=northeurope --var to=westeurope");
    let out = world.drscript(&["failover.rhai", "--yes"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("northeurope serves (no [settings] primary/standby"), "{err}");
    assert_eq!((listeners(&world, "westeurope").as_str(), listeners(&world, "northeurope").as_str()), ("1", "0"));

    // Back, by the hint as typed.
    let (_, s) = status_json(&world);
    let hint = s["next"][0]["command"].as_str().unwrap().to_string();
    assert_eq!(hint, "drscript failover.rhai --var from=westeurope --var to=northeurope");
    let out = follow(&world, &hint);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!((listeners(&world, "westeurope").as_str(), listeners(&world, "northeurope").as_str()), ("0", "1"));

    // Someone starts westeurope's listener by hand: a split brain. No direction can be read.
    world.kubectl_ns("westeurope", "adeptia-prod", &["scale", "deployment", "ac-ac-listener", "--replicas=1"]);
    let out = world.drscript(&["failover.rhai", "--yes"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("which way?") && err.contains("--var from=westeurope --var to=northeurope"), "{err}");
    // The refusal of the explicit switch and `status` propose the same commands; each is accepted.
    let out = world.drscript(&["failover.rhai", "--var", "from=westeurope", "--var", "to=northeurope", "--yes"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("--var keep=northeurope"), "{}", stderr(&out));
    let (_, s) = status_json(&world);
    assert_eq!(s["verdict"]["kind"], "SPLIT", "{s}");
    let keep_north = s["next"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["what"].as_str().unwrap().starts_with("to keep northeurope"))
        .unwrap_or_else(|| panic!("{s}"))["command"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(stderr(&out).contains(&keep_north), "the refusal names the same command: {}", stderr(&out));
    let out = follow(&world, &keep_north);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!((listeners(&world, "westeurope").as_str(), listeners(&world, "northeurope").as_str()), ("0", "1"));
    let (code, s) = status_json(&world);
    assert_eq!(code, Some(0), "{s}");
    assert_eq!(s["verdict"], serde_json::json!({"kind": "ACTIVE", "side": "northeurope"}), "{s}");
}

fn hpa_of(world: &World, env: &str) -> Value {
    let text = world.kubectl(env, &["get", "hpa", "ac-ac-runtime", "-o", "json"]);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// Autoscaling as Adeptia's chart deploys it: an HPA with max 1 on DR's runtime, a config asking
/// for 2. By default the failover scales to what the HPA keeps and says so (DR then serves at 1,
/// healthy); with `--var raise_hpa=true` the HPA's bounds are raised to 2 (remembered on the HPA)
/// and put back when the failback scales DR's runtime to 0. Judged with kubectl.
#[test]
fn an_hpa_on_the_runtime_bounds_the_scale_or_is_raised_and_put_back() {
    let world = World::start(&["--hpa", "dr/ac-ac-runtime=1:1"]);
    let runtime =
        |env: &str| world.kubectl(env, &["get", "deployment", "ac-ac-runtime", "-o", "jsonpath={.spec.replicas}"]);
    let log = world.run_ok("failover.rhai", &[]);
    assert!(log.contains("keeps ac-ac-runtime between 1 and 1: scaled to 1 instead of 2"), "{log}");
    assert_eq!(runtime("dr"), "1");
    let (code, s) = status_json(&world);
    assert_eq!((code, &s["verdict"]["kind"]), (Some(0), &serde_json::json!("ACTIVE")), "{s}");
    world.run_ok("failback.rhai", &["--ack-all-manual"]);
    assert_eq!(runtime("dr"), "0", "the HPA leaves a workload at 0 alone");
    // Raised on request, and put back on the way back.
    let log = world.run_ok("failover.rhai", &["--var", "raise_hpa=true"]);
    assert!(log.contains("bounds 1..1 raised to keep 2"), "{log}");
    let hpa = hpa_of(&world, "dr");
    assert_eq!(hpa["spec"]["maxReplicas"], 2, "{hpa}");
    assert_eq!(hpa["metadata"]["annotations"]["drscript.io/raised-from"], "1,1", "{hpa}");
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(runtime("dr"), "2", "the raised HPA keeps 2");
    world.run_ok("failback.rhai", &["--ack-all-manual"]);
    let hpa = hpa_of(&world, "dr");
    assert_eq!(hpa["spec"]["maxReplicas"], 1, "put back: {hpa}");
    assert!(hpa["metadata"]["annotations"].get("drscript.io/raised-from").is_none(), "{hpa}");
    world.assert_serving_kubectl("prod", "dr");
}

/// DR's workloads are owned by an Argo CD application with self-heal (the sandbox's gitops fault):
/// the failover is refused before any change with the command that pauses it; acknowledged, the
/// scale Argo CD undoes ends the wait at once, naming the manager that set the replicas back.
#[test]
fn a_gitops_owner_refuses_the_switch_and_a_revert_is_named_with_its_manager() {
    // Pods that take a second to start: the revert (within 250 ms) lands while the scale waits.
    let world = World::start_with_delays("1", "0.05", &["--faults", "kube=gitops:revert@dr"]);
    let before = snapshot(&world);
    let out = world.drscript(&["run", &runbook("failover.rhai"), "--yes"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("is managed by Argo CD application ac"), "{err}");
    assert!(err.contains("argocd app set ac --sync-policy none"), "{err}");
    assert!(err.contains("--var ack_controllers=true"), "{err}");
    assert_eq!(snapshot(&world), before, "a refused failover changed something");
    let started = Instant::now();
    let out = world.drscript(&["run", &runbook("failover.rhai"), "--yes", "--var", "ack_controllers=true"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("spec.replicas was set to") && err.contains("by argocd-controller"), "{err}");
    assert!(err.contains("(managedFields)"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(120), "named at once, not at the scale timeout");
}

/// The DR document's `QUARTZ_STATUS_ONBOOTUP=pause`, set the way `kubectl set env
/// --from=configmap/NAME` writes it: preflight follows the reference to the ConfigMap's value,
/// and fails when the ConfigMap says otherwise, naming where the value came from.
#[test]
fn preflight_follows_quartz_status_onbootup_into_a_config_map() {
    let world = World::start(&[]);
    world.kubectl("dr", &["create", "configmap", "quartz", "--from-literal=QUARTZ_STATUS_ONBOOTUP=pause"]);
    world.kubectl("dr", &["set", "env", "deployment/ac-ac-event", "QUARTZ_STATUS_ONBOOTUP-"]);
    world.kubectl("dr", &["set", "env", "deployment/ac-ac-event", "--from=configmap/quartz"]);
    let env = world
        .kubectl("dr", &["get", "deployment", "ac-ac-event", "-o", "jsonpath={.spec.template.spec.containers[0].env}"]);
    assert!(env.contains("{\"name\":\"QUARTZ_STATUS_ONBOOTUP\",\"valueFrom\":{\"configMapKeyRef\""), "{env}");
    let log = world.run_ok("preflight.rhai", &[]);
    assert!(log.contains("QUARTZ_STATUS_ONBOOTUP=pause from configMap quartz key QUARTZ_STATUS_ONBOOTUP"), "{log}");
    world.kubectl(
        "dr",
        &["patch", "configmap", "quartz", "--type", "merge", "-p", "{\"data\":{\"QUARTZ_STATUS_ONBOOTUP\":\"start\"}}"],
    );
    let out = world.drscript(&["run", &runbook("preflight.rhai"), "--yes"]);
    let err = stderr(&out);
    assert_ne!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains("QUARTZ_STATUS_ONBOOTUP=start (from configMap quartz key QUARTZ_STATUS_ONBOOTUP), expected pause"),
        "{err}"
    );
}

/// Starts `runbook_name` and SIGKILLs it once the journal shows `step` finished; returns the
/// run id.
fn kill_run_after(world: &World, runbook_name: &str, extra: &[&str], step: &str) -> String {
    let earlier = world.runs();
    let mut args = vec!["run".to_string(), runbook(runbook_name), "--yes".to_string()];
    args.extend(extra.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut child = world.command(&args).stderr(Stdio::null()).spawn().unwrap();
    let run = wait_for_step(world, &earlier, step, &mut child);
    child.kill().unwrap();
    child.wait().unwrap();
    run.file_name().unwrap().to_string_lossy().into_owned()
}

/// A failback killed after it quiesced DR, then PROD's region is lost: the resume cannot complete
/// (PROD does not answer) and is refused without forgetting the unfinished switch; `status`
/// proposes bringing DR back with its own data, and that command — typed as shown — does so: no
/// storage failover, nothing of PROD's older data copied over DR's. Judged with kubectl, the
/// zone and the shares' bytes.
#[test]
fn a_failback_cut_short_by_the_loss_of_prod_brings_dr_back_with_its_own_data() {
    let world = World::start(&["--remote-shares"]);
    world.run_ok("failover.rhai", &[]);
    let marker = world.path().join("sbx/shares/dr/app/recovery/written-on-dr.xml");
    std::fs::write(&marker, b"<dr after the failover/>").unwrap();
    let queue = world.path().join("sbx/shares/dr/rabbitmq/taken-by-dr.rdq");
    std::fs::write(&queue, b"a message DR took").unwrap();
    let run = kill_run_after(&world, "failback.rhai", &["--ack-all-manual"], "Quiesce dr");
    world.sandbox(&["outage", "prod", "region"]);
    let out = world.drscript(&["resume", &run, "--yes", "--ack-all-manual"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("prod does not answer"), "{err}");
    // The refused resume did not make the switch look finished.
    let (_, s) = status_json(&world);
    assert_eq!(s["verdict"]["kind"], "SWITCHING", "{s}");
    let hint = s["next"][0]["command"].as_str().unwrap().to_string();
    assert_eq!(hint, format!("drscript failover.rhai --var ignore_unfinished={run}"), "{s}");
    let out = follow(&world, &hint);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("dr served last: it keeps its own data"), "{err}");
    assert!(!err.contains("Fail the storage"), "{err}");
    assert_eq!(std::fs::read(&marker).unwrap(), b"<dr after the failover/>");
    assert_eq!(std::fs::read(&queue).unwrap(), b"a message DR took");
    let arm = &world.status()["components"]["arm"]["storage_accounts"][0];
    assert_eq!(arm["properties"]["primaryLocation"], "eastus", "no storage failover: {arm}");
    assert_dr_serves_alone(&world);
    let (_, s) = status_json(&world);
    assert_eq!(s["fencing_pending"], serde_json::json!(["prod"]), "{s}");
}

/// After a region-down failover, a second failover finds the switch done: it neither records nor
/// discharges the obligation to fence PROD, which `status` still shows; when PROD returns the
/// first hint is the fence, not a switch that would bring PROD back on its stale data.
#[test]
fn a_no_op_after_a_region_down_failover_keeps_the_fencing_obligation() {
    let world = World::start(&["--remote-shares"]);
    world.sandbox(&["outage", "prod", "region"]);
    world.run_ok("failover.rhai", &[]);
    let log = world.run_ok("failover.rhai", &[]);
    assert!(log.contains("Nothing to do"), "{log}");
    let (_, s) = status_json(&world);
    assert_eq!(s["fencing_pending"], serde_json::json!(["prod"]), "{s}");
    world.sandbox(&["restore", "prod"]);
    let (_, s) = status_json(&world);
    assert_eq!(s["fencing_pending"], serde_json::json!(["prod"]), "{s}");
    let hint = s["next"][0]["command"].as_str().unwrap().to_string();
    assert_eq!(hint, "drscript fence.rhai --var env=prod", "{s}");
    let out = follow(&world, &hint);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_dr_serves_alone(&world);
}

/// Sets a share's quota with Microsoft's Python SDK (an independent client of the Files
/// emulator) and returns what the SDK then reads back: `[quota GiB, usage bytes]`.
fn set_share_quota(world: &World, env: &str, share: &str, gib: u64) -> Value {
    let sbx = world.path().join("sbx");
    let key = std::fs::read_to_string(sbx.join(format!("secrets/{env}-files.key"))).unwrap();
    let config = std::fs::read_to_string(sbx.join("drscript.toml")).unwrap();
    let url = config
        .lines()
        .filter_map(|l| l.split_once("\"files+").map(|(_, rest)| rest.split('"').next().unwrap().to_string()))
        .find(|u| u.ends_with(&format!("/{env}/{share}")))
        .expect("the share's URL in the sandbox config");
    let account_url = url.trim_end_matches(&format!("/{share}")).to_string();
    let code = format!(
        "import json, sys\n\
         from azure.storage.fileshare import ShareClient\n\
         c = ShareClient(account_url={account_url:?}, share_name={share:?}, credential={{'account_name': {env:?}, 'account_key': sys.stdin.readline().strip()}})\n\
         c.set_share_quota({gib})\n\
         print(json.dumps([c.get_share_properties().quota, c.get_share_stats()]))\n"
    );
    let python = concat!(env!("CARGO_MANIFEST_DIR"), "/.tools/venv-files/bin/python");
    let mut child =
        Command::new(python).args(["-c", &code]).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(key.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "the Python SDK failed: {}", stderr(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// DR's application share is nearly full (its quota, set with Microsoft's SDK, less what it
/// holds): the copy would not fit, so the failover refuses before PROD is touched, with the room
/// left and the copy's size; raised, the same failover runs.
#[test]
fn a_copy_that_would_not_fit_the_destination_quota_is_refused_before_prod_is_touched() {
    let world = World::start(&["--remote-shares"]);
    let shares = world.path().join("sbx/shares");
    // What DR's share holds: a file that leaves 64 KiB of a 1 GiB quota (sparse: no disk used).
    let filler = std::fs::File::create(shares.join("dr/app/filler.bin")).unwrap();
    filler.set_len((1 << 30) - (64 << 10)).unwrap();
    drop(filler);
    std::fs::write(shares.join("prod/app/web/repository/new-solution.zip"), vec![7u8; 512 << 10]).unwrap();
    let seen = set_share_quota(&world, "dr", "app", 1);
    assert_eq!(seen[0], 1, "the SDK reads the quota back: {seen}");
    let used = seen[1].as_u64().unwrap();
    assert!(used >= (1 << 30) - (64 << 10), "Get Share Stats counts every file: {seen}");
    let zone = std::fs::read_to_string(world.path().join("sbx/dns-zone.json")).unwrap();
    let dr_repository = tree(&shares.join("dr/app/web/repository"));

    let out = world.drscript(&["run", &runbook("failover.rhai"), "--yes"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("dr's share app has room for"), "{err}");
    assert!(err.contains("quota 1 GiB"), "the limit is named: {err}");
    assert!(err.contains("--quota"), "how to raise it: {err}");
    let replicas = world.kubectl("prod", &["get", "deployment", "ac-ac-runtime", "-o", "jsonpath={.spec.replicas}"]);
    assert_eq!(replicas, "2", "kubectl sees PROD's runtime untouched");
    assert_eq!(world.status()["environments"]["prod"]["scheduler"], "RUNNING");
    assert_eq!(tree(&shares.join("dr/app/web/repository")), dr_repository, "nothing copied");
    assert_eq!(std::fs::read_to_string(world.path().join("sbx/dns-zone.json")).unwrap(), zone);

    set_share_quota(&world, "dr", "app", 2);
    let log = world.run_ok("failover.rhai", &[]);
    world.assert_serving_kubectl("dr", "prod");
    assert!(shares.join("dr/app/web/repository/new-solution.zip").exists(), "{log}");
}

/// DR's listener count left out of the config: the failover would have to guess it, so it is
/// refused before anything changes, naming the key to add (never a silent 1); `status` reads the
/// live count in its place.
#[test]
fn a_replica_count_missing_from_the_config_is_refused_before_anything_changes() {
    let world = World::start(&[]);
    let sbx = world.path().join("sbx");
    let config = std::fs::read_to_string(sbx.join("drscript.toml")).unwrap();
    let dr_replicas = config.find("[environments.dr.replicas]").unwrap();
    let listener = dr_replicas + config[dr_replicas..].find("listener = ").unwrap();
    let end = listener + config[listener..].find('\n').unwrap() + 1;
    let edited = format!("{}{}", &config[..listener], &config[end..]);
    std::fs::write(sbx.join("no-count.toml"), edited).unwrap();
    let before = snapshot(&world);
    let out = Command::new(&*BIN)
        .args(["--config", "sbx/no-count.toml", "run", &runbook("failover.rhai"), "--yes"])
        .current_dir(world.path())
        .output()
        .unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("[environments.dr.replicas] has no count for listener"), "{err}");
    assert!(err.contains("Nothing was changed"), "{err}");
    assert_eq!(snapshot(&world), before, "a refused failover changed something");
    let out = Command::new(&*BIN)
        .args(["--config", "sbx/no-count.toml", "status", "--json"])
        .current_dir(world.path())
        .output()
        .unwrap();
    let status: Value = serde_json::from_slice(&out.stdout).unwrap();
    let listener = &env_of(&status, "dr")["workloads"]["listener"];
    assert_eq!(listener["configured"], 0, "the live count stands in: {listener}");
}
