//! `drscript repl`: the same engine, config and primitives, one input at a time.
//!
//! Variables and functions persist between inputs (one `Scope`, function definitions merged into
//! a growing AST; imports are replayed). Input that is not complete yet (an open brace) continues
//! on the next line. Without a terminal it reads stdin the same way, so it can be scripted.

use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;
use std::sync::Arc;

use rhai::{AST, Dynamic, Engine, Scope};
use rustyline::completion::{Completer, Pair};
use rustyline::error::ReadlineError;
use rustyline::validate::{ValidationContext, ValidationResult, Validator};
use rustyline::{Context, Helper, Highlighter, Hinter};

use crate::app::arm_cancel;
use crate::output::out;
use drscript_base::error::{Error, Result};
use drscript_base::redact;
use drscript_core::engine::{self, EngineOptions};
use drscript_core::exec::{Exec, Mode};
use drscript_core::lint;
use drscript_core::modules::Sources;
use drscript_core::runner::{self, RunOptions};
use drscript_core::script_error;

const COMMANDS: &[&str] = &[":help", ":plan", ":vars", ":quit"];
const KEYWORDS: &[&str] =
    &["let", "const", "fn", "if", "else", "for", "in", "while", "loop", "return", "import", "true", "false"];

const HELP: &str = "\
Commands:
  :help            this text and the list of primitives
  :help NAME       signature and description of a primitive
  :plan on|off     describe changes without reading (on), or back to the session's mode (off):
                   a dry run (reads, changes nothing), or live with `drscript repl --live`
  :vars            variables defined so far
  :quit            leave (also Ctrl-D)
Anything else is Rhai; variables and functions persist. `drscript docs` has the full reference.";

#[derive(Helper, Hinter, Highlighter)]
struct ReplHelper {
    words: Vec<String>,
    primitives: Vec<String>,
}

impl Completer for ReplHelper {
    type Candidate = Pair;

    fn complete(&self, line: &str, pos: usize, _: &Context<'_>) -> rustyline::Result<(usize, Vec<Pair>)> {
        let before = &line[..pos];
        let start =
            before.rfind(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':' || c == '-')).map_or(0, |i| i + 1);
        let word = &before[start..];
        let pool: Vec<&String> = if before.trim_start().starts_with(":help ") {
            self.primitives.iter().collect()
        } else {
            self.words.iter().collect()
        };
        let pairs = pool
            .into_iter()
            .filter(|w| w.starts_with(word))
            .map(|w| Pair { display: w.clone(), replacement: w.clone() })
            .collect();
        Ok((start, pairs))
    }
}

impl Validator for ReplHelper {
    fn validate(&self, ctx: &mut ValidationContext) -> rustyline::Result<ValidationResult> {
        Ok(if is_incomplete(ctx.input()) { ValidationResult::Incomplete } else { ValidationResult::Valid(None) })
    }
}

/// True while brackets are open (outside strings and comments).
fn is_incomplete(input: &str) -> bool {
    if input.trim_start().starts_with(':') {
        return false;
    }
    let mut depth: i32 = 0;
    let mut chars = input.chars().peekable();
    let mut in_string: Option<char> = None;
    while let Some(c) = chars.next() {
        match (in_string, c) {
            (Some(_), '\\') => {
                chars.next();
            }
            (Some(q), c) if c == q => in_string = None,
            (Some(_), _) => {}
            (None, '"' | '`' | '\'') => in_string = Some(c),
            (None, '/') if chars.peek() == Some(&'/') => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        break;
                    }
                }
            }
            (None, '(' | '[' | '{') => depth += 1,
            (None, ')' | ']' | '}') => depth -= 1,
            _ => {}
        }
    }
    depth > 0 || in_string == Some('`')
}

