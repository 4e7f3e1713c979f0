//! Shares authorised by Microsoft Entra ID (`auth = "entra"`): the token comes from the
//! `[azure]` credential, goes over HTTPS only, and the storage service decides. Against Azurite
//! over HTTPS with its OAuth check (issuer, audience, lifetime), a server that is not ours.

use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use drscript_test_support::certs;
use drscript_test_support::sync_common::azurite::{self, Azurite};
use drscript_test_support::test::Test;

const TENANT: &str = "5a6d0b1c-0000-4000-8000-00000000d5c1";

/// An access token as Entra ID issues one for `audience` (Azurite does not check signatures).
fn token(audience: &str) -> String {
    let now = chrono::Utc::now().timestamp();
    let header = serde_json::json!({"alg": "RS256", "typ": "JWT"});
    let claims = serde_json::json!({
        "aud": audience, "iss": format!("https://sts.windows.net/{TENANT}/"), "tid": TENANT,
        "oid": "0c3f6a5e-1111-4000-8000-0000000000aa", "nbf": now - 60, "iat": now - 60, "exp": now + 3600,
    });
    format!("{}.{}.c2lnbmF0dXJl", B64URL.encode(header.to_string()), B64URL.encode(claims.to_string()))
}

fn config(port: u16, ca: bool) -> String {
    format!(
        "[environments.prod]\nnamespace = \"adeptia\"\nrelease = \"ac\"\ngateway = \"https://prod.example.com\"\n\
         [environments.prod.shares]\napp = {{ url = \"blob+https://127.0.0.1:{port}/{}/app\", auth = \"entra\" }}\n\
         [azure]\nauth = \"static_token\"\ntoken_file = \"token\"\n{}",
        azurite::ACCOUNT,
        if ca { "ca_file = \"tls/ca.pem\"\n" } else { "" }
    )
}

fn trusting(ca: &Path) -> reqwest::Client {
    reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&std::fs::read(ca).unwrap()).unwrap())
        .build()
        .unwrap()
}

/// Creates the container with the account's key (a SAS), over HTTPS trusting the test CA.
async fn create_container(port: u16, az: &Azurite, ca: &Path) {
    let url = format!("https://127.0.0.1:{port}/{}/app?restype=container&{}", azurite::ACCOUNT, az.sas());
    let r = trusting(ca).put(url).header("x-ms-version", "2025-01-05").send().await.unwrap();
    assert_eq!(r.status().as_u16(), 201, "create container");
}

#[tokio::test]
async fn a_blob_share_authorised_by_entra_copies_both_ways_and_a_refused_token_stops_at_once() {
    let test = Test::new();
    let tls = test.path().join("tls");
    std::fs::create_dir_all(&tls).unwrap();
    certs::certificates(&tls);
    let az = Azurite::start_oauth(&tls.join("server.pem"), &tls.join("server.key"));
    create_container(az.port, &az, &tls.join("ca.pem")).await;
    let good = token("https://storage.azure.com");
    let test = test
        .config(&config(az.port, true))
        .file("token", &good)
        .file("local/web/repository/a.txt", "alpha")
        .file("local/web/repository/deep/b.bin", &"b".repeat(300_000))
        .file("local/recovery/c.txt", "gamma");

    // Up with the token: the Blob SDK's calls and the listing drscript makes itself.
    let ran = test.args(&["sync", "local", "prod.shares.app/data"]).stderr_lacks(&good).stdout_lacks(&good).run();
    assert!(ran.stdout.contains("3 copied") || ran.stdout.contains("copied 3"), "{}", ran.stdout);
    // And down again into another folder: the same bytes.
    let ran = ran.then().args(&["sync", "prod.shares.app/data", "back"]).stderr_lacks(&good).run();
    for rel in ["web/repository/a.txt", "web/repository/deep/b.bin", "recovery/c.txt"] {
        assert_eq!(
            std::fs::read(ran.path().join("back").join(rel)).unwrap(),
            std::fs::read(ran.path().join("local").join(rel)).unwrap(),
            "{rel}"
        );
    }

    // A token for another audience: Azurite refuses it; the sync stops at the first refusal,
    // naming the URL and the status, and never prints the token.
    let wrong = token("https://management.azure.com");
    let ran = ran
        .then()
        .file("token", &wrong)
        .args(&["sync", "local", "prod.shares.app/other"])
        .status(1)
        .stderr_has(&format!("127.0.0.1:{}/{}/app", az.port, azurite::ACCOUNT))
        .stderr_has("403")
        .stderr_lacks(&wrong)
        .stdout_lacks(&wrong)
        .run();
    let failures =
        ran.stderr.matches("AuthenticationFailed").count() + ran.stdout.matches("AuthenticationFailed").count();
    assert!((1..=4).contains(&failures), "one refusal stops the sync, not one per file:\n{}", ran.stderr);

    // Without `ca_file` the service's certificate is not trusted: said once, not retried (no
    // retry can make a certificate trusted), and no token is sent.
    let ran = ran
        .then()
        .config(&config(az.port, false))
        .file("token", &good)
        .args(&["sync", "local", "prod.shares.app/untrusted"])
        .status(1)
        .stderr_has("invalid peer certificate")
        .run();
    let tries = ran.stderr.matches("failed to verify TLS certificate").count();
    assert!(tries <= 2, "an untrusted certificate is not retried ({tries} handshakes):\n{}", ran.stderr);
}

