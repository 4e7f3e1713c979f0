use crate::test::{Test, events, journal_of};

const SLOW: &str = "step(\"one\", || 1);\nstep(\"two\", || sleep(60));\nstep(\"three\", || 3);\n";
const FAST: &str = "step(\"one\", || 1);\nstep(\"two\", || sleep(0.1));\nstep(\"three\", || 3);\n";

fn interrupted_run() -> Test {
    let test = Test::new().script(SLOW);
    let mut child = test.command().stderr(std::process::Stdio::null()).spawn().unwrap();
    let runs = test.path().join(".drscript/runs");
    let started = std::time::Instant::now();
    loop {
        let journal = std::fs::read_dir(&runs)
            .ok()
            .and_then(|mut d| d.next())
            .and_then(|e| e.ok())
            .map(|e| e.path().join("journal.jsonl"));
        if journal.is_some_and(|p| std::fs::read_to_string(p).unwrap_or_default().contains("\"two\"")) {
            break;
        }
        assert!(started.elapsed().as_secs() < 60, "the run never reached step two");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    drscript_base::sys::signal(child.id(), drscript_base::sys::Signal::Kill);
    child.wait().unwrap();
    test
}

#[test]
fn resume_refuses_a_changed_script_without_force_and_skips_finished_steps_with_it() {
    let test = interrupted_run().script(FAST);
    let test = test.args(&["resume"]).status(2).stderr_has("changed since run").stderr_has("--force").run();
    let ran = Test::new();
    drop(ran);
    // Same folder, now with --force: step one is skipped, two and three run.
    let dir = test.dir;
    let output = std::process::Command::new(&*crate::test::BIN)
        .args(["resume", "--force"])
        .current_dir(dir.path())
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("taking over the lock"), "{stderr}");
    assert!(stderr.contains("↷ 1 one"), "{stderr}");
    let run = std::fs::read_dir(dir.path().join(".drscript/runs")).unwrap().next().unwrap().unwrap().path();
    let journal = journal_of(&run);
    let started = |id: &str| events(&journal, "step_started").iter().filter(|e| e["id"] == id).count();
    assert_eq!(started("one#1"), 1, "a finished step never runs twice");
    assert_eq!(started("two#1"), 2);
    assert_eq!(started("three#1"), 1);
    let report = std::fs::read_to_string(run.join("report.md")).unwrap();
    assert!(report.contains("| Attempts | 2 |"), "{report}");
    assert!(report.contains("## Skipped"), "{report}");
    // Nothing is left to resume.
    let again = std::process::Command::new(&*crate::test::BIN).arg("resume").current_dir(dir.path()).output().unwrap();
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("nothing to resume"));
}

#[test]
fn resume_of_an_unknown_run_lists_the_known_ones() {
    let ran = Test::new().script("step(\"a\", || 1);\n").run();
    let known = ran.runs()[0].file_name().unwrap().to_string_lossy().into_owned();
    let output = std::process::Command::new(&*crate::test::BIN)
        .args(["resume", "20990101-000000-0000"])
        .current_dir(ran.path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains(&known));
}

#[test]
fn step_results_are_replayed_on_resume() {
    let script = "let v = step(\"compute\", || 41);\nstep(\"use\", || { if v + 1 != 42 { fail(\"lost result\") } sleep(60) });\n";
    let test = Test::new().script(script);
    let mut child = test.command().stderr(std::process::Stdio::null()).spawn().unwrap();
    let runs = test.path().join(".drscript/runs");
    let started = std::time::Instant::now();
    loop {
        let journal = std::fs::read_dir(&runs)
            .ok()
            .and_then(|mut d| d.next())
            .and_then(|e| e.ok())
            .map(|e| e.path().join("journal.jsonl"));
        if journal.is_some_and(|p| std::fs::read_to_string(p).unwrap_or_default().contains("\"use\"")) {
            break;
        }
        assert!(started.elapsed().as_secs() < 60);
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    drscript_base::sys::signal(child.id(), drscript_base::sys::Signal::Kill);
    child.wait().unwrap();
    let fixed = script.replace("sleep(60)", "sleep(0.1)");
    std::fs::write(test.path().join("script.rhai"), fixed).unwrap();
    let output = std::process::Command::new(&*crate::test::BIN)
        .args(["resume", "--force"])
        .current_dir(test.path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stderr));
}
