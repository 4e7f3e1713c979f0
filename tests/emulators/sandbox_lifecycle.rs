//! The sandbox as a whole: the files it writes (valid config, kubeconfig, secrets), the initial
//! state of the DR model, the shares, and `up` / `status` / `down` through `sandbox.json`.

use std::path::Path;
use std::time::{Duration, Instant};

use drscript_core::config::Config;
use drscript_sandbox::{Sandbox, SandboxOptions, cli_down, cli_up, status_of};
use serde_json::Value;

fn check_dr_model(status: &Value) {
    let prod = &status["environments"]["prod"];
    let dr = &status["environments"]["dr"];
    assert_eq!(prod["scheduler"], "RUNNING", "{prod}");
    assert_eq!(dr["scheduler"], "PAUSED", "{dr}");
    assert_eq!(prod["workloads"]["ac-ac-runtime"]["ready"], 2, "{prod}");
    assert_eq!(prod["workloads"]["ac-ac-listener"]["ready"], 1, "{prod}");
    // The document's DR prerequisites: only the listener at 0; the runtime runs.
    assert_eq!(dr["workloads"]["ac-ac-runtime"]["replicas"], 2, "{dr}");
    assert_eq!(dr["workloads"]["ac-ac-listener"]["replicas"], 0, "{dr}");
    assert_eq!(dr["workloads"]["ac-ac-event"]["env"]["QUARTZ_STATUS_ONBOOTUP"], "pause", "{dr}");
    assert_eq!(prod["workloads"]["ac-ac-event"]["env"]["QUARTZ_STATUS_ONBOOTUP"], "run", "{prod}");
    assert_eq!(dr["workloads"]["ac-ac-rabbitmq"]["kind"], "statefulset");
    assert_eq!(prod["workloads"]["ac-ac-runtime"]["images"][0], dr["workloads"]["ac-ac-runtime"]["images"][0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_writes_a_valid_config_and_the_dr_model() {
    let dir = tempfile::tempdir().unwrap();
    let sb = Sandbox::start(dir.path(), SandboxOptions::default()).await.unwrap();
    let config = Config::load(&sb.config_path()).unwrap();
    assert_eq!(config.environments.keys().collect::<Vec<_>>(), ["dr", "prod"]);
    let prod = config.environment("prod").unwrap();
    assert_eq!(prod.kube_context.as_deref(), Some("prod"));
    assert_eq!(prod.release, "ac");
    // Clients reach the servers through the outage gates, which pass connections through.
    let e = sb.env("prod").unwrap();
    assert_eq!(prod.gateway, e.endpoints.gateway);
    assert_ne!(prod.gateway, e.gateway.url(), "the config names the gate, not the server");
    let app = prod.shares["app"].path.clone().unwrap();
    assert!(app.join("web/repository").is_dir() && app.join("recovery").is_dir() && app.join("reprocessing").is_dir());
    assert!(prod.shares["rabbitmq"].path.clone().unwrap().join("mnesia").is_dir());

    let kubeconfig = std::fs::read_to_string(sb.kubeconfig_path()).unwrap();
    for ctx in ["- name: prod", "- name: dr", "current-context: prod", &sb.env("dr").unwrap().endpoints.kube_api] {
        assert!(kubeconfig.contains(ctx), "{kubeconfig}");
    }
    let secret = sb.dir.join("secrets/prod-gateway.password");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&secret).unwrap().permissions().mode() & 0o777, 0o600);
    }
    let password = std::fs::read_to_string(&secret).unwrap();
    assert!(!std::fs::read_to_string(sb.config_path()).unwrap().contains(password.trim()));

    let status = sb.status();
    check_dr_model(&status);
    // The other components: DNS pointing at PROD, the storage account behind PROD's shares.
    assert_eq!(config.dns.as_ref().unwrap().records["app"].targets["prod"], "127.0.1.10");
    assert_eq!(prod.storage_account.as_deref(), Some("prod"));
    assert!(config.storage.contains_key("prod") && config.azure.is_some());
    let app_record = &status["components"]["dns"]["zones"]["adeptia.sandbox"];
    assert!(app_record.to_string().contains("127.0.1.10"), "{app_record}");
    assert!(
        status["components"]["arm"]["storage_accounts"].to_string().contains("westus"),
        "{}",
        status["components"]["arm"]
    );
    let shares = &status["environments"]["prod"]["shares"];
    assert!(shares["app"]["files"].as_u64().unwrap() > 200, "{shares}");
    let dr_files = status["environments"]["dr"]["shares"]["app"]["files"].as_u64().unwrap();
    assert!(dr_files < shares["app"]["files"].as_u64().unwrap(), "DR's copy should be older");
    // The cross-process view reads the same state over HTTP.
    let dir_path = sb.dir.clone();
    let remote = tokio::task::spawn_blocking(move || status_of(&dir_path).unwrap()).await.unwrap();
    check_dr_model(&remote);
    assert_eq!(remote["environments"]["prod"]["pods"], status["environments"]["prod"]["pods"]);
    assert_eq!(remote["components"]["dns"], status["components"]["dns"]);
}

