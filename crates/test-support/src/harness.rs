//! An execution context over a config written to a temp dir, with a journal, for driving the
//! plain Rust API of the primitives as a run would.
use std::path::PathBuf;
use std::sync::Arc;

use drscript_core::config::Config;
use drscript_core::exec::{Exec, Mode};
use drscript_core::journal::Journal;

pub const ENVIRONMENTS: &str = r#"
[environments.prod]
namespace = "adeptia"
release = "ac"
gateway = "https://prod.example.com"
"#;

pub struct Harness {
    pub rt: tokio::runtime::Runtime,
    pub dir: tempfile::TempDir,
    pub exec: Arc<Exec>,
    pub journal: PathBuf,
}

impl Harness {
    /// `toml` is appended to a minimal environment; `files` are written beside the config first
    /// (secrets go in files so that tests never share process environment variables).
    pub fn new(toml: &str, files: &[(&str, &str)], mode: Mode) -> Harness {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let dir = tempfile::tempdir().unwrap();
        Self::in_dir(rt, dir, toml, files, mode)
    }

    pub fn in_dir(
        rt: tokio::runtime::Runtime,
        dir: tempfile::TempDir,
        toml: &str,
        files: &[(&str, &str)],
        mode: Mode,
    ) -> Harness {
        for (name, content) in files {
            std::fs::write(dir.path().join(name), content).unwrap();
        }
        let path = dir.path().join("drscript.toml");
        let text = format!("{ENVIRONMENTS}\n{toml}");
        std::fs::write(&path, &text).unwrap();
        let config = Config::load(&path).unwrap_or_else(|e| panic!("config: {e}\n{text}"));
        let journal = dir.path().join("journal.jsonl");
        let exec = Exec::builder(mode, rt.handle().clone())
            .config(Some(Arc::new(config)))
            .journal(Some(Journal::open(&journal).unwrap()))
            .build();
        Harness { rt, dir, exec, journal }
    }

    pub fn with_mode(&self, mode: Mode) -> &Self {
        self.exec.set_mode(mode);
        self
    }

    pub fn journal_text(&self) -> String {
        std::fs::read_to_string(&self.journal).unwrap_or_default()
    }
}

/// Fails when `secret` appears in any of `outputs`.
pub fn assert_no_secret(secret: &str, outputs: &[&str]) {
    assert!(secret.len() >= 8, "test secret too short to be meaningful");
    for out in outputs {
        assert!(!out.contains(secret), "secret leaked into output:\n{out}");
    }
}
