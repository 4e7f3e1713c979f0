//! Whether the live view may draw, and how wide a line may be.
//!
//! The view redraws lines in place, which only makes sense to a person at a terminal: CI logs,
//! log shippers, `--log-format json`, `-v` (someone reading every line) and terminals that
//! cannot move the cursor (`TERM=dumb`) or asked for plain output (`NO_COLOR`, `--no-color`)
//! keep the plain log lines.

use std::io::IsTerminal;

/// What the command line and the environment say about stderr.
#[derive(Debug, Clone, Copy)]
pub struct Terminal {
    pub stderr_is_terminal: bool,
    pub text_format: bool,
    /// -1 quiet, 0 normal, 1+ verbose.
    pub verbosity: i8,
    pub no_color: bool,
    pub dumb: bool,
}

impl Terminal {
    /// Reads stderr and `TERM`; the rest comes from the command line.
    pub fn detect(text_format: bool, verbosity: i8, no_color: bool) -> Terminal {
        Terminal {
            stderr_is_terminal: std::io::stderr().is_terminal(),
            text_format,
            verbosity,
            no_color,
            dumb: std::env::var("TERM").is_ok_and(|t| t == "dumb"),
        }
    }

    pub fn live(&self) -> bool {
        self.stderr_is_terminal && self.text_format && self.verbosity == 0 && !self.no_color && !self.dumb
    }
}

/// Columns of stderr's terminal (80 when it does not say).
pub fn width() -> usize {
    match console::Term::stderr().size_checked() {
        Some((_, cols)) if cols > 0 => cols as usize,
        _ => 80,
    }
}

/// Rows of stderr's terminal (24 when it does not say).
pub fn height() -> usize {
    match console::Term::stderr().size_checked() {
        Some((rows, _)) if rows > 0 => rows as usize,
        _ => 24,
    }
}

/// `line` cut to `width` columns (escape codes and wide characters counted as the terminal
/// does), with `…` where it was cut: a line that wraps would break the redraw.
pub fn fit(line: &str, width: usize) -> String {
    // One column spare: some terminals wrap when the last column is written.
    console::truncate_str(line, width.saturating_sub(1).max(1), "…").into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_plain_terminal_at_normal_verbosity_gets_the_live_view() {
        let t = Terminal { stderr_is_terminal: true, text_format: true, verbosity: 0, no_color: false, dumb: false };
        assert!(t.live());
        assert!(!Terminal { stderr_is_terminal: false, ..t }.live());
        assert!(!Terminal { text_format: false, ..t }.live());
        assert!(!Terminal { verbosity: 1, ..t }.live());
        assert!(!Terminal { verbosity: -1, ..t }.live());
        assert!(!Terminal { no_color: true, ..t }.live());
        assert!(!Terminal { dumb: true, ..t }.live());
    }

    #[test]
    fn fit_cuts_by_columns_not_bytes() {
        assert_eq!(fit("✓ 1 Quiesce prod", 10), "✓ 1 Quie…");
        assert_eq!(fit("short", 80), "short");
        let styled = format!("{} abcdefgh", console::style("✓").green());
        assert_eq!(console::measure_text_width(&fit(&styled, 6)), 5);
    }
}
