//! The static check run before anything executes: unknown functions (with the nearest known
//! name), calls with the wrong number of arguments, and literal arguments of the wrong type.
//!
//! Rhai resolves functions only when a call runs, so without this check a typo in step 9 of a
//! failover would surface after steps 1–8 had already changed production. The check is
//! conservative: it only reports what is certainly wrong (plain calls, not method calls, and only
//! literal arguments for types).

use std::collections::{BTreeMap, HashMap, HashSet};

use rhai::{AST, ASTNode, Engine, Expr, FnCallExpr, Position, Stmt};

use crate::modules::Resolver;
use drscript_base::diagnostic;

/// Functions handled by the engine itself rather than registered ones.
const BUILTINS: &[&str] = &[
    "Fn",
    "call",
    "curry",
    "type_of",
    "print",
    "debug",
    "eval",
    "is_def_var",
    "is_def_fn",
    "is_shared",
    "throw",
    "this",
    "global",
];

/// A registered function's shape, from the engine's metadata.
#[derive(Debug, Clone)]
pub struct Signature {
    pub name: String,
    pub params: Vec<(String, String)>,
    pub return_type: String,
    pub doc: String,
}

/// Every registered function (standard packages included), by name.
pub fn signatures(engine: &Engine) -> BTreeMap<String, Vec<Signature>> {
    signatures_with(engine, true)
}

/// Registered functions by name; drscript's own only unless `include_std`.
pub fn signatures_with(engine: &Engine, include_std: bool) -> BTreeMap<String, Vec<Signature>> {
    let json = engine.gen_fn_metadata_to_json(include_std).unwrap_or_default();
    let value: serde_json::Value = serde_json::from_str(&json).unwrap_or_default();
    let mut map: BTreeMap<String, Vec<Signature>> = BTreeMap::new();
    for f in value["functions"].as_array().into_iter().flatten() {
        let name = f["name"].as_str().unwrap_or_default().to_string();
        let params = f["params"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| (p["name"].as_str().unwrap_or("_").to_string(), p["type"].as_str().unwrap_or("?").to_string()))
            .collect();
        let doc = f["docComments"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|d| d.as_str())
            .flat_map(|d| d.lines())
            .map(|l| l.trim_start().trim_start_matches("///").trim_start_matches("/**").trim_end_matches("*/"))
            .map(|l| l.strip_prefix(' ').unwrap_or(l))
            .collect::<Vec<_>>()
            .join("\n");
        let return_type = f["returnType"].as_str().unwrap_or("").to_string();
        let entry = map.entry(name.clone()).or_default();
        if !entry.iter().any(|s| s.params == params) {
            entry.push(Signature { name, params, return_type, doc });
        }
    }
    map
}

