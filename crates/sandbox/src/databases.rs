//! The sandbox's databases: real PostgreSQL servers (a primary and a sync database by default),
//! started from the machine's own server binaries, TLS-only with a sandbox CA as Azure's flexible
//! servers are, so that `db_failover.rhai` and `db_failback.rhai` can be rehearsed for real.
//!
//! Each server's cluster is made once per sandbox folder (`initdb` and one single-user session
//! creating the application's role and database, about a second) and reused by later `sandbox
//! up`s; every start issues fresh certificates and a fresh port. The application role owns
//! nothing: like an application account on PostgreSQL 15 it has no CREATE on `public`.
//!
//! PostgreSQL refuses to run as root; as root the servers run as `nobody`, with their clusters
//! under the temp folder (a sandbox folder inside a private home is not reachable for `nobody`).
//! Servers are stopped (fast shutdown) when the component is dropped, i.e. when the sandbox
//! stops; one left behind by a killed sandbox is stopped by the next start in the same folder.
//!
//! Clients reach each server through an outage gate ([`Databases::gate`]), as the environments'
//! servers are reached, so that the primary database can be taken down without losing its data.
//!
//! Without the server binaries the sandbox starts without databases, after a warning that says
//! how to install them.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::Component;
use super::db_certs::Ca;
use super::outage::Gate;
use crate::zone::SANDBOX_ZONE;
use drscript_base::error::{Error, Result};

/// Where to look for `initdb` and `postgres` instead of PATH and /usr/lib/postgresql/*/bin.
pub const BIN_DIR_ENV: &str = "DRSCRIPT_POSTGRES_BIN";
/// The install command the warning suggests.
pub const INSTALL_HINT: &str = "sudo apt-get install -y postgresql (Debian/Ubuntu), sudo dnf install -y postgresql-server (Fedora/RHEL) or brew install postgresql (macOS)";
/// The CA certificate that signs the servers' certificates (the config's `ca_file`).
pub const CA_FILE: &str = "databases-ca.pem";
const STATE_FILE: &str = "databases.json";
const NOBODY: u32 = 65534;

/// One database the sandbox serves: `[databases.NAME]` with its role and database name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbSpec {
    pub name: String,
    pub user: String,
    pub database: String,
}

impl DbSpec {
    /// The DR model's pair: the primary database and the sync database it fails over to.
    pub fn defaults() -> Vec<DbSpec> {
        ["primary", "sync"]
            .iter()
            .map(|n| DbSpec { name: n.to_string(), user: "app".into(), database: "appdb".into() })
            .collect()
    }
}

struct Instance {
    spec: DbSpec,
    /// The server's own port; clients reach it through `gate`.
    port: u16,
    dir: PathBuf,
    child: Child,
    gate: Option<Arc<Gate>>,
}

impl Instance {
    /// The port clients use: the gate's, so that an outage can be simulated in front of it.
    fn public_port(&self) -> u16 {
        self.gate.as_ref().map_or(self.port, |g| g.addr().port())
    }
}

/// The running servers.
pub struct Databases {
    instances: Vec<Instance>,
    state_file: PathBuf,
}

fn is_root() -> bool {
    drscript_base::sys::is_root()
}

