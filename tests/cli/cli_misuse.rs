//! Command-line misuse: usage errors exit 2 with a message naming the problem.

use crate::test::Test;

#[test]
fn run_without_a_script() {
    Test::new().args(&["run"]).status(2).stderr_has("<SCRIPT>").run();
}

#[test]
fn unknown_log_format() {
    Test::new().args(&["--log-format", "xml", "docs"]).status(2).stderr_has("invalid value 'xml'").run();
}

#[test]
fn var_with_an_empty_key() {
    Test::new()
        .script("info(\"x\");\n")
        .args(&["script.rhai", "--var", "=1"])
        .status(2)
        .stderr_has("the key is empty")
        .run();
}

#[test]
fn resume_with_no_runs_at_all() {
    Test::new().args(&["resume"]).status(2).stderr_has("nothing to resume").run();
}

#[test]
fn check_with_nothing_to_check() {
    Test::new().args(&["check"]).status(2).stderr_has("name at least one script").run();
}

#[test]
fn completions_for_an_unknown_shell() {
    Test::new().args(&["completions", "cmd"]).status(2).stderr_has("invalid value 'cmd'").run();
}

#[test]
fn sandbox_status_without_a_sandbox() {
    Test::new()
        .args(&["sandbox", "status", "--dir", "nowhere"])
        .status(2)
        .stderr_has("no sandbox is running in nowhere")
        .run();
}

#[test]
fn negative_sandbox_delay() {
    Test::new().args(&["sandbox", "up", "--dir", "sbx", "--start-delay", "-1"]).status(2).run();
}

#[test]
fn a_directory_instead_of_a_script() {
    Test::new().file("dir/x", "").args(&["run", "dir"]).status(2).stderr_has("cannot read script dir").run();
}
