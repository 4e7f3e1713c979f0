use crate::receiver::Receiver;
use crate::test::{CONFIG, Test};

/// Two webhooks that take only the script's `notify` (`events = []`: none of the run's own).
fn config() -> String {
    format!(
        "{CONFIG}\n[[notify]]\nname = \"ops\"\nkind = \"teams\"\nurl_env = \"TEAMS_URL\"\nevents = []\n\n[[notify]]\nname = \"chat\"\nkind = \"slack\"\nurl_file = \"slack.url\"\nevents = []\n"
    )
}

#[test]
fn notify_posts_teams_and_slack_shapes_and_retries_server_errors() {
    let teams = Receiver::start(vec![500]);
    let slack = Receiver::start(vec![]);
    let teams_url = format!("{}/webhookb2/Secr3tT0kenPath", teams.url);
    let ran = Test::new()
        .config(&config())
        .file("slack.url", &format!("{}/services/T000/B000/XXXX\n", slack.url))
        .env("TEAMS_URL", &teams_url)
        .script("let n = notify(\"failover started\");\nif n != 2 { fail(`delivered to ${n}`) }\nnotify(\"only chat\", #{ to: \"chat\" });\n")
        .stderr_lacks("Secr3tT0kenPath")
        .run();
    let teams_bodies = teams.bodies();
    assert_eq!(teams_bodies.len(), 2, "one 500, then the retry");
    let card: serde_json::Value = serde_json::from_str(&teams_bodies[1].1).unwrap();
    assert_eq!(card["@type"], "MessageCard");
    assert_eq!(card["text"], "failover started");
    let slack_bodies = slack.bodies();
    assert_eq!(slack_bodies.len(), 2);
    let last: serde_json::Value = serde_json::from_str(&slack_bodies[1].1).unwrap();
    assert_eq!(last, serde_json::json!({"text": "only chat"}));
    assert!(!ran.all_files().contains("Secr3tT0kenPath"), "the webhook URL is a secret");
}

#[test]
fn an_undeliverable_notification_is_a_warning_not_a_failure() {
    let dead = Receiver::start(vec![404]);
    Test::new()
        .config(&format!("{CONFIG}\n[[notify]]\nname = \"ops\"\nurl_env = \"HOOK\"\n"))
        .env("HOOK", &format!("{}/hook", dead.url))
        .script("step(\"tell\", || notify(\"hello\"));\nstep(\"after\", || info(\"went on\"));\n")
        .stderr_has("not delivered: HTTP 404")
        .stderr_has("went on")
        .run();
}

#[test]
fn a_missing_webhook_secret_is_bad_input_found_before_anything_runs() {
    let ran = Test::new()
        .config(&format!("{CONFIG}\n[[notify]]\nname = \"ops\"\nurl_env = \"NOT_SET_HOOK\"\n"))
        .script("step(\"first\", || info(\"x\"));\nnotify(\"hello\");\n")
        .status(2)
        .stderr_has("environment variable NOT_SET_HOOK is not set")
        .run();
    assert!(ran.runs().is_empty());
}

/// A live run posts its own outcomes to every webhook: started and finished (with the downtime)
/// for a failover; failed with the step, the error and a `resume` command that, pasted as it
/// came, finishes the run; refused. A webhook that cannot be reached fails nothing.
#[test]
fn every_outcome_of_a_live_run_is_posted_with_a_resume_command_that_works_when_pasted() {
    use drscript_test_support::world::{RUNBOOKS, World};
    let hook = Receiver::start(vec![]);
    let mut world = World::start(&[]);
    world.extra_config = "[[notify]]\nname = \"ops\"\nurl_env = \"HOOK\"\n\n[[notify]]\nname = \"dead\"\nurl_env = \"DEAD_HOOK\"\nevents = [\"failed\", \"finished\"]\n".to_string();
    let run = |args: &[&str]| {
        world
            .command(args)
            .env("HOOK", format!("{}/hook", hook.url))
            .env("DEAD_HOOK", "http://127.0.0.1:9/closed")
            .output()
            .unwrap()
    };
    // The run's own events (the runbook's `notify` lines carry no `event`).
    let events = || -> Vec<serde_json::Value> {
        hook.bodies()
            .iter()
            .map(|(_, b)| serde_json::from_str::<serde_json::Value>(b).unwrap())
            .filter(|v| v.get("event").is_some())
            .collect()
    };
    let out = run(&["run", &format!("{RUNBOOKS}/failover.rhai"), "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let seen = events();
    assert_eq!(
        seen.iter().map(|e| e["event"].as_str().unwrap()).collect::<Vec<_>>(),
        ["started", "finished"],
        "{seen:?}"
    );
    assert_eq!(seen[1]["runbook"], "failover.rhai");
    assert!(seen[1]["downtime_seconds"].as_f64().unwrap() > 0.0, "{seen:?}");
    assert!(seen[0]["by"].as_str().unwrap().contains('@'), "{seen:?}");
    // A run that fails at a step: the page names the step, the error and the resume command.
    let check = world.path().join("check.rhai");
    std::fs::write(
        &check,
        "step(\"Check prod listener\", || {\n    if replicas(env(\"prod\"), \"deployment\", \"ac-ac-listener\") == 0 { fail(\"prod's listener is at 0\") }\n});\n",
    )
    .unwrap();
    let out = run(&["run", check.to_str().unwrap(), "--yes"]);
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let failed = events().into_iter().find(|e| e["event"] == "failed").expect("a failed event");
    assert_eq!(failed["step"], "1 Check prod listener", "{failed}");
    assert!(failed["error"].as_str().unwrap().contains("prod's listener is at 0"), "{failed}");
    let resume = failed["resume"].as_str().unwrap().to_string();
    assert!(failed["text"].as_str().unwrap().contains(&resume), "{failed}");
    // The cause fixed, the command pasted as it came (from another folder) finishes the run.
    world.kubectl("prod", &["scale", "deployment", "ac-ac-listener", "--replicas=1"]);
    let words: Vec<&str> = resume.split_whitespace().collect();
    assert_eq!(words[0], "drscript");
    let out = std::process::Command::new(&*drscript_test_support::world::BIN)
        .args(&words[1..])
        .arg("--yes")
        .current_dir(std::env::temp_dir())
        .env("HOOK", format!("{}/hook", hook.url))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{resume}: {}", String::from_utf8_lossy(&out.stderr));
    let last = events().pop().unwrap();
    assert_eq!(
        (last["event"].as_str(), last["run_id"].as_str()),
        (Some("finished"), failed["run_id"].as_str()),
        "{last}"
    );
    // Refused: a split brain (PROD's listener up while DR serves).
    let out = run(&["run", &format!("{RUNBOOKS}/failback.rhai"), "--yes"]);
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    let refused = events().pop().unwrap();
    assert_eq!(refused["event"], "refused", "{refused}");
    assert!(refused["text"].as_str().unwrap().contains("SPLIT"), "{refused}");
}
