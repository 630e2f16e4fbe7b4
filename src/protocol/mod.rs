//! What kind of message a recorded message is, for counting and labelling.
//!
//! JSON objects are labelled by their discriminator: the first of [`DISCRIMINATORS`]
//! whose value is a string (`{"type":"chat",...}` is `chat`). Everything else gets a
//! label in parentheses that says what it is: `(json object)`, `(text)`, `(binary)`,
//! `(invalid UTF-8 text)`, `(opcode 0x3)`.

pub mod json;

use crate::recording::{Body, Opcode};

/// Keys tried, in order, to name a JSON message's kind.
pub const DISCRIMINATORS: &[&str] = &["type", "event", "kind", "action", "op", "method"];

/// The discriminator value of a JSON object, if it has one.
pub fn discriminator(value: &serde_json::Value) -> Option<&str> {
    let obj = value.as_object()?;
    DISCRIMINATORS
        .iter()
        .find_map(|k| obj.get(*k).and_then(|v| v.as_str()))
}

/// The label of a parsed JSON message: its discriminator value or its JSON kind.
pub fn label_of_json(v: &serde_json::Value) -> String {
    match discriminator(v) {
        Some(d) => d.to_string(),
        None if v.is_object() => "(json object)".into(),
        None if v.is_array() => "(json array)".into(),
        None => "(json value)".into(),
    }
}

/// A short label for a message: its discriminator value or what it is.
pub fn label(op: Opcode, body: &Body) -> String {
    match (op, body) {
        (Opcode::TEXT, Body::Text(text)) => match serde_json::from_str::<serde_json::Value>(text) {
            Ok(v) => label_of_json(&v),
            Err(_) => "(text)".into(),
        },
        (Opcode::TEXT, Body::Bytes(_)) => "(invalid UTF-8 text)".into(),
        (Opcode::BINARY, _) => "(binary)".into(),
        (other, _) => format!("(opcode {})", other.name()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels() {
        let t = |s: &str| label(Opcode::TEXT, &Body::Text(s.into()));
        assert_eq!(t(r#"{"type":"chat","event":"x"}"#), "chat");
        assert_eq!(t(r#"{"event":"join"}"#), "join");
        assert_eq!(t(r#"{"type":1}"#), "(json object)");
        assert_eq!(t("hello"), "(text)");
        assert_eq!(
            label(Opcode::TEXT, &Body::Bytes(vec![0xff])),
            "(invalid UTF-8 text)"
        );
        assert_eq!(label(Opcode(3), &Body::Bytes(vec![])), "(opcode 0x3)");
    }
}