struct Session {
    exec: Arc<Exec>,
    engine: Engine,
    scope: Scope<'static>,
    functions: AST,
    imports: Vec<String>,
    sources: Sources,
    engine_options: EngineOptions,
    config: Option<Arc<drscript_core::config::Config>>,
    options: RunOptions,
    runtime: tokio::runtime::Runtime,
    inputs: usize,
    /// A live session's lock and journal (`--live`); `None` otherwise.
    interactive: Option<runner::Interactive>,
}

impl Session {
    fn new(options: &RunOptions) -> Result<Session> {
        let runtime = runner::runtime()?;
        let config = runner::load_config(options.config.as_deref(), options.config_required)?;
        let engine_options = EngineOptions {
            script_dir: Some(PathBuf::from(".")),
            stdlib_dir: options
                .stdlib_dir
                .clone()
                .or_else(|| config.as_ref().and_then(|c| c.settings.stdlib_dir.clone())),
        };
        let sources = Sources::default();
        // Live: the lock (no switch can run meanwhile) and a journal of every change.
        let interactive = match options.mode {
            Mode::Live => Some(runner::Interactive::open(&options.state_dir, config.as_deref(), options.local_state)?),
            _ => None,
        };
        let (exec, engine) =
            Self::engine(options, &runtime, &config, &engine_options, &sources, options.mode, interactive.as_ref())?;
        Ok(Session {
            exec,
            engine,
            scope: Scope::new(),
            functions: AST::empty(),
            imports: Vec::new(),
            sources,
            engine_options,
            config,
            options: options.clone(),
            runtime,
            inputs: 0,
            interactive,
        })
    }

    /// Ends a live session (its last journal record and its report).
    fn finish(self) -> Result<()> {
        if let Some(interactive) = self.interactive {
            let id = interactive.run_id.clone();
            let report = interactive.finish()?;
            crate::output::err(&format!("live session {id} journaled; report: {}", report.display()));
        }
        Ok(())
    }

    fn engine(
        options: &RunOptions,
        runtime: &tokio::runtime::Runtime,
        config: &Option<Arc<drscript_core::config::Config>>,
        engine_options: &EngineOptions,
        sources: &Sources,
        mode: Mode,
        interactive: Option<&runner::Interactive>,
    ) -> Result<(Arc<Exec>, Engine)> {
        let (journal, run) = match interactive {
            Some(i) => i.journaled().map(|(j, r)| (Some(j), Some(r)))?,
            None => (None, None),
        };
        let exec = Exec::builder(mode, runtime.handle().clone())
            .config(config.clone())
            .prompting(options.prompting.clone())
            .journal(journal)
            .run(run)
            .cancel(arm_cancel())
            .lease_lost(interactive.and_then(runner::Interactive::lease_lost))
            .build();
        let engine = engine::build(exec.clone(), engine_options, sources.clone());
        Ok((exec, engine))
    }

    /// A fresh engine (new cancellation token) with the same scope and functions.
    fn rearm(&mut self) {
        let mode = self.exec.mode();
        match Self::engine(
            &self.options,
            &self.runtime,
            &self.config,
            &self.engine_options,
            &self.sources,
            mode,
            self.interactive.as_ref(),
        ) {
            Ok((exec, engine)) => {
                self.exec = exec;
                self.engine = engine;
            }
            Err(e) => crate::output::err(&format!("error: {e}")),
        }
    }

    fn words(&self) -> (Vec<String>, Vec<String>) {
        let primitives: Vec<String> = lint::signatures_with(&self.engine, false)
            .into_keys()
            .filter(|n| n.chars().next().is_some_and(char::is_alphabetic) && !n.contains('$'))
            .collect();
        let mut words: Vec<String> = primitives.clone();
        words.extend(COMMANDS.iter().map(|s| s.to_string()));
        words.extend(KEYWORDS.iter().map(|s| s.to_string()));
        if let Some(c) = &self.config {
            words.extend(c.environments.keys().cloned());
        }
        words.sort();
        words.dedup();
        (words, primitives)
    }

