//! Names as the File service takes them: share names checked, directory and file names checked
//! component by component, trailing dots trimmed unless the caller asks to keep them, and
//! lookups resolved case-insensitively against the names on disk, whose case is the one first
//! written (the service is case-insensitive and case-preserving).

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};

use axum::http::StatusCode;
use axum::response::Response;

use super::responses::error;

/// The longest directory or file name component, in characters.
pub const MAX_COMPONENT: usize = 255;
/// The longest path inside a share, in characters.
pub const MAX_PATH: usize = 2048;

const RESERVED: &[&str] = &[
    "LPT1", "LPT2", "LPT3", "LPT4", "LPT5", "LPT6", "LPT7", "LPT8", "LPT9", "COM1", "COM2", "COM3", "COM4", "COM5",
    "COM6", "COM7", "COM8", "COM9", "PRN", "AUX", "NUL", "CON", "CLOCK$",
];

fn invalid_name() -> Response {
    error(
        StatusCode::BAD_REQUEST,
        "InvalidResourceName",
        "The specifed resource name contains invalid characters.",
        None,
    )
}

fn too_long() -> Response {
    error(
        StatusCode::BAD_REQUEST,
        "InvalidResourceName",
        "The specified resource name length is not within the permissible limits.",
        None,
    )
}

/// Share names: 3 to 63 lowercase letters, digits and single hyphens, starting and ending with
/// a letter or digit.
pub fn check_share(name: &str) -> Result<(), Response> {
    let ok_chars = name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    let ok_shape = !name.starts_with('-') && !name.ends_with('-') && !name.contains("--");
    if !(3..=63).contains(&name.len()) {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "OutOfRangeInput",
            "The specified resource name length is not within the permissible limits.",
            None,
        ));
    }
    if ok_chars && ok_shape { Ok(()) } else { Err(invalid_name()) }
}

/// Why a directory or file name component is refused, or `None` when the service takes it.
pub fn component_problem(name: &str) -> Option<&'static str> {
    if name.chars().count() > MAX_COMPONENT {
        return Some("longer than 255 characters");
    }
    if name == "." || name == ".." {
        return Some("a relative path segment");
    }
    if name.chars().any(|c| matches!(c, '"' | '\\' | '/' | ':' | '|' | '<' | '>' | '*' | '?')) {
        return Some("a reserved character (\" \\ / : | < > * ?)");
    }
    if name.chars().any(|c| (c as u32) < 0x20) {
        return Some("a control character");
    }
    if name.chars().any(|c| ('\u{e000}'..='\u{f8ff}').contains(&c) || c == '\u{fffe}' || c == '\u{ffff}') {
        return Some("a character that is not valid Unicode text");
    }
    if RESERVED.iter().any(|r| r.eq_ignore_ascii_case(name)) {
        return Some("a reserved device name");
    }
    None
}

/// The path inside a share as the service names it: each component checked, trailing dots
/// trimmed unless `keep_trailing_dots` (what `x-ms-allow-trailing-dot: true` asks for).
pub fn normalize(segments: &[String], keep_trailing_dots: bool) -> Result<String, Response> {
    let mut out = Vec::with_capacity(segments.len());
    for seg in segments {
        let seg =
            if keep_trailing_dots || seg == "." || seg == ".." { seg.as_str() } else { seg.trim_end_matches('.') };
        if seg.is_empty() {
            return Err(invalid_name());
        }
        match component_problem(seg) {
            None => out.push(seg),
            Some(p) if p.starts_with("longer") => return Err(too_long()),
            Some(_) => return Err(invalid_name()),
        }
    }
    let path = out.join("/");
    if path.chars().count() > MAX_PATH {
        return Err(too_long());
    }
    Ok(path)
}

/// Each folder's names by their case-insensitive key, so that finding `case.txt` under
/// `Case.txt` costs a lookup, not a scan of the folder. An entry is rebuilt when the folder's
/// mtime moved (a change made by hand); the emulator's own creations and deletions update it
/// in place ([`Index::added`], [`Index::removed`]).
#[derive(Default)]
pub struct Index(std::sync::Mutex<HashMap<PathBuf, Folder>>);

struct Folder {
    mtime: Option<std::time::SystemTime>,
    /// Lowercased name → the names on disk with that key, sorted.
    names: HashMap<String, Vec<OsString>>,
}

fn key(name: &OsStr) -> Option<String> {
    name.to_str().map(str::to_lowercase)
}

fn dir_mtime(dir: &Path) -> Option<std::time::SystemTime> {
    std::fs::metadata(dir).and_then(|m| m.modified()).ok()
}

