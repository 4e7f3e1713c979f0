//! storage_status / storage_failover against the ARM emulator over real HTTP.

use drscript_test_support::arm;
use drscript_test_support::certs;
use drscript_test_support::harness;

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use drscript_core::azure::storage::{self, FailoverOptions, failover_warning};
use drscript_core::azure::{ArmClient, Credential};
use drscript_core::exec::Mode;
use drscript_sandbox::arm::ArmOptions;
use harness::assert_no_secret;

const STORAGE: &str = r#"
[storage.prod]
subscription = "00000000-0000-0000-0000-0000000000aa"
resource_group = "rg-adeptia"
account = "adeptiaprod"

[storage.ghost]
subscription = "00000000-0000-0000-0000-0000000000aa"
resource_group = "rg-adeptia"
account = "notthere"
"#;

fn fast(options: ArmOptions) -> ArmOptions {
    ArmOptions {
        failover_duration: Duration::from_millis(300),
        retry_after_secs: 0,
        accounts: vec![arm::account("adeptiaprod")],
        ..options
    }
}

fn quick() -> FailoverOptions {
    FailoverOptions { planned: false, timeout: Duration::from_secs(60) }
}

#[test]
fn status_reports_regions_last_sync_time_and_can_failover() {
    let (h, emu, token) = arm::start(fast(ArmOptions::default()), STORAGE, None, Mode::Live);
    let status = storage::storage_status(&h.exec, "prod").unwrap();
    assert_eq!((status.primary_location.as_str(), status.secondary_location.as_str()), ("eastus", "westus"));
    assert_eq!(status.sku, "Standard_RAGRS");
    assert_eq!(status.geo_replication_status, "Live");
    assert!(status.can_failover == Some(true) && status.can_planned_failover && !status.failover_in_progress);
    let sync = chrono::DateTime::parse_from_rfc3339(status.last_sync_time.as_deref().unwrap()).unwrap();
    let lag = chrono::Utc::now().signed_duration_since(sync);
    assert!(lag > chrono::Duration::seconds(60) && lag < chrono::Duration::seconds(600), "lag {lag}");
    let requests = emu.requests();
    assert!(
        requests
            .iter()
            .any(|r| r.contains("/storageAccounts/adeptiaprod?api-version=")
                && r.contains("$expand=geoReplicationStats")),
        "{requests:?}"
    );
    assert_no_secret(&token, &[&h.journal_text(), &format!("{status:?}")]);
}

#[test]
fn unplanned_failover_follows_the_async_operation_and_converts_to_lrs() {
    let (h, emu, token) = arm::start(fast(ArmOptions::default()), STORAGE, None, Mode::Live);
    let before = storage::storage_status(&h.exec, "prod").unwrap();
    let warning = failover_warning(&before, false);
    assert!(warning.contains("locally redundant storage (LRS)"), "{warning}");
    assert!(warning.contains(before.last_sync_time.as_deref().unwrap()), "{warning}");

    let result = storage::storage_failover(&h.exec, "prod", quick()).unwrap();
    assert!(result.performed);
    assert_eq!(result.failover_type, "Unplanned");
    let after = result.after.unwrap();
    assert_eq!(after.primary_location, "westus");
    assert_eq!(after.sku, "Standard_LRS");
    assert_eq!(after.secondary_location, "");
    assert_eq!(after.can_failover, Some(false));

    let requests = emu.requests();
    let post = requests.iter().find(|r| r.starts_with("POST ")).unwrap();
    assert!(
        post.contains("/storageAccounts/adeptiaprod/failover?api-version=") && !post.contains("failoverType"),
        "{post}"
    );
    assert!(requests.iter().any(|r| r.contains("/asyncoperations/")), "polled the status resource: {requests:?}");
    assert!(h.journal_text().contains("\"primitive\":\"storage_failover\""));
    assert_no_secret(&token, &[&h.journal_text()]);

    // A rerun (or a resume) finds the work done: it says so and sends nothing.
    let again = storage::storage_failover(&h.exec, "prod", quick()).unwrap();
    assert!(!again.performed, "{again:?}");
    let note = again.note.unwrap();
    assert!(note.contains("already failed over at") && note.contains("westus is the primary"), "{note}");
    assert_eq!(posts(&emu), 1, "no second failover request");
}

fn posts(emu: &drscript_sandbox::arm::ArmHandle) -> usize {
    emu.requests().iter().filter(|r| r.starts_with("POST ") && r.contains("/failover?")).count()
}

