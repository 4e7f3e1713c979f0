use crate::test::{CONFIG, Test, events};

#[test]
fn steps_run_in_order_and_are_journaled_and_reported() {
    let ran = Test::new()
        .script(
            r#"
            step("first", || { info("one"); 1 });
            step("second", || {
                step("inner", || 2);
            });
            "#,
        )
        .stderr_has("▶ 1 first")
        .stderr_has("✓ 2.1 inner")
        .run();
    let journal = ran.journal();
    let started: Vec<&str> = events(&journal, "step_started").iter().map(|e| e["number"].as_str().unwrap()).collect();
    assert_eq!(started, ["1", "2", "2.1"]);
    assert_eq!(events(&journal, "run_finished")[0]["outcome"], "ok");
    let first = events(&journal, "step_finished").into_iter().find(|e| e["id"] == "first#1").unwrap();
    assert_eq!(first["result"], 1);
    let report = ran.report();
    assert!(report.contains("| 2.1 |"), "{report}");
    let html = std::fs::read_to_string(ran.runs().pop().unwrap().join("report.html")).unwrap();
    assert_eq!(html.matches("<rect ").count(), 3, "one bar per step");
    assert!(html.contains("RTO (time running)"), "{html}");
    assert!(report.contains("**ok** (exit 0)"), "{report}");
}

#[test]
fn parallel_branches_overlap_in_time() {
    let ran = Test::new()
        .script(
            r#"
            let r = parallel([
                || step("a", || { sleep(1); "a" }),
                || step("b", || { sleep(1); "b" }),
            ]);
            if r != ["a", "b"] { fail("results out of order: " + r) }
            "#,
        )
        .run();
    let journal = ran.journal();
    let time = |kind: &str, id: &str| {
        let e = events(&journal, kind).into_iter().find(|e| e["id"] == id).unwrap().clone();
        chrono::DateTime::parse_from_rfc3339(e["ts"].as_str().unwrap()).unwrap()
    };
    // Both started before either finished: they ran at the same time.
    assert!(time("step_started", "b#1") < time("step_finished", "a#1"));
    assert!(time("step_started", "a#1") < time("step_finished", "b#1"));
    let lanes: Vec<&str> = events(&journal, "step_started").iter().filter_map(|e| e["lane"].as_str()).collect();
    assert_eq!(lanes.len(), 2, "{journal:?}");
}

#[test]
fn a_failing_parallel_branch_fails_the_run_after_the_others_finish() {
    let ran = Test::new()
        .script(
            r#"
            parallel([
                || step("slow", || sleep(0.5)),
                || step("broken", || fail("disk on fire")),
            ]);
            "#,
        )
        .status(1)
        .stderr_has("disk on fire")
        .stderr_has("step 2 \"broken\"")
        .run();
    let journal = ran.journal();
    let slow = events(&journal, "step_finished").into_iter().find(|e| e["id"] == "slow#1").unwrap().clone();
    assert_eq!(slow["outcome"], "ok");
}

#[test]
fn runtime_failure_names_step_and_location_and_exits_1() {
    let ran = Test::new()
        .script("step(\"Scale down\", || {\n    fail(\"replicas stuck at 2\");\n});\n")
        .status(1)
        .stderr_has("step 1 \"Scale down\" failed")
        .stderr_has("replicas stuck at 2")
        .stderr_has("script.rhai:2:5")
        .run();
    assert!(ran.report().contains("## Deviations"));
    assert_eq!(events(&ran.journal(), "run_finished")[0]["exit_code"], 1);
}

#[test]
fn confirm_without_a_terminal_stops_with_exit_3() {
    let ran = Test::new()
        .script("step(\"ask\", || confirm(\"Fail over to DR?\"));\nstep(\"after\", || 1);\n")
        .status(3)
        .stderr_has("no terminal")
        .stderr_has("--yes")
        .run();
    let journal = ran.journal();
    assert!(events(&journal, "step_started").iter().all(|e| e["title"] != "after"));
    assert_eq!(events(&journal, "run_finished")[0]["outcome"], "stopped");
}

