//! Crash consistency: `drscript failover.rhai` killed with SIGKILL at seeded random moments, then
//! finished with `drscript resume --yes`. Every time the end state must be right (DR serving,
//! PROD quiesced, shares copied, DNS at DR) and the journal must show that no step that finished
//! ok was started again. One sandbox serves every trial: failback.rhai restores the initial state
//! between trials.
//!
//! The seed is printed; rerun one with `DRSCRIPT_CRASH_SEED=N cargo test --test crash`.
//! `DRSCRIPT_CRASH_TRIALS` changes the number of trials (default 20).

use drscript_test_support::world;

use std::process::Stdio;
use std::time::Instant;

use rand::{Rng, SeedableRng};
use world::{RUNBOOKS, World, assert_no_step_ran_twice, journal};

fn env_number(name: &str) -> Option<u64> {
    std::env::var(name).ok().map(|v| v.parse().unwrap_or_else(|_| panic!("{name}={v}: expected a number")))
}

/// Waits until the run started after `before` has its first journal record (or the process
/// ended); returns how long that took.
fn wait_for_journal(
    world: &World,
    before: &std::collections::BTreeSet<std::path::PathBuf>,
    child: &mut std::process::Child,
) -> std::time::Duration {
    let started = Instant::now();
    loop {
        let journalled =
            world.runs().difference(before).any(|run| journal(run).iter().any(|r| r["event"] == "run_started"));
        if journalled || child.try_wait().unwrap().is_some() {
            return started.elapsed();
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(120), "the failover never started its journal");
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
}

#[test]
fn failover_killed_at_random_moments_is_always_finished_by_resume() {
    let seed = env_number("DRSCRIPT_CRASH_SEED").unwrap_or_else(rand::random);
    let trials = env_number("DRSCRIPT_CRASH_TRIALS").unwrap_or(20);
    eprintln!("crash test seed {seed} ({trials} trials); reproduce with DRSCRIPT_CRASH_SEED={seed}");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let world = World::start(&[]);
    let failover = format!("{RUNBOOKS}/failover.rhai");

    // How long an undisturbed failover takes here: from start to its first journal record (it
    // checks the script and config first), and from there to its end. Kill moments are drawn
    // within these. (A first failover and failback warm up caches, which make the first run slow.)
    world.run_ok("failover.rhai", &[]);
    world.run_ok("failback.rhai", &[]);
    let before = world.runs();
    let started = Instant::now();
    let mut child =
        world.command(&["run", &failover, "--yes"]).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let until_journal = wait_for_journal(&world, &before, &mut child);
    assert!(child.wait().unwrap().success(), "the undisturbed failover failed");
    let span = started.elapsed();
    let after_journal = span.saturating_sub(until_journal);
    world.assert_serving("dr", "prod");
    world.run_ok("failback.rhai", &[]);
    eprintln!("an undisturbed failover: journal after {until_journal:?}, done after {span:?}");

    let (mut resumed, mut restarted, mut completed) = (0, 0, 0);
    for trial in 0..trials {
        let context = format!("trial {trial} (seed {seed})");
        let before = world.runs();
        let mut child =
            world.command(&["run", &failover, "--yes"]).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
        // A quarter of the kills anywhere in the run, the others once it is journalled (where
        // steps change things).
        let delay = if rng.random_bool(0.25) {
            let d = span.mul_f64(rng.random_range(0.0..1.0));
            std::thread::sleep(d);
            d
        } else {
            let d = after_journal.mul_f64(rng.random_range(0.0..1.0));
            let journalled = wait_for_journal(&world, &before, &mut child);
            std::thread::sleep(d);
            journalled + d
        };
        drscript_base::sys::signal(child.id(), drscript_base::sys::Signal::Kill);
        let status = child.wait().unwrap();
        let new: Vec<_> = world.runs().difference(&before).cloned().collect();
        assert!(new.len() <= 1, "{context}: one failover made several runs: {new:?}");
        let run = new.first().cloned();
        let records = run.as_deref().map(journal).unwrap_or_default();
        let started_run = records.iter().any(|r| r["event"] == "run_started");
        let finished_ok = records.iter().any(|r| r["event"] == "run_finished" && r["exit_code"] == 0);
        if status.success() || finished_ok {
            completed += 1;
        } else if started_run {
            // The journal exists: resume must finish it (retrying a resume that was itself
            // unlucky is what an operator does).
            let out = world.drscript(&["resume", "--yes"]);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(0), "{context}: killed after {delay:?}, resume failed:\n{stderr}");
            resumed += 1;
        } else {
            // Killed before the run was journalled (while checking the script and the config):
            // nothing ran, there is nothing to resume, and the operator starts the failover again.
            let out = world.drscript(&["resume", "--yes"]);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_ne!(out.status.code(), Some(0), "{context}: resume claims success without a journal: {stderr}");
            assert!(stderr.contains("nothing to resume") || stderr.contains("no start record"), "{context}: {stderr}");
            let out = world.drscript(&["run", &failover, "--yes"]);
            assert_eq!(out.status.code(), Some(0), "{context}: {}", String::from_utf8_lossy(&out.stderr));
            restarted += 1;
        }
        world.assert_serving("dr", "prod");
        if let Some(run) = &run {
            let records = journal(run);
            assert_no_step_ran_twice(&records, &context);
            if started_run && !finished_ok && !status.success() {
                assert!(
                    records.iter().any(|r| r["event"] == "run_finished" && r["exit_code"] == 0),
                    "{context}: the resumed run did not finish ok"
                );
            }
        }
        let out = world.drscript(&["run", &format!("{RUNBOOKS}/failback.rhai"), "--yes"]);
        assert_eq!(out.status.code(), Some(0), "{context}: failback\n{}", String::from_utf8_lossy(&out.stderr));
        world.assert_serving("prod", "dr");
    }
    eprintln!(
        "{trials} trials: {resumed} resumed after the kill, {restarted} killed before journalling, {completed} finished before the kill"
    );
    assert!(
        resumed * 3 >= trials as usize,
        "only {resumed} of {trials} kills hit a running failover; the kill moments miss the run"
    );
}