#[test]
fn the_failover_request_is_never_repeated_when_its_answer_is_lost() {
    for drop in [true, false] {
        let (h, emu, _) = arm::start(fast(ArmOptions::default()), STORAGE, None, Mode::Live);
        // ARM starts the failover, then the answer is lost: the connection closes, or a 500.
        let fault = if drop { &emu.faults().drop_after_next_failover } else { &emu.faults().error_after_next_failover };
        fault.store(true, Ordering::Relaxed);
        let result = storage::storage_failover(&h.exec, "prod", quick()).unwrap();
        let what = if drop { "connection closed" } else { "500" };
        assert_eq!(posts(&emu), 1, "{what}: one request, then the account was read: {:?}", emu.requests());
        assert!(result.performed, "{what}");
        let note = result.note.clone().unwrap_or_default();
        assert!(note.contains("answer to the failover request was lost"), "{what}: {note}");
        let after = result.after.unwrap();
        assert_eq!((after.primary_location.as_str(), after.sku.as_str()), ("westus", "Standard_LRS"), "{what}");
        assert!(after.last_geo_failover_time.is_some(), "{what}");
    }
}

/// The answer is lost and the account cannot be read either: the error says a failover may be
/// running, and nothing is sent again.
#[test]
fn a_lost_answer_and_an_unreadable_account_say_a_failover_may_be_running() {
    let (h, emu, _) = arm::start(fast(ArmOptions::default()), STORAGE, None, Mode::Live);
    emu.faults().drop_after_next_failover.store(true, Ordering::Relaxed);
    emu.faults().outage_after_next_failover.store(50, Ordering::Relaxed);
    let e = storage::storage_failover(&h.exec, "prod", quick()).unwrap_err().to_string();
    assert!(e.contains("no clear answer") && e.contains("a failover may be running"), "{e}");
    assert!(e.contains("503"), "the reason the account could not be read: {e}");
    assert_eq!(posts(&emu), 1, "{:?}", emu.requests());
}

#[test]
fn a_failover_started_by_someone_else_is_followed_not_failed() {
    let (h, emu, _) = arm::start(
        ArmOptions { failover_duration: Duration::from_millis(1500), ..fast(ArmOptions::default()) },
        STORAGE,
        None,
        Mode::Live,
    );
    let before = storage::storage_status(&h.exec, "prod").unwrap();
    // Another operator (or a first run whose answer was lost) starts it in between.
    let client = ArmClient::new(
        &emu.url,
        Credential::Static(drscript_base::secret::SecretRef::File {
            key: "azure.token".into(),
            path: h.dir.path().join("arm.token"),
        }),
    );
    let path = "/subscriptions/00000000-0000-0000-0000-0000000000aa/resourceGroups/rg-adeptia/providers/Microsoft.Storage/storageAccounts/adeptiaprod/failover?api-version=2023-05-01";
    let started = h.rt.block_on(client.send(reqwest::Method::POST, path, None, &[])).unwrap();
    assert_eq!(started.status.as_u16(), 202);

    // Our request meets 409: the account shows the failover running, and it is followed.
    let result = storage::storage_failover_from(&h.exec, "prod", before, quick()).unwrap();
    assert_eq!(posts(&emu), 2, "{:?}", emu.requests());
    assert_eq!(result.after.unwrap().primary_location, "westus");
    assert!(result.duration_ms >= 500, "waited for the running failover: {} ms", result.duration_ms);

    // Read while running: no request at all, the running one is followed.
    let (h, emu, _) = arm::start(
        ArmOptions { failover_duration: Duration::from_millis(1500), ..fast(ArmOptions::default()) },
        STORAGE,
        None,
        Mode::Live,
    );
    let client = ArmClient::new(
        &emu.url,
        Credential::Static(drscript_base::secret::SecretRef::File {
            key: "azure.token".into(),
            path: h.dir.path().join("arm.token"),
        }),
    );
    h.rt.block_on(client.send(reqwest::Method::POST, path, None, &[])).unwrap();
    let result = storage::storage_failover(&h.exec, "prod", quick()).unwrap();
    assert_eq!(posts(&emu), 1, "{:?}", emu.requests());
    assert!(!result.performed);
    assert!(result.note.unwrap().contains("already running"));
    assert_eq!(result.after.unwrap().primary_location, "westus");
}