/// Checks `ast`; returns rendered problems (empty when all is well).
pub fn check(engine: &Engine, resolver: &Resolver, ast: &AST, label: &str, source: &str) -> Vec<String> {
    let registered = signatures(engine);
    let mut script_fns: HashMap<String, HashSet<usize>> = HashMap::new();
    let mut variables: HashSet<String> = HashSet::new();
    for f in ast.iter_functions() {
        script_fns.entry(f.name.to_string()).or_default().insert(f.params.len());
        variables.extend(f.params.iter().map(|p| p.to_string()));
    }
    let mut imports: HashMap<String, String> = HashMap::new();
    let mut calls: Vec<(FnCallExpr, Position)> = Vec::new();
    ast.walk(&mut |path: &[ASTNode]| {
        match path.last() {
            Some(ASTNode::Stmt(Stmt::Var(x, ..))) => {
                variables.insert(x.0.name.to_string());
            }
            Some(ASTNode::Stmt(Stmt::Import(x, _))) => {
                if let Expr::StringConstant(module, _) = &x.0 {
                    imports.insert(x.1.name.to_string(), module.to_string());
                }
            }
            Some(ASTNode::Stmt(Stmt::FnCall(call, pos))) | Some(ASTNode::Expr(Expr::FnCall(call, pos))) => {
                calls.push(((**call).clone(), *pos));
            }
            _ => {}
        }
        true
    });

    let mut module_fns: HashMap<String, Result<HashMap<String, HashSet<usize>>, String>> = HashMap::new();
    let mut broken_modules: HashSet<String> = HashSet::new();
    let mut problems = Vec::new();
    let mut report = |pos: Position, message: String| {
        problems.push(diagnostic::render(
            label,
            source,
            pos.line().unwrap_or(1),
            pos.position().unwrap_or(1),
            &message,
        ));
    };

    for (call, pos) in calls {
        let name = call.name.as_str();
        if call.op_token.is_some() || name.contains('$') || !is_identifier(name) {
            continue;
        }
        let arity = call.args.len();
        if !call.namespace.is_empty() {
            let alias = call.namespace.root().to_string();
            let Some(module) = imports.get(&alias) else { continue };
            let fns =
                module_fns.entry(alias.clone()).or_insert_with(|| module_functions(engine, resolver, label, module));
            let fns = match fns {
                Ok(fns) => fns,
                Err(problem) => {
                    // Once per module: every later call of it has the same cause.
                    if broken_modules.insert(alias.clone()) {
                        report(pos, format!("module \"{module}\" (imported as {alias}) {problem}"));
                    }
                    continue;
                }
            };
            match fns.get(name) {
                Some(arities) if arities.contains(&arity) => {}
                Some(arities) => {
                    report(pos, format!("{alias}::{name} takes {} argument(s), not {arity}", join(arities)))
                }
                None => report(
                    pos,
                    format!(
                        "unknown function {alias}::{name}{}",
                        suggest(name, fns.keys().map(String::as_str))
                            .map(|s| format!(" (did you mean {alias}::{s}?)"))
                            .unwrap_or_default()
                    ),
                ),
            }
            continue;
        }
        if BUILTINS.contains(&name) || variables.contains(name) {
            continue;
        }
        if let Some(arities) = script_fns.get(name) {
            if !arities.contains(&arity) && !registered.contains_key(name) {
                report(pos, format!("function {name} takes {} argument(s), not {arity}", join(arities)));
            }
            continue;
        }
        let Some(overloads) = registered.get(name) else {
            let known = registered.keys().map(String::as_str).chain(script_fns.keys().map(String::as_str));
            let hint = suggest(name, known).map(|s| format!(" (did you mean `{s}`?)")).unwrap_or_default();
            report(pos, format!("unknown function `{name}`{hint}"));
            continue;
        };
        let same_arity: Vec<&Signature> = overloads.iter().filter(|s| s.params.len() == arity).collect();
        if same_arity.is_empty() {
            let arities: HashSet<usize> = overloads.iter().map(|s| s.params.len()).collect();
            report(pos, format!("`{name}` takes {} argument(s), not {arity}: {}", join(&arities), shapes(overloads)));
            continue;
        }
        let literal_kinds: Vec<Option<&str>> = call.args.iter().map(literal_kind).collect();
        let fits = same_arity.iter().any(|sig| {
            sig.params.iter().zip(&literal_kinds).all(|((_, ty), kind)| kind.is_none_or(|k| accepts(ty, k)))
        });
        if !fits {
            let (index, kind) = literal_kinds
                .iter()
                .enumerate()
                .find_map(|(i, k)| k.filter(|k| same_arity.iter().all(|s| !accepts(&s.params[i].1, k))).map(|k| (i, k)))
                .unwrap_or((0, "value"));
            let at = call.args.get(index).map_or(pos, Expr::start_position);
            report(
                at,
                format!(
                    "wrong argument type: argument {} of `{name}` is {} {kind}; expected {}",
                    index + 1,
                    if kind.starts_with(['a', 'e', 'i', 'o', 'u']) { "an" } else { "a" },
                    shapes(&same_arity.into_iter().cloned().collect::<Vec<_>>())
                ),
            );
        }
    }
    problems
}

