//! Plain JSON, the default protocol: one JSON value per text frame, named by the first
//! of [`DISCRIMINATORS`] whose value is a string (`{"type":"chat",...}` is `chat`), and
//! tied to its conversation by the first of [`CORRELATION_KEYS`] found at any depth.

use std::borrow::Cow;

use super::json::Json;
use super::{opaque, text_of, Decoder, Event, Payload, Protocol};
use crate::recording::{Body, Dir, Opcode};

/// Keys tried, in order, to name a JSON message's kind.
pub const DISCRIMINATORS: &[&str] = &["type", "event", "kind", "action", "op", "method"];

/// Keys whose value groups messages into one conversation, most specific first.
pub const CORRELATION_KEYS: &[&str] = &[
    "message_id",
    "response_to",
    "request_id",
    "correlation_id",
    "run_id",
];

/// One JSON value per text frame.
#[derive(Clone, Copy, Debug, Default)]
pub struct PlainJson;

impl PlainJson {
    /// Decodes one message on its own (plain JSON keeps no state between messages).
    pub(crate) fn decode_one<'a>(self, op: Opcode, body: &'a Body, out: &mut Vec<Event<'a>>) {
        DEFAULT_CONVENTION.decode_one(op, body, out);
    }
}

impl Protocol for PlainJson {
    fn name(&self) -> &'static str {
        "json"
    }

    fn decoder(&self) -> Box<dyn Decoder> {
        Box::new(DEFAULT_CONVENTION)
    }

    fn is_discriminator(&self, path: &str) -> bool {
        DISCRIMINATORS.contains(&path)
    }
}

/// How a JSON protocol names and groups its messages: the keys tried for the kind, and
/// the keys whose value is the correlation id (at the top level, or at any depth).
#[derive(Clone, Copy, Debug)]
pub struct Convention {
    pub discriminators: &'static [&'static str],
    pub correlation: &'static [&'static str],
    /// Look for the correlation keys at any depth (shallowest first), not only at the top.
    pub anywhere: bool,
}

/// Plain JSON's convention.
const DEFAULT_CONVENTION: Convention = Convention {
    discriminators: DISCRIMINATORS,
    correlation: CORRELATION_KEYS,
    anywhere: true,
};

impl Convention {
    fn decode_one<'a>(&self, op: Opcode, body: &'a Body, out: &mut Vec<Event<'a>>) {
        match text_of(op, body).and_then(Json::parse) {
            Some(json) => out.push(self.event(json)),
            None => out.push(opaque(op, body)),
        }
    }

    /// The event a JSON value is under this convention.
    pub fn event<'a>(&self, json: Json<'a>) -> Event<'a> {
        let correlation = if self.anywhere {
            find_first_key(&json, self.correlation)
        } else {
            (self.correlation.iter()).find_map(|key| json.get(key).and_then(Json::id_text))
        };
        Event {
            kind: label_of(&json, self.discriminators),
            correlation,
            body: Payload::Json(json),
        }
    }
}

impl Decoder for Convention {
    fn decode<'a>(&mut self, _: Dir, op: Opcode, body: &'a Body, out: &mut Vec<Event<'a>>) {
        self.decode_one(op, body, out);
    }

    fn remembers(&self) -> bool {
        false
    }
}

/// A value's label: its discriminator value or its JSON kind.
pub(crate) fn label_of<'a>(value: &Json<'a>, discriminators: &[impl AsRef<str>]) -> Cow<'a, str> {
    let discriminator = discriminators
        .iter()
        .find_map(|k| match value.get(k.as_ref()) {
            Some(Json::Str(s)) => Some(s),
            _ => None,
        });
    match (discriminator, value) {
        (Some(Cow::Borrowed(d)), _) => Cow::Borrowed(d),
        (Some(Cow::Owned(d)), _) => Cow::Owned(d.clone()),
        (None, Json::Obj(_)) => "(json object)".into(),
        (None, Json::Arr(_)) => "(json array)".into(),
        (None, _) => "(json value)".into(),
    }
}

