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
