//! What the API server refuses on a write, before anything is stored: a body whose name or
//! namespace differs from the URL (400), a deployment whose `spec.selector` changes (422, the
//! field is immutable in apps/v1), a statefulset spec change outside the fields that may change
//! (422 Forbidden), a selector that is empty, unparsable or does not select the pod template's
//! labels (422), and a `dryRun` value other than `All` (422 on the options object). The checks
//! are written from the API server's validation rules, not from drscript's client. [`FieldError`]
//! and [`Refusal::invalid_all`] build the 422 of several causes (`is invalid: [a, b]`) that the
//! checks of config maps, secrets and HPAs (`objects.rs`, `hpa.rs`) answer with.

use serde_json::{Value, json};

use super::selector::{Selector, selector_string};
use super::store::Res;

/// A refused write: the status code, reason, message and details of the `Status` reply.
#[derive(Debug)]
pub struct Refusal {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
    pub details: Value,
}

impl Refusal {
    pub fn bad_request(message: String) -> Refusal {
        Refusal { code: 400, reason: "BadRequest", message, details: json!({}) }
    }

    /// 422 Invalid with one cause, as `errors.NewInvalid` builds it.
    pub fn invalid(res: Res, name: &str, field: &str, cause_reason: &str, detail: &str) -> Refusal {
        let qualified =
            if res.group().is_empty() { res.kind().to_string() } else { format!("{}.{}", res.kind(), res.group()) };
        Refusal {
            code: 422,
            reason: "Invalid",
            message: format!("{qualified} \"{name}\" is invalid: {field}: {detail}"),
            details: json!({
                "name": name, "group": res.group(), "kind": res.kind(),
                "causes": [{"reason": cause_reason, "message": detail, "field": field}]
            }),
        }
    }
}

/// One field's error, as `field.Error` renders it: the field, the cause reason and the detail
/// (`Invalid value: 0: must be greater than 0`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub reason: &'static str,
    pub detail: String,
}

impl FieldError {
    /// `Invalid value: VALUE: MESSAGE`; a string value is quoted, as Go's `%q` does.
    pub fn invalid(field: &str, value: &Value, message: &str) -> FieldError {
        let shown = match value {
            Value::String(s) => format!("{s:?}"),
            other => other.to_string(),
        };
        FieldError {
            field: field.to_string(),
            reason: "FieldValueInvalid",
            detail: format!("Invalid value: {shown}: {message}"),
        }
    }

    /// `Required value` (with `: MESSAGE` when there is one).
    pub fn required(field: &str, message: &str) -> FieldError {
        let detail =
            if message.is_empty() { "Required value".to_string() } else { format!("Required value: {message}") };
        FieldError { field: field.to_string(), reason: "FieldValueRequired", detail }
    }

    /// `Forbidden: MESSAGE`.
    pub fn forbidden(field: &str, message: &str) -> FieldError {
        FieldError { field: field.to_string(), reason: "FieldValueForbidden", detail: format!("Forbidden: {message}") }
    }

    /// `Unsupported value: "X": supported values: "A", "B"`.
    pub fn not_supported(field: &str, value: &str, supported: &[&str]) -> FieldError {
        let list: Vec<String> = supported.iter().map(|s| format!("{s:?}")).collect();
        FieldError {
            field: field.to_string(),
            reason: "FieldValueNotSupported",
            detail: format!("Unsupported value: {value:?}: supported values: {}", list.join(", ")),
        }
    }
}

impl Refusal {
    /// 422 Invalid with every cause, as `errors.NewInvalid` builds it: one error inline, several
    /// between brackets.
    pub fn invalid_all(res: Res, name: &str, errors: &[FieldError]) -> Refusal {
        let qualified =
            if res.group().is_empty() { res.kind().to_string() } else { format!("{}.{}", res.kind(), res.group()) };
        let shown: Vec<String> = errors.iter().map(|e| format!("{}: {}", e.field, e.detail)).collect();
        let list = if shown.len() == 1 { shown[0].clone() } else { format!("[{}]", shown.join(", ")) };
        let causes: Vec<Value> =
            errors.iter().map(|e| json!({"reason": e.reason, "message": e.detail, "field": e.field})).collect();
        Refusal {
            code: 422,
            reason: "Invalid",
            message: format!("{qualified} \"{name}\" is invalid: {list}"),
            details: json!({"name": name, "group": res.group(), "kind": res.kind(), "causes": causes}),
        }
    }
}

/// `checkName` of the API server: the object in the body must be the one in the URL.
pub fn same_object(url_ns: &str, url_name: &str, body: &Value) -> Result<(), Refusal> {
    let name = body["metadata"]["name"].as_str().unwrap_or_default();
    if name != url_name {
        return Err(Refusal::bad_request(format!(
            "the name of the object ({name}) does not match the name on the URL ({url_name})"
        )));
    }
    if let Some(ns) = body["metadata"]["namespace"].as_str().filter(|n| !n.is_empty())
        && ns != url_ns
    {
        return Err(Refusal::bad_request(format!(
            "the namespace of the provided object does not match the namespace sent on the request ({ns} vs {url_ns})"
        )));
    }
    Ok(())
}

/// A label selector shown as the API server's Go value printer shows it.
fn go_selector(selector: &Value) -> String {
    let labels: Vec<String> = selector["matchLabels"]
        .as_object()
        .map(|m| m.iter().map(|(k, v)| format!("{k:?}:{:?}", v.as_str().unwrap_or_default())).collect())
        .unwrap_or_default();
    format!(
        "v1.LabelSelector{{MatchLabels:map[string]string{{{}}}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}}",
        labels.join(", ")
    )
}