/// The label of a `serde_json` value, as [`PlainJson`] names it.
pub(crate) fn label_of_value(v: &serde_json::Value) -> String {
    let discriminator = v.as_object().and_then(|obj| {
        DISCRIMINATORS
            .iter()
            .find_map(|k| obj.get(*k).and_then(|v| v.as_str()))
    });
    match discriminator {
        Some(d) => d.to_string(),
        None if v.is_object() => "(json object)".into(),
        None if v.is_array() => "(json array)".into(),
        None => "(json value)".into(),
    }
}

/// The first non-empty string or number under `key`, breadth first.
pub(crate) fn find_key(value: &Json<'_>, key: &str) -> Option<String> {
    find_first_key(value, &[key])
}

/// The first non-empty string or number under the first of `keys` that has one, each
/// key looked for breadth first: what trying [`find_key`] key by key finds, in one walk
/// that allocates nothing for a flat object (every message is decoded this way, several
/// times per replayed message).
pub(crate) fn find_first_key<'j>(value: &'j Json<'_>, keys: &[&str]) -> Option<String> {
    // The best key found so far (its index in `keys`) and its first value.
    let mut best: Option<(usize, String)> = None;
    // Containers still to look into, in breadth-first order.
    let mut queue: Vec<&'j Json<'_>> = Vec::new();
    let mut next = 0;
    let mut current = Some(value);
    while let Some(v) = current {
        let mut look = |child: &'j Json<'_>| {
            if matches!(child, Json::Obj(_) | Json::Arr(_)) {
                queue.push(child);
            }
        };
        match v {
            Json::Obj(fields) => {
                for (k, v) in fields {
                    let wanted = best.as_ref().map_or(keys.len(), |(i, _)| *i);
                    if let Some(i) = keys[..wanted].iter().position(|key| k == key) {
                        match v {
                            Json::Str(s) if !s.is_empty() => best = Some((i, s.to_string())),
                            Json::Int(n) | Json::Float(n) => best = Some((i, n.to_string())),
                            _ => {}
                        }
                        if best.as_ref().is_some_and(|(i, _)| *i == 0) {
                            return best.map(|(_, s)| s);
                        }
                    }
                    look(v);
                }
            }
            Json::Arr(items) => items.iter().for_each(look),
            _ => {}
        }
        current = queue.get(next).copied();
        next += 1;
    }
    best.map(|(_, s)| s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(text: &str) -> (String, Option<String>) {
        let body = Body::Text(text.into());
        let mut events = Vec::new();
        PlainJson.decode_one(Opcode::TEXT, &body, &mut events);
        assert_eq!(events.len(), 1);
        let e = events.remove(0);
        (e.kind.into_owned(), e.correlation)
    }

    #[test]
    fn kinds_and_correlation_ids() {
        assert_eq!(
            decode(r#"{"type":"agent_started","payload":{"run_id":"r1"}}"#),
            ("agent_started".into(), Some("r1".into()))
        );
        // The most specific key wins, at any depth; numbers count too.
        assert_eq!(
            decode(r#"{"type":"x","run_id":"r","data":{"response_to":7}}"#),
            ("x".into(), Some("7".into()))
        );
        // An escaped discriminator is unescaped.
        assert_eq!(decode(r#"{"type":"a\u0062c"}"#), ("abc".into(), None));
        assert_eq!(decode("not json"), ("(text)".into(), None));
    }

    #[test]
    fn one_walk_finds_what_key_by_key_search_finds() {
        for text in [
            r#"{"a":{"run_id":"deep"},"run_id":"top"}"#,
            r#"{"x":[{"message_id":""},{"request_id":1.5}],"run_id":"r","y":{"message_id":"m"}}"#,
            r#"[{"z":{"correlation_id":"c"}},{"run_id":"r"},{"response_to":null}]"#,
            r#"{"response_to":"a","message_id":{"message_id":"inner"}}"#,
            r#"{"nothing":[1,2,{"here":true}]}"#,
        ] {
            let json = Json::parse(text).unwrap();
            let key_by_key = CORRELATION_KEYS.iter().find_map(|k| find_key(&json, k));
            assert_eq!(
                find_first_key(&json, CORRELATION_KEYS),
                key_by_key,
                "{text}"
            );
        }
        let json = Json::parse(r#"{"a":{"run_id":"deep"},"b":[{"message_id":7}]}"#).unwrap();
        assert_eq!(
            find_first_key(&json, CORRELATION_KEYS).as_deref(),
            Some("7")
        );
    }
}
