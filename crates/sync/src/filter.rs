//! Include/exclude globs on paths relative to the endpoint root.
//!
//! A pattern without `/` matches the file name at any depth (`*.tmp`), one with `/` matches the
//! whole relative path (`web/**/*.xml`). Excluded files are neither copied nor deleted: a mirror
//! run leaves what the operator excluded alone.

use globset::{Glob, GlobBuilder, GlobSet, GlobSetBuilder};

use drscript_base::error::{Error, Result};

#[derive(Debug, Clone, Default)]
pub struct Filter {
    include: Option<GlobSet>,
    exclude: Option<GlobSet>,
}

fn build(patterns: &[String]) -> Result<Option<GlobSet>> {
    if patterns.is_empty() {
        return Ok(None);
    }
    let mut set = GlobSetBuilder::new();
    for p in patterns {
        let pattern = p.trim_start_matches("./").trim_start_matches('/');
        let full = if pattern.contains('/') { pattern.to_string() } else { format!("**/{pattern}") };
        let glob: Glob = GlobBuilder::new(&full)
            .literal_separator(true)
            .build()
            .map_err(|e| Error::Usage(format!("sync: bad glob \"{p}\": {e}")))?;
        set.add(glob);
    }
    set.build().map(Some).map_err(|e| Error::Usage(format!("sync: bad globs: {e}")))
}

impl Filter {
    pub fn new(include: &[String], exclude: &[String]) -> Result<Filter> {
        Ok(Filter { include: build(include)?, exclude: build(exclude)? })
    }

    /// Whether a file at `rel` takes part in the sync.
    pub fn file(&self, rel: &str) -> bool {
        if self.exclude.as_ref().is_some_and(|s| s.is_match(rel)) {
            return false;
        }
        self.include.as_ref().is_none_or(|s| s.is_match(rel))
    }

    /// Whether a directory is walked at all (an excluded directory is pruned on both sides).
    pub fn dir(&self, rel: &str) -> bool {
        // `tmp/**` should prune `tmp` itself: probe with a child name no real file has.
        let probe = format!("{rel}/\u{1}");
        !self.exclude.as_ref().is_some_and(|s| s.is_match(rel) || s.is_match(&probe))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_patterns_match_at_any_depth_and_path_patterns_whole_paths() {
        let f = Filter::new(&["*.xml".into()], &["tmp/**".into(), "*.bak".into()]).unwrap();
        assert!(f.file("a.xml"));
        assert!(f.file("web/repo/a.xml"));
        assert!(!f.file("a.txt"));
        assert!(!f.file("tmp/a.xml"));
        assert!(!f.file("x/a.bak"));
        assert!(!f.dir("tmp"));
        assert!(f.dir("web"));
    }
}
