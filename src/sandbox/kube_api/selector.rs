//! Label and field selectors as the API server parses them from `?labelSelector=` and
//! `?fieldSelector=`: `k=v`, `k==v`, `k!=v`, `k`, `!k`, `k in (a,b)`, `k notin (a,b)`, joined by
//! commas.

use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Requirement {
    Eq(String, String),
    NotEq(String, String),
    Exists(String),
    NotExists(String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
}

/// A parsed label selector; the empty selector matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selector(Vec<Requirement>);

impl Selector {
    pub fn parse(text: &str) -> Result<Selector, String> {
        let mut reqs = Vec::new();
        for part in split_top_level(text) {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            reqs.push(parse_requirement(part)?);
        }
        Ok(Selector(reqs))
    }

    pub fn matches(&self, labels: &Value) -> bool {
        let get = |k: &str| labels.get(k).and_then(Value::as_str);
        self.0.iter().all(|r| match r {
            Requirement::Eq(k, v) => get(k) == Some(v.as_str()),
            Requirement::NotEq(k, v) => get(k) != Some(v.as_str()),
            Requirement::Exists(k) => get(k).is_some(),
            Requirement::NotExists(k) => get(k).is_none(),
            Requirement::In(k, vs) => get(k).is_some_and(|x| vs.iter().any(|v| v == x)),
            Requirement::NotIn(k, vs) => get(k).is_none_or(|x| vs.iter().all(|v| v != x)),
        })
    }
}

/// Splits on commas that are not inside `( )`.
fn split_top_level(text: &str) -> Vec<&str> {
    let (mut parts, mut depth, mut start) = (Vec::new(), 0, 0);
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

fn parse_requirement(part: &str) -> Result<Requirement, String> {
    let bad = || format!("unable to parse requirement: `{part}`");
    if let Some(key) = part.strip_prefix('!') {
        return Ok(Requirement::NotExists(key.trim().to_string()));
    }
    if let Some((k, v)) = part.split_once("!=") {
        return Ok(Requirement::NotEq(k.trim().to_string(), v.trim().to_string()));
    }
    if let Some((k, v)) = part.split_once("==").or_else(|| part.split_once('=')) {
        return Ok(Requirement::Eq(k.trim().to_string(), v.trim().to_string()));
    }
    for (op, notin) in [(" notin ", true), (" in ", false)] {
        if let Some((k, rest)) = part.split_once(op) {
            let rest = rest.trim();
            let inner = rest.strip_prefix('(').and_then(|r| r.strip_suffix(')')).ok_or_else(bad)?;
            let values = inner.split(',').map(|v| v.trim().to_string()).collect();
            let key = k.trim().to_string();
            return Ok(if notin { Requirement::NotIn(key, values) } else { Requirement::In(key, values) });
        }
    }
    if part.contains(char::is_whitespace) || part.contains(['(', ')']) {
        return Err(bad());
    }
    Ok(Requirement::Exists(part.to_string()))
}

/// A workload's `spec.selector` (matchLabels and matchExpressions) in the string form.
pub fn selector_string(selector: &Value) -> String {
    let mut parts = Vec::new();
    if let Some(labels) = selector["matchLabels"].as_object() {
        for (k, v) in labels {
            parts.push(format!("{k}={}", v.as_str().unwrap_or_default()));
        }
    }
    if let Some(exprs) = selector["matchExpressions"].as_array() {
        for e in exprs {
            let key = e["key"].as_str().unwrap_or_default();
            let values: Vec<&str> =
                e["values"].as_array().map(|a| a.iter().filter_map(Value::as_str).collect()).unwrap_or_default();
            match e["operator"].as_str().unwrap_or_default() {
                "In" => parts.push(format!("{key} in ({})", values.join(","))),
                "NotIn" => parts.push(format!("{key} notin ({})", values.join(","))),
                "Exists" => parts.push(key.to_string()),
                "DoesNotExist" => parts.push(format!("!{key}")),
                _ => {}
            }
        }
    }
    parts.join(",")
}

/// A field selector: only `metadata.name` and `metadata.namespace` (what kube-rs'
/// `await_condition` and kubectl send) are supported; anything else is rejected as the API server
/// rejects an unsupported field.
#[derive(Debug, Clone, Default)]
pub struct FieldSelector {
    name: Option<(String, bool)>,
    namespace: Option<(String, bool)>,
}

impl FieldSelector {
    pub fn parse(text: &str) -> Result<FieldSelector, String> {
        let mut out = FieldSelector::default();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (field, value, eq) = if let Some((f, v)) = part.split_once("!=") {
                (f, v, false)
            } else if let Some((f, v)) = part.split_once("==").or_else(|| part.split_once('=')) {
                (f, v, true)
            } else {
                return Err(format!("invalid field selector `{part}`"));
            };
            let slot = match field.trim() {
                "metadata.name" => &mut out.name,
                "metadata.namespace" => &mut out.namespace,
                other => return Err(format!("field label not supported: {other}")),
            };
            *slot = Some((value.trim().to_string(), eq));
        }
        Ok(out)
    }

    pub fn matches(&self, object: &Value) -> bool {
        let check = |slot: &Option<(String, bool)>, actual: Option<&str>| match slot {
            None => true,
            Some((v, true)) => actual == Some(v.as_str()),
            Some((v, false)) => actual != Some(v.as_str()),
        };
        check(&self.name, object["metadata"]["name"].as_str())
            && check(&self.namespace, object["metadata"]["namespace"].as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn set_and_equality_requirements() {
        let labels = json!({"app": "runtime", "tier": "backend"});
        assert!(Selector::parse("app=runtime,tier in (backend, web)").unwrap().matches(&labels));
        assert!(!Selector::parse("app=runtime,tier notin (backend)").unwrap().matches(&labels));
        assert!(Selector::parse("app,!missing").unwrap().matches(&labels));
        assert!(!Selector::parse("app!=runtime").unwrap().matches(&labels));
        assert!(Selector::parse("").unwrap().matches(&labels));
        assert!(Selector::parse("app in runtime").is_err());
    }

    #[test]
    fn workload_selector_round_trips() {
        let sel = json!({"matchLabels": {"app": "x"}, "matchExpressions": [{"key": "t", "operator": "In", "values": ["a", "b"]}]});
        let s = selector_string(&sel);
        assert!(Selector::parse(&s).unwrap().matches(&json!({"app": "x", "t": "b"})));
        assert!(!Selector::parse(&s).unwrap().matches(&json!({"app": "x", "t": "c"})));
    }

    #[test]
    fn field_selector_by_name() {
        let f = FieldSelector::parse("metadata.name=a").unwrap();
        assert!(f.matches(&json!({"metadata": {"name": "a"}})));
        assert!(!f.matches(&json!({"metadata": {"name": "b"}})));
        assert!(FieldSelector::parse("status.phase=Running").is_err());
    }
}
