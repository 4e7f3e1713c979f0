//! What the API server does to a config map, secret or HPA a client writes, before it is stored:
//! the name checks of object metadata (a DNS subdomain, `generateName`, the namespace of the
//! URL), a secret's `stringData` folded into base64 `data` (and dropped) with `type` defaulting to
//! `Opaque` and immutable after, `data` keys that are valid config keys, base64 that decodes
//! (a 400 otherwise, as the decoder refuses it), the keys a typed secret needs (`tls.crt`,
//! `tls.key`, …), `immutable: true` refusing changes of data, and an HPA's defaults and checks
//! (`hpa.rs`). `fieldValidation=Strict` (what kubectl sends) refuses unknown top-level fields
//! (and unknown HPA spec fields) with 400, `Warn` answers them with a `Warning` header.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value, json};

use super::hpa;
use super::store::Res;
use super::validate::{FieldError, Refusal};

const DNS1123_SUBDOMAIN: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const CONFIG_KEY: &str = "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')";

/// Whether `name` is a DNS-1123 subdomain, as object names of these kinds must be.
pub fn is_dns_subdomain(name: &str) -> bool {
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    name.len() <= 253 && name.split('.').all(label_ok)
}

fn config_key_errors(field: &str, key: &str) -> Vec<FieldError> {
    let path = format!("{field}[{key}]");
    let mut errors = Vec::new();
    if key.len() > 253 {
        errors.push(FieldError::invalid(&path, &json!(key), "must be no more than 253 characters"));
    }
    if key.is_empty() || !key.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')) {
        errors.push(FieldError::invalid(&path, &json!(key), CONFIG_KEY));
    }
    if key == "." {
        errors.push(FieldError::invalid(&path, &json!(key), "must not be '.'"));
    } else if key == ".." {
        errors.push(FieldError::invalid(&path, &json!(key), "must not be '..'"));
    } else if key.starts_with("..") {
        errors.push(FieldError::invalid(&path, &json!(key), "must not start with '..'"));
    }
    errors
}

/// A body the decoder refuses: 400 `KIND in version "V" cannot be handled as a KIND: …`.
fn undecodable(res: Res, version: &str, why: &str) -> Refusal {
    let kind = res.kind();
    Refusal::bad_request(format!("{kind} in version \"{version}\" cannot be handled as a {kind}: {why}"))
}

/// The fields each kind has at the top and (for HPAs) in its spec, for `fieldValidation`.
fn known_fields(res: Res) -> (&'static [&'static str], &'static [&'static str]) {
    const META: [&str; 3] = ["apiVersion", "kind", "metadata"];
    match res {
        Res::ConfigMap => (&[META[0], META[1], META[2], "data", "binaryData", "immutable"], &[]),
        Res::Secret => (&[META[0], META[1], META[2], "data", "stringData", "type", "immutable"], &[]),
        Res::HorizontalPodAutoscaler => (
            &[META[0], META[1], META[2], "spec", "status"],
            &["scaleTargetRef", "minReplicas", "maxReplicas", "metrics", "behavior", "targetCPUUtilizationPercentage"],
        ),
        _ => (&[], &[]),
    }
}

/// The unknown fields of a body, as the strict decoder names them (`.spec.foo`).
pub fn unknown_fields(res: Res, body: &Value) -> Vec<String> {
    let (top, spec) = known_fields(res);
    let mut unknown = Vec::new();
    for k in body.as_object().into_iter().flat_map(Map::keys) {
        if !top.contains(&k.as_str()) {
            unknown.push(k.clone());
        }
    }
    if !spec.is_empty() {
        for k in body["spec"].as_object().into_iter().flat_map(Map::keys) {
            if !spec.contains(&k.as_str()) {
                unknown.push(format!("spec.{k}"));
            }
        }
    }
    unknown
}

/// `fieldValidation`: `Strict` refuses unknown fields (400), `Warn` returns them as warnings,
/// `Ignore` (or none) drops them silently.
pub fn field_validation(res: Res, mode: Option<&str>, body: &Value) -> Result<Vec<String>, Refusal> {
    let unknown = unknown_fields(res, body);
    match mode {
        Some("Strict") if !unknown.is_empty() => {
            let list: Vec<String> = unknown.iter().map(|f| format!("unknown field \"{f}\"")).collect();
            Err(Refusal::bad_request(format!("strict decoding error: {}", list.join(", "))))
        }
        Some("Warn") => Ok(unknown.iter().map(|f| format!("unknown field \"{f}\"")).collect()),
        Some("Strict" | "Ignore") | None => Ok(Vec::new()),
        Some(other) => Err(Refusal::bad_request(format!(
            "fieldValidation parameter unsupported: {other}. Valid values are \"Strict\", \"Warn\" and \"Ignore\""
        ))),
    }
}

