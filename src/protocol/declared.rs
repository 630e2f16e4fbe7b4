//! Conventions users declare for their own JSON protocols, per route in
//! `wsreplay.toml` (`[structure.route.NAME]`): the keys that name a message's kind, the
//! keys (or dotted paths) that hold its correlation id, and a prefix pattern for text
//! that carries JSON after a fixed prefix (`42["event",...]`-like framings).

use std::borrow::Cow;

use super::plain_json::{find_key, label_of};
use super::{opaque, text_of, Decoder, Event, Json, Payload, Protocol};
use crate::recording::{Body, Dir, Opcode};

/// A JSON protocol with declared keys.
#[derive(Debug)]
pub struct Declared {
    /// Keys tried, in order, for a message's kind.
    pub discriminators: Vec<String>,
    /// Keys found at any depth, or dotted paths from the top, for its correlation id.
    pub correlate: Vec<String>,
    /// Text before the JSON, matched at the start of a message and skipped.
    pub prefix: Option<regex::Regex>,
}

impl Protocol for Declared {
    fn name(&self) -> &'static str {
        "json (declared)"
    }

    fn decoder(&self) -> Box<dyn Decoder> {
        Box::new(DeclaredDecoder {
            discriminators: self.discriminators.clone(),
            correlate: self.correlate.clone(),
            prefix: self.prefix.clone(),
        })
    }

    fn is_discriminator(&self, path: &str) -> bool {
        self.discriminators.iter().any(|d| d == path)
    }
}

struct DeclaredDecoder {
    discriminators: Vec<String>,
    correlate: Vec<String>,
    prefix: Option<regex::Regex>,
}

impl Decoder for DeclaredDecoder {
    fn decode<'a>(&mut self, _: Dir, op: Opcode, body: &'a Body, out: &mut Vec<Event<'a>>) {
        let Some(mut text) = text_of(op, body) else {
            out.push(opaque(op, body));
            return;
        };
        if let Some(prefix) = &self.prefix {
            if let Some(m) = prefix.find(text).filter(|m| m.start() == 0) {
                text = &text[m.end()..];
            }
        }
        let Some(json) = Json::parse(text) else {
            out.push(opaque(op, body));
            return;
        };
        let correlation = self.correlate.iter().find_map(|key| {
            if key.contains('.') {
                let mut v = &json;
                for part in key.split('.') {
                    v = v.get(part)?;
                }
                v.id_text()
            } else {
                find_key(&json, key)
            }
        });
        let kind: Cow<'a, str> = label_of(&json, &self.discriminators);
        out.push(Event {
            kind,
            correlation,
            body: Payload::Json(json),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::testing::decode_all;

    #[test]
    fn declared_keys_and_prefix() {
        let declared = Declared {
            discriminators: vec!["event".into()],
            correlate: vec!["meta.request_id".into(), "id".into()],
            prefix: Some(regex::Regex::new(r"^\d+").unwrap()),
        };
        let events = decode_all(
            &declared,
            &[
                (
                    "c2s",
                    r#"12{"event":"get","meta":{"request_id":"r1"},"type":"x"}"#,
                ),
                ("s2c", r#"{"event":"got","id":7}"#),
            ],
        );
        assert_eq!(
            events,
            [
                ("get".into(), Some("r1".into())),
                ("got".into(), Some("7".into()))
            ]
        );
    }
}
