//! Just enough of the Kubernetes protobuf encoding to read the bodies kubectl's typed clients send
//! that way: the `SelfSubjectAccessReview` of `kubectl auth can-i`, and the config maps, secrets
//! and HPAs of `kubectl create configmap`, `kubectl create secret` and `kubectl autoscale`
//! (decoded field by field from the numbers of `k8s.io/api`'s `generated.proto`, into the JSON
//! the client would have sent). An envelope (`k8s\0` and a `runtime.Unknown` whose field 1 is the
//! type and field 2 the object), then plain protobuf messages. Everything else the emulation
//! reads and writes is JSON; other protobuf bodies are refused with 415.

use serde_json::{Value, json};

/// The length-delimited fields of one message, by number (varints and fixed-size fields skipped).
fn fields(mut bytes: &[u8]) -> Option<Vec<(u64, &[u8])>> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let key = varint(&mut bytes)?;
        match key & 7 {
            0 => {
                varint(&mut bytes)?;
            }
            1 => bytes = bytes.get(8..)?,
            5 => bytes = bytes.get(4..)?,
            2 => {
                let len = usize::try_from(varint(&mut bytes)?).ok()?;
                out.push((key >> 3, bytes.get(..len)?));
                bytes = &bytes[len..];
            }
            _ => return None,
        }
    }
    Some(out)
}

fn varint(bytes: &mut &[u8]) -> Option<u64> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let (&b, rest) = bytes.split_first()?;
        *bytes = rest;
        value |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

/// One field's payload.
enum Wire<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
}

/// Every field of one message, varints included, in order.
fn all_fields(mut bytes: &[u8]) -> Option<Vec<(u64, Wire<'_>)>> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let key = varint(&mut bytes)?;
        match key & 7 {
            0 => out.push((key >> 3, Wire::Varint(varint(&mut bytes)?))),
            1 => bytes = bytes.get(8..)?,
            5 => bytes = bytes.get(4..)?,
            2 => {
                let len = usize::try_from(varint(&mut bytes)?).ok()?;
                out.push((key >> 3, Wire::Bytes(bytes.get(..len)?)));
                bytes = &bytes[len..];
            }
            _ => return None,
        }
    }
    Some(out)
}

