//! Standard output, below every command that prints: masked, and a closed pipe
//! (`drscript docs | head`) is not an error.

use std::io::Write;

/// Prints to stdout, with every known secret masked.
pub fn out(text: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(drscript_base::redact::redact(text).as_bytes());
    let _ = stdout.flush();
}

/// Prints one line to stderr (what the operator reads beside a command's output), with every
/// known secret masked.
pub fn err(line: &str) {
    let mut stderr = std::io::stderr().lock();
    let _ = stderr.write_all(format!("{}\n", drscript_base::redact::redact(line)).as_bytes());
}

/// Writes `text` to stderr as it is, without a newline (a status line redrawn in place), with
/// every known secret masked.
pub fn err_raw(text: &str) {
    let mut stderr = std::io::stderr().lock();
    let _ = stderr.write_all(drscript_base::redact::redact(text).as_bytes());
    let _ = stderr.flush();
}
