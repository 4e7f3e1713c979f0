use crate::test::{CONFIG, Test, events};

#[test]
fn plan_numbers_steps_lists_actions_and_changes_nothing() {
    let ran = Test::new()
        .config(CONFIG)
        .script(
            r#"
            let dr = env("dr");
            step("Wait for the storage", || sleep(600));
            step("Activate DR", || {
                step("Confirm", || confirm(`Activate ${dr}?`));
                step("Settle", || sleep(5));
            });
            "#,
        )
        .args(&["plan", "script.rhai"])
        .stdout_has("1. Wait for the storage")
        .stdout_has("  - sleep 600s")
        .stdout_has("2. Activate DR")
        .stdout_has("  2.1. Confirm")
        .stdout_has("- confirm \"Activate dr?\"")
        .stdout_has("4 step(s), 3 action(s); nothing was changed.")
        .run();
    assert!(ran.runs().is_empty(), "a plan starts no run");
}

#[test]
fn plan_notes_a_fail_instead_of_stopping() {
    Test::new()
        .script("step(\"check\", || fail(\"versions differ\"));\nstep(\"next\", || 1);\n")
        .args(&["plan", "script.rhai"])
        .stdout_has("! would fail here if reached: versions differ")
        .stdout_has("2. next")
        .run();
}

const BRANCHES: &str = r#"
step("Prepare", || sleep(0.05));
parallel([|| step("Left", || sleep(0.2)), || step("Right", || step("Inner", || sleep(0.1)))]);
step("Finish", || 1);
"#;

#[test]
fn plan_marks_parallel_steps_and_expects_the_durations_of_the_last_finished_run() {
    let before = Test::new()
        .script(BRANCHES)
        .args(&["plan", "script.rhai"])
        .stdout_has("1. Prepare")
        .stdout_has("\n‖ at the same time: 2, 3\n‖ 2. Left\n")
        .stdout_has("\n‖ 3. Right\n  3.1. Inner\n")
        .stdout_has("\n4. Finish\n")
        .stdout_has("Expected time: no earlier run of script.rhai finished in this state directory.")
        .run();
    let ran = before.then().run();
    let journal = ran.journal();
    let took = |id: &str| {
        let finished = events(&journal, "step_finished").into_iter().find(|e| e["id"] == id).unwrap().clone();
        format!("{:.1} s", finished["duration_ms"].as_u64().unwrap() as f64 / 1000.0)
    };
    let total = events(&journal, "run_finished")[0]["duration_ms"].as_u64().unwrap() as f64 / 1000.0;
    let run_id = ran.runs()[0].file_name().unwrap().to_string_lossy().into_owned();
    let after = ran.then().args(&["plan", "script.rhai"]).run();
    let line = |start: &str| {
        after.stdout.lines().find(|l| l.starts_with(start)).unwrap_or_else(|| panic!("no {start:?}: {}", after.stdout))
    };
    for (start, id) in [("1. Prepare", "Prepare#1"), ("‖ 2. Left", "Left#1"), ("‖ 3. Right", "Right#1")] {
        assert!(line(start).ends_with(&took(id)), "{start} should show {}: {}", took(id), after.stdout);
    }
    assert!(line("  3.1. Inner").ends_with(&took("Right#1/Inner#1")), "{}", after.stdout);
    // The durations line up in one column.
    let ends: Vec<usize> = ["1. Prepare", "‖ 2. Left", "4. Finish"].iter().map(|s| line(s).chars().count()).collect();
    assert!(ends.windows(2).all(|w| w[0] == w[1]), "{}", after.stdout);
    assert!(
        after.stdout.contains(&format!("Expected total: {total:.1} s (the last finished run of script.rhai, {run_id}")),
        "{}",
        after.stdout
    );
}

#[test]
fn plan_ignores_runs_that_did_not_finish() {
    let failed = Test::new().script("step(\"one\", || fail(\"no\"));\n").status(1).run();
    failed.then().args(&["plan", "script.rhai"]).stdout_has("no earlier run of script.rhai finished").run();
}
