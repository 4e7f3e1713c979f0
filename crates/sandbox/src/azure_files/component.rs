//! The Azure Files emulator as a part of the sandbox, started by `sandbox up --faults files=...`
//! so that a sync into Azure Files can be rehearsed against torn range writes from any process.
//! It serves the account `sandbox` from `DIR/azure-files/` (one share, `drshare`, created empty);
//! its URL, share and the file holding its key are in `DIR/azure-files.json` and in
//! `sandbox status`.

use std::path::Path;
use std::sync::Arc;

use serde_json::{Value, json};

use super::FilesEmulator;
use crate::Component;
use crate::faults::Injector;
use drscript_base::error::{Error, Result};

/// The account the sandbox's emulator serves.
pub const ACCOUNT: &str = "sandbox";
/// The share it creates: a valid share name (3 to 63 characters), as the service requires.
pub const SHARE: &str = "drshare";
const STATE_FILE: &str = "azure-files.json";

pub struct FilesComponent {
    emulator: FilesEmulator,
    state: Value,
    state_file: std::path::PathBuf,
}

impl FilesComponent {
    pub async fn start(dir: &Path, faults: Option<Arc<Injector>>) -> Result<FilesComponent> {
        use base64::Engine;
        let key = base64::engine::general_purpose::STANDARD.encode(rand::random::<[u8; 32]>());
        drscript_base::redact::register(&key);
        let key_file = dir.join("secrets/azure-files.key");
        crate::folder::write_secret(&key_file, &key)?;
        let root = dir.join("azure-files");
        std::fs::create_dir_all(root.join(ACCOUNT).join(SHARE))
            .map_err(|e| Error::io(format!("cannot create {}", root.display()), e))?;
        let emulator = super::start_with_faults(&root, &[(ACCOUNT, &key)], "127.0.0.1:0", faults).await?;
        let state = json!({
            "url": emulator.account_url(ACCOUNT),
            "account": ACCOUNT,
            "share": SHARE,
            "key_file": key_file,
            "root": root,
        });
        let state_file = dir.join(STATE_FILE);
        std::fs::write(&state_file, state.to_string())
            .map_err(|e| Error::io(format!("cannot write {}", state_file.display()), e))?;
        Ok(FilesComponent { emulator, state, state_file })
    }

    pub fn emulator(&self) -> &FilesEmulator {
        &self.emulator
    }
}

impl Component for FilesComponent {
    fn name(&self) -> &str {
        "azure_files"
    }
    fn config_sections(&self) -> Vec<String> {
        Vec::new()
    }
    fn status(&self) -> Value {
        self.state.clone()
    }
    fn state_url(&self) -> Option<String> {
        Some(format!("file://{}", self.state_file.display()))
    }
}
