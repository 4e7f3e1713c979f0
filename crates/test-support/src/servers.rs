//! Real PostgreSQL and MariaDB servers for the tests: temp data dirs, loopback, ephemeral ports,
//! a non-superuser account `app` with a random password, and `appuser` with only an
//! application's privileges (SELECT/INSERT/UPDATE/DELETE on one table, no CREATE). Optionally
//! TLS-only, with a certificate from a private CA made here. Stopped when dropped.
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

pub fn random_password() -> String {
    format!("pw-{:024x}", rand::random::<u128>())
}

fn is_root() -> bool {
    drscript_base::sys::is_root()
}

/// Polls `ready` with backoff until it is true, the child dies, or a minute passes.
fn wait_until(child: &mut Child, what: &str, log: &Path, mut ready: impl FnMut() -> bool) {
    let start = Instant::now();
    let mut pause = Duration::from_millis(20);
    while start.elapsed() < Duration::from_secs(90) {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{what} exited ({status}); log:\n{}", std::fs::read_to_string(log).unwrap_or_default());
        }
        if ready() {
            return;
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(500));
    }
    panic!("{what} did not become ready; log:\n{}", std::fs::read_to_string(log).unwrap_or_default());
}

fn run(cmd: &mut Command, what: &str) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A private CA, a second unrelated CA, and a server certificate for `localhost` and
/// `db.example` (not for 127.0.0.1: connecting by IP is the "wrong host name" case).
pub struct Pki {
    pub ca: PathBuf,
    pub other_ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

pub const CERT_NAMES: &[&str] = &["localhost", "db.example"];

impl Pki {
    pub fn new(dir: &Path) -> Pki {
        let ca = drscript_sandbox::db_certs::Ca::new("drscript test CA").unwrap();
        let other = drscript_sandbox::db_certs::Ca::new("another CA").unwrap();
        let (cert, key) = ca.issue(CERT_NAMES).unwrap();
        let pki = Pki {
            ca: dir.join("ca.pem"),
            other_ca: dir.join("other-ca.pem"),
            cert: dir.join("server.crt"),
            key: dir.join("server.key"),
        };
        std::fs::write(&pki.ca, &ca.pem).unwrap();
        std::fs::write(&pki.other_ca, &other.pem).unwrap();
        std::fs::write(&pki.cert, cert).unwrap();
        std::fs::write(&pki.key, key).unwrap();
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&pki.key, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        pki
    }
}

// ----- PostgreSQL -----

fn pg_bin(name: &str) -> PathBuf {
    if let Ok(out) = Command::new("sh").args(["-c", &format!("command -v {name}")]).output()
        && out.status.success()
    {
        return PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin").join(name))
        .filter(|p| p.exists())
        .collect();
    found.sort();
    found.pop().unwrap_or_else(|| {
        panic!("PostgreSQL `{name}` not found: run tests/support/requirements-azure.sh (apt-get install -y postgresql)")
    })
}

pub struct Postgres {
    pub dir: tempfile::TempDir,
    pub port: u16,
    pub superuser_password: String,
    pub app_password: String,
    child: Child,
}

impl Postgres {
    /// PostgreSQL refuses to run as root: as root, it runs as `nobody` (uid set directly, so the
    /// child is postgres itself and signals reach it).
    fn as_server_user(program: &Path) -> Command {
        let mut c = Command::new(program);
        if is_root() {
            use std::os::unix::process::CommandExt;
            c.uid(65534).gid(65534);
        }
        c
    }

    pub fn start() -> Postgres {
        Self::start_with(None)
    }

    /// `ssl=on` with `pki`'s certificate, and pg_hba.conf admitting TCP only over TLS
    /// (`hostssl`); the tests' own superuser connections use the Unix socket.
    pub fn start_tls(pki: &Pki) -> Postgres {
        Self::start_with(Some(pki))
    }

    fn start_with(pki: Option<&Pki>) -> Postgres {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        if is_root() {
            run(Command::new("chown").args(["-R", "nobody"]).arg(d), "chown temp dir");
        }
        let superuser_password = random_password();
        std::fs::write(d.join("pwfile"), &superuser_password).unwrap();
        if is_root() {
            run(Command::new("chown").arg("nobody").arg(d.join("pwfile")), "chown pwfile");
        }
        run(
            Self::as_server_user(&pg_bin("initdb"))
                .args(["-U", "postgres", "--auth=scram-sha-256", "-E", "UTF8", "--no-sync", "-D"])
                .arg(d.join("data"))
                .arg(format!("--pwfile={}", d.join("pwfile").display())),
            "initdb",
        );
        let port = free_port();
        let log_path = d.join("postgres.log");
        let log = std::fs::File::create(&log_path).unwrap();
        let mut tls_args = Vec::new();
        if let Some(pki) = pki {
            for (from, to) in [(&pki.cert, "server.crt"), (&pki.key, "server.key")] {
                std::fs::copy(from, d.join(to)).unwrap();
                if is_root() {
                    run(Command::new("chown").arg("nobody").arg(d.join(to)), "chown certificate");
                }
            }
            std::fs::write(
                d.join("data/pg_hba.conf"),
                "local all all scram-sha-256\nhostssl all all 127.0.0.1/32 scram-sha-256\nhostssl all all ::1/128 scram-sha-256\n",
            )
            .unwrap();
            tls_args = vec![
                "-c".to_string(),
                "ssl=on".to_string(),
                "-c".to_string(),
                format!("ssl_cert_file={}", d.join("server.crt").display()),
                "-c".to_string(),
                format!("ssl_key_file={}", d.join("server.key").display()),
            ];
        }
        let mut child = Self::as_server_user(&pg_bin("postgres"))
            .arg("-D")
            .arg(d.join("data"))
            .args(["-p", &port.to_string(), "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-k"])
            .arg(d)
            .args(&tls_args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("starting postgres");
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let url =
            format!("host={} port={port} user=postgres password={superuser_password} dbname=postgres", d.display());
        wait_until(&mut child, "postgres", &log_path, || {
            rt.block_on(async { tokio_postgres::connect(&url, tokio_postgres::NoTls).await.is_ok() })
        });
        let app_password = random_password();
        let pg = Postgres { dir, port, superuser_password, app_password, child };
        pg.sql(&format!(
            "CREATE ROLE app LOGIN PASSWORD '{}'; CREATE DATABASE appdb OWNER app; CREATE DATABASE rodb OWNER app; \
             ALTER DATABASE rodb SET default_transaction_read_only = on; CREATE ROLE appuser LOGIN PASSWORD '{}'",
            pg.app_password, pg.app_password
        ));
        // PostgreSQL 15's defaults: no CREATE on `public` for anyone but the database owner.
        pg.sql_in(
            "appdb",
            "CREATE TABLE orders (id serial PRIMARY KEY, note text); \
             GRANT SELECT, INSERT, UPDATE, DELETE ON orders TO appuser; GRANT USAGE ON SEQUENCE orders_id_seq TO appuser",
        );
        pg
    }

    /// Runs statements as the superuser (one per call of `batch_execute`, CREATE DATABASE cannot
    /// run in a transaction block).
    pub fn sql(&self, statements: &str) {
        self.sql_in("postgres", statements);
    }

    pub fn sql_in(&self, db: &str, statements: &str) {
        self.with_client(db, |client| async move {
            for s in statements.split(';').map(str::trim).filter(|s| !s.is_empty()) {
                client.batch_execute(s).await.unwrap_or_else(|e| panic!("{s}: {e}"));
            }
        });
    }

    /// The first column of the first row of a query, as text.
    pub fn query_text(&self, db: &str, query: &str) -> Option<String> {
        self.with_client(db, |client| async move {
            client.simple_query(query).await.unwrap().into_iter().find_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
                _ => None,
            })
        })
    }

    /// Runs `f` with a superuser connection to `db` (the future owns the client, so the
    /// connection closes when it is done).
    fn with_client<T, F>(&self, db: &str, f: impl FnOnce(tokio_postgres::Client) -> F) -> T
    where
        F: std::future::Future<Output = T>,
    {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let url = format!(
            "host={} port={} user=postgres password={} dbname={db}",
            self.dir.path().display(),
            self.port,
            self.superuser_password
        );
        let (client, conn) = rt.block_on(tokio_postgres::connect(&url, tokio_postgres::NoTls)).unwrap();
        let driver = rt.spawn(conn);
        let out = rt.block_on(f(client));
        let _ = rt.block_on(driver);
        out
    }
}

/// A hot standby streaming from a [`Postgres`]: a real replica, read-only and in recovery.
pub struct Standby {
    pub dir: tempfile::TempDir,
    pub port: u16,
    child: Child,
}

impl Postgres {
    /// `pg_basebackup -R` of this (plain, non-TLS) server, started as a hot standby.
    pub fn standby(&self) -> Standby {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        if is_root() {
            run(Command::new("chown").args(["-R", "nobody"]).arg(d), "chown standby dir");
        }
        run(
            Self::as_server_user(&pg_bin("pg_basebackup"))
                .arg("-h")
                .arg(self.dir.path())
                .args(["-p", &self.port.to_string(), "-U", "postgres", "-R", "-X", "stream", "--checkpoint=fast", "-D"])
                .arg(d.join("data"))
                .env("PGPASSWORD", &self.superuser_password),
            "pg_basebackup",
        );
        let port = free_port();
        let log_path = d.join("postgres.log");
        let log = std::fs::File::create(&log_path).unwrap();
        let mut child = Self::as_server_user(&pg_bin("postgres"))
            .arg("-D")
            .arg(d.join("data"))
            .args(["-p", &port.to_string(), "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-k"])
            .arg(d)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("starting the standby");
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let url = format!(
            "host={} port={port} user=postgres password={} dbname=postgres",
            d.display(),
            self.superuser_password
        );
        wait_until(&mut child, "standby", &log_path, || {
            rt.block_on(async {
                let Ok((client, conn)) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await else {
                    return false;
                };
                let driver = tokio::spawn(conn);
                let in_recovery =
                    client.query_one("SELECT pg_is_in_recovery()", &[]).await.is_ok_and(|r| r.get::<_, bool>(0));
                drop(client);
                let _ = driver.await;
                in_recovery
            })
        });
        Standby { dir, port, child }
    }
}

/// Stops a PostgreSQL server we started: SIGINT (fast shutdown), then a kill after 20 s.
fn stop_postgres(child: &mut std::process::Child) {
    drscript_base::sys::signal(child.id(), drscript_base::sys::Signal::Interrupt);
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}

impl Drop for Standby {
    fn drop(&mut self) {
        stop_postgres(&mut self.child);
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        stop_postgres(&mut self.child);
    }
}

// ----- MariaDB -----

fn maria_bin(name: &str) -> PathBuf {
    for dir in ["/usr/sbin", "/usr/bin", "/usr/local/bin"] {
        let p = Path::new(dir).join(name);
        if p.exists() {
            return p;
        }
    }
    panic!("MariaDB `{name}` not found: run tests/support/requirements-azure.sh (apt-get install -y mariadb-server)")
}

pub struct Mariadb {
    pub dir: tempfile::TempDir,
    pub port: u16,
    pub app_password: String,
    child: Child,
}

impl Mariadb {
    pub fn start() -> Mariadb {
        Self::start_with(None)
    }