    /// Handles one input; returns false to leave.
    fn handle(&mut self, input: &str) -> std::result::Result<bool, String> {
        let trimmed = input.trim();
        if trimmed.is_empty() {
            return Ok(true);
        }
        if let Some(command) = trimmed.strip_prefix(':') {
            return self.command(command);
        }
        if self.exec.is_cancelled() {
            self.rearm();
        }
        self.inputs += 1;
        let label = format!("<repl:{}>", self.inputs);
        self.sources.insert(&label, input);
        let mut ast = self.engine.compile_with_scope(&self.scope, input).map_err(|e| {
            let pos = e.position();
            drscript_base::diagnostic::render(
                &label,
                input,
                pos.line().unwrap_or(1),
                pos.position().unwrap_or(1),
                &e.err_type().to_string(),
            )
        })?;
        ast.set_source(label.as_str());
        let import_lines: Vec<String> =
            input.lines().map(str::trim).filter(|l| l.starts_with("import ")).map(str::to_string).collect();
        let mut prelude = AST::empty();
        if !self.imports.is_empty() {
            prelude = self.engine.compile(self.imports.join("\n")).map_err(|e| e.to_string())?;
        }
        let combined = prelude.merge(&self.functions).merge(&ast);
        let result = self.engine.eval_ast_with_scope::<Dynamic>(&mut self.scope, &combined);
        self.functions = self.functions.merge(&ast.clone_functions_only());
        match result {
            Ok(value) => {
                self.imports.extend(import_lines);
                if !value.is_unit() {
                    out(&format!("=> {}\n", redact::redact(&format!("{value:?}"))));
                }
                Ok(true)
            }
            Err(e) => {
                let converted = script_error::convert(&e, &label, &self.sources, self.exec.failed_step(), false);
                Err(converted.to_string())
            }
        }
    }

    fn command(&mut self, command: &str) -> std::result::Result<bool, String> {
        let mut parts = command.split_whitespace();
        match (parts.next().unwrap_or(""), parts.next()) {
            ("q" | "quit" | "exit", _) => Ok(false),
            ("help" | "h", None) => {
                let (_, primitives) = self.words();
                out(&format!("{HELP}\n\nPrimitives: {}\n", primitives.join(", ")));
                Ok(true)
            }
            ("help" | "h", Some(name)) => {
                let all = lint::signatures_with(&self.engine, false);
                match all.get(name) {
                    Some(sigs) => {
                        out(&crate::docs::describe(name, sigs));
                        Ok(true)
                    }
                    None => {
                        let hint = lint::suggest(name, all.keys().map(String::as_str))
                            .map(|s| format!(" (did you mean `{s}`?)"))
                            .unwrap_or_default();
                        Err(format!("error: no primitive called `{name}`{hint}"))
                    }
                }
            }
            ("plan", Some("on")) => {
                self.exec.set_mode(Mode::Plan);
                out("plan mode: changes are described, not made\n");
                Ok(true)
            }
            ("plan", Some("off")) => {
                // Back to how the session started: a dry run, or live with `--live`.
                self.exec.set_mode(self.options.mode);
                out(&format!("{}\n", mode_line(self.options.mode)));
                Ok(true)
            }
            ("plan", None) => {
                out(&format!(
                    "{}\n",
                    if self.exec.mode() == Mode::Plan { "plan mode is on" } else { "plan mode is off" }
                ));
                Ok(true)
            }
            ("vars", _) => {
                for (name, constant, value) in self.scope.iter() {
                    out(&format!("{}{name} = {value:?}\n", if constant { "const " } else { "" }));
                }
                Ok(true)
            }
            (other, _) => Err(format!("error: unknown command :{other} (try :help)")),
        }
    }
}

fn mode_line(mode: Mode) -> &'static str {
    match mode {
        Mode::Live => "live mode: changes are made (locked and journaled)",
        Mode::Plan => "plan mode: changes are described, not made",
        Mode::DryRun => "dry-run mode: reads for real, changes nothing (`drscript repl --live` makes changes)",
    }
}

fn history_path() -> Option<PathBuf> {
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".drscript_history"))
}

