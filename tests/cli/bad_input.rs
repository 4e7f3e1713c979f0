//! Bad input: a clear message naming the problem and where it is, exit 2, nothing executed.

use crate::test::{CONFIG, Test};

fn nothing_ran(ran: &crate::test::Ran) {
    assert!(ran.runs().is_empty(), "a run was started: {:?}", ran.runs());
}

#[test]
fn empty_file() {
    let ran = Test::new().script("// only a comment\n").status(2).stderr_has("script.rhai: the script is empty").run();
    nothing_ran(&ran);
}

#[test]
fn binary_garbage() {
    Test::new().file("script.rhai", "\u{0}\u{1}ELF\u{0}").status(2).stderr_has("binary file").run();
}

#[test]
fn syntax_error_points_at_line_and_column() {
    Test::new()
        .script("let a = 1;\nlet b = ;\n")
        .status(2)
        .stderr_has("script.rhai:2:9")
        .stderr_has("2 | let b = ;")
        .stderr_has("  |         ^")
        .run();
}

#[test]
fn unknown_function_suggests_the_nearest_name() {
    let ran = Test::new()
        .script("step(\"one\", || info(\"x\"));\nstep(\"two\", || sleeep(1));\n")
        .status(2)
        .stderr_has("unknown function `sleeep` (did you mean `sleep`?)")
        .stderr_has("script.rhai:2:16")
        .stderr_lacks("▶")
        .run();
    nothing_ran(&ran);
}

#[test]
fn literal_of_the_wrong_type() {
    Test::new().script("sleep(\"two\");\n").status(2).stderr_has("argument 1 of `sleep` is a string").run();
}

#[test]
fn computed_value_of_the_wrong_type_is_caught_by_the_rehearsal() {
    let ran = Test::new()
        .script("step(\"before\", || info(\"x\"));\nlet s = \"a\" + \"b\";\nsleep(s);\n")
        .status(2)
        .stderr_has("no function matches sleep (string)")
        .stderr_has("nothing was executed")
        .run();
    nothing_ran(&ran);
}

#[test]
fn wrong_number_of_arguments() {
    Test::new().script("step(\"x\");\n").status(2).stderr_has("`step` takes 2 argument(s), not 1").run();
}

#[test]
fn missing_explicit_config() {
    Test::new()
        .script("info(\"x\");\n")
        .args(&["--config", "nope.toml", "script.rhai"])
        .status(2)
        .stderr_has("cannot read config nope.toml")
        .run();
}

#[test]
fn unknown_environment_lists_the_known_ones() {
    let ran = Test::new()
        .config(CONFIG)
        .script("step(\"a\", || info(\"x\"));\nlet e = env(\"drr\");\n")
        .status(2)
        .stderr_has("unknown environment `drr` (known: dr, prod)")
        .run();
    nothing_ran(&ran);
}

#[test]
fn unknown_var() {
    Test::new()
        .script("info(\"x\");\n")
        .args(&["script.rhai", "--var", "colour=red"])
        .status(2)
        .stderr_has("unknown --var colour")
        .run();
}

#[test]
fn var_without_equals() {
    Test::new()
        .script("info(\"x\");\n")
        .args(&["script.rhai", "--var", "colour"])
        .status(2)
        .stderr_has("expected KEY=VALUE")
        .run();
}

#[test]
fn script_that_does_not_exist() {
    Test::new().args(&["missing.rhai"]).status(2).stderr_has("cannot read script missing.rhai: no such file").run();
}

#[test]
fn runaway_loop_is_stopped_by_the_engine() {
    Test::new().script("let i = 0;\nloop { i += 1; }\n").status(2).stderr_has("runaway loop").run();
}

#[test]
fn runaway_recursion_is_stopped_by_the_engine() {
    Test::new().script("fn f(n) { f(n + 1) }\nf(0);\n").status(2).stderr_has("recurses too deep").run();
}

#[test]
fn huge_string_is_stopped_by_the_engine() {
    Test::new().script("let s = \"x\";\nloop { s += s; }\n").status(2).stderr_has("too large").run();
}

#[test]
fn config_unknown_key_names_key_and_line() {
    Test::new()
        .config(&CONFIG.replace(
            "release = \"ac\"\ngateway = \"https://prod",
            "release = \"ac\"\nnamspace = \"x\"\ngateway = \"https://prod",
        ))
        .script("info(\"x\");\n")
        .status(2)
        .stderr_has("unknown field `namspace`")
        .stderr_has("drscript.toml:6:1")
        .run();
}

#[test]
fn config_wrong_type_names_the_line() {
    Test::new()
        .config(&CONFIG.replace("runtime = 3", "runtime = \"three\""))
        .script("info(\"x\");\n")
        .status(2)
        .stderr_has("drscript.toml:14:")
        .run();
}

#[test]
fn unknown_subcommand_flag_is_usage_error() {
    Test::new().args(&["plan", "--bogus"]).status(2).stderr_has("--bogus").run();
}
