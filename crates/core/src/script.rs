//! Loading and compiling a runbook: read it, refuse what is not a script, compile it with its
//! path as the source so that every error names the file, and lint it before anything runs.

use std::path::{Path, PathBuf};

use rhai::{AST, Engine};
use sha2::{Digest, Sha256};

use crate::lint;
use crate::modules::{Resolver, Sources};
use drscript_base::diagnostic;
use drscript_base::error::{Error, Result};

pub struct Script {
    pub path: PathBuf,
    pub label: String,
    pub source: String,
    pub hash: String,
}

impl Script {
    pub fn load(path: &Path) -> Result<Script> {
        let bytes = std::fs::read(path).map_err(|e| Error::ScriptNotFound {
            path: path.to_path_buf(),
            message: match e.kind() {
                std::io::ErrorKind::NotFound => "no such file".to_string(),
                _ => e.to_string(),
            },
        })?;
        let label = path.display().to_string();
        Self::from_bytes(path, &label, &bytes)
    }

    /// Finds the runbook an operator named: `path` as given when it exists; for a bare name
    /// (`failover.rhai`, `failover`) that is not a file here, `runbooks/NAME` here, then the
    /// runbook compiled into the binary — and says which, so that a shadowing copy is never
    /// silent.
    pub fn find(path: &Path) -> Result<Script> {
        let bare = path.components().count() == 1 && !path.exists();
        if !bare {
            return Self::load(path);
        }
        let name = path.display().to_string();
        let file = if name.ends_with(".rhai") { name.clone() } else { format!("{name}.rhai") };
        let local = Path::new("runbooks").join(&file);
        if local.exists() {
            tracing::info!("{name}: using {} (no ./{file})", local.display());
            return Self::load(&local);
        }
        match crate::modules::embedded_runbook(&file) {
            Some(text) => {
                let label = format!("{}{file}", crate::modules::EMBEDDED_RUNBOOKS);
                tracing::info!("{name}: using the runbook built into drscript (no ./{file}, no ./runbooks/{file})");
                Self::from_bytes(Path::new(&label), &label, text.as_bytes())
            }
            None => Self::load(path),
        }
    }

    /// Whether this script is one compiled into the binary (it has no folder of its own).
    pub fn is_embedded(&self) -> bool {
        self.label.starts_with(crate::modules::EMBEDDED_RUNBOOKS)
    }

    pub fn from_bytes(path: &Path, label: &str, bytes: &[u8]) -> Result<Script> {
        let bad = |message: &str| Error::Compile { rendered: format!("error: {label}: {message}") };
        if bytes.contains(&0) {
            return Err(bad("this is a binary file, not a Rhai script"));
        }
        let source =
            String::from_utf8(bytes.to_vec()).map_err(|_| bad("the file is not UTF-8 text, not a Rhai script"))?;
        let meaningful = source.lines().map(str::trim).any(|l| !l.is_empty() && !l.starts_with("//"));
        if !meaningful {
            return Err(bad("the script is empty: there is nothing to run"));
        }
        let hash = hex::encode(Sha256::digest(source.as_bytes()));
        Ok(Script { path: path.to_path_buf(), label: label.to_string(), source, hash })
    }

    pub fn dir(&self) -> Option<PathBuf> {
        if self.is_embedded() {
            return None;
        }
        self.path.parent().map(|p| if p.as_os_str().is_empty() { PathBuf::from(".") } else { p.to_path_buf() })
    }

    /// Compiles and lints; every problem is reported with file:line:col and a caret.
    pub fn compile(&self, engine: &Engine, resolver: &Resolver, sources: &Sources) -> Result<AST> {
        sources.insert(&self.label, &self.source);
        let mut ast = engine.compile(&self.source).map_err(|e| {
            let pos = e.position();
            Error::Compile {
                rendered: diagnostic::render(
                    &self.label,
                    &self.source,
                    pos.line().unwrap_or(1),
                    pos.position().unwrap_or(1),
                    &e.err_type().to_string(),
                ),
            }
        })?;
        ast.set_source(self.label.as_str());
        let problems = lint::check(engine, resolver, &ast, &self.label, &self.source);
        if !problems.is_empty() {
            return Err(Error::Compile { rendered: problems.join("\n\n") });
        }
        Ok(ast)
    }
}
