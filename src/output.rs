//! Standard output, below every command that prints: masked, and a closed pipe
//! (`drscript docs | head`) is not an error.

use std::io::Write;

/// Prints to stdout, with every known secret masked.
pub fn out(text: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(crate::redact::redact(text).as_bytes());
    let _ = stdout.flush();
}
