//! Azurite (npm, in `REPO/.tools/npm`) on a loopback port: in memory, or on disk so that it can
//! be killed in the middle of a sync and started again on the same port with the same data.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// Azurite's well-known development account.
pub const ACCOUNT: &str = "devstoreaccount1";
pub const KEY: &str = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

pub struct Azurite {
    child: Child,
    pub port: u16,
    preload: bool,
    /// On-disk data folder (`--location`); None when in memory.
    location: Option<PathBuf>,
    /// HTTPS with this certificate and key (PEM), and Entra ID tokens accepted (`--oauth basic`).
    oauth: Option<(PathBuf, PathBuf)>,
}

impl Drop for Azurite {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn repo() -> PathBuf {
    PathBuf::from(crate::REPO)
}

impl Azurite {
    /// Starts Azurite in memory on an ephemeral port; `preload` adds the Put Blob From URL preload.
    pub fn start(preload: bool) -> Azurite {
        Azurite::spawn(preload, None, 0, None)
    }

    /// Starts Azurite keeping its data in `location`, so that [`Azurite::restart`] finds it again.
    pub fn start_on_disk(location: &Path) -> Azurite {
        Azurite::spawn(false, Some(location.to_path_buf()), 0, None)
    }

    /// Starts Azurite in memory over HTTPS (`cert` and `key`, PEM), accepting Entra ID bearer
    /// tokens besides keys. Azurite's `basic` OAuth checks a token's issuer, audience and
    /// lifetime, not its signature.
    pub fn start_oauth(cert: &Path, key: &Path) -> Azurite {
        Azurite::spawn(false, None, 0, Some((cert.to_path_buf(), key.to_path_buf())))
    }

    /// Kills Azurite with SIGKILL: the service vanishes mid-request, as in a crash.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Stops Azurite with SIGTERM, the way a service is shut down, and waits for it to exit: it
    /// saves its data and stops answering.
    pub fn stop(&mut self) {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let _ = self.child.wait();
    }

    /// Starts Azurite again on the same port with the same data folder.
    pub fn restart(&mut self) {
        self.kill();
        let mut next = Azurite::spawn(self.preload, self.location.clone(), self.port, self.oauth.clone());
        std::mem::swap(self, &mut next);
    }

    fn spawn(preload: bool, location: Option<PathBuf>, port: u16, oauth: Option<(PathBuf, PathBuf)>) -> Azurite {
        let main = repo().join(".tools/npm/node_modules/azurite/dist/src/blob/main.js");
        assert!(main.exists(), "Azurite is missing at {}: run tests/support/requirements-sync.sh", main.display());
        let mut cmd = Command::new("node");
        if preload {
            cmd.arg("-r").arg(repo().join("tests/support/azurite-copy-preload.js"));
        }
        cmd.arg(&main).args(["--blobHost", "127.0.0.1", "--blobPort", &port.to_string()]);
        match &location {
            Some(dir) => cmd.arg("--location").arg(dir),
            None => cmd.arg("--inMemoryPersistence"),
        };
        if let Some((cert, key)) = &oauth {
            cmd.args(["--oauth", "basic"]).arg("--cert").arg(cert).arg("--key").arg(key);
        }
        cmd.args(["--skipApiVersionCheck", "--loose", "--disableTelemetry", "--silent"])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = cmd.spawn().expect("node runs Azurite (install nodejs)");
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let mut port = 0;
        // Azurite prints its address once it listens; generous for a loaded machine.
        for line in lines.by_ref() {
            let line = line.unwrap_or_default();
            if let Some(rest) =
                line.split("listens on http://127.0.0.1:").nth(1).or(line.split("listens on https://127.0.0.1:").nth(1))
            {
                port = rest.trim().parse().unwrap_or(0);
                break;
            }
        }
        assert!(port > 0, "Azurite did not report its port");
        std::thread::spawn(move || for _ in lines {});
        Azurite { child, port, preload, location, oauth }
    }

    pub fn sas(&self) -> String {
        drscript_sync::azure_files::auth::account_sas(
            ACCOUNT,
            KEY,
            "rwdlacup",
            chrono::Utc::now() + chrono::Duration::hours(2),
        )
    }

    /// Creates a container (Create Container with the SAS).
    pub async fn container(&self, name: &str) {
        let url = format!("http://127.0.0.1:{}/{ACCOUNT}/{name}?restype=container&{}", self.port, self.sas());
        let r = reqwest::Client::new().put(&url).header("x-ms-version", "2025-01-05").send().await.unwrap();
        assert!(r.status().as_u16() == 201 || r.status().as_u16() == 409, "create container {name}: {}", r.status());
    }

    /// The names of the blobs in `container` (List Blobs, flat).
    pub async fn blobs(&self, container: &str) -> Vec<String> {
        let url = format!(
            "http://127.0.0.1:{}/{ACCOUNT}/{container}?restype=container&comp=list&maxresults=5000&{}",
            self.port,
            self.sas()
        );
        let Ok(r) = reqwest::Client::new().get(&url).header("x-ms-version", "2025-01-05").send().await else {
            return Vec::new();
        };
        let body = r.text().await.unwrap_or_default();
        body.split("<Name>").skip(1).filter_map(|s| s.split("</Name>").next()).map(str::to_string).collect()
    }

    pub fn url(&self, container_prefix: &str) -> String {
        format!("blob+http://127.0.0.1:{}/{ACCOUNT}/{container_prefix}?{}", self.port, self.sas())
    }
}

pub fn exists(p: &Path) -> bool {
    p.exists()
}