#[test]
fn yes_answers_confirm_but_not_manual_which_needs_an_explicit_ack() {
    let script =
        "confirm(\"go?\");\nstep(\"Replicate\", || manual(\"replicate the database back\"));\ninfo(\"went\");\n";
    Test::new()
        .script(script)
        .args(&["run", "script.rhai", "--yes"])
        .status(3)
        .stderr_has("--yes does not acknowledge manual steps")
        .stderr_has("--ack \"Replicate\"")
        .stderr_lacks("went")
        .run();
    Test::new()
        .script(script)
        .args(&["run", "script.rhai", "--yes", "--ack", "replicate the DATABASE"])
        .stderr_has("assumed by --yes")
        .stderr_has("acknowledged up front by --ack \"replicate the DATABASE\"")
        .stderr_has("went")
        .run();
    Test::new()
        .script(script)
        .args(&["run", "script.rhai", "--yes", "--ack-all-manual"])
        .stderr_has("acknowledged up front by --ack-all-manual")
        .stderr_has("went")
        .run();
}

#[test]
fn wait_until_polls_until_true_and_times_out_with_a_clear_error() {
    Test::new()
        .script("let n = 0;\nwait_until(|| { n += 1; n >= 3 }, #{ timeout: 5 });\nif n != 3 { fail(`polled ${n} times`) }\n")
        .run();
    Test::new()
        .script("wait_until(|| false, #{ timeout: 0.3, what: \"DR runtime ready\" });\n")
        .status(1)
        .stderr_has("DR runtime ready")
        .stderr_has("not true within 0.3s")
        .run();
}

#[test]
fn param_takes_var_values_typed_like_the_default() {
    Test::new()
        .script("let n = param(\"replicas\", 1);\nlet who = param(\"who\", \"ops\");\nif n + 1 != 4 || who != \"me\" { fail(\"wrong\") }\n")
        .args(&["script.rhai", "--var", "replicas=3", "--var", "who=me"])
        .run();
}

#[test]
fn env_exposes_config_fields() {
    Test::new()
        .config(CONFIG)
        .script(
            r#"
            let dr = env("dr");
            // Only the counts the config gives: an omitted one is never taken as 1.
            if dr.replicas.runtime != 3 || "listener" in dr.replicas { fail("replicas") }
            if dr.namespace != "adeptia" || dr.kube_context != "dr" { fail("fields") }
            // In the order the file lists them, not by name.
            if environments() != ["prod", "dr"] { fail("names") }
            print(`${dr}`);
            "#,
        )
        .stderr_has("INFO dr")
        .run();
}

#[test]
fn dry_run_describes_changes_and_journals_them_as_planned() {
    let ran = Test::new()
        .script("step(\"wait\", || sleep(30));\n")
        .args(&["run", "script.rhai", "--dry-run"])
        .stderr_has("would sleep 30s")
        .stderr_has("dry run")
        .run();
    let actions = events(&ran.journal(), "action").into_iter().map(|a| a["outcome"].clone()).collect::<Vec<_>>();
    assert_eq!(actions, ["planned"]);
}

#[test]
fn ctrl_c_stops_between_operations_with_exit_3() {
    let test = Test::new().script("step(\"long\", || sleep(60));\n");
    let mut child = test.command().stderr(std::process::Stdio::piped()).spawn().unwrap();
    let journal = test.path().join(".drscript/runs");
    // Wait until the step has started, then interrupt.
    let started = std::time::Instant::now();
    loop {
        let found = std::fs::read_dir(&journal)
            .ok()
            .and_then(|mut d| d.next())
            .and_then(|e| e.ok())
            .map(|e| e.path().join("journal.jsonl"));
        if let Some(path) = found
            && std::fs::read_to_string(&path).unwrap_or_default().contains("step_started")
        {
            break;
        }
        assert!(started.elapsed().as_secs() < 60, "the run never started");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    drscript_base::sys::signal(child.id(), drscript_base::sys::Signal::Interrupt);
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(3));
    let run = std::fs::read_dir(&journal).unwrap().next().unwrap().unwrap().path();
    let j = crate::test::journal_of(&run);
    let finished = events(&j, "step_finished");
    assert_eq!(finished[0]["outcome"], "interrupted");
    assert_eq!(events(&j, "run_finished")[0]["exit_code"], 3);
}
