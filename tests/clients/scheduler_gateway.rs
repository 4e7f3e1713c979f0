//! pause/resume against the gateway emulation with every authentication mode, the read-back,
//! and the failures: bad credentials, 500, HTML instead of JSON, a gateway that is down.

use std::path::Path;

use drscript_core::config::{Config, Environment};
use drscript_core::scheduler::{Action, set_scheduler};
use drscript_sandbox::gateway::{Fault, GatewayAuthMode, GatewayServer, SchedulerState};

const SECRET: &str = "s3cr3t-Gateway-Value-7781";

fn env_for(dir: &Path, gateway: &str, auth_toml: &str) -> Environment {
    std::fs::write(dir.join("secret.txt"), format!("{SECRET}\n")).unwrap();
    let text =
        format!("[environments.prod]\nnamespace = \"adeptia\"\nrelease = \"ac\"\ngateway = \"{gateway}\"\n{auth_toml}");
    let path = dir.join("drscript.toml");
    std::fs::write(&path, &text).unwrap();
    Config::load(&path).unwrap().environment("prod").unwrap().clone()
}

async fn pause_then_resume(server: &GatewayServer, env: &Environment, dir: &Path) {
    server.set_state(SchedulerState::Running);
    let report = set_scheduler(env, dir, Action::Pause).await.unwrap();
    assert!(report.changed && report.verified, "{report:?}");
    assert_eq!(report.before.as_deref(), Some("RUNNING"));
    assert_eq!(report.after.as_deref(), Some("PAUSED"));
    assert_eq!(server.state(), SchedulerState::Paused);
    let report = set_scheduler(env, dir, Action::Resume).await.unwrap();
    assert!(report.changed);
    assert_eq!(server.state(), SchedulerState::Running);
    // Already running: nothing is sent.
    let calls = server.calls().len();
    let report = set_scheduler(env, dir, Action::Resume).await.unwrap();
    assert!(!report.changed, "{report:?}");
    assert!(!server.calls()[calls..].iter().any(|c| c == "Resume"), "{:?}", server.calls());
}

#[tokio::test]
async fn every_authentication_mode_pauses_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let secret_file = dir.path().join("secret.txt");
    let cases: Vec<(GatewayAuthMode, String)> = vec![
        (GatewayAuthMode::None, String::new()),
        (
            GatewayAuthMode::Basic { username: "ops".into(), password: SECRET.into() },
            "[environments.prod.gateway_auth]\ntype = \"basic\"\nusername = \"ops\"\npassword_file = \"secret.txt\"\n".into(),
        ),
        (
            GatewayAuthMode::Bearer { token: SECRET.into() },
            "[environments.prod.gateway_auth]\ntype = \"bearer\"\ntoken_file = \"secret.txt\"\n".into(),
        ),
        (
            GatewayAuthMode::Header { name: "X-Api-Key".into(), value: SECRET.into() },
            "[environments.prod.gateway_auth]\ntype = \"header\"\nheader = \"X-Api-Key\"\nvalue_file = \"secret.txt\"\n".into(),
        ),
        (
            GatewayAuthMode::AdeptiaLogin { username: "ops".into(), password: SECRET.into() },
            "[environments.prod.gateway_auth]\ntype = \"adeptia_login\"\nusername = \"ops\"\npassword_file = \"secret.txt\"\n".into(),
        ),
    ];
    for (mode, toml) in cases {
        let server = GatewayServer::start(0, mode.clone(), SchedulerState::Running).await.unwrap();
        let env = env_for(dir.path(), &server.url(), &toml);
        assert!(secret_file.exists());
        pause_then_resume(&server, &env, dir.path()).await;
        if matches!(mode, GatewayAuthMode::AdeptiaLogin { .. }) {
            assert!(server.calls().iter().any(|c| c == "login"), "{:?}", server.calls());
        }
    }
}

