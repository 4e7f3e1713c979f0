//! Shares authorised by Microsoft Entra ID (`auth = "entra"`): the token comes from the
//! `[azure]` credential, goes over HTTPS only, and the storage service decides. Against Azurite
//! over HTTPS with its OAuth check (issuer, audience, lifetime), a server that is not ours.

use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use drscript_test_support::certs;
use drscript_test_support::sync_common::azurite::{self, Azurite};
use drscript_test_support::test::Test;
use drscript_test_support::world::{World, tree};

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

/// A test folder with a CA and a server certificate in `tls/`, and Azurite serving HTTPS with it
/// and taking Entra ID tokens.
fn azurite_over_https() -> (Test, std::path::PathBuf, Azurite) {
    let test = Test::new();
    let tls = test.path().join("tls");
    std::fs::create_dir_all(&tls).unwrap();
    certs::certificates(&tls);
    let az = Azurite::start_oauth(&tls.join("server.pem"), &tls.join("server.key"));
    (test, tls, az)
}

#[tokio::test]
async fn a_blob_share_authorised_by_entra_copies_both_ways_and_a_refused_token_stops_at_once() {
    let (test, tls, az) = azurite_over_https();
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
    let (test, tls, az) = azurite_over_https();
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

/// The app registration's service principal in the sandbox (`sandbox status --json`).
const SANDBOX_APP_PRINCIPAL: &str = "5a6d0b1c-0000-4000-8000-0000000a0b01";

#[test]
fn an_estate_that_refuses_keys_fails_over_with_workload_identity_and_a_reader_role_is_refused_first() {
    let world = World::start(&["--entra", "--remote-shares"]);
    let shares = world.path().join("sbx/shares");
    let text = |o: &std::process::Output| {
        format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
    };

    // `status` reads both estates' shares with the token and names the source that gave it.
    let out = world.drscript(&["status"]);
    let shown = text(&out);
    assert!(shown.contains("Azure credential: workload_identity"), "{shown}");
    assert!(shown.contains("app ok, rabbitmq ok"), "{shown}");

    // DR's role only reads: the failover is refused before PROD is touched, naming the role.
    world.sandbox(&["role", "dr", SANDBOX_APP_PRINCIPAL, "reader"]);
    std::fs::write(shares.join("prod/app/web/repository/entra.zip"), vec![5u8; 300 << 10]).unwrap();
    let dr_before = tree(&shares.join("dr/app"));
    let out = world.drscript(&["run", "failover", "--yes"]);
    let shown = text(&out);
    assert_eq!(out.status.code(), Some(2), "{shown}");
    assert!(shown.contains("dr's share app cannot be written by drscript"), "{shown}");
    assert!(shown.contains("403") && shown.contains("AuthorizationPermissionMismatch"), "{shown}");
    assert!(shown.contains("Storage File Data Privileged Contributor"), "{shown}");
    for workload in ["ac-ac-runtime", "ac-ac-listener"] {
        let replicas = world.kubectl("prod", &["get", "deployment", workload, "-o", "jsonpath={.spec.replicas}"]);
        assert_ne!(replicas, "0", "PROD's {workload} untouched");
    }
    assert_eq!(world.status()["environments"]["prod"]["scheduler"].as_str().unwrap().to_lowercase(), "running");
    assert_eq!(tree(&shares.join("dr/app")), dr_before, "nothing written to DR, not even the check's file");

    // With the Contributor role the same failover runs through the token end to end.
    world.sandbox(&["role", "dr", SANDBOX_APP_PRINCIPAL, "contributor"]);
    world.run_ok("failover.rhai", &[]);
    world.assert_serving_kubectl("dr", "prod");
    assert_eq!(
        std::fs::read(shares.join("dr/app/web/repository/entra.zip")).unwrap(),
        std::fs::read(shares.join("prod/app/web/repository/entra.zip")).unwrap()
    );
    assert!(
        !tree(&shares.join("dr/app")).keys().any(|k| k.contains(".drscript-write-check")),
        "the write check's file is gone"
    );

    // The account refuses its own key: a config that uses it gets Azure's refusal, named.
    let config = std::fs::read_to_string(world.config()).unwrap();
    let keyed = config.replace(
        &format!("{{ url = \"{}\", auth = \"entra\" }}", share_url(&config, "dr", "app")),
        &format!("{{ url = \"{}\", account_key_file = \"secrets/dr-files.key\" }}", share_url(&config, "dr", "app")),
    );
    assert_ne!(keyed, config);
    std::fs::write(world.path().join("sbx/keyed.toml"), keyed).unwrap();
    let out = std::process::Command::new(&*drscript_test_support::BIN)
        .args(["--config", "sbx/keyed.toml", "status"])
        .current_dir(world.path())
        .output()
        .unwrap();
    let shown = text(&out);
    assert!(shown.contains("KeyBasedAuthenticationNotPermitted"), "{shown}");
}

/// The variables the Azure SDKs' sources read, none of them inherited by a test's drscript.
const AZURE_VARS: &[&str] = &[
    "AZURE_TENANT_ID",
    "AZURE_CLIENT_ID",
    "AZURE_CLIENT_SECRET",
    "AZURE_CLIENT_CERTIFICATE_PATH",
    "AZURE_FEDERATED_TOKEN_FILE",
    "AZURE_AUTHORITY_HOST",
    "IDENTITY_ENDPOINT",
    "IDENTITY_HEADER",
];

/// `drscript status` with the sandbox's config as `edit` changes it, saved as `sbx/FILE`, and
/// `env` as its only Azure variables; its stdout and stderr.
fn status_with(world: &World, file: &str, edit: impl Fn(&str) -> String, env: &[(&str, &str)]) -> String {
    let sbx = world.path().join("sbx");
    std::fs::write(sbx.join(file), edit(&std::fs::read_to_string(sbx.join("drscript.toml")).unwrap())).unwrap();
    let mut command = std::process::Command::new(&*drscript_test_support::BIN);
    command.args(["--config", &format!("sbx/{file}"), "status"]).current_dir(world.path());
    for var in AZURE_VARS {
        command.env_remove(var);
    }
    let out = command.envs(env.iter().copied()).output().unwrap();
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

#[test]
fn a_certificate_and_the_chain_get_their_tokens_from_the_sandbox_issuer_and_status_names_the_source() {
    let world = World::start(&["--entra", "--remote-shares"]);
    let sbx = world.path().join("sbx");

    // The app's certificate (PEM), signed into a client assertion the issuer verifies.
    let certificate = |config: &str| {
        config.replace(
            "auth = \"workload_identity\"",
            "auth = \"client_certificate\"\nclient_certificate_file = \"secrets/entra-client.pem\"",
        )
    };
    let shown = status_with(&world, "certificate.toml", certificate, &[]);
    assert!(shown.contains("Azure credential: client_certificate"), "{shown}");
    assert!(shown.contains("app ok, rabbitmq ok"), "{shown}");

    // The chain on a host with a managed identity (App Service's endpoint) and nothing else:
    // environment and workload identity are not configured, the managed identity answers.
    let chain = |config: &str| {
        config
            .lines()
            .filter(|l| !["federated_token_file", "client_id", "tenant_id"].iter().any(|k| l.starts_with(k)))
            .collect::<Vec<_>>()
            .join("\n")
            .replace("auth = \"workload_identity\"", "auth = \"chain\"")
    };
    let sandbox: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(sbx.join("sandbox.json")).unwrap()).unwrap();
    let endpoint = sandbox["entra"]["identity_endpoint"].as_str().unwrap();
    let header = std::fs::read_to_string(sbx.join("secrets/entra-identity-header")).unwrap();
    let env = [("IDENTITY_ENDPOINT", endpoint), ("IDENTITY_HEADER", header.trim())];
    let shown = status_with(&world, "chain.toml", chain, &env);
    assert!(shown.contains("Azure credential: chain: managed_identity answered"), "{shown}");
    assert!(shown.contains("app ok, rabbitmq ok"), "{shown}");

    // Without any source the chain says what each one lacked.
    let shown = status_with(&world, "chain.toml", chain, &[]);
    assert!(shown.contains("no source of the chain gave a token"), "{shown}");
    assert!(
        shown.contains("environment: not configured") && shown.contains("workload_identity: not configured"),
        "{shown}"
    );
    // Where no metadata service answers, the probe says so; a host whose network answers for
    // the metadata address gets the identity library's own refusal. Either way it is named.
    assert!(shown.contains("managed_identity: ") && shown.contains("cli: "), "{shown}");
}

/// The URL of `env`'s share `name` in the sandbox's config.
fn share_url(config: &str, env: &str, name: &str) -> String {
    let needle = "https://127.0.0.1:";
    config
        .lines()
        .filter(|l| l.starts_with(&format!("{name} = ")) && l.contains(&format!("/{env}/{name}\"")))
        .find_map(|l| l.split('"').find(|p| p.starts_with(needle)).map(str::to_string))
        .expect("the share's URL")
}

#[test]
fn a_customer_whose_shares_take_entra_tokens_rehearses_on_shares_that_refuse_keys() {
    let dir = tempfile::tempdir().unwrap();
    let northwind =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/northwind/drscript.toml")).unwrap();
    let sas = regex::Regex::new(r#"sas_env = "[A-Z_]+""#).unwrap();
    let customer = sas.replace_all(&northwind, r#"auth = "entra""#).into_owned();
    assert!(customer.matches(r#"auth = "entra""#).count() == 4, "{customer}");
    let path = dir.path().join("drscript.toml");
    std::fs::write(&path, customer).unwrap();

    let world = World::start(&["--like", path.to_str().unwrap()]);
    assert!(world.sandbox_log().contains("shares use Entra ID"), "{}", world.sandbox_log());
    let generated = std::fs::read_to_string(world.path().join("sbx/drscript.toml")).unwrap();
    assert!(generated.contains(r#"auth = "entra""#) && !generated.contains("account_key_file"), "{generated}");
    let out = world.drscript(&["status"]);
    let shown = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(shown.contains("Azure credential: workload_identity"), "{shown}");
    assert!(shown.contains("app ok, rabbitmq ok"), "{shown}");
}
