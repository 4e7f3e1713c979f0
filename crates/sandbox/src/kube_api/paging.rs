//! `limit` and `continue` on lists, as the API server serves them from etcd: a limited list
//! answers with a continue token (base64url JSON of the list's resourceVersion and the key to
//! start after); continuing reads the same consistent snapshot. Snapshots are kept for a few
//! lists only: continuing one that is gone is 410 Expired, as when etcd has compacted the
//! revision. A token that does not decode is 400, as from the real server.

use std::collections::VecDeque;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use super::store::Res;

const KEPT: usize = 32;

struct Snapshot {
    rv: u64,
    res: Res,
    ns: Option<String>,
    items: Vec<Value>,
}

#[derive(Default)]
pub struct Snapshots(VecDeque<Snapshot>);

impl Snapshots {
    pub fn keep(&mut self, rv: u64, res: Res, ns: Option<&str>, items: &[Value]) {
        if self.find(rv, res, ns).is_some() {
            return;
        }
        if self.0.len() >= KEPT {
            self.0.pop_front();
        }
        self.0.push_back(Snapshot { rv, res, ns: ns.map(str::to_string), items: items.to_vec() });
    }

    pub fn find(&self, rv: u64, res: Res, ns: Option<&str>) -> Option<Vec<Value>> {
        self.0.iter().find(|s| s.rv == rv && s.res == res && s.ns.as_deref() == ns).map(|s| s.items.clone())
    }
}

/// `/<namespace>/<name>`: where a list continues after.
pub fn key_of(object: &Value) -> String {
    format!(
        "/{}/{}",
        object["metadata"]["namespace"].as_str().unwrap_or_default(),
        object["metadata"]["name"].as_str().unwrap_or_default()
    )
}

pub fn encode(rv: u64, start_after: &str) -> String {
    URL_SAFE_NO_PAD.encode(json!({"v": "meta.k8s.io/v1", "rv": rv, "start": format!("{start_after}\u{0}")}).to_string())
}

/// The resourceVersion and the key to start after, or the reason the token is invalid.
pub fn decode(token: &str) -> Result<(u64, String), String> {
    let invalid = |why: String| format!("continue key is not valid: {why}");
    let bytes = URL_SAFE_NO_PAD.decode(token).map_err(|e| invalid(e.to_string()))?;
    let value: Value = serde_json::from_slice(&bytes).map_err(|e| invalid(e.to_string()))?;
    if value["v"] != "meta.k8s.io/v1" {
        return Err(format!("server does not recognize this encoded version {}", value["v"]));
    }
    let rv = value["rv"].as_u64().filter(|rv| *rv > 0);
    let rv = rv.ok_or_else(|| invalid("incorrect encoded start resourceVersion (version meta.k8s.io/v1)".into()))?;
    let start = value["start"].as_str().filter(|s| !s.is_empty());
    let start = start.ok_or_else(|| invalid("incorrect encoded start key (version meta.k8s.io/v1)".into()))?;
    let start = start.trim_end_matches('\u{0}');
    if !start.starts_with('/') || start.split('/').any(|p| p == ".." || p == ".") {
        return Err(format!("invalid start key: {start}"));
    }
    Ok((rv, start.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_garbage_is_refused() {
        let t = encode(1042, "/adeptia/ac-ac-event");
        assert_eq!(decode(&t).unwrap(), (1042, "/adeptia/ac-ac-event".to_string()));
        assert!(decode("not a token!").unwrap_err().starts_with("continue key is not valid"));
        assert!(decode(&URL_SAFE_NO_PAD.encode(r#"{"v":"meta.k8s.io/v1","rv":5,"start":"/../x"}"#)).is_err());
    }
}