fn module_functions(
    engine: &Engine,
    resolver: &Resolver,
    importer: &str,
    module: &str,
) -> Result<HashMap<String, HashSet<usize>>, String> {
    let (label, text) = resolver.find(Some(importer), module).ok_or("cannot be found")?;
    let ast = engine.compile(&text).map_err(|e| {
        let pos = e.position();
        format!(
            "does not compile: {} at {label}:{}:{}",
            e.err_type(),
            pos.line().unwrap_or(1),
            pos.position().unwrap_or(1)
        )
    })?;
    let mut fns: HashMap<String, HashSet<usize>> = HashMap::new();
    for f in ast.iter_functions() {
        if f.access != rhai::FnAccess::Private {
            fns.entry(f.name.to_string()).or_default().insert(f.params.len());
        }
    }
    Ok(fns)
}

/// The functions that run a switch from a list of steps, and where the list is among their
/// arguments.
const SWITCHES: &[(&str, usize, usize)] = &[("failover", 1, 0), ("failback", 1, 0), ("switch_between", 3, 2)];

/// What the DR document requires of the steps a script hands to `failover`, `failback` or
/// `switch_between` (see [`crate::steps`]), read from the script's text: warnings pointing at
/// the call, for `drscript check`. Steps built elsewhere than in the call's list literal are
/// not seen (the run says the same at its start).
pub fn switch_warnings(ast: &AST, label: &str, source: &str) -> Vec<String> {
    let mut out = Vec::new();
    ast.walk(&mut |path: &[ASTNode]| {
        let call = match path.last() {
            Some(ASTNode::Stmt(Stmt::FnCall(call, pos))) | Some(ASTNode::Expr(Expr::FnCall(call, pos))) => {
                Some((call, *pos))
            }
            _ => None,
        };
        if let Some((call, pos)) = call
            && let Some((_, _, at)) =
                SWITCHES.iter().find(|(name, arity, _)| call.name.as_str() == *name && call.args.len() == *arity)
            && let Expr::Array(items, _) = &call.args[*at]
        {
            let steps: Vec<_> = items.iter().filter_map(step_shape).collect();
            for problem in crate::steps::requirements(&steps) {
                let message = problem.replace("{source}", "the source").replace("{target}", "the target");
                out.push(diagnostic::render_as(
                    "warning",
                    label,
                    source,
                    pos.line().unwrap_or(1),
                    pos.position().unwrap_or(1),
                    &message,
                ));
            }
        }
        true
    });
    out
}

/// A call of a step builder (`ac::scale_down("...", "source", ["runtime"])`) as the rules see
/// it; `None` for anything else.
fn step_shape(expr: &Expr) -> Option<crate::steps::Shape> {
    let Expr::FnCall(call, _) = expr else { return None };
    let kind = call.name.as_str();
    if !crate::steps::BUILDERS.contains(&kind) {
        return None;
    }
    let text = |i: usize| match call.args.get(i) {
        Some(Expr::StringConstant(s, _)) => s.to_string(),
        _ => String::new(),
    };
    let children = |i: usize| match call.args.get(i) {
        Some(Expr::Array(items, _)) => items.iter().filter_map(step_shape).collect(),
        _ => Vec::new(),
    };
    let sided = ["scale_down", "scale_up", "pause", "resume"].contains(&kind);
    Some(crate::steps::Shape {
        kind: kind.to_string(),
        name: text(0),
        side: if sided { text(1) } else { String::new() },
        components: match call.args.get(2) {
            Some(Expr::Array(items, _)) => items
                .iter()
                .filter_map(|e| match e {
                    Expr::StringConstant(s, _) => Some(s.to_string()),
                    _ => None,
                })
                .collect(),
            // An array of literals, folded into one constant by the optimizer.
            Some(Expr::DynamicConstant(v, _)) => v
                .clone()
                .try_cast::<rhai::Array>()
                .unwrap_or_default()
                .into_iter()
                .filter_map(|c| c.into_string().ok())
                .collect(),
            _ => Vec::new(),
        },
        children: if kind == "together" { children(1) } else { Vec::new() },
    })
}

