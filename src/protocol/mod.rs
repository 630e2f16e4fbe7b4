//! What a message means: the one place wsreplay asks "what kind of message is this, and
//! which id ties it to others".
//!
//! A [`Protocol`] decodes a recorded message once into the [`Event`]s it carries: each
//! with its kind (the label snapshots, sequences, timing, mocks and reports use), the
//! correlation id that groups it into a conversation, and its body as borrowed JSON
//! ([`Json`]) or nothing decodable ([`Payload::Opaque`]). A frame may carry several
//! events (batched framings), JSON inside text or inside strings, or positional arrays:
//! a protocol says so by what it decodes. [`PlainJson`] (one JSON object per frame,
//! named by a `type`-like key, correlated by `message_id`-like keys) is the default.
//!
//! Messages that are not text, or text no protocol decodes, get a label in parentheses
//! that says what they are: `(json object)`, `(text)`, `(binary)`, `(invalid UTF-8
//! text)`, `(opcode 0x3)`.

use std::borrow::Cow;
use std::fmt;

use crate::recording::{Body, Opcode};

pub mod json;
pub mod plain_json;

pub use json::Json;
pub use plain_json::{PlainJson, CORRELATION_KEYS, DISCRIMINATORS};

/// A way of reading events out of WebSocket messages.
pub trait Protocol: Send + Sync + fmt::Debug {
    /// Its name in configuration and reports.
    fn name(&self) -> &'static str;

    /// Appends the events `body` carries to `out`: none for a message that carries no
    /// application event, one [`Payload::Opaque`] event for one that cannot be decoded.
    fn decode<'a>(&self, op: Opcode, body: &'a Body, out: &mut Vec<Event<'a>>);

    /// Whether a key path of an event's body names its kind (its values are always kept
    /// literally in a snapshot).
    fn is_discriminator(&self, path: &str) -> bool;
}

/// One application event, decoded from a message.
#[derive(Debug)]
pub struct Event<'a> {
    /// What kind of event it is: the label snapshots and reports group by.
    pub kind: Cow<'a, str>,
    /// The value that ties it to the other events of its conversation, if any.
    pub correlation: Option<String>,
    /// Its body.
    pub body: Payload<'a>,
}

/// The body of an [`Event`].
#[derive(Debug)]
pub enum Payload<'a> {
    /// A JSON body, borrowing its strings from the message.
    Json(Json<'a>),
    /// Nothing the protocol could decode: described by opcode and size only.
    Opaque,
}

/// The protocol used where none is chosen: [`PlainJson`].
pub fn default() -> &'static dyn Protocol {
    &PlainJson
}

/// An event that is not JSON: labelled by what the message is.
pub fn opaque(op: Opcode, body: &Body) -> Event<'static> {
    Event {
        kind: Cow::Owned(opaque_label(op, body)),
        correlation: None,
        body: Payload::Opaque,
    }
}

fn opaque_label(op: Opcode, body: &Body) -> String {
    match (op, body) {
        (Opcode::TEXT, Body::Text(_)) => "(text)".into(),
        (Opcode::TEXT, Body::Bytes(_)) => "(invalid UTF-8 text)".into(),
        (Opcode::BINARY, _) => "(binary)".into(),
        (other, _) => format!("(opcode {})", other.name()),
    }
}

/// A short label for a message under the default protocol: the kinds of its events
/// (`a + b` for a frame that carries two).
pub fn label(op: Opcode, body: &Body) -> String {
    let mut events = Vec::with_capacity(1);
    default().decode(op, body, &mut events);
    match events.as_slice() {
        [] => opaque_label(op, body),
        [one] => one.kind.to_string(),
        many => many
            .iter()
            .map(|e| e.kind.as_ref())
            .collect::<Vec<_>>()
            .join(" + "),
    }
}

/// The label of a parsed JSON message under the default protocol.
pub fn label_of_json(v: &serde_json::Value) -> String {
    plain_json::label_of_value(v)
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
        assert_eq!(t("[1]"), "(json array)");
        assert_eq!(t("hello"), "(text)");
        assert_eq!(
            label(Opcode::TEXT, &Body::Bytes(vec![0xff])),
            "(invalid UTF-8 text)"
        );
        assert_eq!(label(Opcode::BINARY, &Body::Text("{}".into())), "(binary)");
        assert_eq!(label(Opcode(3), &Body::Bytes(vec![])), "(opcode 0x3)");
    }
}
