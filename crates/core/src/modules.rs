//! Where `import "name"` finds its module: next to the importing file, next to the runbook, in
//! the stdlib override folder (flag or config), and last in the stdlib compiled into the binary.
//!
//! A customer edits a runbook's helpers by copying `stdlib/adeptia.rhai` next to the runbook or
//! into a folder named by `--stdlib`; the embedded copy is the fallback that makes a bare binary
//! work. Every source loaded is remembered so that errors can quote the line they point at.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use include_dir::{Dir, include_dir};
use rhai::{Engine, EvalAltResult, Module, ModuleResolver, Position, Scope, Shared};

static EMBEDDED: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/../../stdlib");
static RUNBOOKS: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/../../runbooks");

/// The label under which embedded runbooks appear in messages and journals.
pub const EMBEDDED_RUNBOOKS: &str = "<embedded>/runbooks/";

/// The runbooks compiled into the binary: (file name, text).
pub fn embedded_runbooks() -> Vec<(String, &'static str)> {
    RUNBOOKS.files().filter_map(|f| Some((f.path().to_str()?.to_string(), f.contents_utf8()?))).collect()
}

/// One embedded runbook by file name (`failover.rhai`).
pub fn embedded_runbook(file: &str) -> Option<&'static str> {
    RUNBOOKS.get_file(file)?.contents_utf8()
}

/// The label under which embedded modules appear in messages.
pub const EMBEDDED_PREFIX: &str = "<embedded>/stdlib/";

/// Source texts by label (a file path or an embedded label), for diagnostics.
#[derive(Clone, Default)]
pub struct Sources(Arc<Mutex<HashMap<String, String>>>);

impl Sources {
    pub fn insert(&self, label: &str, text: &str) {
        self.0.lock().unwrap().insert(label.to_string(), text.to_string());
    }
    pub fn get(&self, label: &str) -> Option<String> {
        self.0.lock().unwrap().get(label).cloned()
    }
}

pub struct Resolver {
    script_dir: Option<PathBuf>,
    stdlib_dir: Option<PathBuf>,
    sources: Sources,
    cache: Mutex<HashMap<String, Shared<Module>>>,
}

impl Resolver {
    pub fn new(script_dir: Option<PathBuf>, stdlib_dir: Option<PathBuf>, sources: Sources) -> Self {
        Resolver { script_dir, stdlib_dir, sources, cache: Mutex::default() }
    }

    /// Finds the source of module `path` imported from `importer`: (label, text).
    pub fn find(&self, importer: Option<&str>, path: &str) -> Option<(String, String)> {
        let file = if path.ends_with(".rhai") { path.to_string() } else { format!("{path}.rhai") };
        let mut dirs: Vec<PathBuf> = Vec::new();
        if let Some(parent) = importer.filter(|i| !i.starts_with(EMBEDDED_PREFIX)).and_then(|i| Path::new(i).parent()) {
            dirs.push(parent.to_path_buf());
        }
        dirs.extend(self.script_dir.iter().cloned());
        dirs.extend(self.stdlib_dir.iter().cloned());
        for dir in dirs {
            let candidate = dir.join(&file);
            if let Ok(text) = std::fs::read_to_string(&candidate) {
                return Some((candidate.display().to_string(), text));
            }
        }
        let embedded = EMBEDDED.get_file(&file)?;
        Some((format!("{EMBEDDED_PREFIX}{file}"), embedded.contents_utf8()?.to_string()))
    }

    /// Names of the modules compiled into the binary.
    pub fn embedded_names() -> Vec<String> {
        EMBEDDED
            .files()
            .filter_map(|f| f.path().to_str())
            .filter_map(|p| p.strip_suffix(".rhai"))
            .map(str::to_string)
            .collect()
    }

    /// The source of an embedded module, by file name (`adeptia.rhai`).
    pub fn embedded(file: &str) -> Option<&'static str> {
        EMBEDDED.get_file(file)?.contents_utf8()
    }

    pub fn embedded_files() -> Vec<(String, &'static str)> {
        EMBEDDED.files().filter_map(|f| Some((f.path().to_str()?.to_string(), f.contents_utf8()?))).collect()
    }
}

/// Says once per process when a module loaded from a file shadows the one built into the
/// binary with other text: later fixes to the built-in module do not reach that copy.
fn warn_if_shadowing(label: &str, text: &str) {
    static WARNED: std::sync::OnceLock<Mutex<std::collections::HashSet<String>>> = std::sync::OnceLock::new();
    if label.starts_with(EMBEDDED_PREFIX) {
        return;
    }
    let Some(file) = Path::new(label).file_name().and_then(|f| f.to_str()) else { return };
    let Some(built_in) = Resolver::embedded(file) else { return };
    if built_in == text || !WARNED.get_or_init(Mutex::default).lock().unwrap().insert(label.to_string()) {
        return;
    }
    let line = built_in
        .lines()
        .zip(text.lines())
        .position(|(a, b)| a != b)
        .map_or_else(|| built_in.lines().count().min(text.lines().count()) + 1, |i| i + 1);
    tracing::warn!(
        "module {file} comes from {label}, which differs from the one built into drscript {} (first difference at line {line}): fixes shipped with newer versions of drscript do not reach this copy",
        env!("CARGO_PKG_VERSION")
    );
}

impl ModuleResolver for Resolver {
    fn resolve(
        &self,
        engine: &Engine,
        source: Option<&str>,
        path: &str,
        pos: Position,
    ) -> Result<Shared<Module>, Box<EvalAltResult>> {
        let (label, text) = self
            .find(source, path)
            .ok_or_else(|| Box::new(EvalAltResult::ErrorModuleNotFound(path.to_string(), pos)))?;
        if let Some(module) = self.cache.lock().unwrap().get(&label) {
            return Ok(module.clone());
        }
        self.sources.insert(&label, &text);
        warn_if_shadowing(&label, &text);
        let mut ast = engine
            .compile(&text)
            .map_err(|e| Box::new(EvalAltResult::ErrorInModule(label.clone(), Box::new(e.into()), pos)))?;
        ast.set_source(label.as_str());
        let module = Module::eval_ast_as_new(Scope::new(), &ast, engine)
            .map_err(|e| Box::new(EvalAltResult::ErrorInModule(label.clone(), e, pos)))?;
        let module: Shared<Module> = module.into();
        self.cache.lock().unwrap().insert(label, module.clone());
        Ok(module)
    }
}