#[test]
fn planned_failover_through_location_polling_swaps_regions_and_stays_geo_redundant() {
    let (h, emu, _) =
        arm::start(fast(ArmOptions { location_only: true, ..ArmOptions::default() }), STORAGE, None, Mode::Live);
    let result = storage::storage_failover(&h.exec, "prod", FailoverOptions { planned: true, ..quick() }).unwrap();
    let after = result.after.unwrap();
    assert_eq!((after.primary_location.as_str(), after.secondary_location.as_str()), ("westus", "eastus"));
    assert_eq!(after.sku, "Standard_RAGRS");
    let requests = emu.requests();
    assert!(requests.iter().any(|r| r.starts_with("POST ") && r.contains("failoverType=Planned")), "{requests:?}");
    assert!(requests.iter().any(|r| r.contains("/operationresults/")), "{requests:?}");
    assert!(!requests.iter().any(|r| r.contains("/asyncoperations/")), "{requests:?}");
}

#[test]
fn dry_run_reads_the_status_but_never_posts() {
    let (h, emu, _) = arm::start(fast(ArmOptions::default()), STORAGE, None, Mode::DryRun);
    let result = storage::storage_failover(&h.exec, "prod", quick()).unwrap();
    assert!(!result.performed);
    assert!(emu.requests().iter().all(|r| r.starts_with("GET ")), "{:?}", emu.requests());
    let journal = h.journal_text();
    assert!(journal.contains("Unplanned failover") && journal.contains("\"outcome\":\"planned\""), "{journal}");

    h.with_mode(Mode::Plan);
    let before = emu.requests().len();
    storage::storage_failover(&h.exec, "prod", quick()).unwrap();
    assert_eq!(emu.requests().len(), before, "plan mode makes no request at all");
}

#[test]
fn throttling_is_retried_honouring_retry_after() {
    let (h, emu, _) = arm::start(fast(ArmOptions::default()), STORAGE, None, Mode::Live);
    emu.faults().throttle_next.store(2, Ordering::Relaxed);
    emu.faults().unavailable_next.store(0, Ordering::Relaxed);
    let status = storage::storage_status(&h.exec, "prod").unwrap();
    assert_eq!(status.primary_location, "eastus");
    assert_eq!(emu.requests().len(), 3, "two throttled attempts, then success");

    emu.faults().throttle_next.store(50, Ordering::Relaxed);
    let e = storage::storage_status(&h.exec, "prod").unwrap_err().to_string();
    assert!(e.contains("429") && e.contains("TooManyRequests") && e.contains("adeptiaprod"), "{e}");
}

#[test]
fn bad_input_and_arm_errors_name_the_account_url_and_status() {
    // 401: the config's token is not the one the emulator accepts.
    let wrong = format!("wrong-{:024x}", rand::random::<u128>());
    let (h, emu, token) = arm::start(fast(ArmOptions::default()), STORAGE, Some(&wrong), Mode::Live);
    let e = storage::storage_status(&h.exec, "prod").unwrap_err().to_string();
    assert!(
        e.contains("401")
            && e.contains("InvalidAuthenticationToken")
            && e.contains("adeptiaprod")
            && e.contains(&emu.url),
        "{e}"
    );
    assert_no_secret(&wrong, &[&e, &h.journal_text()]);
    assert_no_secret(&token, &[&e, &h.journal_text()]);
    drop((h, emu));

    let (h, emu, _) = arm::start(fast(ArmOptions::default()), STORAGE, None, Mode::Live);
    // Not in the config at all.
    let e = storage::storage_status(&h.exec, "dr").unwrap_err();
    assert!(
        e.is_bad_input() && e.to_string().contains("`dr` is not in [storage]") && e.to_string().contains("ghost, prod"),
        "{e}"
    );
    // 404: in the config, not in Azure.
    let e = storage::storage_status(&h.exec, "ghost").unwrap_err().to_string();
    assert!(e.contains("404") && e.contains("ResourceNotFound") && e.contains("notthere"), "{e}");
    // 403.
    emu.faults().forbidden.store(true, Ordering::Relaxed);
    let e = storage::storage_status(&h.exec, "prod").unwrap_err().to_string();
    assert!(e.contains("403") && e.contains("AuthorizationFailed") && e.contains("role assignments"), "{e}");
}

