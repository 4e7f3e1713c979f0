//! Just enough of the Kubernetes protobuf encoding to read the one body kubectl only sends that
//! way: the `SelfSubjectAccessReview` of `kubectl auth can-i`. An envelope (`k8s\0` and a
//! `runtime.Unknown` whose field 2 holds the object), then plain protobuf messages. Everything
//! else the emulation reads and writes is JSON; other protobuf bodies are refused with 415.

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
}
