use crate::test::Test;

#[test]
fn demo_fails_over_and_back_and_every_check_passes() {
    let ran = Test::new()
        .args(&["demo", "--dir", "demo", "--start-delay", "0.2", "--stop-delay", "0.2"])
        .stdout_has("failover           ok")
        .stdout_has("check dr serves    ok")
        .stdout_has("failback           ok")
        .stdout_has("check prod serves  ok")
        .stdout_has(&format!("{:<18} ok", "db failover"))
        .stdout_has(&format!("{:<18} ok", "check db is sync"))
        .stdout_has(&format!("{:<18} ok", "db failback"))
        .stdout_has(&format!("{:<18} ok", "check db is primary"))
        .stdout_has("All checks passed")
        .run();
    // Per-step timings list the top-level steps in script order, whichever finished first.
    for phase in ["failover steps:", "failback steps:"] {
        let section = ran.stdout.split(phase).nth(1).unwrap_or_else(|| panic!("no {phase}\n{}", ran.stdout));
        let numbers: Vec<u32> = section
            .lines()
            .skip(1)
            .take_while(|l| l.starts_with("  "))
            .map(|l| l.split_whitespace().next().unwrap().parse().unwrap())
            .collect();
        assert_eq!(numbers, (1..=numbers.len() as u32).collect::<Vec<_>>(), "{phase}\n{}", ran.stdout);
        assert!(numbers.len() >= 5, "{phase}\n{}", ran.stdout);
    }
    // Each phase left a report with a timeline.
    let runs: Vec<_> = std::fs::read_dir(ran.path().join("demo/state/runs")).unwrap().flatten().collect();
    assert_eq!(runs.len(), 5, "preflight, failover, failback, db failover, db failback");
    for run in runs {
        let html = std::fs::read_to_string(run.path().join("report.html")).unwrap();
        assert!(html.contains("<svg"), "{}", run.path().display());
    }
    // The gateway password of the sandbox never shows.
    let password = std::fs::read_to_string(ran.path().join("demo/sandbox/secrets/prod-gateway.password")).unwrap();
    assert!(!ran.stderr.contains(password.trim()));
    let journals: String = std::fs::read_dir(ran.path().join("demo/state/runs"))
        .unwrap()
        .flatten()
        .map(|r| std::fs::read_to_string(r.path().join("journal.jsonl")).unwrap())
        .collect();
    assert!(!journals.contains(password.trim()));
}

#[test]
fn demo_refuses_a_folder_it_did_not_make() {
    Test::new()
        .file("precious/data.txt", "keep me")
        .args(&["demo", "--dir", "precious"])
        .status(2)
        .stderr_has("not a drscript demo folder")
        .run();
}
