//! Applying a PATCH body by its content type, as kubectl and kube-rs send them.
//!
//! Strategic merge patch is a JSON merge patch whose lists of objects are merged by their merge
//! key instead of replaced: here `name` (containers, env, volumes, volume mounts) and
//! `containerPort`, which covers what `kubectl set env`, `set image` and `scale` send. The
//! `$setElementOrder` and `$retainKeys` directives are ignored; `$patch: delete` on a list item
//! removes it.

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
            if media == "application/merge-patch+json" {
                json_patch::merge(target, &patch);
            } else {
                strategic_merge(target, &patch);
            }
            Ok(())
        }
        "application/json-patch+json" => {
            let ops: json_patch::Patch =
                serde_json::from_slice(body).map_err(|e| PatchError::Invalid(format!("invalid JSON patch: {e}")))?;
            json_patch::patch(target, &ops).map_err(|e| PatchError::Invalid(format!("JSON patch failed: {e}")))
        }
        "application/apply-patch+yaml" => {
            Err(PatchError::Unsupported("server-side apply is not supported by the drscript sandbox".to_string()))
        }
        other => Err(PatchError::Unsupported(format!(
            "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json (got `{other}`)"
        ))),
    }
}

const MERGE_KEYS: &[&str] = &["name", "containerPort"];

fn merge_key(items: &[Value]) -> Option<&'static str> {
    MERGE_KEYS.iter().copied().find(|k| !items.is_empty() && items.iter().all(|i| i.get(k).is_some()))
}

fn strategic_merge(target: &mut Value, patch: &Value) {
    let Some(patch) = patch.as_object() else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(serde_json::Map::new());
    }
    let Some(object) = target.as_object_mut() else { return };
    for (key, value) in patch {
        if key.starts_with("$setElementOrder/") || key == "$retainKeys" || key == "$patch" {
            continue;
        }
        if value.is_null() {
            object.remove(key);
            continue;
        }
        match (object.get_mut(key), value) {
            (Some(Value::Array(current)), Value::Array(items))
                if merge_key(items).is_some() && merge_key(current).is_some() =>
            {
                let k = merge_key(items).unwrap_or("name");
                for item in items {
                    let position = current.iter().position(|c| c.get(k) == item.get(k));
                    let delete = item.get("$patch").and_then(Value::as_str) == Some("delete");
                    match (position, delete) {
                        (Some(i), true) => {
                            current.remove(i);
                        }
                        (Some(i), false) => strategic_merge(&mut current[i], item),
                        (None, false) => {
                            let mut fresh = Value::Object(serde_json::Map::new());
                            strategic_merge(&mut fresh, item);
                            current.push(fresh);
                        }
                        (None, true) => {}
                    }
                }
            }
            (Some(existing @ Value::Object(_)), Value::Object(_)) => strategic_merge(existing, value),
            _ => {
                let mut fresh = value.clone();
                if value.is_object() {
                    // Strips directives and nulls from a new sub-object.
                    fresh = Value::Null;
                    strategic_merge(&mut fresh, value);
                }
                object.insert(key.clone(), fresh);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strategic_merge_merges_containers_and_env_by_name() {
        let mut doc = json!({"spec": {"containers": [
            {"name": "a", "image": "x:1", "env": [{"name": "Q", "value": "pause"}, {"name": "K", "value": "1"}]},
            {"name": "b", "image": "y:1"}
        ]}});
        let patch = json!({"spec": {"containers": [
            {"name": "a", "env": [{"name": "Q", "value": "run"}, {"name": "K", "$patch": "delete"}], "$setElementOrder/env": [{"name": "Q"}]}
        ]}});
        apply("application/strategic-merge-patch+json", &mut doc, patch.to_string().as_bytes()).unwrap();
        assert_eq!(doc["spec"]["containers"][0]["image"], "x:1");
        assert_eq!(doc["spec"]["containers"][0]["env"], json!([{"name": "Q", "value": "run"}]));
        assert_eq!(doc["spec"]["containers"][1]["image"], "y:1");
        // A plain merge patch replaces the list.
        apply("application/merge-patch+json", &mut doc, br#"{"spec":{"containers":[{"name":"c"}]}}"#).unwrap();
        assert_eq!(doc["spec"]["containers"], json!([{"name": "c"}]));
    }

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
        assert!(matches!(
            apply("application/json-patch+json", &mut doc, b"[{\"op\":\"test\",\"path\":\"/x\",\"value\":1}]"),
            Err(PatchError::Invalid(_))
        ));
    }
}
