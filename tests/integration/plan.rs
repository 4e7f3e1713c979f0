use crate::test::{CONFIG, Test};

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
