//! `drscript docs`: the reference of every primitive, generated from the engine's own metadata
//! (the `///` comments of the plugin modules), as text, JSON, or editor definition files.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::cli::DocsArgs;
use crate::output::out;
use drscript_base::error::{Error, Result};
use drscript_core::engine::{self, EngineOptions};
use drscript_core::exec::{Exec, Mode};
use drscript_core::lint::{self, Signature, pretty_type};
use drscript_core::modules::Sources;

/// The primitives (drscript's own functions, not Rhai's standard library), by name.
pub fn primitives(stdlib: Option<PathBuf>) -> Result<BTreeMap<String, Vec<Signature>>> {
    let engine = docs_engine(stdlib)?;
    let mut map = lint::signatures_with(&engine, false);
    // Operators, getters and conversions are plumbing, not primitives.
    map.retain(|name, _| {
        name.chars().next().is_some_and(char::is_alphabetic)
            && !name.starts_with("get$")
            && !name.starts_with("set$")
            && !["to_string", "to_debug"].contains(&name.as_str())
    });
    Ok(map)
}

fn docs_engine(stdlib: Option<PathBuf>) -> Result<rhai::Engine> {
    let runtime = drscript_core::runner::runtime()?;
    let exec = Exec::builder(Mode::Plan, runtime.handle().clone()).build();
    Ok(engine::build(exec, &EngineOptions { script_dir: None, stdlib_dir: stdlib }, Sources::default()))
}

/// One signature as a script author reads it.
pub fn signature_line(sig: &Signature) -> String {
    let params: Vec<String> = sig.params.iter().map(|(n, t)| format!("{n}: {}", pretty_type(t))).collect();
    let ret = pretty_type(&sig.return_type);
    let ret = if ret.is_empty() || ret == "()" { String::new() } else { format!(" -> {ret}") };
    format!("{}({}){ret}", sig.name, params.join(", "))
}

/// The text of `:help NAME` and `drscript docs NAME`.
pub fn describe(name: &str, overloads: &[Signature]) -> String {
    let mut text = String::new();
    for sig in overloads {
        text.push_str(&signature_line(sig));
        text.push('\n');
    }
    let doc = overloads.iter().map(|s| s.doc.trim()).filter(|d| !d.is_empty()).collect::<Vec<_>>();
    let mut seen = Vec::new();
    for d in doc {
        if !seen.contains(&d) {
            seen.push(d);
            for line in d.lines() {
                text.push_str(&format!("    {line}\n"));
            }
        }
    }
    if seen.is_empty() {
        text.push_str(&format!("    ({name} has no description)\n"));
    }
    text
}

pub fn run(args: &DocsArgs, stdlib: Option<PathBuf>) -> Result<()> {
    if let Some(dir) = &args.definitions {
        let engine = docs_engine(stdlib)?;
        std::fs::create_dir_all(dir).map_err(|e| Error::io(format!("cannot create {}", dir.display()), e))?;
        engine
            .definitions()
            .with_headers(true)
            .write_to_dir(dir)
            .map_err(|e| Error::io(format!("cannot write definitions into {}", dir.display()), e))?;
        out(&format!("wrote Rhai definition files into {}\n", dir.display()));
        return Ok(());
    }
    let all = primitives(stdlib)?;
    let selected: Vec<(&String, &Vec<Signature>)> = match &args.name {
        None => all.iter().collect(),
        Some(name) => {
            let exact: Vec<_> = all.iter().filter(|(n, _)| *n == name).collect();
            if !exact.is_empty() {
                exact
            } else {
                let prefixed: Vec<_> = all.iter().filter(|(n, _)| n.starts_with(name.as_str())).collect();
                if prefixed.is_empty() {
                    let hint = lint::suggest(name, all.keys().map(String::as_str))
                        .map(|s| format!(" (did you mean `{s}`?)"))
                        .unwrap_or_default();
                    return Err(Error::Usage(format!(
                        "no primitive called `{name}`{hint}; `drscript docs` lists them all"
                    )));
                }
                prefixed
            }
        }
    };
    if args.json {
        let items: Vec<serde_json::Value> = selected
            .iter()
            .flat_map(|(_, sigs)| sigs.iter())
            .map(|s| {
                serde_json::json!({
                    "name": s.name,
                    "signature": signature_line(s),
                    "params": s.params.iter().map(|(n, t)| serde_json::json!({"name": n, "type": pretty_type(t)})).collect::<Vec<_>>(),
                    "returns": pretty_type(&s.return_type),
                    "doc": s.doc,
                })
            })
            .collect();
        out(&format!("{}\n", serde_json::to_string_pretty(&items).expect("json")));
        return Ok(());
    }
    let mut text = String::new();
    if args.name.is_none() {
        text.push_str(
            "drscript primitives (`drscript docs NAME` for one; the Rhai language: https://rhai.rs/book)\n\n",
        );
    }
    for (name, sigs) in selected {
        text.push_str(&describe(name, sigs));
        text.push('\n');
    }
    out(&text);
    Ok(())
}