pub fn run(options: &RunOptions) -> Result<()> {
    let mut session = Session::new(options)?;
    if !std::io::stdin().is_terminal() {
        let result = piped(&mut session);
        session.finish()?;
        return result;
    }
    let (words, primitives) = session.words();
    let mut editor: rustyline::Editor<ReplHelper, rustyline::history::DefaultHistory> =
        rustyline::Editor::new().map_err(|e| Error::Other(format!("cannot start the line editor: {e}")))?;
    editor.set_helper(Some(ReplHelper { words, primitives }));
    let history = history_path();
    if let Some(h) = &history {
        let _ = editor.load_history(h);
    }
    crate::output::err(&format!(
        "drscript repl — {}. :help for help, Ctrl-D to leave.",
        mode_line(session.exec.mode())
    ));
    loop {
        let prompt = match session.exec.mode() {
            Mode::Live => "drscript[live]> ",
            Mode::Plan => "drscript[plan]> ",
            Mode::DryRun => "drscript[dry]> ",
        };
        match editor.readline(prompt) {
            Ok(line) => {
                let _ = editor.add_history_entry(line.as_str());
                match session.handle(&line) {
                    Ok(true) => {}
                    Ok(false) => break,
                    Err(message) => crate::output::err(&message),
                }
            }
            Err(ReadlineError::Interrupted) => continue,
            Err(ReadlineError::Eof) => break,
            Err(e) => return Err(Error::Other(format!("line editor: {e}"))),
        }
    }
    if let Some(h) = &history {
        let _ = editor.save_history(h);
    }
    session.finish()
}

/// Without a terminal: read stdin, gathering lines until an input is complete.
fn piped(session: &mut Session) -> Result<()> {
    let mut buffer = String::new();
    let mut failures = 0usize;
    for line in std::io::stdin().lock().lines() {
        let line = line.map_err(|e| Error::io("cannot read stdin", e))?;
        buffer.push_str(&line);
        buffer.push('\n');
        if is_incomplete(&buffer) {
            continue;
        }
        let input = std::mem::take(&mut buffer);
        match session.handle(&input) {
            Ok(true) => {}
            Ok(false) => break,
            Err(message) => {
                failures += 1;
                crate::output::err(&message);
            }
        }
    }
    if !buffer.trim().is_empty() {
        failures += 1;
        crate::output::err("error: the input ended inside an unfinished block");
    }
    if failures > 0 {
        return Err(Error::Runtime { rendered: format!("error: {failures} input(s) failed") });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustyline::history::DefaultHistory;

    fn helper() -> ReplHelper {
        ReplHelper {
            words: vec![
                ":help".into(),
                ":plan".into(),
                "parallel".into(),
                "param".into(),
                "prod".into(),
                "scale".into(),
            ],
            primitives: vec!["parallel".into(), "param".into(), "scale".into()],
        }
    }

    fn complete(line: &str) -> Vec<String> {
        let history = DefaultHistory::new();
        let ctx = Context::new(&history);
        let (_, pairs) = helper().complete(line, line.len(), &ctx).unwrap();
        pairs.into_iter().map(|p| p.replacement).collect()
    }

    #[test]
    fn completes_primitives_environments_and_commands() {
        assert_eq!(complete("par"), ["parallel", "param"]);
        assert_eq!(complete("env(\"pr"), ["prod"]);
        assert_eq!(complete(":pl"), [":plan"]);
        assert_eq!(complete(":help sc"), ["scale"]);
    }

    #[test]
    fn open_brackets_and_backtick_strings_continue_the_input() {
        assert!(is_incomplete("fn f(x) {"));
        assert!(is_incomplete("step(\"a\", || {\n  1\n"));
        assert!(!is_incomplete("let s = \"{\";"));
        assert!(!is_incomplete("// {\nlet a = 1;"));
        assert!(is_incomplete("let s = `multi"));
        assert!(!is_incomplete(":help step"));
    }
}
