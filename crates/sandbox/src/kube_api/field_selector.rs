//! Field selectors (`?fieldSelector=`) with the fields the API server indexes per resource:
//! `metadata.name` and `metadata.namespace` everywhere, plus `status.phase`, `spec.nodeName` and
//! `status.podIP` on pods (how "pods still running" is asked), the `involvedObject.*`, `reason`
//! and `type` fields on events (what `kubectl describe` asks) and `type` on secrets. Any other field is refused as the
//! API server refuses it (400 `field label not supported`), never ignored.

use serde_json::Value;

use super::store::Res;

/// `path = value` or `path != value`.
#[derive(Debug, Clone)]
struct Term {
    path: &'static str,
    value: String,
    equal: bool,
}

#[derive(Debug, Clone, Default)]
pub struct FieldSelector(Vec<Term>);

fn supported(res: Res) -> &'static [&'static str] {
    match res {
        Res::Pod => &["metadata.name", "metadata.namespace", "status.phase", "spec.nodeName", "status.podIP"],
        Res::Event => &[
            "metadata.name",
            "metadata.namespace",
            "involvedObject.kind",
            "involvedObject.name",
            "involvedObject.namespace",
            "involvedObject.uid",
            "involvedObject.apiVersion",
            "involvedObject.fieldPath",
            "involvedObject.resourceVersion",
            "reason",
            "type",
        ],
        Res::Secret => &["metadata.name", "metadata.namespace", "type"],
        _ => &["metadata.name", "metadata.namespace"],
    }
}

impl FieldSelector {
    pub fn parse(res: Res, text: &str) -> Result<FieldSelector, String> {
        let mut terms = Vec::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (field, value, equal) = if let Some((f, v)) = part.split_once("!=") {
                (f, v, false)
            } else if let Some((f, v)) = part.split_once("==").or_else(|| part.split_once('=')) {
                (f, v, true)
            } else {
                return Err(format!("invalid selector: '{text}'; can't understand '{part}'"));
            };
            let field = field.trim();
            let Some(path) = supported(res).iter().find(|p| **p == field) else {
                return Err(format!("field label not supported: {field}"));
            };
            terms.push(Term { path, value: value.trim().to_string(), equal });
        }
        Ok(FieldSelector(terms))
    }

    pub fn matches(&self, object: &Value) -> bool {
        self.0.iter().all(|t| {
            let actual = t.path.split('.').fold(object, |v, k| &v[k]);
            let actual = match actual {
                Value::String(s) => s.clone(),
                Value::Null => String::new(),
                other => other.to_string(),
            };
            (actual == t.value) == t.equal
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pods_by_phase_and_unknown_fields_refused() {
        let f = FieldSelector::parse(Res::Pod, "status.phase!=Running,metadata.name=a").unwrap();
        assert!(f.matches(&json!({"metadata": {"name": "a"}, "status": {"phase": "Pending"}})));
        assert!(!f.matches(&json!({"metadata": {"name": "a"}, "status": {"phase": "Running"}})));
        assert!(FieldSelector::parse(Res::Deployment, "status.phase=Running").is_err());
        assert_eq!(FieldSelector::parse(Res::Pod, "spec.foo=1").unwrap_err(), "field label not supported: spec.foo");
    }
}
