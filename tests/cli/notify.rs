use crate::receiver::Receiver;
use crate::test::{CONFIG, Test};

fn config() -> String {
    format!(
        "{CONFIG}\n[[notify]]\nname = \"ops\"\nkind = \"teams\"\nurl_env = \"TEAMS_URL\"\n\n[[notify]]\nname = \"chat\"\nkind = \"slack\"\nurl_file = \"slack.url\"\n"
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