#[test]
fn a_failover_already_running_is_a_409_and_a_timeout_says_it_may_still_complete() {
    let slow = ArmOptions {
        failover_duration: Duration::from_secs(600),
        retry_after_secs: 0,
        accounts: vec![arm::account("adeptiaprod")],
        ..ArmOptions::default()
    };
    let (h, emu, token) = arm::start(slow, STORAGE, None, Mode::Live);
    let e = storage::storage_failover(
        &h.exec,
        "prod",
        FailoverOptions { planned: false, timeout: Duration::from_millis(400) },
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("did not finish within") && e.contains("may still complete"), "{e}");

    let status = storage::storage_status(&h.exec, "prod").unwrap();
    assert!(status.failover_in_progress && status.can_failover == Some(false));

    // The raw 409 from ARM, as another tool or a race would meet it.
    let client = ArmClient::new(
        &emu.url,
        Credential::Static(drscript_base::secret::SecretRef::File {
            key: "azure.token".into(),
            path: h.dir.path().join("arm.token"),
        }),
    );
    let path = "/subscriptions/00000000-0000-0000-0000-0000000000aa/resourceGroups/rg-adeptia/providers/Microsoft.Storage/storageAccounts/adeptiaprod/failover?api-version=2023-05-01";
    let e =
        h.rt.block_on(async {
            client.send(reqwest::Method::POST, path, None, &[]).await?.into_result("storage_failover", "adeptiaprod")
        })
        .unwrap_err()
        .to_string();
    assert!(e.contains("409") && e.contains("FailoverInProgress") && e.contains("/failover?api-version="), "{e}");
    assert_no_secret(&token, &[&e, &h.journal_text()]);
}

#[test]
fn a_failed_operation_is_reported_with_its_error() {
    let (h, emu, _) = arm::start(fast(ArmOptions::default()), STORAGE, None, Mode::Live);
    emu.faults().fail_next_failover.store(true, Ordering::Relaxed);
    let e = storage::storage_failover(&h.exec, "prod", quick()).unwrap_err().to_string();
    assert!(e.contains("the failover failed") && e.contains("FailoverFailed"), "{e}");
    let status = storage::storage_status(&h.exec, "prod").unwrap();
    assert_eq!(status.primary_location, "eastus", "a failed failover changes nothing");
}

#[test]
fn service_principal_secret_stays_out_of_descriptions() {
    let dir = tempfile::tempdir().unwrap();
    let secret = format!("sp-secret-{:024x}", rand::random::<u128>());
    std::fs::write(dir.path().join("sp.secret"), &secret).unwrap();
    let toml = format!(
        "{}\n[azure]\nauth = \"service_principal\"\ntenant_id = \"11111111-1111-1111-1111-111111111111\"\nclient_id = \"22222222-2222-2222-2222-222222222222\"\nclient_secret_file = \"sp.secret\"\n",
        harness::ENVIRONMENTS
    );
    std::fs::write(dir.path().join("drscript.toml"), toml).unwrap();
    let config = drscript_core::config::Config::load(&dir.path().join("drscript.toml")).unwrap();
    let credential = Credential::from_config(config.azure.as_ref().unwrap()).unwrap();
    assert_eq!(credential.describe(), "service_principal");
    assert_no_secret(&secret, &[&format!("{credential:?}"), &format!("{config:?}")]);
    // The secret was registered for redaction when it was read.
    assert_eq!(drscript_base::redact::redacted(format!("x {secret} y")), "x *** y");

    // Missing pieces are named.
    std::fs::write(
        dir.path().join("drscript.toml"),
        format!(
            "{}\n[azure]\nauth = \"service_principal\"\nclient_secret_file = \"sp.secret\"\n",
            harness::ENVIRONMENTS
        ),
    )
    .unwrap();
    let config = drscript_core::config::Config::load(&dir.path().join("drscript.toml")).unwrap();
    let e = Credential::from_config(config.azure.as_ref().unwrap()).unwrap_err().to_string();
    assert!(e.contains("needs tenant_id"), "{e}");
}

#[test]
fn azure_cli_credential_without_a_login_is_a_clear_error() {
    // `az` is not installed (or not logged in) here: the token request fails before any call
    // to Resource Manager, and says which credential failed.
    let toml = format!("[azure]\nauth = \"cli\"\nresource_manager = \"http://127.0.0.1:9\"\n{STORAGE}");
    let h = harness::Harness::new(&toml, &[], Mode::Live);
    let e = storage::storage_status(&h.exec, "prod").unwrap_err().to_string();
    assert!(e.contains("token for https://management.azure.com (cli)"), "{e}");
}

