//! A real BIND9 `named` for the tests: loopback, ephemeral port, temp dir, a TSIG key, one zone
//! open to signed updates and one that refuses them. Stopped when dropped.
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;

pub const KEY_NAME: &str = "drscript-key";
pub const ZONE: &str = "example.test";
pub const LOCKED_ZONE: &str = "locked.test";

pub struct Named {
    pub dir: tempfile::TempDir,
    pub port: u16,
    pub secret: String,
    child: Child,
}

fn free_port() -> u16 {
    // A port free for both TCP and UDP right now; named binds both.
    loop {
        let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = tcp.local_addr().unwrap().port();
        if std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

fn named_binary() -> PathBuf {
    for p in ["/usr/sbin/named", "/usr/bin/named"] {
        if Path::new(p).exists() {
            return PathBuf::from(p);
        }
    }
    panic!(
        "BIND9 `named` is not installed: run tests/support/requirements-azure.sh (apt-get install -y bind9 bind9-dnsutils)"
    );
}

impl Named {
    pub fn start() -> Named {
        let named = named_binary();
        let secret = base64::engine::general_purpose::STANDARD.encode(rand::random::<[u8; 32]>());
        for _attempt in 0..5 {
            let dir = tempfile::tempdir().unwrap();
            let port = free_port();
            let d = dir.path().display();
            for zone in [ZONE, LOCKED_ZONE] {
                std::fs::write(
                    dir.path().join(format!("{zone}.zone")),
                    format!(
                        "$TTL 300\n@ IN SOA ns.{zone}. admin.{zone}. 1 3600 600 86400 60\n@ IN NS ns.{zone}.\nns IN A 127.0.0.1\napp IN A 10.0.0.1\n"
                    ),
                )
                .unwrap();
            }
            let conf = format!(
                r#"options {{
  directory "{d}";
  pid-file "{d}/named.pid";
  listen-on port {port} {{ 127.0.0.1; }};
  listen-on-v6 {{ none; }};
  recursion no;
  dnssec-validation no;
  allow-query {{ any; }};
}};
key "{KEY_NAME}" {{ algorithm hmac-sha256; secret "{secret}"; }};
controls {{ }};
zone "{ZONE}" {{ type primary; file "{d}/{ZONE}.zone"; allow-update {{ key "{KEY_NAME}"; }}; }};
zone "{LOCKED_ZONE}" {{ type primary; file "{d}/{LOCKED_ZONE}.zone"; }};
"#
            );
            std::fs::write(dir.path().join("named.conf"), conf).unwrap();
            let log = std::fs::File::create(dir.path().join("named.log")).unwrap();
            let child = Command::new(&named)
                .args(["-g", "-4", "-c"])
                .arg(dir.path().join("named.conf"))
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .expect("starting named");
            let mut server = Named { dir, port, secret: secret.clone(), child };
            if server.wait_ready(Duration::from_secs(60)) {
                return server;
            }
            // Lost the port race or failed: try again on another port.
            let log = std::fs::read_to_string(server.dir.path().join("named.log")).unwrap_or_default();
            eprintln!("named did not come up on port {port}; log:\n{log}");
        }
        panic!("named did not start after 5 attempts");
    }

    fn wait_ready(&mut self, limit: Duration) -> bool {
        let start = Instant::now();
        let mut pause = Duration::from_millis(20);
        while start.elapsed() < limit {
            if let Ok(Some(_)) = self.child.try_wait() {
                return false;
            }
            if self.dig(&format!("ns.{ZONE}"), "A") == ["127.0.0.1"] {
                return true;
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(500));
        }
        false
    }

    /// What the server answers, as the real `dig` client sees it.
    pub fn dig(&self, name: &str, record_type: &str) -> Vec<String> {
        let out = Command::new("dig")
            .args([
                "@127.0.0.1",
                "-p",
                &self.port.to_string(),
                "+tcp",
                "+short",
                "+norecurse",
                "+time=5",
                name,
                record_type,
            ])
            .output()
            .expect("dig is not installed: apt-get install -y bind9-dnsutils");
        let mut values: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| l.trim().trim_end_matches('.').to_string())
            .filter(|l| !l.is_empty() && !l.starts_with(";;"))
            .collect();
        values.sort();
        values
    }

    /// The TTL the server answers for a record (from `dig +noall +answer`).
    pub fn dig_ttl(&self, name: &str, record_type: &str) -> Option<u32> {
        let out = Command::new("dig")
            .args([
                "@127.0.0.1",
                "-p",
                &self.port.to_string(),
                "+tcp",
                "+noall",
                "+answer",
                "+norecurse",
                name,
                record_type,
            ])
            .output()
            .ok()?;
        String::from_utf8_lossy(&out.stdout).lines().next()?.split_whitespace().nth(1)?.parse().ok()
    }

    pub fn server(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for Named {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