    /// TLS with `pki`'s certificate and `require_secure_transport=ON` (the socket counts as
    /// secure, so the tests' root connection still works).
    pub fn start_tls(pki: &Pki) -> Mariadb {
        Self::start_with(Some(pki))
    }

    fn start_with(pki: Option<&Pki>) -> Mariadb {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let user = if is_root() { "root".to_string() } else { std::env::var("USER").unwrap_or_default() };
        // A temporary folder of its own: servers bootstrapping at the same time in one /tmp
        // collide on their temporary tables ("Could not remove temporary table").
        let tmp = d.join("tmp");
        std::fs::create_dir_all(&tmp).unwrap();
        run(
            Command::new(maria_bin("mariadb-install-db"))
                .args(["--no-defaults", "--auth-root-authentication-method=socket", "--skip-test-db"])
                .arg(format!("--user={user}"))
                .arg(format!("--datadir={}", d.join("data").display()))
                .arg(format!("--tmpdir={}", tmp.display())),
            "mariadb-install-db",
        );
        let port = free_port();
        let log_path = d.join("mariadb.log");
        let child = Command::new(maria_bin("mariadbd"))
            .arg("--no-defaults")
            .arg(format!("--datadir={}", d.join("data").display()))
            .arg(format!("--tmpdir={}", tmp.display()))
            .arg(format!("--socket={}", d.join("sock").display()))
            .arg(format!("--pid-file={}", d.join("pid").display()))
            .arg(format!("--log-error={}", log_path.display()))
            .arg(format!("--port={port}"))
            .arg(format!("--user={user}"))
            .args(["--bind-address=127.0.0.1", "--skip-name-resolve", "--innodb-flush-log-at-trx-commit=0"])
            .args(pki.map_or_else(Vec::new, |p| {
                vec![
                    format!("--ssl-ca={}", p.ca.display()),
                    format!("--ssl-cert={}", p.cert.display()),
                    format!("--ssl-key={}", p.key.display()),
                    "--require-secure-transport=ON".to_string(),
                ]
            }))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting mariadbd");
        let mut server = Mariadb { dir, port, app_password: random_password(), child };
        let sock = server.dir.path().join("sock");
        wait_until(&mut server.child, "mariadbd", &log_path, || {
            Command::new(maria_bin("mariadb"))
                .arg("--no-defaults")
                .arg(format!("--socket={}", sock.display()))
                .args(["-uroot", "-e", "SELECT 1"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        });
        server.sql(&format!(
            "CREATE USER 'app'@'%' IDENTIFIED BY '{pw}'; CREATE DATABASE appdb; GRANT ALL ON appdb.* TO 'app'@'%'; \
             CREATE TABLE appdb.orders (id INT AUTO_INCREMENT PRIMARY KEY, note TEXT); \
             CREATE USER 'appuser'@'%' IDENTIFIED BY '{pw}'; \
             GRANT SELECT, INSERT, UPDATE, DELETE ON appdb.* TO 'appuser'@'%';",
            pw = server.app_password
        ));
        server
    }

    /// Runs SQL as root over the socket; returns the output (tab separated, no headers).
    pub fn sql(&self, statements: &str) -> String {
        let out = Command::new(maria_bin("mariadb"))
            .arg("--no-defaults")
            .arg(format!("--socket={}", self.dir.path().join("sock").display()))
            .args(["-uroot", "-N", "-B", "-e", statements])
            .output()
            .expect("mariadb client");
        assert!(out.status.success(), "{statements}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

impl Drop for Mariadb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