#[test]
fn status_and_down_without_a_sandbox_say_how_to_start_one() {
    let dir = tempfile::tempdir().unwrap();
    let err = status_of(dir.path()).unwrap_err().to_string();
    assert!(err.contains("sandbox up --dir"), "{err}");
    let err = cli_down(dir.path()).unwrap_err().to_string();
    assert!(err.contains("no sandbox is running"), "{err}");
}

fn wait_for(path: &Path, present: bool) {
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut pause = Duration::from_millis(10);
    while path.exists() != present {
        assert!(Instant::now() < deadline, "{} did not {}", path.display(), if present { "appear" } else { "go away" });
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(100));
    }
}

#[test]
fn up_status_down_through_the_sandbox_file() {
    let dir = tempfile::tempdir().unwrap();
    let up_dir = dir.path().to_path_buf();
    let up = std::thread::spawn(move || {
        cli_up(&up_dir, SandboxOptions { shares: false, ..SandboxOptions::default() }, |_| ())
    });
    wait_for(&dir.path().join("sandbox.json"), true);
    let status = status_of(dir.path()).unwrap();
    check_dr_model(&status);
    let err = cli_up(dir.path(), SandboxOptions::default(), |_| ()).unwrap_err().to_string();
    assert!(err.contains("already running"), "{err}");
    cli_down(dir.path()).unwrap();
    up.join().unwrap().unwrap();
    assert!(!dir.path().join("sandbox.json").exists());
    assert!(status_of(dir.path()).is_err());
}

struct Webhook;

impl drscript_sandbox::Component for Webhook {
    fn name(&self) -> &str {
        "webhook"
    }
    fn config_sections(&self) -> Vec<String> {
        vec!["[[notify]]\nname = \"ops\"\nkind = \"generic\"\nurl_file = \"secrets/webhook.url\"\n".to_string()]
    }
    fn status(&self) -> Value {
        serde_json::json!({"posted": 0})
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_component_adds_its_config_and_status() {
    let dir = tempfile::tempdir().unwrap();
    let mut sb =
        Sandbox::start(dir.path(), SandboxOptions { shares: false, ..SandboxOptions::default() }).await.unwrap();
    sb.add_component(Box::new(Webhook)).unwrap();
    let config = Config::load(&sb.config_path()).unwrap();
    assert_eq!(config.notify[0].name, "ops");
    assert_eq!(sb.status()["components"]["webhook"]["posted"], 0);
    let dir_path = sb.dir.clone();
    let remote = tokio::task::spawn_blocking(move || status_of(&dir_path).unwrap()).await.unwrap();
    assert!(remote["components"]["webhook"].is_null(), "{remote}");
}
