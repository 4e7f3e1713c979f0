//! The names Azure Files can hold, checked on the source before a sync into a Files share
//! copies anything. The service's names are case-insensitive (`Case.txt` and `case.txt` are
//! one file), refuse some characters, and lose trailing dots unless the client asks to keep
//! them; a source that breaks these rules would otherwise see one file silently overwrite
//! another, uploads fail one by one half-way through, or a mirror delete what it just wrote.
//!
//! These are drscript's own reading of the naming rules ("Naming and referencing shares,
//! directories, files, and metadata"), kept apart from the sandbox emulator's, which checks them
//! the service's way.

use std::collections::HashMap;

use super::entry::{Entry, join};
use super::filter::Filter;
use super::store::Store;

/// The longest name component the service takes, in characters.
const MAX_COMPONENT: usize = 255;
/// Problems listed in full in the error; the rest are counted.
const SHOWN: usize = 20;

/// The key under which the service finds a name: its names compare case-insensitively.
pub fn fold(name: &str) -> String {
    name.to_lowercase()
}

/// Why Azure Files cannot store a file or folder named `name` as it is, or `None`.
pub fn problem(name: &str) -> Option<String> {
    if let Some(c) = name.chars().find(|c| matches!(c, '"' | '\\' | ':' | '|' | '<' | '>' | '*' | '?')) {
        return Some(format!("contains '{c}', which Azure Files refuses (\" \\ : | < > * ?)"));
    }
    if let Some(c) = name.chars().find(|c| (*c as u32) < 0x20 || *c == '\u{7f}') {
        return Some(format!("contains the control character U+{:04X}, which Azure Files refuses", c as u32));
    }
    if name.ends_with('.') {
        return Some("ends with a dot, which Azure Files trims (the file would be stored under another name)".into());
    }
    let n = name.chars().count();
    if n > MAX_COMPONENT {
        return Some(format!("is {n} characters long; Azure Files takes at most {MAX_COMPONENT}"));
    }
    let reserved = ["CON", "PRN", "AUX", "NUL", "CLOCK$"];
    let device = |p: &str| name.len() == 4 && name[..3].eq_ignore_ascii_case(p) && name.as_bytes()[3].is_ascii_digit();
    if reserved.iter().any(|r| r.eq_ignore_ascii_case(name)) || device("COM") || device("LPT") {
        return Some("is a reserved device name, which Azure Files refuses".into());
    }
    None
}

/// The problems of one directory's entries: each name the service cannot hold, and each pair
/// of names that the service would take for one.
pub fn check_dir(dir: &str, entries: &[Entry], filter: &Filter) -> Vec<String> {
    let mut out = Vec::new();
    let mut seen: HashMap<String, &str> = HashMap::new();
    for e in entries {
        let rel = join(dir, &e.name);
        let taking_part = if e.is_dir() { filter.dir(&rel) } else { filter.file(&rel) };
        if !taking_part {
            continue;
        }
        if let Some(p) = problem(&e.name) {
            out.push(format!("{rel}: {p}"));
        }
        if let Some(first) = seen.insert(fold(&e.name), &e.name) {
            out.push(format!(
                "{} and {rel} differ only in case: Azure Files names are case-insensitive, so one would overwrite the other",
                join(dir, first)
            ));
        }
    }
    out
}

/// Walks the source and returns every name problem (empty: the source can be synced as it is).
/// A folder that cannot be listed is left to the sync itself, which reports it.
pub async fn check_tree(src: &Store, filter: &Filter) -> Vec<String> {
    let mut out = Vec::new();
    let mut pending = vec![String::new()];
    while let Some(dir) = pending.pop() {
        let Ok(Some(mut entries)) = src.list(&dir, false).await else { continue };
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        out.extend(check_dir(&dir, &entries, filter));
        pending.extend(entries.iter().filter(|e| e.is_dir()).map(|e| join(&dir, &e.name)).filter(|p| filter.dir(p)));
    }
    out.sort();
    out
}

/// The error text for `problems`: every problem up to `SHOWN`, then a count.
pub fn describe(problems: &[String]) -> String {
    let mut s = format!(
        "{} source name(s) cannot be stored on Azure Files as they are; nothing was copied (rename them, or exclude them):",
        problems.len()
    );
    for p in problems.iter().take(SHOWN) {
        s.push_str("\n  ");
        s.push_str(p);
    }
    if problems.len() > SHOWN {
        s.push_str(&format!("\n  ... and {} more", problems.len() - SHOWN));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_service_refuses_or_changes() {
        for bad in ["a:b", "a?", "x*", "q\"", "back\\slash", "p|q", "<a>", "tab\there", "dot.", "CON", "com1", "Lpt9"] {
            assert!(problem(bad).is_some(), "{bad:?}");
        }
        for ok in ["Case.txt", "a b", "ünïcödé", ".hidden", "com10", "console", "a.b.c"] {
            assert!(problem(ok).is_none(), "{ok:?}");
        }
        assert!(problem(&"x".repeat(256)).is_some());
    }

    #[test]
    fn names_differing_only_in_case_are_reported_together() {
        let entries = vec![Entry::file("Case.txt", 1, None), Entry::file("case.txt", 1, None), Entry::dir("Web")];
        let p = check_dir("app", &entries, &Filter::default());
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(p[0].contains("app/Case.txt") && p[0].contains("app/case.txt"), "{p:?}");
        // An excluded one takes no part.
        let f = Filter::new(&[], &["case.txt".into()]).unwrap();
        assert!(check_dir("app", &entries, &f).is_empty());
    }
}
