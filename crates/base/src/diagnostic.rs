//! rustc-style rendering of a problem at a place in a file: `path:line:col`, the line, a caret.

/// Renders `message` as pointing at `line`:`col` (both 1-based) of `source`.
pub fn render(path: &str, source: &str, line: usize, col: usize, message: &str) -> String {
    render_as("error", path, source, line, col, message)
}

/// [`render`] with another severity (`warning`).
pub fn render_as(severity: &str, path: &str, source: &str, line: usize, col: usize, message: &str) -> String {
    let text = source.lines().nth(line.saturating_sub(1)).unwrap_or("");
    let gutter = line.to_string().len();
    let pad = " ".repeat(gutter);
    let caret_col = col.max(1);
    // Keep tabs in the caret line so that it lines up under the source line.
    let lead: String = text.chars().take(caret_col - 1).map(|c| if c == '\t' { '\t' } else { ' ' }).collect();
    format!("{severity}: {message}\n{pad}--> {path}:{line}:{caret_col}\n{pad} |\n{line} | {text}\n{pad} | {lead}^",)
}

/// 1-based line and column of a byte offset.
pub fn line_col(source: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(source.len());
    let before = &source[..offset];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_at_the_column() {
        let out = render("x.rhai", "let a = 1;\nlet b = ;\n", 2, 9, "expecting an expression");
        assert_eq!(out, "error: expecting an expression\n --> x.rhai:2:9\n  |\n2 | let b = ;\n  |         ^");
    }

    #[test]
    fn offsets_to_line_and_column() {
        assert_eq!(line_col("ab\ncd", 4), (2, 2));
        assert_eq!(line_col("ab", 0), (1, 1));
    }
}
