//! The shared state of several operators (`[state]`), served by Azurite when it is installed in
//! the project (`./node_modules/.bin/azurite-blob`, from `npm install azurite`): `sandbox up`
//! starts it in memory on a loopback port and writes a `[state]` section with Azurite's
//! well-known development key (public: it opens only this emulator). Without it — a machine
//! without node — the sandbox and `drscript demo` keep to the state directory, as before.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use serde_json::{Value, json};

use super::Component;
use drscript_base::error::{Error, Result};

/// Azurite's development account and its published key.
const ACCOUNT: &str = "devstoreaccount1";
const KEY: &str = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
const KEY_FILE: &str = "state-account.key";
const CONTAINER: &str = "drscript-state";

/// Where `npm install azurite` puts its Blob service, in the current folder.
pub fn installed() -> Option<PathBuf> {
    let bin = Path::new("node_modules/.bin/azurite-blob");
    bin.exists().then(|| std::fs::canonicalize(bin).unwrap_or_else(|_| bin.to_path_buf()))
}

pub struct SharedStateAzurite {
    child: Mutex<Child>,
    port: u16,
}

impl SharedStateAzurite {
    /// Starts `azurite` (the Blob service, in memory) and writes the key file beside the config.
    pub fn start(dir: &Path, azurite: &Path) -> Result<SharedStateAzurite> {
        let mut child = Command::new(azurite)
            .args(["--blobHost", "127.0.0.1", "--blobPort", "0", "--inMemoryPersistence"])
            .args(["--skipApiVersionCheck", "--loose", "--disableTelemetry", "--silent"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| Error::io(format!("cannot start {}", azurite.display()), e))?;
        let stdout = child.stdout.take().expect("piped");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            for line in lines.by_ref() {
                let line = line.unwrap_or_default();
                let port = ["listens on http://127.0.0.1:", "listening at http://127.0.0.1:"]
                    .iter()
                    .find_map(|m| line.split(m).nth(1))
                    .and_then(|rest| rest.trim().trim_end_matches('/').parse::<u16>().ok());
                if let Some(port) = port {
                    let _ = tx.send(port);
                    break;
                }
            }
            // Keep reading, so that Azurite never blocks on a full pipe.
            for _ in lines {}
        });
        let Ok(port) = rx.recv_timeout(Duration::from_secs(60)) else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(Error::Other(format!("{} did not say where it listens within 60 s", azurite.display())));
        };
        crate::folder::write_secret(&dir.join(KEY_FILE), KEY)?;
        Ok(SharedStateAzurite { child: Mutex::new(child), port })
    }
}

impl Drop for SharedStateAzurite {
    fn drop(&mut self) {
        let mut child = self.child.lock().unwrap_or_else(|e| e.into_inner());
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Component for SharedStateAzurite {
    fn name(&self) -> &str {
        "shared_state"
    }

    fn config_sections(&self) -> Vec<String> {
        vec![format!(
            "# The operators' shared lock and run history, in Azurite (node_modules/.bin/azurite-blob).\n[state]\nbackend = \"azure-blob\"\nurl = \"blob+http://127.0.0.1:{}/{ACCOUNT}/{CONTAINER}\"\naccount_key_file = \"{KEY_FILE}\"\n",
            self.port
        )]
    }

    fn status(&self) -> Value {
        json!({ "url": format!("http://127.0.0.1:{}/{ACCOUNT}/{CONTAINER}", self.port) })
    }
}
