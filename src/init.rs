//! `drscript init [DIR]`: a new customer's folder — the runbooks and the stdlib built into this
//! binary, and an annotated starter config — so that an operator who installed only the binary
//! has every procedure to read, edit and rehearse. Nothing is overwritten without `--force`.

use std::path::{Path, PathBuf};

use crate::output::err;
use drscript_base::error::{Error, Result};
use drscript_core::modules::{self, Resolver};

const STARTER: &str = include_str!("../examples/starter/drscript.toml");

/// The files `init` writes: (path relative to the folder, text).
fn files() -> Vec<(PathBuf, &'static str)> {
    let mut files = vec![(PathBuf::from("drscript.toml"), STARTER)];
    files.extend(modules::embedded_runbooks().into_iter().map(|(name, text)| (Path::new("runbooks").join(name), text)));
    files.extend(Resolver::embedded_files().into_iter().map(|(name, text)| (Path::new("stdlib").join(name), text)));
    files
}

pub fn run(dir: &Path, force: bool) -> Result<()> {
    let files = files();
    let existing: Vec<String> =
        files.iter().filter(|(p, _)| dir.join(p).exists()).map(|(p, _)| p.display().to_string()).collect();
    if !existing.is_empty() && !force {
        return Err(Error::Refused(format!(
            "{} already has {}; nothing was written (--force overwrites them)",
            dir.display(),
            existing.join(", ")
        )));
    }
    for (path, text) in &files {
        let target = dir.join(path);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(|e| Error::io(format!("cannot create {}", parent.display()), e))?;
        }
        std::fs::write(&target, text).map_err(|e| Error::io(format!("cannot write {}", target.display()), e))?;
    }
    err(&format!(
        "wrote {} file(s) into {}: drscript.toml (fill in the values marked CHANGE), runbooks/, stdlib/\n\
         next: drscript check --config drscript.toml; drscript status; drscript plan failover\n\
         rehearse first: drscript sandbox up --like drscript.toml",
        files.len(),
        dir.display()
    ));
    Ok(())
}