#[tokio::test]
async fn the_shared_state_authorised_by_entra_locks_and_keeps_the_journal_in_the_container() {
    let test = Test::new();
    let tls = test.path().join("tls");
    std::fs::create_dir_all(&tls).unwrap();
    certs::certificates(&tls);
    let az = Azurite::start_oauth(&tls.join("server.pem"), &tls.join("server.key"));
    let good = token("https://storage.azure.com");
    let config = format!(
        "[environments.prod]\nnamespace = \"a\"\nrelease = \"ac\"\ngateway = \"https://prod.example.com\"\n\
         [state]\nbackend = \"azure-blob\"\nurl = \"blob+https://127.0.0.1:{}/{}/drstate\"\nauth = \"entra\"\n\
         [azure]\nauth = \"static_token\"\ntoken_file = \"token\"\nca_file = \"tls/ca.pem\"\n",
        az.port,
        azurite::ACCOUNT
    );
    // The run takes the lock (a lease), writes its journal and mirrors it, all with the token.
    let ran = test
        .config(&config)
        .file("token", &good)
        .script("info(\"rehearsed\");")
        .args(&["run", "script.rhai", "--config", "drscript.toml", "--yes"])
        .stderr_lacks(&good)
        .run();
    let run = ran.runs().pop().expect("a run folder");
    let id = run.file_name().unwrap().to_string_lossy().into_owned();
    let url =
        format!("https://127.0.0.1:{}/{}/drstate/runs/{id}/journal.jsonl?{}", az.port, azurite::ACCOUNT, az.sas());
    let r = trusting(&tls.join("ca.pem")).get(url).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200, "the journal is in the container");
    assert_eq!(r.text().await.unwrap(), std::fs::read_to_string(run.join("journal.jsonl")).unwrap());
    // `runs` reads the container with the token too.
    ran.then().args(&["runs", "--config", "drscript.toml"]).stdout_has(&id).run();
}

#[test]
fn an_entra_share_over_plain_http_is_refused_before_any_request() {
    Test::new()
        .config(
            "[environments.prod]\nnamespace = \"a\"\nrelease = \"ac\"\ngateway = \"https://prod.example.com\"\n\
             [environments.prod.shares]\napp = { url = \"blob+http://127.0.0.1:9/devstoreaccount1/app\", auth = \"entra\" }\n",
        )
        .args(&["check", "--config", "drscript.toml"])
        .status(2)
        .stderr_has("environments.prod.shares.app.auth")
        .stderr_has("https://")
        .run();
}