/// How a field decodes to JSON.
#[derive(Clone, Copy)]
enum T {
    Str,
    Int,
    Bool,
    /// `resource.Quantity`: a message whose field 1 is the string form.
    Quantity,
    Msg(&'static [F]),
    StrMap,
    /// `map<string, bytes>`: values as base64, as JSON carries `[]byte`.
    BytesMap,
    RepStr,
    RepMsg(&'static [F]),
}

/// A field: its number, its JSON name and its type.
struct F(u64, &'static str, T);

use T::{Bool, BytesMap, Int, Msg, Quantity, RepMsg, RepStr, Str, StrMap};

const META: &[F] = &[
    F(1, "name", Str),
    F(2, "generateName", Str),
    F(3, "namespace", Str),
    F(5, "uid", Str),
    F(6, "resourceVersion", Str),
    F(11, "labels", StrMap),
    F(12, "annotations", StrMap),
    F(14, "finalizers", RepStr),
];
const CONFIG_MAP: &[F] =
    &[F(1, "metadata", Msg(META)), F(2, "data", StrMap), F(3, "binaryData", BytesMap), F(4, "immutable", Bool)];
const SECRET: &[F] = &[
    F(1, "metadata", Msg(META)),
    F(2, "data", BytesMap),
    F(3, "type", Str),
    F(4, "stringData", StrMap),
    F(5, "immutable", Bool),
];
const TARGET_REF: &[F] = &[F(1, "kind", Str), F(2, "name", Str), F(3, "apiVersion", Str)];
const HPA_V1_SPEC: &[F] = &[
    F(1, "scaleTargetRef", Msg(TARGET_REF)),
    F(2, "minReplicas", Int),
    F(3, "maxReplicas", Int),
    F(4, "targetCPUUtilizationPercentage", Int),
];
const HPA_V1: &[F] = &[F(1, "metadata", Msg(META)), F(2, "spec", Msg(HPA_V1_SPEC))];
const REQUIREMENT: &[F] = &[F(1, "key", Str), F(2, "operator", Str), F(3, "values", RepStr)];
const SELECTOR: &[F] = &[F(1, "matchLabels", StrMap), F(2, "matchExpressions", RepMsg(REQUIREMENT))];
const IDENTIFIER: &[F] = &[F(1, "name", Str), F(2, "selector", Msg(SELECTOR))];
const TARGET: &[F] =
    &[F(1, "type", Str), F(2, "value", Quantity), F(3, "averageValue", Quantity), F(4, "averageUtilization", Int)];
const RESOURCE: &[F] = &[F(1, "name", Str), F(2, "target", Msg(TARGET))];
const CONTAINER_RESOURCE: &[F] = &[F(1, "name", Str), F(2, "target", Msg(TARGET)), F(3, "container", Str)];
const PODS: &[F] = &[F(1, "metric", Msg(IDENTIFIER)), F(2, "target", Msg(TARGET))];
const OBJECT: &[F] =
    &[F(1, "describedObject", Msg(TARGET_REF)), F(2, "target", Msg(TARGET)), F(3, "metric", Msg(IDENTIFIER))];
const METRIC: &[F] = &[
    F(1, "type", Str),
    F(2, "object", Msg(OBJECT)),
    F(3, "pods", Msg(PODS)),
    F(4, "resource", Msg(RESOURCE)),
    F(5, "external", Msg(PODS)),
    F(7, "containerResource", Msg(CONTAINER_RESOURCE)),
];
const POLICY: &[F] = &[F(1, "type", Str), F(2, "value", Int), F(3, "periodSeconds", Int)];
const RULES: &[F] =
    &[F(1, "selectPolicy", Str), F(2, "policies", RepMsg(POLICY)), F(3, "stabilizationWindowSeconds", Int)];
const BEHAVIOR: &[F] = &[F(1, "scaleUp", Msg(RULES)), F(2, "scaleDown", Msg(RULES))];
const HPA_V2_SPEC: &[F] = &[
    F(1, "scaleTargetRef", Msg(TARGET_REF)),
    F(2, "minReplicas", Int),
    F(3, "maxReplicas", Int),
    F(4, "metrics", RepMsg(METRIC)),
    F(5, "behavior", Msg(BEHAVIOR)),
];
const HPA_V2: &[F] = &[F(1, "metadata", Msg(META)), F(2, "spec", Msg(HPA_V2_SPEC))];

fn text(bytes: &[u8]) -> Value {
    Value::String(String::from_utf8_lossy(bytes).into_owned())
}

/// One message as JSON, by its schema; unknown fields are skipped.
fn decode(message: &[u8], schema: &[F]) -> Option<Value> {
    use base64::Engine;
    let mut out = serde_json::Map::new();
    for (number, wire) in all_fields(message)? {
        let Some(F(_, name, kind)) = schema.iter().find(|f| f.0 == number) else { continue };
        let name = (*name).to_string();
        match (kind, wire) {
            (T::Int, Wire::Varint(v)) => {
                out.insert(name, json!(v as i64 as i32));
            }
            (T::Bool, Wire::Varint(v)) => {
                out.insert(name, json!(v != 0));
            }
            // Empty strings are Go's zero values, which JSON omits.
            (T::Str, Wire::Bytes([])) => {}
            (T::Str, Wire::Bytes(b)) => {
                out.insert(name, text(b));
            }
            (T::Quantity, Wire::Bytes(b)) => {
                out.insert(name, field(b, 1).map_or(json!("0"), text));
            }
            (T::Msg(inner), Wire::Bytes(b)) => {
                out.insert(name, decode(b, inner)?);
            }
            (T::RepStr, Wire::Bytes(b)) => {
                out.entry(name).or_insert_with(|| json!([])).as_array_mut()?.push(text(b));
            }
            (T::RepMsg(inner), Wire::Bytes(b)) => {
                let item = decode(b, inner)?;
                out.entry(name).or_insert_with(|| json!([])).as_array_mut()?.push(item);
            }
            (T::StrMap | T::BytesMap, Wire::Bytes(b)) => {
                let key = field(b, 1).map(|k| String::from_utf8_lossy(k).into_owned()).unwrap_or_default();
                let value = field(b, 2).unwrap_or_default();
                let value = match kind {
                    T::BytesMap => json!(base64::engine::general_purpose::STANDARD.encode(value)),
                    _ => text(value),
                };
                out.entry(name).or_insert_with(|| json!({})).as_object_mut()?.insert(key, value);
            }
            _ => return None,
        }
    }
    Some(Value::Object(out))
}

/// A protobuf body of a config map, secret or HPA (in `version`) as the JSON the client would
/// have sent; `None` for any other resource or a body that does not decode.
pub fn object(plural: &str, version: &str, body: &[u8]) -> Option<Value> {
    let schema = match (plural, version) {
        ("configmaps", "v1") => CONFIG_MAP,
        ("secrets", "v1") => SECRET,
        ("horizontalpodautoscalers", "v1") => HPA_V1,
        ("horizontalpodautoscalers", "v2") => HPA_V2,
        _ => return None,
    };
    let unknown = body.strip_prefix(b"k8s\0")?;
    let mut object = decode(field(unknown, 2)?, schema)?;
    if let Some(type_meta) = field(unknown, 1) {
        for (n, key) in [(1, "apiVersion"), (2, "kind")] {
            if let Some(v) = field(type_meta, n).filter(|v| !v.is_empty()) {
                object[key] = text(v);
            }
        }
    }
    Some(object)
}

fn field(message: &[u8], number: u64) -> Option<&[u8]> {
    fields(message)?.into_iter().find(|(n, _)| *n == number).map(|(_, v)| v)
}

/// A `SelfSubjectAccessReview` body as the JSON kubectl would have sent.
pub fn access_review(body: &[u8]) -> Option<Value> {
    let unknown = body.strip_prefix(b"k8s\0")?;
    let review = field(unknown, 2)?;
    let spec = field(review, 2)?;
    let text =
        |message: &[u8], n: u64| field(message, n).map(|v| String::from_utf8_lossy(v).into_owned()).unwrap_or_default();
    let attributes = match field(spec, 1) {
        Some(a) => json!({
            "namespace": text(a, 1), "verb": text(a, 2), "group": text(a, 3), "version": text(a, 4),
            "resource": text(a, 5), "subresource": text(a, 6), "name": text(a, 7)
        }),
        None => Value::Null,
    };
    Some(json!({"spec": {"resourceAttributes": attributes}}))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(fields: &[(u8, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        for (n, v) in fields {
            out.push(n << 3 | 2);
            out.push(v.len() as u8);
            out.extend_from_slice(v);
        }
        out
    }

    #[test]
    fn reads_the_resource_attributes_of_a_review() {
        let attrs = message(&[(1, b"adeptia"), (2, b"patch"), (3, b"apps"), (5, b"deployments"), (6, b"scale")]);
        let spec = message(&[(1, &attrs)]);
        let review = message(&[(1, b""), (2, &spec)]);
        let mut body = b"k8s\0".to_vec();
        body.extend(message(&[(1, b"\x0a\x01x"), (2, &review)]));
        let r = access_review(&body).unwrap();
        assert_eq!(r["spec"]["resourceAttributes"]["verb"], "patch");
        assert_eq!(r["spec"]["resourceAttributes"]["subresource"], "scale");
        assert!(access_review(b"{}").is_none());
    }

    fn varint_field(n: u8, v: u8) -> Vec<u8> {
        vec![n << 3, v]
    }

    #[test]
    fn reads_a_config_map_and_an_hpa_as_kubectl_sends_them() {
        let entry = message(&[(1, b"a"), (2, b"b")]);
        let meta = message(&[(1, b"settings"), (3, b"adeptia")]);
        let config_map = message(&[(1, &meta), (2, &entry)]);
        let mut body = b"k8s\0".to_vec();
        body.extend(message(&[(1, &message(&[(1, b"v1"), (2, b"ConfigMap")])), (2, &config_map)]));
        let cm = object("configmaps", "v1", &body).unwrap();
        assert_eq!(
            cm,
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings", "namespace": "adeptia"}, "data": {"a": "b"}})
        );
        let target = message(&[(1, b"Deployment"), (2, b"web"), (3, b"apps/v1")]);
        let mut spec = message(&[(1, &target)]);
        spec.extend(varint_field(2, 1));
        spec.extend(varint_field(3, 4));
        let hpa = message(&[(1, &message(&[(1, b"web")])), (2, &spec)]);
        let mut body = b"k8s\0".to_vec();
        body.extend(message(&[(2, &hpa)]));
        let h = object("horizontalpodautoscalers", "v1", &body).unwrap();
        assert_eq!(
            h["spec"],
            json!({"scaleTargetRef": {"kind": "Deployment", "name": "web", "apiVersion": "apps/v1"}, "minReplicas": 1, "maxReplicas": 4})
        );
        assert!(object("deployments", "v1", &body).is_none());
    }
}