fn is_identifier(name: &str) -> bool {
    name.chars().next().is_some_and(|c| c.is_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_alphanumeric() || c == '_')
}

fn literal_kind(expr: &Expr) -> Option<&'static str> {
    match expr {
        Expr::StringConstant(..) | Expr::InterpolatedString(..) => Some("string"),
        Expr::IntegerConstant(..) => Some("integer"),
        Expr::FloatConstant(..) => Some("float"),
        Expr::BoolConstant(..) => Some("bool"),
        Expr::CharConstant(..) => Some("char"),
        Expr::Array(..) => Some("array"),
        Expr::Map(..) => Some("map"),
        Expr::Unit(..) => Some("unit"),
        _ => None,
    }
}

/// Whether a parameter of Rust type `ty` (as the metadata spells it) takes a literal of `kind`.
fn accepts(ty: &str, kind: &str) -> bool {
    let ty = ty.trim_start_matches("&mut ").trim_start_matches('&');
    let base = ty.rsplit("::").next().unwrap_or(ty);
    match base {
        "Dynamic" | "?" | "" => true,
        "str" | "String" | "ImmutableString" => kind == "string",
        "i64" | "i32" | "u32" | "u64" | "usize" | "INT" => kind == "integer",
        "f64" | "f32" | "FLOAT" => kind == "float",
        "bool" => kind == "bool",
        "char" => kind == "char",
        "Array" => kind == "array",
        "Map" => kind == "map",
        "()" => kind == "unit",
        // FnPtr, custom types (Env, Share, ...): no literal fits (closures are not literals here).
        _ => false,
    }
}

fn shapes(overloads: &[Signature]) -> String {
    overloads
        .iter()
        .map(|s| {
            let params: Vec<String> = s.params.iter().map(|(n, t)| format!("{n}: {}", pretty_type(t))).collect();
            format!("{}({})", s.name, params.join(", "))
        })
        .collect::<Vec<_>>()
        .join(" or ")
}

/// A Rust type name as a script author knows it.
pub fn pretty_type(ty: &str) -> String {
    let ty = ty.trim();
    for wrapper in ["RhaiResult<", "RhaiResultOf<", "Result<"] {
        if let Some(inner) = ty.strip_prefix(wrapper).and_then(|t| t.strip_suffix('>')) {
            // The first generic argument, up to a top-level comma.
            let mut depth = 0;
            let end = inner
                .char_indices()
                .find(|(_, c)| {
                    match c {
                        '<' => depth += 1,
                        '>' => depth -= 1,
                        ',' if depth == 0 => return true,
                        _ => {}
                    }
                    false
                })
                .map_or(inner.len(), |(i, _)| i);
            return pretty_type(&inner[..end]);
        }
    }
    if ty == "RhaiResult" {
        return "any".into();
    }
    let ty = ty.trim_start_matches("&mut ").trim_start_matches('&');
    let base = ty.rsplit("::").next().unwrap_or(ty);
    match base {
        "str" | "String" | "ImmutableString" => "string".into(),
        "i64" | "INT" => "int".into(),
        "f64" | "FLOAT" => "float".into(),
        "FnPtr" => "closure".into(),
        "Dynamic" => "any".into(),
        other => other.into(),
    }
}

fn join(set: &HashSet<usize>) -> String {
    let mut v: Vec<usize> = set.iter().copied().collect();
    v.sort_unstable();
    v.iter().map(usize::to_string).collect::<Vec<_>>().join(" or ")
}

/// The closest name, if any is close enough to be a plausible typo.
pub fn suggest<'a>(name: &str, known: impl Iterator<Item = &'a str>) -> Option<String> {
    known
        .filter(|k| !k.contains('$') && is_identifier(k))
        .map(|k| (strsim::damerau_levenshtein(name, k), k))
        .filter(|(d, k)| *d <= 2.max(name.len() / 4) && *d < k.len().max(name.len()))
        .min_by_key(|(d, k)| (*d, k.len()))
        .map(|(_, k)| k.to_string())
}