/// The checks of a deployment or statefulset `new` replacing `old`.
pub fn workload_update(res: Res, name: &str, old: &Value, new: &Value) -> Result<(), Refusal> {
    let (old_spec, new_spec) = (&old["spec"], &new["spec"]);
    match res {
        Res::Deployment if new_spec["selector"] != old_spec["selector"] => {
            return Err(Refusal::invalid(
                res,
                name,
                "spec.selector",
                "FieldValueInvalid",
                &format!("Invalid value: {}: field is immutable", go_selector(&new_spec["selector"])),
            ));
        }
        Res::StatefulSet => {
            let mutable = [
                "replicas",
                "ordinals",
                "template",
                "updateStrategy",
                "persistentVolumeClaimRetentionPolicy",
                "minReadySeconds",
            ];
            let strip = |spec: &Value| {
                let mut s = spec.clone();
                if let Some(o) = s.as_object_mut() {
                    for f in mutable {
                        o.remove(f);
                    }
                }
                s
            };
            if strip(old_spec) != strip(new_spec) {
                return Err(Refusal::invalid(
                    res,
                    name,
                    "spec",
                    "FieldValueForbidden",
                    "Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden",
                ));
            }
        }
        _ => {}
    }
    workload_spec(res, name, new)
}

/// A workload's spec on its own: a non-empty valid selector that selects the template's labels.
pub fn workload_spec(res: Res, name: &str, object: &Value) -> Result<(), Refusal> {
    let spec = &object["spec"];
    let text = selector_string(&spec["selector"]);
    if text.is_empty() {
        return Err(Refusal::invalid(
            res,
            name,
            "spec.selector",
            "FieldValueInvalid",
            &format!("Invalid value: {}: empty selector is invalid for deployment", go_selector(&spec["selector"])),
        ));
    }
    let selector = Selector::parse(&text).map_err(|e| {
        Refusal::invalid(res, name, "spec.selector", "FieldValueInvalid", &format!("Invalid value: {text:?}: {e}"))
    })?;
    let labels = &spec["template"]["metadata"]["labels"];
    if !selector.matches(labels) {
        let shown: Vec<String> = labels
            .as_object()
            .map(|m| m.iter().map(|(k, v)| format!("{k:?}:{:?}", v.as_str().unwrap_or_default())).collect())
            .unwrap_or_default();
        return Err(Refusal::invalid(
            res,
            name,
            "spec.template.metadata.labels",
            "FieldValueInvalid",
            &format!(
                "Invalid value: map[string]string{{{}}}: `selector` does not match template `labels`",
                shown.join(", ")
            ),
        ));
    }
    for field in ["progressDeadlineSeconds", "minReadySeconds", "revisionHistoryLimit"] {
        if let Some(n) = spec[field].as_i64()
            && n < 0
        {
            return Err(Refusal::invalid(
                res,
                name,
                &format!("spec.{field}"),
                "FieldValueInvalid",
                &format!("Invalid value: {n}: must be greater than or equal to 0"),
            ));
        }
    }
    if !spec["paused"].is_null() && !spec["paused"].is_boolean() {
        return Err(Refusal::bad_request(format!("spec.paused: expected a boolean, got {}", spec["paused"])));
    }
    Ok(())
}

/// Whether the request is a dry run: `dryRun=All`; anything else given is refused as the API
/// server refuses it (422 on the request's options kind: `PatchOptions`, `UpdateOptions`, ...).
pub fn dry_run(value: Option<&str>, options_kind: &str) -> Result<bool, Refusal> {
    match value {
        None => Ok(false),
        Some("All") => Ok(true),
        Some(other) => {
            let detail = format!("Unsupported value: []string{{{other:?}}}: supported values: \"All\"");
            Err(Refusal {
                code: 422,
                reason: "Invalid",
                message: format!("{options_kind}.meta.k8s.io \"\" is invalid: dryRun: {detail}"),
                details: json!({
                    "group": "meta.k8s.io", "kind": options_kind,
                    "causes": [{"reason": "FieldValueNotSupported", "message": detail, "field": "dryRun"}]
                }),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployment(selector: Value, labels: Value) -> Value {
        json!({"metadata": {"name": "d"}, "spec": {"selector": selector, "template": {"metadata": {"labels": labels}}}})
    }

    #[test]
    fn selector_change_is_refused_on_deployments_and_statefulsets() {
        let old = deployment(json!({"matchLabels": {"app": "a"}}), json!({"app": "a"}));
        let new = deployment(json!({"matchLabels": {"app": "b"}}), json!({"app": "b"}));
        let r = workload_update(Res::Deployment, "d", &old, &new).unwrap_err();
        assert_eq!((r.code, r.details["causes"][0]["field"].as_str()), (422, Some("spec.selector")));
        let r = workload_update(Res::StatefulSet, "d", &old, &new).unwrap_err();
        assert_eq!((r.code, r.details["causes"][0]["field"].as_str()), (422, Some("spec")));
        assert!(workload_update(Res::Deployment, "d", &old, &old).is_ok());
    }

    #[test]
    fn template_labels_must_be_selected_and_dry_run_must_be_all() {
        let d = deployment(json!({"matchLabels": {"app": "a"}}), json!({"app": "z"}));
        assert_eq!(workload_spec(Res::Deployment, "d", &d).unwrap_err().code, 422);
        assert!(dry_run(Some("All"), "PatchOptions").unwrap());
        let r = dry_run(Some("Server"), "PatchOptions").unwrap_err();
        assert!(r.message.starts_with("PatchOptions.meta.k8s.io \"\" is invalid: dryRun"), "{}", r.message);
    }
}