/// The folder holding `initdb` and `postgres`, if this machine has them.
pub fn find_binaries() -> Option<PathBuf> {
    let has_both = |dir: &Path| dir.join("initdb").is_file() && dir.join("postgres").is_file();
    if let Some(dir) = std::env::var_os(BIN_DIR_ENV) {
        return Some(PathBuf::from(dir)).filter(|d| has_both(d));
    }
    if let Some(dir) = std::env::var_os("PATH").and_then(|p| std::env::split_paths(&p).find(|d| has_both(d))) {
        return Some(dir);
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| Some((e.file_name().to_str()?.parse::<u32>().ok()?, e.path().join("bin"))))
        .filter(|(_, bin)| has_both(bin))
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

impl Databases {
    /// Starts one server per spec; `Ok(None)` (after a warning) when the binaries are missing.
    pub async fn start(dir: &Path, specs: Vec<DbSpec>) -> Result<Option<Databases>> {
        let Some(bin) = find_binaries() else {
            tracing::warn!(
                "no PostgreSQL server binaries (initdb, postgres) in ${BIN_DIR_ENV}, PATH or /usr/lib/postgresql/*/bin: \
                 the sandbox runs without [databases], so db_failover.rhai and db_failback.rhai cannot be rehearsed; \
                 install them with: {INSTALL_HINT}"
            );
            return Ok(None);
        };
        let base = if is_root() {
            remove_orphans();
            let base = std::env::temp_dir()
                .join(format!("{ORPHAN_PREFIX}{:016x}", super::hash::fnv(&dir.display().to_string())));
            std::fs::create_dir_all(&base).map_err(|e| Error::io(format!("cannot create {}", base.display()), e))?;
            write(&base.join(OWNER_FILE), &dir.display().to_string())?;
            base
        } else {
            dir.join("databases")
        };
        let ca = Ca::new("drscript sandbox database CA")?;
        write(&dir.join(CA_FILE), &ca.pem)?;
        let mut jobs = Vec::new();
        for spec in specs {
            let password_file = dir.join(password_path(&spec.name));
            let (password, reused) = match std::fs::read_to_string(&password_file) {
                Ok(p) if !p.trim().is_empty() => (p.trim().to_string(), true),
                _ => {
                    let p = super::fresh_secret(&format!("db-{}", spec.name));
                    super::folder::write_secret(&password_file, &p)?;
                    (p, false)
                }
            };
            drscript_base::redact::register(&password);
            let names = ["127.0.0.1".to_string(), "localhost".to_string(), format!("pg-{}.{SANDBOX_ZONE}", spec.name)];
            let (cert, key) = ca.issue(&names.iter().map(String::as_str).collect::<Vec<_>>())?;
            let (bin, base) = (bin.clone(), base.clone());
            jobs.push(tokio::task::spawn_blocking(move || {
                start_instance(&bin, &base, spec, &password, !reused, (&cert, &key))
            }));
        }
        let mut instances = Vec::new();
        let mut failure = None;
        for job in jobs {
            match job.await {
                Ok(Ok(mut instance)) => {
                    match Gate::front(std::net::SocketAddr::from(([127, 0, 0, 1], instance.port))).await {
                        Ok(gate) => instance.gate = Some(Arc::new(gate)),
                        Err(e) => failure = failure.or(Some(e)),
                    }
                    instances.push(instance);
                }
                Ok(Err(e)) => failure = failure.or(Some(e)),
                Err(e) => failure = failure.or(Some(Error::Other(format!("a database start panicked: {e}")))),
            }
        }
        let databases = Databases { instances, state_file: dir.join(STATE_FILE) };
        if let Some(e) = failure {
            // Dropping `databases` stops the servers that did start.
            return Err(e);
        }
        let state = serde_json::to_string_pretty(&databases.status()).unwrap_or_default();
        write(&databases.state_file, &state)?;
        Ok(Some(databases))
    }

    /// The port clients reach each database on, by name.
    pub fn ports(&self) -> Vec<(String, u16)> {
        self.instances.iter().map(|i| (i.spec.name.clone(), i.public_port())).collect()
    }

    /// The outage gate in front of database `name` (`set(GateMode::Refuse)` takes it down for
    /// clients while the server and its data stay as they are).
    pub fn gate(&self, name: &str) -> Option<Arc<Gate>> {
        self.instances.iter().find(|i| i.spec.name == name).and_then(|i| i.gate.clone())
    }
}

/// Clusters kept under the temp folder (as root) are named so, and record their sandbox folder.
const ORPHAN_PREFIX: &str = "drscript-sandbox-pg-";
const OWNER_FILE: &str = "sandbox-dir";

/// Removes the clusters of sandbox folders that no longer exist (a test's temp folder, a demo
/// folder cleared), unless a server still runs on them: each is tens of MB.
fn remove_orphans() {
    for entry in std::fs::read_dir(std::env::temp_dir()).into_iter().flatten().flatten() {
        let path = entry.path();
        if !entry.file_name().to_string_lossy().starts_with(ORPHAN_PREFIX) {
            continue;
        }
        let Ok(owner) = std::fs::read_to_string(path.join(OWNER_FILE)) else { continue };
        if Path::new(owner.trim()).exists() {
            continue;
        }
        let running = std::fs::read_dir(&path).into_iter().flatten().flatten().any(|db| {
            std::fs::read_to_string(db.path().join("data/postmaster.pid"))
                .ok()
                .and_then(|t| t.lines().next().and_then(|l| l.trim().parse::<i32>().ok()))
                .is_some_and(|pid| pid > 1 && pid_alive(pid))
        });
        if !running {
            let _ = std::fs::remove_dir_all(&path);
        }
    }
}

/// The password file of database `name`, relative to the sandbox folder.
pub fn password_path(name: &str) -> PathBuf {
    PathBuf::from(format!("secrets/db-{name}.password"))
}

fn write(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).map_err(|e| Error::io(format!("cannot write {}", path.display()), e))
}

