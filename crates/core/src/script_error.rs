//! Turning a Rhai evaluation error into a drscript error that an operator can act on: which step
//! failed, which primitive against which target, and where in which file.

use std::sync::LazyLock;

use regex::Regex;
use rhai::{EvalAltResult, Position};

use crate::exec::Frame;
use crate::modules::Sources;
use crate::primitives::failure_of;
use drscript_base::diagnostic;
use drscript_base::error::Error;

static POSITION_SUFFIX: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\s*\((line \d+, position \d+|line \d+)\)\s*$").unwrap());

/// Whether the error is a mistake in the script (as opposed to a failure of the world).
pub fn is_script_mistake(err: &EvalAltResult) -> bool {
    match err {
        EvalAltResult::ErrorInFunctionCall(_, _, inner, _) | EvalAltResult::ErrorInModule(_, inner, _) => {
            is_script_mistake(inner)
        }
        EvalAltResult::ErrorRuntime(..) => failure_of(err).is_some_and(|e| e.is_bad_input()),
        EvalAltResult::ErrorTerminated(..) => false,
        _ => true,
    }
}

/// Converts `err`. In a `rehearsal` (nothing has run yet) mistakes are bad input (exit 2).
pub fn convert(
    err: &EvalAltResult,
    main_label: &str,
    sources: &Sources,
    failed: Option<Frame>,
    rehearsal: bool,
) -> Error {
    let (label, pos, inner, trace) = locate(err, main_label.to_string());
    let failure = failure_of(inner);
    if matches!(inner, EvalAltResult::ErrorTerminated(..)) {
        return Error::Stopped("interrupted (Ctrl-C)".to_string());
    }
    if let Some(f) = &failure {
        match &**f {
            Error::Stopped(msg) => return Error::Stopped(msg.clone()),
            Error::Refused(msg) => return Error::Refused(msg.clone()),
            _ => {}
        }
    }
    let mut message = match &failure {
        Some(f) => f.to_string(),
        None => POSITION_SUFFIX.replace(&inner.to_string(), "").into_owned(),
    };
    if let EvalAltResult::ErrorFunctionNotFound(signature, _) = inner {
        let pretty =
            signature.replace("&str | ImmutableString | String", "string").replace("ImmutableString", "string");
        let name = pretty.split([' ', '(']).next().unwrap_or_default().to_string();
        message = format!(
            "no function matches {pretty}: unknown function or wrong argument types (see `drscript docs {name}`)"
        );
    }
    if let EvalAltResult::ErrorTooManyOperations(_) = inner {
        message = format!(
            "{message}: the script looks like a runaway loop (limit {} operations)",
            crate::engine::MAX_OPERATIONS
        );
    }
    if let EvalAltResult::ErrorStackOverflow(_) = inner {
        message = format!("{message}: the script recurses too deep (limit {} calls)", crate::engine::MAX_CALL_LEVELS);
    }
    if let Some(step) = failed.filter(|f| !f.id.is_empty()) {
        message = format!("step {} \"{}\" failed: {message}", step.number, step.title);
    }
    let mut rendered = match (sources.get(&label), pos.line()) {
        (Some(text), Some(line)) => diagnostic::render(&label, &text, line, pos.position().unwrap_or(1), &message),
        _ => format!("error: {message}\n --> {label}"),
    };
    for note in trace {
        rendered.push_str(&format!("\n  = note: {note}"));
    }
    let mistake = is_script_mistake(inner);
    if rehearsal && mistake {
        Error::Rehearsal {
            rendered: format!("{rendered}\n  = note: found while rehearsing the script; nothing was executed"),
        }
    } else {
        Error::Runtime { rendered }
    }
}

/// The innermost error with the file and position it points at, and the call chain to it.
fn locate(err: &EvalAltResult, label: String) -> (String, Position, &EvalAltResult, Vec<String>) {
    match err {
        EvalAltResult::ErrorInFunctionCall(name, source, inner, pos) => {
            let inner_label = if source.is_empty() { label.clone() } else { source.clone() };
            let (l, p, e, mut trace) = locate(inner, inner_label);
            if !name.contains('$') {
                trace.push(format!("in `{name}` called at {label}:{}", pos.line().unwrap_or(0)));
            }
            (l, p, e, trace)
        }
        EvalAltResult::ErrorInModule(name, inner, pos) => {
            let (l, p, e, mut trace) = locate(inner, name.clone());
            trace.push(format!("in module {name} imported at {label}:{}", pos.line().unwrap_or(0)));
            (l, p, e, trace)
        }
        other => (label, other.position(), other, Vec::new()),
    }
}