/// The object to store for a body `body` (in `version`) written to `ns`: `stored` is the object
/// it replaces (`None` on create). Status is the stored one (or empty), as a write of the main
/// resource cannot set it.
pub fn prepare(res: Res, version: &str, ns: &str, body: Value, stored: Option<&Value>) -> Result<Value, Refusal> {
    let mut object = match res {
        Res::HorizontalPodAutoscaler if version == "v1" => hpa::from_v1(&body, stored),
        _ => body,
    };
    if !object.is_object() {
        return Err(undecodable(res, version, "the body is not a JSON object"));
    }
    if !object["metadata"].is_object() {
        object["metadata"] = json!({});
    }
    if let Some(body_ns) = object["metadata"]["namespace"].as_str().filter(|n| !n.is_empty())
        && body_ns != ns
    {
        return Err(Refusal::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request".to_string(),
        ));
    }
    object["metadata"]["namespace"] = json!(ns);
    let name = object["metadata"]["name"].as_str().unwrap_or_default().to_string();
    if name.is_empty() {
        return Err(Refusal::invalid_all(
            res,
            "",
            &[FieldError::required("metadata.name", "name or generateName is required")],
        ));
    }
    if !is_dns_subdomain(&name) {
        return Err(Refusal::invalid_all(
            res,
            &name,
            &[FieldError::invalid("metadata.name", &json!(name), DNS1123_SUBDOMAIN)],
        ));
    }
    for field in ["uid", "resourceVersion", "creationTimestamp", "generation", "managedFields"] {
        if stored.is_none()
            && let Some(m) = object["metadata"].as_object_mut()
        {
            m.remove(field);
        }
    }
    match res {
        Res::ConfigMap => config_map(version, &name, &mut object, stored)?,
        Res::Secret => secret(version, &name, &mut object, stored)?,
        Res::HorizontalPodAutoscaler => {
            hpa::default(&mut object);
            hpa::validate(&name, &object)?;
            object["status"] = stored.map_or(json!({"desiredReplicas": 0}), |s| s["status"].clone());
        }
        _ => {}
    }
    Ok(object)
}

fn string_map(res: Res, version: &str, object: &Value, field: &str) -> Result<Map<String, Value>, Refusal> {
    match &object[field] {
        Value::Null => Ok(Map::new()),
        Value::Object(m) => {
            if let Some((k, v)) = m.iter().find(|(_, v)| !v.is_string()) {
                return Err(undecodable(
                    res,
                    version,
                    &format!(
                        "json: cannot unmarshal {v} into Go struct field {}.{field} of type string (key {k:?})",
                        res.kind()
                    ),
                ));
            }
            Ok(m.clone())
        }
        other => Err(undecodable(
            res,
            version,
            &format!("json: cannot unmarshal {other} into Go struct field {}.{field} of type map[string]", res.kind()),
        )),
    }
}

/// Base64 values decode, as Go's `[]byte` does; the first bad one is refused.
fn check_base64(res: Res, version: &str, values: &Map<String, Value>) -> Result<(), Refusal> {
    for v in values.values() {
        let text = v.as_str().unwrap_or_default();
        if let Err(e) = STANDARD.decode(text) {
            let at = match e {
                base64::DecodeError::InvalidByte(i, _) | base64::DecodeError::InvalidLastSymbol(i, _) => i,
                _ => text.len().saturating_sub(text.len() % 4),
            };
            return Err(undecodable(res, version, &format!("illegal base64 data at input byte {at}")));
        }
    }
    Ok(())
}

fn immutable_errors(object: &Value, stored: Option<&Value>, data_fields: &[&str]) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let Some(old) = stored.filter(|o| o["immutable"] == true) else { return errors };
    if object["immutable"] != true {
        errors.push(FieldError::forbidden("immutable", "field is immutable when `immutable` is set"));
    }
    for field in data_fields {
        let empty = |v: &Value| v.is_null() || v.as_object().is_some_and(Map::is_empty);
        if object[*field] != old[*field] && !(empty(&object[*field]) && empty(&old[*field])) {
            errors.push(FieldError::forbidden(field, "field is immutable when `immutable` is set"));
        }
    }
    errors
}

fn config_map(version: &str, name: &str, object: &mut Value, stored: Option<&Value>) -> Result<(), Refusal> {
    let res = Res::ConfigMap;
    let data = string_map(res, version, object, "data")?;
    let binary = string_map(res, version, object, "binaryData")?;
    check_base64(res, version, &binary)?;
    let mut errors = Vec::new();
    for k in data.keys() {
        errors.extend(config_key_errors("data", k));
    }
    for k in binary.keys() {
        errors.extend(config_key_errors("binaryData", k));
        if data.contains_key(k) {
            errors.push(FieldError::invalid(
                &format!("data[{k}]"),
                &json!(k),
                "duplicate of key present in binaryData",
            ));
        }
    }
    errors.extend(immutable_errors(object, stored, &["data", "binaryData"]));
    if errors.is_empty() { Ok(()) } else { Err(Refusal::invalid_all(res, name, &errors)) }
}