impl Index {
    /// The entry of `dir` whose name equals `name` ignoring case (the first by sorted name,
    /// should a hand-made folder hold several).
    fn find(&self, dir: &Path, name: &str) -> Option<OsString> {
        let mtime = dir_mtime(dir)?;
        let mut folders = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let fresh = folders.get(dir).is_some_and(|f| f.mtime == Some(mtime));
        if !fresh {
            let mut names: HashMap<String, Vec<OsString>> = HashMap::new();
            for e in std::fs::read_dir(dir).ok()?.filter_map(|e| e.ok()) {
                let n = e.file_name();
                if let Some(k) = key(&n) {
                    names.entry(k).or_default().push(n);
                }
            }
            names.values_mut().for_each(|v| v.sort());
            folders.insert(dir.to_path_buf(), Folder { mtime: Some(mtime), names });
        }
        folders.get(dir)?.names.get(&name.to_lowercase())?.first().cloned()
    }

    /// `path` was just created by the emulator.
    pub fn added(&self, path: &Path) {
        self.update(path, |v, n| {
            if !v.contains(&n) {
                v.push(n);
                v.sort();
            }
        });
    }

    /// The file `path` was just deleted by the emulator (its parent's entry changes; no scan).
    pub fn removed_file(&self, path: &Path) {
        self.update(path, |v, n| v.retain(|x| *x != n));
    }

    /// The folder `path` was just deleted by the emulator: its entries and those below it go.
    pub fn removed_dir(&self, path: &Path) {
        self.removed_file(path);
        self.0.lock().unwrap_or_else(|e| e.into_inner()).retain(|d, _| !d.starts_with(path));
    }

    fn update(&self, path: &Path, f: impl FnOnce(&mut Vec<OsString>, OsString)) {
        let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else { return };
        let mut folders = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let Some(folder) = folders.get_mut(dir) else { return };
        if let Some(k) = key(name) {
            f(folder.names.entry(k).or_default(), name.to_os_string());
        }
        folder.mtime = dir_mtime(dir);
    }
}

/// The on-disk path of `path` below `share_dir`: each existing component in the case it was
/// first written with; components that do not exist yet keep the case of the request.
pub fn resolve(share_dir: &Path, path: &str, index: &Index) -> PathBuf {
    let exact: PathBuf = path.split('/').filter(|s| !s.is_empty()).fold(share_dir.to_path_buf(), |p, s| p.join(s));
    if std::fs::symlink_metadata(&exact).is_ok() {
        return exact;
    }
    // Component by component: an exact match costs one stat, a miss one lookup in the index.
    let mut p = share_dir.to_path_buf();
    let mut found = true;
    for seg in path.split('/').filter(|s| !s.is_empty()) {
        if found && std::fs::symlink_metadata(p.join(seg)).is_ok() {
            p.push(seg);
            continue;
        }
        if found && let Some(on_disk) = index.find(&p, seg) {
            p.push(on_disk);
            continue;
        }
        found = false;
        p.push(seg);
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segs(p: &str) -> Vec<String> {
        p.split('/').map(str::to_string).collect()
    }

    #[test]
    fn refuses_what_the_service_refuses_and_trims_trailing_dots() {
        for bad in ["a\"b", "a\\b", "a:b", "a|b", "a<b", "a>b", "a*b", "a?b", "a\u{1}b", "CON", "lpt1", "..."] {
            assert!(normalize(&segs(bad), false).is_err(), "{bad:?}");
        }
        assert_eq!(normalize(&segs("dir./file.txt.."), false).ok().as_deref(), Some("dir/file.txt"));
        assert_eq!(normalize(&segs("dir./file.txt.."), true).ok().as_deref(), Some("dir./file.txt.."));
        assert!(normalize(&[("x".repeat(256))], false).is_err());
        assert!(normalize(&[("é".repeat(255))], false).is_ok());
    }

    #[test]
    fn share_names_are_lowercase_dns_labels() {
        for ok in ["dr", "prod-01", "abc"] {
            assert!(check_share(ok).is_ok() || ok.len() < 3, "{ok}");
        }
        for bad in ["Prod", "a--b", "-ab", "ab-", "a_b", "ab"] {
            assert!(check_share(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn resolve_keeps_the_case_first_written() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("Web/Repo")).unwrap();
        std::fs::write(d.path().join("Web/Repo/Case.txt"), b"x").unwrap();
        let index = Index::default();
        assert_eq!(resolve(d.path(), "web/repo/CASE.TXT", &index), d.path().join("Web/Repo/Case.txt"));
        assert_eq!(resolve(d.path(), "WEB/new/x", &index), d.path().join("Web/new/x"));
        // A name the emulator adds is found at once, whatever the folder's clock says.
        std::fs::write(d.path().join("Web/Repo/Other.txt"), b"y").unwrap();
        index.added(&d.path().join("Web/Repo/Other.txt"));
        assert_eq!(resolve(d.path(), "web/repo/OTHER.txt", &index), d.path().join("Web/Repo/Other.txt"));
        std::fs::remove_file(d.path().join("Web/Repo/Other.txt")).unwrap();
        index.removed_file(&d.path().join("Web/Repo/Other.txt"));
        assert_eq!(resolve(d.path(), "web/repo/OTHER.txt", &index), d.path().join("Web/Repo/OTHER.txt"));
    }
}
