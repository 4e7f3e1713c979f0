//! Azurite (npm, in <repo>/.tools/npm) started on an ephemeral loopback port, in memory.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// Azurite's well-known development account.
pub const ACCOUNT: &str = "devstoreaccount1";
pub const KEY: &str = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

pub struct Azurite {
    child: Child,
    pub port: u16,
}

impl Drop for Azurite {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

impl Azurite {
    /// Starts Azurite; `preload` adds the Put Blob From URL preload.
    pub fn start(preload: bool) -> Azurite {
        let main = repo().join(".tools/npm/node_modules/azurite/dist/src/blob/main.js");
        assert!(main.exists(), "Azurite is missing at {}: run tests/support/requirements-sync.sh", main.display());
        let mut cmd = Command::new("node");
        if preload {
            cmd.arg("-r").arg(repo().join("tests/support/azurite-copy-preload.js"));
        }
        cmd.arg(&main)
            .args(["--blobHost", "127.0.0.1", "--blobPort", "0", "--inMemoryPersistence"])
            .args(["--skipApiVersionCheck", "--loose", "--disableTelemetry", "--silent"])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = cmd.spawn().expect("node runs Azurite (install nodejs)");
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let mut port = 0;
        // Azurite prints its address once it listens; generous for a loaded machine.
        for line in lines.by_ref() {
            let line = line.unwrap_or_default();
            if let Some(rest) = line.split("listens on http://127.0.0.1:").nth(1) {
                port = rest.trim().parse().unwrap_or(0);
                break;
            }
        }
        assert!(port > 0, "Azurite did not report its port");
        std::thread::spawn(move || for _ in lines {});
        Azurite { child, port }
    }

    pub fn sas(&self) -> String {
        drscript::azure_files::auth::account_sas(ACCOUNT, KEY, "rwdlacup", chrono::Utc::now() + chrono::Duration::hours(2))
    }

    /// Creates a container (Create Container with the SAS).
    pub async fn container(&self, name: &str) {
        let url = format!("http://127.0.0.1:{}/{ACCOUNT}/{name}?restype=container&{}", self.port, self.sas());
        let r = reqwest::Client::new().put(&url).header("x-ms-version", "2025-01-05").send().await.unwrap();
        assert!(r.status().as_u16() == 201 || r.status().as_u16() == 409, "create container {name}: {}", r.status());
    }

    pub fn url(&self, container_prefix: &str) -> String {
        format!("blob+http://127.0.0.1:{}/{ACCOUNT}/{container_prefix}?{}", self.port, self.sas())
    }
}

pub fn exists(p: &Path) -> bool {
    p.exists()
}
