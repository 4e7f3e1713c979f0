//! The shipped failover against a sandbox that fails the way real services do (`sandbox up
//! --faults`): it completes thanks to retries, or stops with an error naming the object and the
//! status and leaves a journal from which `drscript resume` finishes. And a sync into the
//! sandbox's Azure Files emulator whose range writes are torn never leaves lost or corrupt data
//! once rerun.
//!
//! Azurite stopped in the middle of a sync into a blob container: the run stops early with an
//! error naming the container, `drscript resume` finishes once Azurite is back, and the
//! container then holds exactly the source's content.
//!
//! Seeds are printed; rerun with `DRSCRIPT_FAULT_SEED=N cargo test --test faults`.

use drscript_test_support::sync_common;
use drscript_test_support::world;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use drscript_sync::azure_files::auth::account_sas;
use drscript_sync::{Endpoint, SyncOptions};
use rand::{Rng, SeedableRng};
use serde_json::Value;
use sync_common::azurite::Azurite;
use world::{RUNBOOKS, World, assert_no_step_ran_twice, journal};

fn seed(default: u64) -> u64 {
    std::env::var("DRSCRIPT_FAULT_SEED").map_or(default, |v| v.parse().expect("DRSCRIPT_FAULT_SEED: a number"))
}

/// Total of the injected faults whose name starts with `prefix`, over every server.
fn injected(world: &World, prefix: &str) -> u64 {
    world
        .injected()
        .values()
        .flat_map(|r| r["injected"].as_object().cloned().unwrap_or_default())
        .filter(|(k, _)| k.starts_with(prefix))
        .map(|(_, v)| v.as_u64().unwrap())
        .sum()
}

/// An error of a failed run must name what failed and how.
fn assert_clear_error(stderr: &str) {
    let names_object =
        ["deployment/ac-ac-", "statefulset/ac-ac-", "gateway http://127.0.0.1:"].iter().any(|o| stderr.contains(o));
    let names_status =
        ["429", "500", "503", "cannot reach", "timed out", "operation timed out"].iter().any(|s| stderr.contains(s));
    assert!(names_object && names_status, "the error names neither the object nor the status:\n{stderr}");
    assert!(stderr.contains("drscript resume"), "the error does not say how to go on:\n{stderr}");
}

/// Runs the failover, then `resume` until it finishes (at most `attempts` runs in all); returns
/// how many runs failed.
fn failover_until_done(world: &World, attempts: usize) -> usize {
    let out = world.drscript(&["run", &format!("{RUNBOOKS}/failover.rhai"), "--yes"]);
    let mut failed = 0;
    let mut last = out;
    while last.status.code() != Some(0) {
        let stderr = String::from_utf8_lossy(&last.stderr).into_owned();
        assert_clear_error(&stderr);
        failed += 1;
        assert!(failed < attempts, "still failing after {failed} runs:\n{stderr}");
        last = world.drscript(&["resume", "--yes"]);
    }
    failed
}

/// The journal of the one failover run, resumed in place.
fn the_run(world: &World) -> Vec<Value> {
    journal(&world.the_run())
}

#[test]
fn failover_under_api_and_gateway_faults_completes_or_resumes() {
    let seed = seed(rand::random());
    eprintln!("fault seed {seed}; reproduce with DRSCRIPT_FAULT_SEED={seed}");
    let spec = "kube=error:0.2,slow:100ms,reset:0.05;gateway=error:0.2,reset:0.1";
    let world = World::start(&["--faults", spec, "--seed", &seed.to_string()]);
    assert!(
        world.sandbox_log().contains(&format!("seed {seed}")),
        "the sandbox prints its seed: {}",
        world.sandbox_log()
    );
    let failed = failover_until_done(&world, 10);
    world.assert_serving("dr", "prod");
    let records = the_run(&world);
    let resumed = assert_no_step_ran_twice(&records, &format!("seed {seed}"));
    assert_eq!(resumed, failed, "every failed run was resumed in the same journal");
    assert!(injected(&world, "error") > 0, "no error was injected: {:?}", world.injected());
    eprintln!("failover: {failed} failed run(s) before it finished; injected {:?}", world.injected());
}