fn secret(version: &str, name: &str, object: &mut Value, stored: Option<&Value>) -> Result<(), Refusal> {
    let res = Res::Secret;
    let mut data = string_map(res, version, object, "data")?;
    check_base64(res, version, &data)?;
    let string_data = string_map(res, version, object, "stringData")?;
    let mut errors = Vec::new();
    for k in data.keys() {
        errors.extend(config_key_errors("data", k));
    }
    for (k, v) in &string_data {
        errors.extend(config_key_errors("stringData", k));
        // The conversion writes stringData over data, key by key.
        data.insert(k.clone(), json!(STANDARD.encode(v.as_str().unwrap_or_default())));
    }
    if let Some(m) = object.as_object_mut() {
        m.remove("stringData");
    }
    if data.is_empty() {
        object.as_object_mut().map(|m| m.remove("data"));
    } else {
        object["data"] = Value::Object(data.clone());
    }
    let kind = match object["type"].as_str().filter(|t| !t.is_empty()) {
        Some(t) => t.to_string(),
        None => "Opaque".to_string(),
    };
    object["type"] = json!(kind);
    if let Some(old) = stored
        && old["type"] != object["type"]
    {
        errors.push(FieldError::invalid("type", &object["type"], "field is immutable"));
    }
    let needs: &[&str] = match kind.as_str() {
        "kubernetes.io/tls" => &["tls.crt", "tls.key"],
        "kubernetes.io/dockerconfigjson" => &[".dockerconfigjson"],
        "kubernetes.io/dockercfg" => &[".dockercfg"],
        "kubernetes.io/ssh-auth" => &["ssh-privatekey"],
        "kubernetes.io/basic-auth" if !data.contains_key("username") && !data.contains_key("password") => {
            &["username", "password"]
        }
        _ => &[],
    };
    for k in needs.iter().filter(|k| !data.contains_key(**k)) {
        errors.push(FieldError::required(&format!("data[{k}]"), ""));
    }
    errors.extend(immutable_errors(object, stored, &["data"]));
    if errors.is_empty() { Ok(()) } else { Err(Refusal::invalid_all(res, name, &errors)) }
}

/// The object as a client of `version` sees it.
pub fn present(res: Res, version: &str, object: &Value) -> Value {
    match res {
        Res::HorizontalPodAutoscaler if version == "v1" => hpa::to_v1(object),
        _ => object.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_data_is_folded_into_base64_data_and_type_defaults_to_opaque() {
        let body = json!({"metadata": {"name": "s"}, "data": {"a": "eA=="}, "stringData": {"k": "v", "a": "y"}});
        let s = prepare(Res::Secret, "v1", "ns", body, None).unwrap();
        assert_eq!(s["data"], json!({"a": "eQ==", "k": "dg=="}));
        assert!(s.get("stringData").is_none());
        assert_eq!(s["type"], "Opaque");
        let mut changed = s.clone();
        changed["type"] = json!("kubernetes.io/tls");
        let r = prepare(Res::Secret, "v1", "ns", changed, Some(&s)).unwrap_err();
        assert!(r.message.contains("type: Invalid value: \"kubernetes.io/tls\": field is immutable"), "{}", r.message);
        let bad = json!({"metadata": {"name": "s"}, "data": {"a": "not base64!"}});
        let r = prepare(Res::Secret, "v1", "ns", bad, None).unwrap_err();
        assert_eq!(r.code, 400);
        assert!(
            r.message.starts_with("Secret in version \"v1\" cannot be handled as a Secret: illegal base64"),
            "{}",
            r.message
        );
    }

    #[test]
    fn names_keys_and_immutability_are_checked() {
        let r = prepare(Res::ConfigMap, "v1", "ns", json!({"metadata": {"name": "Bad_Name"}}), None).unwrap_err();
        assert!(
            r.message.starts_with("ConfigMap \"Bad_Name\" is invalid: metadata.name: Invalid value"),
            "{}",
            r.message
        );
        let r = prepare(Res::ConfigMap, "v1", "ns", json!({"metadata": {"name": "c"}, "data": {"a b": "x"}}), None)
            .unwrap_err();
        assert!(r.message.contains("data[a b]: Invalid value: \"a b\": a valid config key"), "{}", r.message);
        let frozen = json!({"metadata": {"name": "c"}, "data": {"a": "1"}, "immutable": true});
        let stored = prepare(Res::ConfigMap, "v1", "ns", frozen.clone(), None).unwrap();
        let mut changed = frozen;
        changed["data"]["a"] = json!("2");
        let r = prepare(Res::ConfigMap, "v1", "ns", changed, Some(&stored)).unwrap_err();
        assert!(r.message.contains("data: Forbidden: field is immutable when `immutable` is set"), "{}", r.message);
        let r = prepare(Res::ConfigMap, "v1", "other", json!({"metadata": {"name": "c", "namespace": "ns"}}), None)
            .unwrap_err();
        assert_eq!(r.code, 400);
    }

    #[test]
    fn strict_field_validation_names_unknown_fields() {
        let body = json!({"metadata": {"name": "c"}, "dta": {}});
        let r = field_validation(Res::ConfigMap, Some("Strict"), &body).unwrap_err();
        assert_eq!(r.message, "strict decoding error: unknown field \"dta\"");
        assert_eq!(field_validation(Res::ConfigMap, Some("Warn"), &body).unwrap(), vec!["unknown field \"dta\""]);
        assert!(field_validation(Res::ConfigMap, None, &body).unwrap().is_empty());
    }
}
