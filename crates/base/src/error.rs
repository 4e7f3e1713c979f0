//! The one error type of drscript, and the exit codes it maps to.
//!
//! Exit codes are part of the interface (see README): 0 ok, 1 the runbook failed at run time,
//! 2 bad input or a refused situation and nothing was changed, 3 stopped by the operator,
//! 4 another run holds the lock.

use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Exit codes, documented in the README.
pub mod exit {
    pub const OK: i32 = 0;
    pub const FAILED: i32 = 1;
    pub const BAD_INPUT: i32 = 2;
    pub const STOPPED: i32 = 3;
    pub const LOCKED: i32 = 4;
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Misuse of the command line or of a primitive's arguments, found before anything ran.
    #[error("{0}")]
    Usage(String),

    /// The script file cannot be read.
    #[error("cannot read script {path}: {message}")]
    ScriptNotFound { path: PathBuf, message: String },

    /// The script does not compile or fails the static check; `rendered` is rustc-style.
    #[error("{rendered}")]
    Compile { rendered: String },

    /// The configuration is invalid; `message` names the file, line and key.
    #[error("{message}")]
    Config { message: String },

    /// A secret reference cannot be resolved (the variable or file is missing).
    #[error("{0}")]
    Secret(String),

    /// The script failed at run time; `rendered` names the step, the primitive and its target.
    #[error("{rendered}")]
    Runtime { rendered: String },

    /// A primitive failed against a remote system or the local machine.
    #[error("{primitive} {target}: {message}")]
    Action { primitive: String, target: String, message: String },

    /// A mistake in the script found while rehearsing it before the live run.
    #[error("{rendered}")]
    Rehearsal { rendered: String },

    /// The operator stopped the run: Ctrl-C, a declined confirmation, no terminal to ask.
    #[error("stopped: {0}")]
    Stopped(String),

    /// The situation does not allow what the run asked for (wrong direction, split brain, an
    /// unfinished switch); found before anything was changed. The message says what the operator
    /// probably meant.
    #[error("refused: {0}")]
    Refused(String),

    /// `drscript status`: no side is active and healthy (the table, already printed, says why).
    #[error("no environment is active and healthy")]
    Unhealthy,

    /// Another drscript run holds the lock of this state directory.
    #[error("{0}")]
    LockHeld(String),

    /// The journal says something that cannot be resumed.
    #[error("{0}")]
    Resume(String),

    #[error("{context}: {source}")]
    Io { context: String, source: std::io::Error },

    #[error("{0}")]
    Other(String),
}

/// An error and its sources on one line, each source once (`connection refused` is usually
/// three levels down, and libraries often repeat their source in their own message).
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text
}

impl Error {
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Usage(_)
            | Error::ScriptNotFound { .. }
            | Error::Compile { .. }
            | Error::Config { .. }
            | Error::Secret(_)
            | Error::Rehearsal { .. }
            | Error::Refused(_)
            | Error::Resume(_) => exit::BAD_INPUT,
            Error::Stopped(_) => exit::STOPPED,
            Error::LockHeld(_) => exit::LOCKED,
            Error::Runtime { .. } | Error::Action { .. } | Error::Io { .. } | Error::Other(_) | Error::Unhealthy => {
                exit::FAILED
            }
        }
    }

    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io { context: context.into(), source }
    }

    pub fn action(primitive: impl Into<String>, target: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Action { primitive: primitive.into(), target: target.into(), message: message.into() }
    }

    /// True for mistakes in the script or the config (as opposed to failures of remote systems),
    /// which a rehearsal reports as bad input.
    pub fn is_bad_input(&self) -> bool {
        self.exit_code() == exit::BAD_INPUT
    }
}