#[test]
fn an_unreachable_resource_manager_is_retried_then_named() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let token = arm::token();
    let toml = format!(
        "[azure]\nauth = \"static_token\"\nresource_manager = \"http://127.0.0.1:{port}\"\ntoken_file = \"arm.token\"\n{STORAGE}"
    );
    let h = harness::Harness::new(&toml, &[("arm.token", &token)], Mode::Live);
    let e = storage::storage_status(&h.exec, "prod").unwrap_err().to_string();
    assert!(
        e.contains("cannot reach Azure Resource Manager (5 attempts)") && e.contains(&format!("127.0.0.1:{port}")),
        "{e}"
    );
    assert_no_secret(&token, &[&e, &h.journal_text()]);
}

/// A Microsoft Entra token endpoint on 127.0.0.1 over HTTPS: answers every request with
/// `token` and records each request's first line and form body.
async fn token_endpoint(dir: &std::path::Path, token: String, seen: Arc<Mutex<Vec<String>>>) -> String {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let certs: Vec<CertificateDer<'static>> =
        CertificateDer::pem_file_iter(dir.join("server.pem")).unwrap().map(Result::unwrap).collect();
    let key = PrivateKeyDer::from_pem_file(dir.join("server.key")).unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("https://127.0.0.1:{}", listener.local_addr().unwrap().port());
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, token, seen) = (acceptor.clone(), token.clone(), seen.clone());
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else { return };
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                // Head and the (small) form body.
                loop {
                    let text = String::from_utf8_lossy(&request).to_string();
                    if let Some((head, body)) = text.split_once("\r\n\r\n") {
                        let length = head
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_string())
                            })
                            .and_then(|v| v.parse::<usize>().ok())
                            .unwrap_or(0);
                        if body.len() >= length {
                            seen.lock().unwrap().push(format!("{} {body}", head.lines().next().unwrap_or_default()));
                            break;
                        }
                    }
                    match tls.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let body = format!(
                    "{{\"token_type\":\"Bearer\",\"expires_in\":3599,\"ext_expires_in\":3599,\"access_token\":\"{token}\"}}"
                );
                let reply = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = tls.write_all(reply.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    url
}

/// `[azure] authority` sends the service principal's token request to that authority (here a
/// local HTTPS endpoint standing in for login.microsoftonline.us), and the token it returns is
/// the one Resource Manager receives.
#[test]
fn a_service_principal_gets_its_token_from_the_configured_authority() {
    let dir = tempfile::tempdir().unwrap();
    certs::certificates(dir.path());
    // The test's CA is the only one trusted in this process (nextest runs each test alone).
    #[allow(unsafe_code)] // the test sets it before any thread reads the environment
    unsafe {
        std::env::set_var("SSL_CERT_FILE", dir.path().join("ca.pem"))
    };
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let token = arm::token();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let authority = rt.block_on(token_endpoint(dir.path(), token.clone(), seen.clone()));
    let emu = rt
        .block_on(drscript_sandbox::arm::start(fast(ArmOptions { token: token.clone(), ..ArmOptions::default() })))
        .unwrap();
    let secret = format!("sp-secret-{:024x}", rand::random::<u128>());
    let toml = format!(
        "[azure]\nauth = \"service_principal\"\ntenant_id = \"11111111-1111-1111-1111-111111111111\"\n\
         client_id = \"22222222-2222-2222-2222-222222222222\"\nclient_secret_file = \"sp.secret\"\n\
         resource_manager = \"{}\"\nauthority = \"{authority}\"\n{STORAGE}",
        emu.url
    );
    let h = harness::Harness::in_dir(rt, dir, &toml, &[("sp.secret", &secret)], Mode::Live);
    let status = storage::storage_status(&h.exec, "prod").unwrap();
    assert_eq!(status.primary_location, "eastus", "Resource Manager accepted the authority's token");
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert!(seen[0].starts_with("POST /11111111-1111-1111-1111-111111111111/oauth2/v2.0/token "), "{seen:?}");
    assert!(seen[0].contains("grant_type=client_credentials"), "{seen:?}");
    assert!(seen[0].contains("scope=https%3A%2F%2Fmanagement.azure.com%2F.default"), "{seen:?}");
    assert_no_secret(&token, &[&h.journal_text()]);
}
