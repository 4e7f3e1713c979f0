//! A sandbox in its own process, driven through the built binary: what the runbook, fault and
//! crash tests share (starting it, running drscript against it, kubectl, checking who serves,
//! reading journals).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub use crate::BIN;
pub const RUNBOOKS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../runbooks");

pub struct World {
    dir: tempfile::TempDir,
    sandbox: Child,
    log: PathBuf,
    /// Config sections appended to the sandbox's own (databases, ...).
    pub extra_config: String,
}

impl World {
    /// `drscript sandbox up --dir sbx` with short pod delays and `extra` flags.
    pub fn start(extra: &[&str]) -> World {
        World::start_with_delays("0.05", "0.05", extra)
    }

    /// [`World::start`] with pods that take `start` seconds to become ready and `stop` seconds
    /// to terminate (a wait long enough to be watched).
    pub fn start_with_delays(start: &str, stop: &str, extra: &[&str]) -> World {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("sandbox.log");
        let sandbox = Command::new(&*BIN)
            .args(["sandbox", "up", "--dir", "sbx", "--start-delay", start, "--stop-delay", stop])
            .args(extra)
            .current_dir(dir.path())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        SANDBOX_DIRS.lock().unwrap().push(dir.path().join("sbx"));
        let world = World { dir, sandbox, log, extra_config: String::new() };
        let started = Instant::now();
        let mut pause = Duration::from_millis(10);
        while !world.path().join("sbx/sandbox.json").exists() {
            assert!(started.elapsed() < Duration::from_secs(60), "the sandbox did not start: {}", world.sandbox_log());
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(100));
        }
        world
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn sandbox_log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The sandbox's config, plus [`World::extra_config`] when there is any.
    pub fn config(&self) -> PathBuf {
        let base = self.path().join("sbx/drscript.toml");
        if self.extra_config.is_empty() {
            return base;
        }
        let path = self.path().join("sbx/test.toml");
        std::fs::write(&path, format!("{}\n{}", std::fs::read_to_string(base).unwrap(), self.extra_config)).unwrap();
        path
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&*BIN);
        c.arg("--config")
            .arg(self.config())
            .args(args)
            .current_dir(self.path())
            .env("NO_COLOR", "1")
            .stdin(Stdio::null());
        c
    }

    pub fn drscript(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    /// `drscript run RUNBOOK --yes EXTRA...`, which must succeed; returns its stderr.
    pub fn run_ok(&self, runbook: &str, extra: &[&str]) -> String {
        let script = format!("{RUNBOOKS}/{runbook}");
        let mut args = vec!["run", script.as_str(), "--yes"];
        args.extend_from_slice(extra);
        let out = self.drscript(&args);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(0), "{runbook}\n{stderr}");
        stderr
    }

    /// `drscript sandbox ARGS --dir sbx` (an outage, a restore), which must succeed.
    pub fn sandbox(&self, args: &[&str]) {
        let out = Command::new(&*BIN)
            .arg("sandbox")
            .args(args)
            .args(["--dir", "sbx"])
            .current_dir(self.path())
            .output()
            .unwrap();
        assert!(out.status.success(), "sandbox {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// `drscript sandbox status --json`.
    pub fn status(&self) -> Value {
        let out = Command::new(&*BIN)
            .args(["sandbox", "status", "--dir", "sbx", "--json"])
            .current_dir(self.path())
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// The real kubectl against the sandbox, in namespace `adeptia`.
    pub fn kubectl(&self, context: &str, args: &[&str]) -> String {
        self.kubectl_ns(context, "adeptia", args)
    }

    pub fn kubectl_ns(&self, context: &str, namespace: &str, args: &[&str]) -> String {
        let out = Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(self.path().join("sbx/kubeconfig"))
            .args(["--context", context, "-n", namespace])
            .args(args)
            .output()
            .expect("kubectl is installed by tests/support/requirements-kube.sh");
        assert!(out.status.success(), "kubectl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// [`World::assert_serving`], and the same seen by the real kubectl.
    pub fn assert_serving_kubectl(&self, active: &str, standby: &str) {
        self.assert_serving(active, standby);
        for (env, on) in [(active, true), (standby, false)] {
            let kubectl = self.kubectl(
                env,
                &["get", "deployment", "ac-ac-runtime", "-o", "jsonpath={.spec.replicas}/{.status.readyReplicas}"],
            );
            let want = if on { "2/2" } else { "0/" };
            assert!(kubectl.starts_with(want), "kubectl sees {env} runtime at {kubectl}, expected {want}");
            let pods = self.kubectl(env, &["get", "pods", "-l", "app.kubernetes.io/name=ac-runtime", "-o", "name"]);
            assert_eq!(pods.lines().count(), if on { 2 } else { 0 }, "{env} runtime pods: {pods}");
        }
    }

    /// The base URLs of every Kubernetes API server and gateway of the sandbox.
    pub fn servers(&self) -> Vec<(String, String)> {
        let file: Value =
            serde_json::from_str(&std::fs::read_to_string(self.path().join("sbx/sandbox.json")).unwrap()).unwrap();
        let mut out = Vec::new();
        for (name, e) in file["environments"].as_object().unwrap() {
            out.push((format!("{name} kube"), e["kube_api"].as_str().unwrap().to_string()));
            out.push((format!("{name} gateway"), e["gateway"].as_str().unwrap().to_string()));
            // `--remote-shares`: the environment's Azure Files emulator (behind its share gate).
            let share = e["share_urls"].as_object().and_then(|u| u.values().next()).and_then(Value::as_str);
            if let Some(host) = share.and_then(|u| u.strip_prefix("files+http://")).and_then(|r| r.split('/').next()) {
                out.push((format!("{name} files"), format!("http://{host}")));
            }
        }
        out
    }

    /// What each server injected (`GET /_sandbox/faults`), keyed `prod kube`, `dr gateway`, ...
    pub fn injected(&self) -> BTreeMap<String, Value> {
        self.servers().into_iter().map(|(name, url)| (name, http("GET", &format!("{url}/_sandbox/faults")))).collect()
    }

    /// Ends the simulated outage: every server stops injecting faults.
    pub fn faults_off(&self) {
        for (_, url) in self.servers() {
            http("DELETE", &format!("{url}/_sandbox/faults"));
        }
    }

    /// Starts the simulated outage again (after [`World::faults_off`]): a burst at a chosen moment.
    pub fn faults_on(&self) {
        for (_, url) in self.servers() {
            http("PUT", &format!("{url}/_sandbox/faults"));
        }
    }

    /// Asserts that `active` serves and `standby` is quiesced (replicas, readiness, pods and
    /// scheduler through `sandbox status`, the DNS record, and the copied shares).
    pub fn assert_serving(&self, active: &str, standby: &str) {
        let status = self.status();
        for (env, on) in [(active, true), (standby, false)] {
            let e = &status["environments"][env];
            for (w, n) in [("ac-ac-runtime", 2), ("ac-ac-listener", 1), ("ac-ac-rabbitmq", 1)] {
                let want = if on { n } else { 0 };
                assert_eq!(e["workloads"][w]["replicas"], want, "{env} {w}: {e}");
                assert_eq!(e["workloads"][w]["ready"], want, "{env} {w}: {e}");
            }
            let running = e["pods"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|p| p["name"].as_str().unwrap().starts_with("ac-ac-runtime") && p["phase"] == "Running")
                .count();
            assert_eq!(running, if on { 2 } else { 0 }, "{env} runtime pods: {}", e["pods"]);
            assert_eq!(
                e["scheduler"].as_str().unwrap().to_lowercase(),
                if on { "running" } else { "paused" },
                "{env} scheduler"
            );
        }
        let zone = std::fs::read_to_string(self.path().join("sbx/dns-zone.json")).unwrap();
        let (target, other) = if active == "dr" { ("127.0.2.10", "127.0.1.10") } else { ("127.0.1.10", "127.0.2.10") };
        assert!(zone.contains(target) && !zone.contains(other), "DNS does not point at {active}: {zone}");
        let from = self.path().join(format!("sbx/shares/{standby}"));
        let to = self.path().join(format!("sbx/shares/{active}"));
        for folder in ["app/web/repository", "app/recovery", "app/reprocessing"] {
            let (a, b) = (tree(&from.join(folder)), tree(&to.join(folder)));
            assert!(a.iter().all(|(k, v)| b.get(k) == Some(v)), "{folder} was not copied to {active}");
        }
        assert_eq!(tree(&from.join("rabbitmq")), tree(&to.join("rabbitmq")), "the RabbitMQ volume is mirrored");
    }

    /// The run folders under `.drscript/runs`.
    pub fn runs(&self) -> BTreeSet<PathBuf> {
        std::fs::read_dir(self.path().join(".drscript/runs"))
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .collect()
    }

    /// The only run's folder.
    pub fn the_run(&self) -> PathBuf {
        let runs = self.runs();
        assert_eq!(runs.len(), 1, "{runs:?}");
        runs.into_iter().next().unwrap()
    }
}

impl Drop for World {
    fn drop(&mut self) {
        let _ = Command::new(&*BIN).args(["sandbox", "down", "--dir", "sbx"]).current_dir(self.path()).output();
        let _ = self.sandbox.kill();
        let _ = self.sandbox.wait();
    }
}

/// The sandboxes started, whose CA certificates `http` trusts (the Kubernetes APIs speak HTTPS).
static SANDBOX_DIRS: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());

/// A TLS client trusting the CAs of the sandboxes started by this test binary.
fn tls_client() -> std::sync::Arc<rustls::ClientConfig> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for dir in SANDBOX_DIRS.lock().unwrap().iter() {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with("kube-") && name.ends_with("-ca.crt") {
                for cert in CertificateDer::pem_file_iter(entry.path()).unwrap() {
                    roots.add(cert.unwrap()).unwrap();
                }
            }
        }
    }
    let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    std::sync::Arc::new(config)
}

/// A small HTTP/1.1 client for the sandbox-only endpoints (no client library needed for them);
/// HTTPS for the Kubernetes APIs, trusting the sandbox's CA.
pub fn http(method: &str, url: &str) -> Value {
    use std::io::{Read, Write};
    let (tls, rest) = match url.strip_prefix("https://") {
        Some(rest) => (true, rest),
        None => (false, url.strip_prefix("http://").unwrap()),
    };
    let (host, path) = rest.split_once('/').map_or((rest, "/".to_string()), |(h, p)| (h, format!("/{p}")));
    let mut s = std::net::TcpStream::connect(host).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let request = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
    let mut bytes = Vec::new();
    if tls {
        let ip = host.rsplit_once(':').map_or(host, |(h, _)| h).to_string();
        let name = rustls::pki_types::ServerName::try_from(ip).unwrap();
        let mut conn = rustls::ClientConnection::new(tls_client(), name).unwrap();
        let mut stream = rustls::Stream::new(&mut conn, &mut s);
        stream.write_all(request.as_bytes()).unwrap();
        // A server may close without a TLS close_notify; what was read is the answer.
        let _ = stream.read_to_end(&mut bytes);
    } else {
        s.write_all(request.as_bytes()).unwrap();
        s.read_to_end(&mut bytes).unwrap();
    }
    let reply = String::from_utf8_lossy(&bytes).into_owned();
    let (head, body) = reply.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{method} {url}: {head}");
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{method} {url}: {e}: {body}"))
}

/// Every file under `root`, relative path → content.
pub fn tree(root: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.insert(p.strip_prefix(root).unwrap().display().to_string(), std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

/// The records of a run's journal (a torn last line, as a SIGKILL can leave, is skipped).
pub fn journal(run: &Path) -> Vec<Value> {
    std::fs::read_to_string(run.join("journal.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// Checks that no step that finished ok was started again later in the journal: resume skips
/// finished steps, so a destructive step never runs twice. Returns the number of resumed
/// attempts (`run_started` records beyond the first).
pub fn assert_no_step_ran_twice(records: &[Value], context: &str) -> usize {
    let mut finished: HashMap<&str, usize> = HashMap::new();
    for (i, r) in records.iter().enumerate() {
        let id = r["id"].as_str().unwrap_or_default();
        match r["event"].as_str() {
            Some("step_started") => {
                assert!(
                    !finished.contains_key(id),
                    "{context}: step `{id}` finished ok (record {}) and started again (record {i})",
                    finished[id]
                );
            }
            Some("step_finished") if r["outcome"] == "ok" => {
                assert!(!finished.contains_key(id), "{context}: step `{id}` finished ok twice");
                finished.insert(id, i);
            }
            _ => {}
        }
    }
    records.iter().filter(|r| r["event"] == "run_started").count().saturating_sub(1)
}
