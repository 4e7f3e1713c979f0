use crate::test::{CONFIG, Test};

#[test]
fn piped_repl_keeps_variables_and_functions_and_takes_multiline_input() {
    Test::new()
        .config(CONFIG)
        .args(&["repl"])
        .stdin("let a = 20;\nfn double(x) {\n    x * 2\n}\ndouble(a) + 2\nenv(\"dr\").replicas.runtime\n")
        .stdout_has("=> 42")
        .stdout_has("=> 3")
        .run();
}

#[test]
fn repl_help_and_plan_mode() {
    Test::new()
        .args(&["repl"])
        .stdin(":help step\n:plan on\nsleep(100)\n:plan\n:quit\nprint(\"never\")\n")
        .stdout_has("step(title: string, body: closure) -> any")
        .stdout_has("plan mode: changes are described, not made")
        .stdout_has("plan mode is on")
        .stderr_lacks("never")
        .run();
}

#[test]
fn repl_errors_are_reported_and_the_session_goes_on() {
    Test::new()
        .args(&["repl"])
        .stdin("sleeep(1)\nlet ok = 1;\nok\n")
        .status(1)
        .stderr_has("sleeep")
        .stdout_has("=> 1")
        .run();
}

/// The REPL is safe to explore: a dry run by default (a scale is described, not made, and no
/// run is journaled); `--live` makes the change, holds the lock meanwhile and journals it as a
/// run that `drscript runs` lists. Judged with kubectl.
#[test]
fn the_repl_changes_nothing_without_live_and_a_live_session_is_locked_and_journaled() {
    use drscript_test_support::world::World;
    let world = World::start(&[]);
    let replicas = || world.kubectl("dr", &["get", "deployment", "ac-ac-listener", "-o", "jsonpath={.spec.replicas}"]);
    let repl = |extra: &[&str], input: &str| {
        use std::io::Write;
        let mut args = vec!["repl"];
        args.extend_from_slice(extra);
        let mut child = world
            .command(&args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
        child.wait_with_output().unwrap()
    };
    let scale = "scale(env(\"dr\"), \"deployment\", \"ac-ac-listener\", 1)\n";
    let out = repl(&[], scale);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(replicas(), "0", "a dry REPL scaled DR's listener");
    assert!(world.runs().is_empty(), "a dry REPL journaled a run");
    // Live: the change is made, under the lock, and journaled.
    let out = repl(&["--live", "--yes"], scale);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{err}");
    assert_eq!(replicas(), "1", "kubectl: the live REPL scaled DR's listener");
    assert!(err.contains("live session") && err.contains("journaled"), "{err}");
    let runs = world.drscript(&["runs", "--json"]);
    let runs: serde_json::Value = serde_json::from_slice(&runs.stdout).unwrap();
    assert_eq!(runs[0]["mode"], "repl", "{runs}");
    let run = world.the_run();
    let journal = drscript_test_support::world::journal(&run);
    assert!(
        journal.iter().any(|r| r["event"] == "action" && r.to_string().contains("ac-ac-listener")),
        "the scale is in the journal: {journal:?}"
    );
    // While a live session holds the lock, a switch is refused.
    let mut child = world
        .command(&["repl", "--live", "--yes"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    while !world.path().join(".drscript/lock").exists() {
        assert!(started.elapsed() < std::time::Duration::from_secs(20), "the live REPL took no lock");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let out = world.drscript(&["run", &format!("{}/failover.rhai", drscript_test_support::world::RUNBOOKS), "--yes"]);
    assert_ne!(out.status.code(), Some(0), "a failover ran while a live REPL held the lock");
    assert!(String::from_utf8_lossy(&out.stderr).contains("lock"), "{}", String::from_utf8_lossy(&out.stderr));
    drop(child.stdin.take());
    child.wait().unwrap();
}