/// A command that runs as the server's user (`nobody` when we are root).
fn as_server_user(program: PathBuf) -> Command {
    let mut c = Command::new(program);
    if is_root() {
        use std::os::unix::process::CommandExt;
        c.uid(NOBODY).gid(NOBODY);
    }
    c
}

/// Makes `path` the server user's and private (PostgreSQL insists on both for its files).
fn own(path: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let fail = |e| Error::io(format!("cannot set the owner of {}", path.display()), e);
    if is_root() {
        std::os::unix::fs::chown(path, Some(NOBODY), Some(NOBODY)).map_err(fail)?;
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(fail)
}

fn run(command: &mut Command, what: &str, stdin: Option<&str>) -> Result<()> {
    use std::io::Write;
    let mut child = command
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Error::io(format!("cannot run {what}"), e))?;
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(text.as_bytes()).map_err(|e| Error::io(format!("cannot feed {what}"), e))?;
    }
    let out = child.wait_with_output().map_err(|e| Error::io(format!("{what} did not finish"), e))?;
    if out.status.success() {
        return Ok(());
    }
    Err(Error::Other(drscript_base::redact::redacted(format!(
        "{what} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    ))))
}

fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn pid_alive(pid: i32) -> bool {
    u32::try_from(pid).is_ok_and(drscript_base::sys::process_alive)
}

/// Stops a server a killed sandbox left running on this cluster (its `postmaster.pid`).
fn stop_leftover(data: &Path) {
    let Some(pid) = std::fs::read_to_string(data.join("postmaster.pid"))
        .ok()
        .and_then(|t| t.lines().next().and_then(|l| l.trim().parse::<i32>().ok()))
    else {
        return;
    };
    if pid <= 1 || !pid_alive(pid) {
        return;
    }
    // SIGINT is the postmaster's fast shutdown.
    if let Ok(pid) = u32::try_from(pid) {
        drscript_base::sys::signal(pid, drscript_base::sys::Signal::Interrupt);
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    while pid_alive(pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn start_instance(
    bin: &Path,
    base: &Path,
    spec: DbSpec,
    password: &str,
    fresh_password: bool,
    (cert, key): (&str, &str),
) -> Result<Instance> {
    let dir = base.join(&spec.name);
    std::fs::create_dir_all(&dir).map_err(|e| Error::io(format!("cannot create {}", dir.display()), e))?;
    own(base, 0o700)?;
    own(&dir, 0o700)?;
    let data = dir.join("data");
    stop_leftover(&data);
    // A cluster made by these binaries for this role and password is reused.
    let marker = dir.join("made-by");
    let stamp = format!("{}\n{}\n{}\n", bin.display(), spec.user, spec.database);
    let reusable = !fresh_password
        && data.join("PG_VERSION").is_file()
        && std::fs::read_to_string(&marker).is_ok_and(|m| m == stamp);
    if !reusable {
        let _ = std::fs::remove_dir_all(&data);
        let pwfile = dir.join("superuser.pw");
        write(&pwfile, &super::fresh_secret(&format!("{}-superuser", spec.name)))?;
        own(&pwfile, 0o600)?;
        let initdb = run(
            as_server_user(bin.join("initdb"))
                // 1 MB WAL segments: a sandbox cluster of ~25 MB rather than ~40.
                .args(["-U", "postgres", "--auth=scram-sha-256", "-E", "UTF8", "--no-sync", "--no-instructions"])
                .args(["--wal-segsize=1", "-D"])
                .arg(&data)
                .arg(format!("--pwfile={}", pwfile.display())),
            &format!("initdb for database {}", spec.name),
            None,
        );
        let _ = std::fs::remove_file(&pwfile);
        initdb?;
        run(
            as_server_user(bin.join("postgres"))
                .args(["--single", "-F", "-c", "exit_on_error=true", "-D"])
                .arg(&data)
                .arg("postgres"),
            &format!("creating the role and database of {}", spec.name),
            Some(&format!(
                "{} ROLE {} LOGIN PASSWORD '{}'\n{}",
                if spec.user == "postgres" { "ALTER" } else { "CREATE" },
                quote_ident(&spec.user),
                password.replace('\'', "''"),
                if spec.database == "postgres" {
                    String::new()
                } else {
                    format!("CREATE DATABASE {}\n", quote_ident(&spec.database))
                }
            )),
        )?;
        write(&marker, &stamp)?;
    }
    for (file, text) in [("server.crt", cert), ("server.key", key)] {
        write(&dir.join(file), text)?;
        own(&dir.join(file), 0o600)?;
    }
    // TCP over TLS only, as on Azure: a plain connection is refused by pg_hba.conf.
    write(
        &data.join("pg_hba.conf"),
        "hostssl all all 127.0.0.1/32 scram-sha-256\nhostssl all all ::1/128 scram-sha-256\n",
    )?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| Error::io("cannot find a free port", e))?
        .port();
    let log_path = dir.join("postgres.log");
    let log =
        std::fs::File::create(&log_path).map_err(|e| Error::io(format!("cannot create {}", log_path.display()), e))?;
    let log_err = log.try_clone().map_err(|e| Error::io("cannot share the log file", e))?;
    let mut child = as_server_user(bin.join("postgres"))
        .arg("-D")
        .arg(&data)
        .args(["-p", &port.to_string()])
        .args(["-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories=", "-c", "ssl=on"])
        .arg("-c")
        .arg(format!("ssl_cert_file={}", dir.join("server.crt").display()))
        .arg("-c")
        .arg(format!("ssl_key_file={}", dir.join("server.key").display()))
        .args(["-c", "fsync=off", "-c", "max_connections=20", "-c", "shared_buffers=16MB"])
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err)
        .spawn()
        .map_err(|e| Error::io(format!("cannot start postgres for database {}", spec.name), e))?;
    let started = Instant::now();
    loop {
        let text = std::fs::read_to_string(&log_path).unwrap_or_default();
        if text.contains("database system is ready to accept connections") {
            break;
        }
        let exited = child.try_wait().ok().flatten();
        if exited.is_some() || started.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            let _ = child.wait();
            return Err(Error::Other(format!(
                "postgres for database {} did not start ({}); its log {}:\n{text}",
                spec.name,
                exited.map_or("no answer within 60 s".to_string(), |s| s.to_string()),
                log_path.display()
            )));
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    Ok(Instance { spec, port, dir, child, gate: None })
}

impl Drop for Databases {
    fn drop(&mut self) {
        for i in &self.instances {
            // SIGINT is PostgreSQL's fast shutdown.
            drscript_base::sys::signal(i.child.id(), drscript_base::sys::Signal::Interrupt);
        }
        let deadline = Instant::now() + Duration::from_secs(15);
        for i in &mut self.instances {
            while i.child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = i.child.kill();
            let _ = i.child.wait();
        }
        let _ = std::fs::remove_file(&self.state_file);
    }
}

impl Component for Databases {
    fn name(&self) -> &str {
        "databases"
    }

    fn config_sections(&self) -> Vec<String> {
        self.instances
            .iter()
            .map(|i| {
                format!(
                    "[databases.{}]\nurl = \"postgres://{}@127.0.0.1:{}/{}\"\npassword_file = \"{}\"\ntls = \"verify-full\"\nca_file = \"{CA_FILE}\"\n",
                    i.spec.name,
                    i.spec.user,
                    i.public_port(),
                    i.spec.database,
                    password_path(&i.spec.name).display()
                )
            })
            .collect()
    }

    fn status(&self) -> Value {
        let servers: serde_json::Map<String, Value> = self
            .instances
            .iter()
            .map(|i| {
                (
                    i.spec.name.clone(),
                    json!({
                        "engine": "postgres",
                        "port": i.public_port(),
                        "server_port": i.port,
                        "gate": i.gate.as_ref().map(|g| g.mode()),
                        "user": i.spec.user,
                        "database": i.spec.database,
                        "pid": i.child.id(),
                        "dir": i.dir,
                    }),
                )
            })
            .collect();
        Value::Object(servers)
    }

    fn state_url(&self) -> Option<String> {
        Some(format!("file://{}", self.state_file.display()))
    }
}

impl std::fmt::Debug for Databases {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Databases").field("servers", &self.ports()).finish()
    }
}
