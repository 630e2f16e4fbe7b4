//! Phoenix Channels, serializer v2: every message is an array
//! `[join_ref, ref, topic, event, payload]`.
//!
//! The kind is the event (`phx_join`, `phx_reply`, `new_msg`, ...); the body names the
//! positions (`join_ref`, `ref`, `topic`, `event`, `payload`). A reply carries the `ref`
//! of the push it answers, which is the correlation.

use std::borrow::Cow;

use super::{opaque, text_of, Decoder, Event, Json, Protocol};
use crate::recording::{Body, Dir, Opcode};

/// Phoenix Channels (vsn 2.0.0).
#[derive(Clone, Copy, Debug)]
pub struct Phoenix;

const POSITIONS: [&str; 5] = ["join_ref", "ref", "topic", "event", "payload"];

impl Protocol for Phoenix {
    fn name(&self) -> &'static str {
        "phoenix"
    }

    fn decoder(&self) -> Box<dyn Decoder> {
        Box::new(PhoenixDecoder)
    }

    fn is_discriminator(&self, path: &str) -> bool {
        path == "event"
    }
}

struct PhoenixDecoder;

impl Decoder for PhoenixDecoder {
    fn decode<'a>(&mut self, _: Dir, op: Opcode, body: &'a Body, out: &mut Vec<Event<'a>>) {
        let decoded = text_of(op, body)
            .and_then(Json::parse)
            .and_then(|json| match json {
                Json::Arr(items) if items.len() == 5 => {
                    let kind = match &items[3] {
                        Json::Str(s) => s.clone(),
                        _ => return None,
                    };
                    let correlation = items[1].id_text();
                    let fields = POSITIONS
                        .iter()
                        .map(|p| Cow::Borrowed(*p))
                        .zip(items)
                        .collect();
                    Some(Event::json(kind, correlation, Json::Obj(fields)))
                }
                _ => None,
            });
        out.push(decoded.unwrap_or_else(|| opaque(op, body)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::testing::{assert_events, decode_bodies};

    #[test]
    fn positions_become_named_fields() {
        let messages = [
            ("c2s", r#"["1","1","room:lobby","phx_join",{}]"#),
            (
                "s2c",
                r#"["1","1","room:lobby","phx_reply",{"status":"ok","response":{}}]"#,
            ),
            ("c2s", r#"["1","2","room:lobby","new_msg",{"body":"hi"}]"#),
            (
                "s2c",
                r#"[null,null,"room:lobby","new_msg",{"body":"hi","user":"a"}]"#,
            ),
        ];
        assert_events(
            &Phoenix,
            &messages,
            &[
                ("phx_join", Some("1")),
                ("phx_reply", Some("1")),
                ("new_msg", Some("2")),
                ("new_msg", None),
            ],
        );
        let bodies = decode_bodies(&Phoenix, &messages);
        assert!(
            bodies[3].2.contains(&"payload.user".to_string()),
            "{:?}",
            bodies[3].2
        );
    }
}
