//! Applying a PATCH body by its content type, as kubectl and kube-rs send them.
//!
//! Strategic merge patch is applied as a JSON merge patch: for the fields DR changes (replicas,
//! a container's env value by list replacement) the result is the same; the list merge keys of
//! the strategic form (merge containers by name) are the documented gap.

use serde_json::Value;

#[derive(Debug)]
pub enum PatchError {
    /// 415: server-side apply and anything unknown.
    Unsupported(String),
    /// 400/422: the body is not valid for its content type.
    Invalid(String),
}

pub fn apply(content_type: &str, target: &mut Value, body: &[u8]) -> Result<(), PatchError> {
    let media = content_type.split(';').next().unwrap_or("").trim();
    match media {
        "application/merge-patch+json" | "application/strategic-merge-patch+json" => {
            let patch: Value = serde_json::from_slice(body)
                .map_err(|e| PatchError::Invalid(format!("invalid JSON patch body: {e}")))?;
            if !patch.is_object() {
                return Err(PatchError::Invalid("a merge patch must be a JSON object".to_string()));
            }
            json_patch::merge(target, &patch);
            Ok(())
        }
        "application/json-patch+json" => {
            let ops: json_patch::Patch = serde_json::from_slice(body)
                .map_err(|e| PatchError::Invalid(format!("invalid JSON patch: {e}")))?;
            json_patch::patch(target, &ops).map_err(|e| PatchError::Invalid(format!("JSON patch failed: {e}")))
        }
        "application/apply-patch+yaml" => Err(PatchError::Unsupported(
            "server-side apply is not supported by the drscript sandbox".to_string(),
        )),
        other => Err(PatchError::Unsupported(format!("the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json (got `{other}`)"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn all_three_patch_types_set_replicas() {
        for (ct, body) in [
            ("application/merge-patch+json", r#"{"spec":{"replicas":0}}"#),
            ("application/strategic-merge-patch+json", r#"{"spec":{"replicas":0}}"#),
            ("application/json-patch+json", r#"[{"op":"replace","path":"/spec/replicas","value":0}]"#),
        ] {
            let mut doc = json!({"spec": {"replicas": 2}});
            apply(ct, &mut doc, body.as_bytes()).unwrap();
            assert_eq!(doc["spec"]["replicas"], 0, "{ct}");
        }
        let mut doc = json!({});
        assert!(matches!(apply("application/apply-patch+yaml", &mut doc, b"{}"), Err(PatchError::Unsupported(_))));
        assert!(matches!(apply("application/json-patch+json", &mut doc, b"[{\"op\":\"test\",\"path\":\"/x\",\"value\":1}]"), Err(PatchError::Invalid(_))));
    }
}
