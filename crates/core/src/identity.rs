//! Who runs drscript: the operator (OS user) and the host, with the drscript version. Every
//! journal record carries `by` (`user@host`), every run start the version, and the report shows
//! both, so that on a bridge with three laptops each step says who ran it.

use std::sync::OnceLock;

/// `user@host`, read once per process.
pub fn by() -> &'static str {
    static BY: OnceLock<String> = OnceLock::new();
    BY.get_or_init(|| format!("{}@{}", operator(), host()))
}

/// The drscript version that wrote a journal.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

fn operator() -> String {
    ["USER", "LOGNAME", "USERNAME"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|s| !s.trim().is_empty()))
        .unwrap_or_else(|| format!("uid-{}", drscript_base::sys::uid()))
}

fn host() -> String {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .find_map(|p| std::fs::read_to_string(p).ok().map(|s| s.trim().to_string()).filter(|s| !s.is_empty()))
        .or_else(|| std::env::var("HOSTNAME").ok().filter(|s| !s.is_empty()))
        .unwrap_or_else(|| "unknown-host".to_string())
}