#[tokio::test]
async fn wrong_credentials_are_a_clear_error_without_the_secret() {
    let dir = tempfile::tempdir().unwrap();
    for (mode, toml) in [
        (
            GatewayAuthMode::AdeptiaLogin { username: "ops".into(), password: "the-right-one-1234".into() },
            "[environments.prod.gateway_auth]\ntype = \"adeptia_login\"\nusername = \"ops\"\npassword_file = \"secret.txt\"\n",
        ),
        (
            GatewayAuthMode::Bearer { token: "the-right-one-1234".into() },
            "[environments.prod.gateway_auth]\ntype = \"bearer\"\ntoken_file = \"secret.txt\"\n",
        ),
    ] {
        let server = GatewayServer::start(0, mode, SchedulerState::Running).await.unwrap();
        let env = env_for(dir.path(), &server.url(), toml);
        let err = set_scheduler(&env, dir.path(), Action::Pause).await.unwrap_err().to_string();
        let shown = drscript_base::redact::redacted(err.clone());
        assert!(shown.contains("401"), "{shown}");
        assert!(shown.contains(&server.url()), "{shown}");
        assert!(!shown.contains(SECRET), "{shown}");
        assert_eq!(server.state(), SchedulerState::Running);
    }
}

#[tokio::test]
async fn a_500_is_an_error_with_status_and_excerpt() {
    let dir = tempfile::tempdir().unwrap();
    let server = GatewayServer::start(0, GatewayAuthMode::None, SchedulerState::Running).await.unwrap();
    server.set_fault(Some(Fault::Status(500)));
    let env = env_for(dir.path(), &server.url(), "");
    let err = set_scheduler(&env, dir.path(), Action::Pause).await.unwrap_err().to_string();
    assert!(err.contains("500 Internal Server Error") && err.contains("Scheduler service unavailable"), "{err}");
    assert!(err.contains("pause_scheduler prod gateway"), "{err}");
    // Retried before giving up.
    assert!(server.calls().iter().filter(|c| *c == "Pause").count() >= 2, "{:?}", server.calls());
}

/// A servlet container's form login: the session comes back as a cookie and is sent with every
/// call; a session the gateway forgot (a restart) is a redirect to the login page, which logs in
/// again once; a wrong password is the login page again, named as refused credentials, never read
/// as a scheduler state.
#[tokio::test]
async fn a_form_login_keeps_its_session_cookie_logs_in_again_when_sent_to_the_login_page_and_names_a_refusal() {
    let dir = tempfile::tempdir().unwrap();
    let server = GatewayServer::start(
        0,
        GatewayAuthMode::FormLogin { username: "ops".into(), password: SECRET.into() },
        SchedulerState::Running,
    )
    .await
    .unwrap();
    let auth =
        "[environments.prod.gateway_auth]\ntype = \"form_login\"\nusername = \"ops\"\npassword_file = \"secret.txt\"\n";
    let env = env_for(dir.path(), &server.url(), auth);
    pause_then_resume(&server, &env, dir.path()).await;
    let logins = server.calls().iter().filter(|c| *c == "login").count();
    assert!(logins >= 1, "{:?}", server.calls());
    // The sandbox forgets every session (as a restarted gateway): sent to the login page, the
    // client logs in again and the call goes through.
    server.forget_sessions();
    let report = set_scheduler(&env, dir.path(), Action::Pause).await.unwrap();
    assert!(report.changed, "{report:?}");
    assert_eq!(server.state(), SchedulerState::Paused);
    // A wrong password: the login form again, a refusal of the credentials.
    std::fs::write(dir.path().join("secret.txt"), "Wr0ngFormPassw0rd\n").unwrap();
    let err = set_scheduler(&env, dir.path(), Action::Resume).await.unwrap_err().to_string();
    assert!(err.contains("login at") && err.contains("the form login was refused"), "{err}");
    assert!(err.contains("/login.jsp?error=true"), "{err}");
    assert!(drscript_core::scheduler::credentials_refused(&err), "{err}");
    assert!(!err.contains("Wr0ngFormPassw0rd"), "{err}");
    assert_eq!(server.state(), SchedulerState::Paused, "nothing was resumed");
}

