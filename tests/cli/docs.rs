use crate::test::Test;

#[test]
fn docs_lists_every_primitive_with_its_description() {
    let ran = Test::new()
        .args(&["docs"])
        .stdout_has("step(title: string, body: closure) -> any")
        .stdout_has("Runs `body` as a step")
        .run();
    for name in ["parallel", "confirm", "manual", "wait_until", "param", "fail", "info", "warn", "env", "sleep"] {
        assert!(ran.stdout.contains(&format!("\n{name}(")), "docs lack {name}");
    }
}

#[test]
fn docs_for_one_name_and_as_json() {
    Test::new()
        .args(&["docs", "wait_until"])
        .stdout_has("wait_until(condition: closure, options: Map)")
        .stdout_lacks("parallel(")
        .run();
    let ran = Test::new().args(&["docs", "--json"]).run();
    let items: Vec<serde_json::Value> = serde_json::from_str(&ran.stdout).unwrap();
    let step = items.iter().find(|i| i["name"] == "step").unwrap();
    assert!(step["doc"].as_str().unwrap().contains("journaled"));
    assert_eq!(step["params"][0]["type"], "string");
}

#[test]
fn docs_for_an_unknown_name_suggests() {
    Test::new().args(&["docs", "paralel"]).status(2).stderr_has("did you mean `parallel`?").run();
}

#[test]
fn docs_writes_editor_definitions() {
    let ran = Test::new().args(&["docs", "--definitions", "defs"]).run();
    let mut all = String::new();
    for e in std::fs::read_dir(ran.path().join("defs")).unwrap().flatten() {
        all.push_str(&std::fs::read_to_string(e.path()).unwrap());
    }
    assert!(all.contains("fn step("), "{all}");
}

#[test]
fn help_and_completions() {
    Test::new().args(&["--help"]).stdout_has("Exit codes:").stdout_has("4  another run holds the lock").run();
    for command in ["run", "plan", "check", "resume", "repl", "docs", "completions", "sync", "sandbox", "demo"] {
        Test::new().args(&[command, "--help"]).stdout_has("Examples:").run();
    }
    Test::new().args(&["completions", "bash"]).stdout_has("_drscript()").run();
}
