//! Questions to the operator. Without a terminal nothing ever waits for an answer: the run stops
//! (exit 3) unless `--yes` was given.

use std::io::{BufRead, Write};

use crate::error::{Error, Result};
use crate::exec::Prompting;

/// How a question was answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    Operator,
    AssumedYes,
}

impl Answer {
    pub fn describe(self) -> &'static str {
        match self {
            Answer::Operator => "confirmed by the operator",
            Answer::AssumedYes => "assumed by --yes",
        }
    }
}

/// Asks to go on; anything but `yes`/`y` stops the run.
pub fn confirm(prompting: Prompting, message: &str) -> Result<Answer> {
    ask(prompting, message, "Continue? [yes/no] ", |a| matches!(a, "y" | "yes"))
}

/// Asks the operator to do something by hand and to type `done`.
pub fn manual(prompting: Prompting, message: &str) -> Result<Answer> {
    ask(prompting, message, "Type `done` when finished (or `abort`): ", |a| a == "done")
}

fn ask(prompting: Prompting, message: &str, question: &str, accepted: impl Fn(&str) -> bool) -> Result<Answer> {
    if prompting.assume_yes {
        return Ok(Answer::AssumedYes);
    }
    if !prompting.interactive {
        return Err(Error::Stopped(format!(
            "needs the operator but there is no terminal: {message} (run with --yes to accept)"
        )));
    }
    let mut stderr = std::io::stderr().lock();
    let _ = write!(stderr, "\n>>> {}\n{question}", crate::redact::redact(message));
    let _ = stderr.flush();
    drop(stderr);
    let mut line = String::new();
    let read = std::io::stdin().lock().read_line(&mut line);
    match read {
        Ok(0) | Err(_) => Err(Error::Stopped(format!("no answer to: {message}"))),
        Ok(_) if accepted(line.trim().to_ascii_lowercase().as_str()) => Ok(Answer::Operator),
        Ok(_) => Err(Error::Stopped(format!("the operator declined: {message}"))),
    }
}