#[test]
fn failover_stopped_by_an_api_outage_is_finished_by_resume_once_it_ends() {
    // Every API call fails (429, 500 or 503) until the outage ends: the run must stop with a
    // clear error after its retries, and resume finish it once the API servers answer again.
    let seed = seed(11);
    eprintln!("fault seed {seed}; reproduce with DRSCRIPT_FAULT_SEED={seed}");
    let world = World::start(&["--faults", "kube=error:1", "--seed", &seed.to_string()]);
    let child = world
        .command(&["run", &format!("{RUNBOOKS}/failover.rhai"), "--yes"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The outage ends once a step has failed (the parallel branches still retrying then finish,
    // instead of each running out of retries on its own).
    let started = std::time::Instant::now();
    let mut pause = std::time::Duration::from_millis(10);
    while !world
        .runs()
        .iter()
        .any(|run| journal(run).iter().any(|r| r["event"] == "step_finished" && r["outcome"] == "failed"))
    {
        assert!(started.elapsed() < std::time::Duration::from_secs(600), "no step failed during the outage");
        std::thread::sleep(pause);
        pause = (pause * 2).min(std::time::Duration::from_millis(100));
    }
    world.faults_off();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "a failover through an API outage succeeded:\n{stderr}");
    assert_clear_error(&stderr);
    assert!(stderr.contains("attempts)"), "the error says the call was retried:\n{stderr}");
    // The step named is the one whose call failed.
    let line = stderr
        .lines()
        .find(|l| l.starts_with("error: step "))
        .unwrap_or_else(|| panic!("no failed step named:\n{stderr}"));
    let title = line.split('"').nth(1).unwrap();
    let (_, rest) = line.split_once("failed: ").unwrap();
    let words: Vec<&str> = title.split(' ').collect();
    assert!(words.len() == 4 && words[..2] == ["Scale", "down"], "{line}");
    assert!(
        rest.starts_with(&format!("scale {} ", words[2])) && rest.contains(&format!("/ac-ac-{}:", words[3])),
        "step and error disagree: {line}"
    );
    let out = world.drscript(&["resume", "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    world.assert_serving("dr", "prod");
    let records = the_run(&world);
    assert_eq!(assert_no_step_ran_twice(&records, &format!("seed {seed}")), 1);
    for server in ["prod kube", "dr kube"] {
        let report = &world.injected()[server];
        assert_eq!(report["active"], false, "{server}: {report}");
    }
}

#[test]
fn failover_survives_a_gateway_that_answers_too_late() {
    // The gateway acts, then answers after 31 s, past its client's 30 s timeout: the call is
    // retried, and pausing or resuming twice is harmless. (Each late answer costs the client's
    // 30 s: the default seed makes exactly one, PROD's Pause; other seeds make more or none.)
    let seed = seed(2);
    eprintln!("fault seed {seed}; reproduce with DRSCRIPT_FAULT_SEED={seed}");
    let world = World::start(&["--faults", "gateway=timeout:0.25,late:31s", "--seed", &seed.to_string()]);
    let failed = failover_until_done(&world, 6);
    world.assert_serving("dr", "prod");
    assert_no_step_ran_twice(&the_run(&world), &format!("seed {seed}"));
    assert!(injected(&world, "late") > 0, "no late answer was injected (choose another seed): {:?}", world.injected());
    eprintln!("{failed} failed run(s); injected {:?}", world.injected());
}

#[test]
fn bad_fault_specs_are_refused_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    for (spec, needle) in [
        ("kube=error:1.5", "outside 0..1"),
        ("kube=timeout:0.1", "kube has no fault `timeout`"),
        ("dns=error:0.1", "unknown service `dns`"),
        ("gateway=late:soon", "not a duration"),
    ] {
        let out = Command::new(&*world::BIN)
            .args(["sandbox", "up", "--dir", "sbx", "--faults", spec])
            .current_dir(dir.path())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{spec}: {stderr}");
        assert!(stderr.contains(needle) && stderr.contains(spec), "{spec}: {stderr}");
        assert!(!dir.path().join("sbx/sandbox.json").exists(), "{spec}: a sandbox started");
    }
}

/// A standalone config and runbook mirroring `source` into the remote share at `url` (an Azure
/// Files share or a blob prefix), the SAS in `DR_SAS`.
fn sync_config(work: &Path, source: &Path, url: &str) {
    let config = sync_common::two_share_config(source, url);
    std::fs::create_dir_all(work).unwrap();
    std::fs::write(work.join("drscript.toml"), config).unwrap();
    std::fs::write(
        work.join("copy.rhai"),
        // Four tries per request, not twenty: a first run through 60 % torn range writes must
        // fail and leave torn files behind for the reruns to find.
        r#"step("copy the share", || {
    let s = sync_share(env("prod").shares.app, env("dr").shares.app, #{ mirror: true, attempts: 4 });
    info(`copied ${s.copied} skipped ${s.skipped}`);
});
"#,
    )
    .unwrap();
}

/// The binary in `work` with the SAS in `DR_SAS`, its output piped.
fn drscript_in(work: &Path, sas: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new(&*world::BIN);
    cmd.args(args)
        .current_dir(work)
        .env("DR_SAS", sas)
        .env("NO_COLOR", "1")
        .env_remove("DRSCRIPT_CONFIG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

#[test]
fn sync_through_torn_range_writes_never_loses_or_corrupts_data() {
    let seed = seed(rand::random());
    eprintln!("fault seed {seed}; reproduce with DRSCRIPT_FAULT_SEED={seed}");
    let world = World::start(&["--faults", "files=range_error:0.6,error:0.05", "--seed", &seed.to_string()]);
    let files: Value =
        serde_json::from_str(&std::fs::read_to_string(world.path().join("sbx/azure-files.json")).unwrap()).unwrap();
    let status = world.status();
    assert_eq!(status["components"]["azure_files"], files, "sandbox status shows the Files emulator");
    let (url, account) = (files["url"].as_str().unwrap(), files["account"].as_str().unwrap());
    let key = std::fs::read_to_string(files["key_file"].as_str().unwrap()).unwrap().trim().to_string();
    let work = world.path().join("sync");
    let source = world.path().join("prod-share");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    for i in 0..40 {
        let size = if i < 3 { rng.random_range(5_000_000..9_000_000) } else { rng.random_range(1..200_000) };
        let mut data = vec![0u8; size];
        rng.fill(&mut data[..]);
        let p = source.join(format!("d{}/f{i}.dat", i % 4));
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, data).unwrap();
    }
    sync_config(&work, &source, &format!("{url}/drshare"));
    let sas = account_sas(account, &key, "rwdlc", chrono::Utc::now() + chrono::Duration::hours(1));
    let run = || drscript_in(&work, &sas, &["run", "copy.rhai", "--yes"]).output().unwrap();
    let dest = Path::new(files["root"].as_str().unwrap()).join(account).join("drshare");
    let want = sync_common::contents(&source);

    let out = run();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "a sync through 60% torn range writes succeeded at once:\n{stderr}");
    assert!(stderr.contains("500") && stderr.contains(".dat"), "the error names the file and the status:\n{stderr}");
    assert!(!stderr.contains(&key) && !stderr.contains(&sas), "a secret leaked:\n{stderr}");
    let got = sync_common::contents(&dest);
    let torn = want.iter().filter(|(k, (size, hash))| got.get(*k).is_some_and(|(s, h)| s == size && h != hash)).count();
    assert!(torn > 0, "no torn file (right size, wrong content) was left behind: the test proves nothing");

    // Still failing, then the storage recovers: no rerun may take a torn file for a copied one.
    let _ = run();
    let base = url.trim_end_matches(&format!("/{account}"));
    let report = world::http("DELETE", &format!("{base}/_sandbox/faults"));
    assert!(report["injected"]["torn range"].as_u64().unwrap() > 0, "{report}");
    let out = run();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(sync_common::contents(&dest), want, "the share differs from its source after the rerun");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azurite_stopped_mid_sync_then_resume_copies_the_rest_and_nothing_is_lost() {
    let seed = seed(rand::random());
    eprintln!("fault seed {seed}; reproduce with DRSCRIPT_FAULT_SEED={seed}");
    let dir = tempfile::tempdir().unwrap();
    let (work, source) = (dir.path().join("work"), dir.path().join("prod-share"));
    let mut az = Azurite::start_on_disk(&dir.path().join("azurite"));
    az.container("drc").await;
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let total = 900;
    for i in 0..total {
        let size = if i % 100 == 0 { rng.random_range(2_000_000..6_000_000) } else { rng.random_range(1..40_000) };
        let mut data = vec![0u8; size];
        rng.fill(&mut data[..]);
        let p = source.join(format!("d{}/e{}/f{i}.dat", i % 5, i % 3));
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, data).unwrap();
    }
    let want = sync_common::contents(&source);
    let location = format!("127.0.0.1:{}/{}/drc/app", az.port, sync_common::azurite::ACCOUNT);
    sync_config(&work, &source, &format!("blob+http://{location}"));
    let sas = az.sas();
    let sig = url::form_urlencoded::parse(sas.as_bytes()).find(|(k, _)| k == "sig").unwrap().1.into_owned();

    // Stop Azurite once part of the tree has arrived, while the run is still copying.
    let mut child = drscript_in(&work, &sas, &["run", "copy.rhai", "--yes"]).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    let arrived = loop {
        let n = az.blobs("drc").await.len();
        if n >= 60 {
            break n;
        }
        assert!(child.try_wait().unwrap().is_none(), "the sync ended before Azurite could be stopped");
        assert!(Instant::now() < deadline, "no blob arrived in 120 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    az.stop();
    let stopped = Instant::now();
    let out = tokio::task::spawn_blocking(move || child.wait_with_output()).await.unwrap().unwrap();
    eprintln!(
        "{arrived} of {total} blobs had arrived; the run ended {:.1} s after Azurite stopped",
        stopped.elapsed().as_secs_f64()
    );
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(1), "the run must fail with exit 1:\n{stdout}{stderr}");
    let shown: Vec<&str> = stderr.lines().filter(|l| !l.trim_start().starts_with("failed:")).collect();
    eprintln!("the run's error, without its per-file lines:\n{}", shown.join("\n"));
    assert!(arrived < total, "Azurite was stopped after the sync had finished");
    assert!(
        stderr.contains("stopped early") && stderr.contains(&location),
        "the error names neither the stop nor the container:\n{stderr}"
    );
    assert!(stderr.contains("drscript resume"), "the error does not say how to go on:\n{stderr}");
    assert!(stderr.contains("not tried"), "the error does not say what was left:\n{stderr}");
    assert!(!format!("{stdout}{stderr}").contains(&sig), "the SAS signature leaked");

    // Azurite is back with what it had stored: resume finishes the step.
    az.restart();
    let out = drscript_in(&work, &sas, &["resume", "--yes"]).output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "resume did not finish:\n{text}");
    let (copied, skipped) = text
        .lines()
        .find_map(|l| {
            let rest = l.split("copied ").nth(1)?;
            let (c, s) = rest.split_once(" skipped ")?;
            Some((c.trim().parse::<usize>().ok()?, s.trim().parse::<usize>().ok()?))
        })
        .unwrap_or_else(|| panic!("no copy summary:\n{text}"));
    eprintln!("resume copied {copied}, skipped {skipped}");
    assert_eq!(copied + skipped, total, "{text}");
    assert!(copied < total, "resume copied everything again: nothing Azurite stored was kept\n{text}");
    assert!(!text.contains(&sig), "the SAS signature leaked");

    // Read back through a separate sync: every blob is there with the source's content.
    assert_eq!(az.blobs("drc").await.len(), total, "the container holds other than one blob per file");
    let back = dir.path().join("back");
    let blob = Endpoint::parse(&az.url("drc/app")).unwrap();
    sync_common::run(&blob, &sync_common::local(&back), &SyncOptions::default()).await.unwrap();
    assert_eq!(sync_common::contents(&back), want, "the container differs from its source after the resume");
}

/// Whether a step whose title starts with `prefix` has started in any run of the world.
fn step_started(world: &World, prefix: &str) -> bool {
    world.runs().iter().any(|run| {
        journal(run)
            .iter()
            .any(|r| r["event"] == "step_started" && r["title"].as_str().is_some_and(|t| t.starts_with(prefix)))
    })
}

/// The environments' Azure Files emulators (`--remote-shares`) throttle every request (503
/// `ServerBusy`, `Retry-After: 1`) for three seconds as the pre-copy starts and for three seconds
/// as the copy inside the downtime starts: the failover's copies wait as the service asks and the
/// switch finishes in one run, with DR's shares equal to PROD's. The issue's burst is 30 s: with
/// the real waits (1 s doubling to 60 s, at least the service's) a 30 s burst costs a request
/// five or six tries of its twenty; the suite shrinks the computed waits (`DRSCRIPT_RETRY_SCALE`)
/// so that the service's 1 s dominates and twenty tries span about 20 s, hence shorter bursts.
#[test]
fn failover_copies_finish_through_a_files_throttling_burst() {
    let seed = seed(29);
    let world =
        World::start(&["--remote-shares", "--faults", "files=throttle:100%,burst:1s", "--seed", &seed.to_string()]);
    world.faults_off();
    let mut child = world
        .command(&["run", &format!("{RUNBOOKS}/failover.rhai"), "--yes"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let wait_for = |prefix: &str, child: &mut std::process::Child| {
        while !step_started(&world, prefix) {
            if child.try_wait().unwrap().is_some() {
                let mut stderr = String::new();
                std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
                panic!("the failover ended before a step `{prefix}…` started:\n{stderr}");
            }
            assert!(started.elapsed() < Duration::from_secs(300), "no step `{prefix}…` started");
            std::thread::sleep(Duration::from_millis(5));
        }
    };
    // One burst as the pre-copy starts, one as the copy inside the downtime starts.
    wait_for("Pre-copy", &mut child);
    world.faults_on();
    std::thread::sleep(Duration::from_secs(3));
    world.faults_off();
    wait_for("Copy ", &mut child);
    world.faults_on();
    std::thread::sleep(Duration::from_secs(3));
    world.faults_off();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "the failover did not ride out the burst:\n{stderr}");
    world.assert_serving("dr", "prod");
    assert!(injected(&world, "throttle") > 0, "nothing was throttled: {:?}", world.injected());
    eprintln!("throttled: {:?}", world.injected());
}