#[tokio::test]
async fn an_html_page_instead_of_json_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let server = GatewayServer::start(0, GatewayAuthMode::None, SchedulerState::Running).await.unwrap();
    server.set_fault(Some(Fault::Html));
    let env = env_for(dir.path(), &server.url(), "");
    let err = set_scheduler(&env, dir.path(), Action::Pause).await.unwrap_err().to_string();
    assert!(err.contains("HTML page instead of JSON"), "{err}");
    assert!(err.contains("Adeptia Connect - Login"), "{err}");
}

#[tokio::test]
async fn a_gateway_that_is_down_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let server = GatewayServer::start(0, GatewayAuthMode::None, SchedulerState::Running).await.unwrap();
    let url = server.url();
    drop(server);
    let env = env_for(dir.path(), &url, "");
    let err = set_scheduler(&env, dir.path(), Action::Resume).await.unwrap_err().to_string();
    assert!(err.contains("cannot reach") && err.contains(&url), "{err}");
}

#[tokio::test]
async fn a_missing_secret_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let server = GatewayServer::start(0, GatewayAuthMode::Bearer { token: SECRET.into() }, SchedulerState::Running)
        .await
        .unwrap();
    let env = env_for(
        dir.path(),
        &server.url(),
        "[environments.prod.gateway_auth]\ntype = \"bearer\"\ntoken_file = \"missing.txt\"\n",
    );
    let err = set_scheduler(&env, dir.path(), Action::Pause).await.unwrap_err();
    assert!(err.to_string().contains("missing.txt"), "{err}");
}

#[tokio::test]
async fn a_pause_the_read_back_does_not_confirm_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let server = GatewayServer::start(0, GatewayAuthMode::None, SchedulerState::Running).await.unwrap();
    server.set_fault(Some(Fault::Ignore));
    let env = env_for(dir.path(), &server.url(), "");
    let err = set_scheduler(&env, dir.path(), Action::Pause).await.unwrap_err().to_string();
    assert!(err.contains("accepted Pause but the scheduler reports RUNNING"), "{err}");
}

/// `query=Status` is drscript's assumption, not Adeptia's documented procedure: a gateway that
/// does not know it (or a config that says it has none) gives an unknown state with the reason,
/// never a failure; Pause and Resume still work, taking the state from their own answers.
#[tokio::test]
async fn a_gateway_without_the_status_query_reads_as_unknown_and_still_pauses() {
    use drscript_core::scheduler::read_scheduler;
    let dir = tempfile::tempdir().unwrap();
    let server = GatewayServer::start(0, GatewayAuthMode::None, SchedulerState::Running).await.unwrap();
    // A query this gateway does not know: it answers 400.
    let env = env_for(dir.path(), &server.url(), "scheduler_status_query = \"SchedulerStatus\"\n");
    let reading = read_scheduler(&env, dir.path()).await.unwrap();
    assert_eq!(reading.state, None);
    let note = reading.note.unwrap();
    assert!(note.contains("query=SchedulerStatus") && note.contains("assumption"), "{note}");
    let report = set_scheduler(&env, dir.path(), Action::Pause).await.unwrap();
    assert!(report.changed && !report.verified, "{report:?}");
    assert_eq!(report.after.as_deref(), Some("PAUSED"), "taken from the Pause answer");
    assert_eq!(server.state(), SchedulerState::Paused);
    assert!(!server.calls().iter().any(|c| c == "Status"), "{:?}", server.calls());

    // No status query at all: nothing is asked.
    let env = env_for(dir.path(), &server.url(), "scheduler_status_query = \"\"\n");
    let calls = server.calls().len();
    let reading = read_scheduler(&env, dir.path()).await.unwrap();
    assert_eq!(reading.state, None);
    assert!(reading.note.unwrap().contains("scheduler_status_query = \"\""));
    assert_eq!(server.calls().len(), calls, "nothing sent");

    // A gateway that does not answer is still an error.
    drop(server);
    let env = env_for(dir.path(), "http://127.0.0.1:9", "");
    assert!(read_scheduler(&env, dir.path()).await.is_err());
}
