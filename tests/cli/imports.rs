use crate::test::{CONFIG, Test};

#[test]
fn the_embedded_stdlib_is_importable() {
    Test::new()
        .config(CONFIG)
        .script("import \"adeptia\" as ac;\nlet n = ac::workload_name(env(\"prod\"), \"runtime\");\nif n != \"ac-ac-runtime\" { fail(n) }\n")
        .run();
}

#[test]
fn a_module_next_to_the_runbook_overrides_the_embedded_one() {
    Test::new()
        .file("adeptia.rhai", "fn workload_name(e, c) { \"custom-\" + c }\n")
        .config(CONFIG)
        .script("import \"adeptia\" as ac;\nif ac::workload_name(env(\"prod\"), \"runtime\") != \"custom-runtime\" { fail(\"not overridden\") }\n")
        .run();
}

#[test]
fn a_stdlib_folder_overrides_the_embedded_one() {
    Test::new()
        .file("lib/adeptia.rhai", "fn workload_name(e, c) { \"lib-\" + c }\n")
        .config(CONFIG)
        .script("import \"adeptia\" as ac;\nif ac::workload_name(env(\"prod\"), \"x\") != \"lib-x\" { fail(\"not overridden\") }\n")
        .args(&["--stdlib", "lib", "script.rhai"])
        .run();
}

#[test]
fn unknown_module_function_is_caught_before_running() {
    Test::new()
        .script("import \"adeptia\" as ac;\nac::workload_nam(1, 2);\n")
        .status(2)
        .stderr_has("unknown function ac::workload_nam (did you mean ac::workload_name?)")
        .run();
}

#[test]
fn a_failure_inside_a_module_points_into_the_module() {
    Test::new()
        .file("helpers.rhai", "fn boom() {\n    fail(\"inside helper\");\n}\n")
        .script("import \"helpers\" as h;\nstep(\"s\", || h::boom());\n")
        .status(1)
        .stderr_has("inside helper")
        .stderr_has("helpers.rhai:2:5")
        .run();
}
