//! Questions to the operator. Without a terminal nothing ever waits for an answer: the run stops
//! (exit 3) unless the question was answered up front: `--yes` for confirmations, `--ack TEXT` or
//! `--ack-all-manual` for manual steps. `--yes` never acknowledges a manual step: it stands for
//! "I accept what drscript will do", not "a person did this by hand".

use crate::exec::Prompting;
use drscript_base::error::{Error, Result};

/// How a question was answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    Operator,
    AssumedYes,
    /// A manual step acknowledged on the command line: the flag that did it.
    Acknowledged(String),
}

impl Answer {
    pub fn describe(&self) -> String {
        match self {
            Answer::Operator => "confirmed by the operator".to_string(),
            Answer::AssumedYes => "assumed by --yes".to_string(),
            Answer::Acknowledged(flag) => format!("acknowledged up front by {flag}"),
        }
    }

    /// Answers given without a person at the keyboard, which the report lists as warnings.
    pub fn is_up_front(&self) -> bool {
        !matches!(self, Answer::Operator)
    }
}

/// Manual steps acknowledged on the command line.
#[derive(Debug, Clone, Default)]
pub struct Acks {
    /// `--ack TEXT`: a manual step whose message or step title contains TEXT (case-insensitive).
    pub texts: Vec<String>,
    /// `--ack-all-manual`.
    pub all: bool,
}

impl Acks {
    /// The flag that acknowledges the manual step `message` inside the step `title`, if any.
    pub fn covering(&self, title: Option<&str>, message: &str) -> Option<String> {
        let haystacks = [Some(message), title].map(|h| h.map(str::to_lowercase));
        let hit = self.texts.iter().find(|t| {
            let t = t.trim().to_lowercase();
            !t.is_empty() && haystacks.iter().flatten().any(|h| h.contains(&t))
        });
        match hit {
            Some(text) => Some(format!("--ack \"{text}\"")),
            None if self.all => Some("--ack-all-manual".to_string()),
            None => None,
        }
    }
}

/// Asks to go on; anything but `yes`/`y` stops the run.
pub fn confirm(prompting: &Prompting, _title: Option<&str>, message: &str) -> Result<Answer> {
    if prompting.assume_yes {
        return Ok(Answer::AssumedYes);
    }
    ask(prompting, message, "Continue? [yes/no] ", "run with --yes to accept", |a| matches!(a, "y" | "yes"))
}

/// Asks the operator to do something by hand and to type `done`.
pub fn manual(prompting: &Prompting, title: Option<&str>, message: &str) -> Result<Answer> {
    if let Some(flag) = prompting.acks.covering(title, message) {
        return Ok(Answer::Acknowledged(flag));
    }
    let hint = match title {
        Some(t) => format!("--yes does not acknowledge manual steps: do it, then run with --ack \"{t}\""),
        None => "--yes does not acknowledge manual steps: do it, then run with --ack TEXT".to_string(),
    };
    ask(prompting, message, "Type `done` when finished (or `abort`): ", &hint, |a| a == "done")
}

fn ask(
    prompting: &Prompting,
    message: &str,
    question: &str,
    hint: &str,
    accepted: impl Fn(&str) -> bool,
) -> Result<Answer> {
    if !prompting.interactive {
        return Err(Error::Stopped(format!("needs the operator but there is no terminal: {message} ({hint})")));
    }
    // The observer (the live view) steps aside: the question stands on its own until answered.
    let message_shown = drscript_base::redact::redact(message);
    let read = crate::observer::ask(&message_shown, question);
    match read {
        Ok(None) | Err(_) => Err(Error::Stopped(format!("no answer to: {message}"))),
        Ok(Some(line)) if accepted(line.trim().to_ascii_lowercase().as_str()) => Ok(Answer::Operator),
        Ok(Some(_)) => Err(Error::Stopped(format!("the operator declined: {message}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yes_never_acknowledges_a_manual_step() {
        let p = Prompting { assume_yes: true, interactive: false, acks: Acks::default() };
        let e = manual(&p, Some("Replicate"), "Replicate the data").unwrap_err();
        assert!(matches!(e, Error::Stopped(_)));
        assert!(e.to_string().contains("--ack \"Replicate\""), "{e}");
        assert_eq!(confirm(&p, None, "go?").unwrap(), Answer::AssumedYes);
    }

    #[test]
    fn an_ack_matches_the_message_or_the_step_title_case_insensitively() {
        let acks = Acks { texts: vec!["replicate the sync".into()], all: false };
        assert!(acks.covering(Some("Replicate the sync database back"), "other").is_some());
        assert!(acks.covering(None, "Please REPLICATE THE SYNC db").is_some());
        assert!(acks.covering(Some("Restore backups"), "restore").is_none());
        let all = Acks { texts: vec![], all: true };
        assert_eq!(all.covering(None, "x").as_deref(), Some("--ack-all-manual"));
    }
}
