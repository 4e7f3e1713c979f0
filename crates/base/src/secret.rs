//! References to secrets: an environment variable (`*_env`) or a file (`*_file`), never a value.
//!
//! A reference is resolved only when a primitive needs it, so that a secret a run never uses need
//! not exist. Every resolved value is registered with the redaction layer before it is returned.

use std::path::PathBuf;

use crate::error::{Error, Result};
use crate::redact;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretRef {
    Env { key: String, var: String },
    File { key: String, path: PathBuf },
}

impl SecretRef {
    /// Where the value comes from, for plans and errors; never the value.
    pub fn describe(&self) -> String {
        match self {
            SecretRef::Env { var, .. } => format!("${var}"),
            SecretRef::File { path, .. } => format!("file {}", path.display()),
        }
    }

    /// The config key that holds this reference.
    pub fn key(&self) -> &str {
        match self {
            SecretRef::Env { key, .. } | SecretRef::File { key, .. } => key,
        }
    }

    /// Reads the value and registers it for redaction.
    pub fn resolve(&self) -> Result<String> {
        let value = match self {
            SecretRef::Env { key, var } => std::env::var(var)
                .map_err(|_| Error::Secret(format!("secret `{key}`: environment variable {var} is not set")))?,
            SecretRef::File { key, path } => std::fs::read_to_string(path)
                .map_err(|e| Error::Secret(format!("secret `{key}`: cannot read {}: {e}", path.display())))?
                .trim_end_matches(['\r', '\n'])
                .to_string(),
        };
        if value.is_empty() {
            return Err(Error::Secret(format!("secret `{}` ({}) is empty", self.key(), self.describe())));
        }
        redact::register(&value);
        Ok(value)
    }

    /// Checks that the value can be read, without returning it (used by plans).
    pub fn check(&self) -> Result<()> {
        self.resolve().map(drop)
    }
}
