use crate::test::Test;

#[test]
fn json_logs_are_one_object_per_line() {
    let ran =
        Test::new().script("step(\"s\", || info(\"hello\"));\n").args(&["--log-format", "json", "script.rhai"]).run();
    let lines: Vec<serde_json::Value> = ran.stderr.lines().map(|l| serde_json::from_str(l).expect(l)).collect();
    assert!(lines.iter().any(|l| l["fields"]["message"] == "hello"), "{}", ran.stderr);
}

#[test]
fn log_file_gets_the_logs_too() {
    let ran = Test::new().script("info(\"to the file\");\n").args(&["--log-file", "out.log", "script.rhai"]).run();
    let log = std::fs::read_to_string(ran.path().join("out.log")).unwrap();
    assert!(log.contains("to the file"), "{log}");
}

#[test]
fn quiet_hides_info() {
    Test::new()
        .script("info(\"chatty\");\nwarn(\"important\");\n")
        .args(&["-q", "script.rhai"])
        .stderr_lacks("chatty")
        .stderr_has("important")
        .run();
}
