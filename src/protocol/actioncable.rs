//! Rails ActionCable: JSON messages whose `identifier` (and a client's `data`) are JSON
//! inside strings.
//!
//! The kind is the `command` of a client message (`subscribe`, `message`,
//! `unsubscribe`), the `type` of a server message (`welcome`, `ping`,
//! `confirm_subscription`, ...), or `message` for a broadcast. The strings holding JSON
//! are decoded into objects, so their keys reach the snapshot (`identifier.channel`,
//! `data.action`). The `identifier` text is the correlation: one conversation per
//! subscription.

use super::{opaque, text_of, Decoder, Event, Json, Protocol};
use crate::recording::{Body, Dir, Opcode};

/// ActionCable (`actioncable-v1-json`).
#[derive(Clone, Copy, Debug)]
pub struct ActionCable;

impl Protocol for ActionCable {
    fn name(&self) -> &'static str {
        "actioncable"
    }

    fn decoder(&self) -> Box<dyn Decoder> {
        Box::new(ActionCableDecoder)
    }

    fn is_discriminator(&self, path: &str) -> bool {
        matches!(
            path,
            "command" | "type" | "identifier.channel" | "data.action"
        )
    }
}

struct ActionCableDecoder;

impl Decoder for ActionCableDecoder {
    fn decode<'a>(&mut self, _: Dir, op: Opcode, body: &'a Body, out: &mut Vec<Event<'a>>) {
        let Some(mut json) = text_of(op, body).and_then(Json::parse) else {
            out.push(opaque(op, body));
            return;
        };
        let correlation = json.str("identifier").map(str::to_string);
        for key in ["identifier", "data"] {
            if let Some(Json::Str(inner)) = json.take(key) {
                let decoded = Json::parse_cow(inner.clone()).unwrap_or(Json::Str(inner));
                if let Json::Obj(fields) = &mut json {
                    fields.push((key.into(), decoded));
                }
            }
        }
        let kind = json
            .str("command")
            .or_else(|| json.str("type"))
            .unwrap_or("message")
            .to_string();
        out.push(Event::json(kind, correlation, json));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::testing::decode_bodies;

    #[test]
    fn json_inside_strings_is_decoded() {
        let id = r#"{\"channel\":\"ChatChannel\",\"room\":\"a\"}"#;
        let events = decode_bodies(
            &ActionCable,
            &[
                ("s2c", r#"{"type":"welcome"}"#),
                (
                    "c2s",
                    &format!(r#"{{"command":"subscribe","identifier":"{id}"}}"#),
                ),
                (
                    "s2c",
                    &format!(r#"{{"identifier":"{id}","type":"confirm_subscription"}}"#),
                ),
                (
                    "c2s",
                    &format!(
                        r#"{{"command":"message","identifier":"{id}","data":"{{\"action\":\"speak\",\"text\":\"hi\"}}"}}"#
                    ),
                ),
                (
                    "s2c",
                    &format!(r#"{{"identifier":"{id}","message":{{"text":"hi"}}}}"#),
                ),
            ],
        );
        let kinds: Vec<_> = events.iter().map(|e| e.0.as_str()).collect();
        assert_eq!(
            kinds,
            [
                "welcome",
                "subscribe",
                "confirm_subscription",
                "message",
                "message"
            ]
        );
        assert!(events[1].1.as_deref().unwrap().contains("ChatChannel"));
        assert!(
            events[3].2.contains(&"data.action".to_string()),
            "{:?}",
            events[3].2
        );
        assert!(
            events[3].2.contains(&"identifier.channel".to_string()),
            "{:?}",
            events[3].2
        );
    }
}
