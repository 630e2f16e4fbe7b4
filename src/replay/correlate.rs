//! Matching live requests to recorded ones, and carrying ids from one to the other.
//!
//! A mock peer answers a live request with the responses recorded for the most similar
//! recorded request. Similarity works on flattened JSON ([`Flat`]: leaf path → value):
//! same discriminator first, then shared paths and equal values.
//!
//! Correlation ids: when a recorded request carried a value (`message_id`, a JSON-RPC
//! `id` of any type, a Socket.IO ack id) that the responses answering it echoed
//! (`response_to`, `id`), the replayed responses must carry the live request's value
//! instead. The mock pairs each recorded request value with the live request's value
//! at the same place, and rewrites the reply in place ([`super::rewrite`]).
//! Explicit pairs from `wsreplay.toml` ([`IdPair`]) set a response path from a request
//! path directly.

use std::collections::BTreeMap;

use serde_json::Value;

use super::rewrite::is_id_key;

/// A JSON value flattened to its leaves: `payload.tool_name` → `"x"`. Array elements
/// get `[]` in their path (`rows[].service`), so lists of any length compare alike.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Flat {
    pub leaves: BTreeMap<String, Vec<Value>>,
}

impl Flat {
    pub fn of(value: &Value) -> Flat {
        let mut flat = Flat::default();
        flatten(value, String::new(), &mut flat.leaves);
        flat
    }

    /// Leaf paths with their JSON type, for structure comparison.
    pub fn shape(&self) -> BTreeMap<&str, &'static str> {
        self.leaves
            .iter()
            .map(|(k, vs)| (k.as_str(), vs.first().map_or("empty", type_name)))
            .collect()
    }

    /// How alike two messages are: shared paths count, equal values count more,
    /// paths only one side has count against.
    pub fn similarity(&self, other: &Flat) -> i64 {
        let mut score = 0i64;
        for (path, values) in &self.leaves {
            match other.leaves.get(path) {
                Some(o) => {
                    score += 1;
                    if o == values {
                        score += 2;
                    }
                }
                None => score -= 1,
            }
        }
        score
            - other
                .leaves
                .keys()
                .filter(|k| !self.leaves.contains_key(*k))
                .count() as i64
    }
}

fn flatten(value: &Value, path: String, out: &mut BTreeMap<String, Vec<Value>>) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (k, v) in map {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                flatten(v, p, out);
            }
        }
        Value::Array(items) if !items.is_empty() => {
            for item in items {
                flatten(item, format!("{path}[]"), out);
            }
        }
        leaf => out.entry(path).or_default().push(leaf.clone()),
    }
}

/// The JSON type of a value as shown in reports.
pub fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_f64() => "float",
        Value::Number(_) => "integer",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Describes how two request shapes differ, or `None` when they have the same structure.
pub fn shape_difference(recorded: &Flat, live: &Flat) -> Option<String> {
    let (a, b) = (recorded.shape(), live.shape());
    let mut parts = Vec::new();
    let missing: Vec<_> = a.keys().filter(|k| !b.contains_key(*k)).collect();
    let added: Vec<_> = b.keys().filter(|k| !a.contains_key(*k)).collect();
    let changed: Vec<_> = a
        .iter()
        .filter_map(|(k, t)| b.get(k).filter(|u| *u != t).map(|u| format!("{k} {t}→{u}")))
        .collect();
    if !missing.is_empty() {
        parts.push(format!("missing {}", join(&missing)));
    }
    if !added.is_empty() {
        parts.push(format!("new {}", join(&added)));
    }
    if !changed.is_empty() {
        parts.push(format!("type changed {}", changed.join(", ")));
    }
    (!parts.is_empty()).then(|| parts.join("; "))
}

fn join(items: &[&&str]) -> String {
    items
        .iter()
        .map(|s| format!("`{s}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// An explicit correlation: the response's `response` path gets the request's
/// `request` path value (dotted paths, e.g. `message_id` → `response_to`).
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdPair {
    pub route: String,
    pub request: String,
    pub response: String,
}

/// The id-like values of a request: string values under id-named keys, at any depth.
pub fn id_values(value: &Value) -> Vec<&str> {
    let mut out = Vec::new();
    collect_ids(value, &mut out);
    out
}

fn collect_ids<'a>(value: &'a Value, out: &mut Vec<&'a str>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                match v {
                    Value::String(s) if is_id_key(k) && s.len() >= 4 => out.push(s),
                    other => collect_ids(other, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_ids(v, out)),
        _ => {}
    }
}

/// Whether `value` contains the string `needle` anywhere.
pub fn contains_string(value: &Value, needle: &str) -> bool {
    match value {
        Value::String(s) => s == needle,
        Value::Object(map) => map.values().any(|v| contains_string(v, needle)),
        Value::Array(items) => items.iter().any(|v| contains_string(v, needle)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn similarity_prefers_same_content_and_shape() {
        let live = Flat::of(&json!({"type":"nlp_query","text":"EC2 cost","user_id":"alice"}));
        let same = Flat::of(&json!({"type":"nlp_query","text":"EC2 cost","user_id":"alice"}));
        let other = Flat::of(&json!({"type":"nlp_query","text":"Lambda","user_id":"bob"}));
        let shape = Flat::of(&json!({"type":"nlp_query","query":"EC2 cost"}));
        assert!(live.similarity(&same) > live.similarity(&other));
        assert!(live.similarity(&other) > live.similarity(&shape));
        assert_eq!(shape_difference(&same, &live), None);
        assert_eq!(
            shape_difference(&same, &shape).unwrap(),
            "missing `text`, `user_id`; new `query`"
        );
    }

    #[test]
    fn id_keys() {
        for k in ["id", "message_id", "requestId", "correlation-id"] {
            assert!(is_id_key(k), "{k}");
        }
        for k in ["paid", "valid", "text", "idle"] {
            assert!(!is_id_key(k), "{k}");
        }
        assert_eq!(
            id_values(&json!({"message_id":"msg_1","x":{"run_id":"run_2"},"id":"ab"})),
            ["msg_1", "run_2"]
        );
    }
}
