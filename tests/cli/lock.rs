use crate::test::Test;

#[test]
fn a_live_lock_holder_blocks_a_second_run_with_exit_4() {
    let test = Test::new().script("info(\"x\");\n");
    std::fs::create_dir_all(test.path().join(".drscript")).unwrap();
    // This test process is alive, so its pid holds the lock.
    std::fs::write(test.path().join(".drscript/lock"), format!("{} run-x\n", std::process::id())).unwrap();
    test.status(4).stderr_has("another drscript run (run-x").run();
}

#[test]
fn a_stale_lock_is_taken_over_with_a_warning() {
    let test = Test::new().script("info(\"ran\");\n");
    std::fs::create_dir_all(test.path().join(".drscript")).unwrap();
    std::fs::write(test.path().join(".drscript/lock"), "2147483646 run-dead\n").unwrap();
    let ran = test.stderr_has("taking over the lock").stderr_has("ran").run();
    assert!(!ran.path().join(".drscript/lock").exists(), "the lock is released at the end");
}

#[cfg(unix)]
#[test]
fn state_dir_journal_and_report_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let ran = Test::new().script("step(\"s\", || 1);\n").run();
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&ran.path().join(".drscript")), 0o700);
    let run = ran.runs().pop().unwrap();
    assert_eq!(mode(&run), 0o700);
    assert_eq!(mode(&run.join("journal.jsonl")), 0o600);
    assert_eq!(mode(&run.join("report.md")), 0o600);
}
