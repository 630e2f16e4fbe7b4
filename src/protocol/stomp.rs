//! STOMP 1.0–1.2 over WebSocket: `COMMAND\nname:value\n…\n\nbody\0`, one or more
//! frames per message, each maybe followed by line breaks; a message of line breaks
//! alone is a heart-beat.
//!
//! The kind is the command (`SEND`, `MESSAGE`, `SUBSCRIBE`, ...). The body is an object
//! of the headers (values as strings, `destination` kept literally as a discriminating
//! field) and, under `body`, the frame's body: parsed JSON when its `content-type` says
//! JSON (or it looks like JSON), else the text. Correlation: a `RECEIPT`'s `receipt-id`
//! with the frame that asked for it (`receipt`); a `MESSAGE`'s `subscription` with the
//! `SUBSCRIBE` of that `id`.

use std::borrow::Cow;

use super::{opaque, text_of, Decoder, Event, Json, Payload, Protocol};
use crate::recording::{Body, Dir, Opcode};

/// STOMP 1.x.
#[derive(Clone, Copy, Debug)]
pub struct Stomp;

impl Protocol for Stomp {
    fn name(&self) -> &'static str {
        "stomp"
    }

    fn decoder(&self) -> Box<dyn Decoder> {
        Box::new(StompDecoder)
    }

    fn is_discriminator(&self, path: &str) -> bool {
        path == "destination"
    }
}

struct StompDecoder;

impl Decoder for StompDecoder {
    fn decode<'a>(&mut self, _: Dir, op: Opcode, body: &'a Body, out: &mut Vec<Event<'a>>) {
        let Some(text) = text_of(op, body) else {
            out.push(opaque(op, body));
            return;
        };
        let mut rest = text;
        let before = out.len();
        while !rest.is_empty() {
            // Line breaks between or after frames are padding (RabbitMQ ends every frame
            // with `\0\n`); a message of line breaks alone is a heart-beat.
            let trimmed = rest.trim_start_matches(['\n', '\r']);
            if trimmed.is_empty() {
                if out.len() == before {
                    out.push(Event {
                        kind: "(heart-beat)".into(),
                        correlation: None,
                        body: Payload::Opaque,
                    });
                }
                break;
            }
            rest = trimmed;
            let end = rest.find('\0').unwrap_or(rest.len());
            match frame(&rest[..end]) {
                Some(event) => out.push(event),
                None => {
                    out.truncate(before);
                    out.push(opaque(op, body));
                    return;
                }
            }
            rest = rest.get(end + 1..).unwrap_or("");
        }
        if out.len() == before {
            out.push(opaque(op, body));
        }
    }
}

/// One frame (without its NUL).
fn frame(text: &str) -> Option<Event<'_>> {
    let (head, body) = match text.find("\n\n") {
        Some(i) => (&text[..i], &text[i + 2..]),
        None => match text.find("\r\n\r\n") {
            Some(i) => (&text[..i], &text[i + 4..]),
            None => (text, ""),
        },
    };
    let mut lines = head.lines();
    let command = lines.next()?.trim_end_matches('\r');
    if command.is_empty() || !command.bytes().all(|b| b.is_ascii_uppercase()) {
        return None;
    }
    let mut fields: Vec<(Cow<'_, str>, Json<'_>)> = Vec::new();
    let mut content_type = "";
    for line in lines {
        let line = line.trim_end_matches('\r');
        let (name, value) = line.split_once(':')?;
        if fields.iter().any(|(k, _)| k == name) {
            continue; // STOMP: the first of repeated headers counts.
        }
        if name.eq_ignore_ascii_case("content-type") {
            content_type = value;
        }
        fields.push((Cow::Borrowed(name), Json::Str(Cow::Borrowed(value))));
    }
    let header = |name: &str| {
        fields.iter().find_map(|(k, v)| match v {
            Json::Str(s) if k == name => Some(s.to_string()),
            _ => None,
        })
    };
    let correlation = match command {
        "RECEIPT" => header("receipt-id"),
        "MESSAGE" => header("subscription"),
        "SUBSCRIBE" | "UNSUBSCRIBE" => header("id"),
        _ => header("receipt"),
    };
    if !body.is_empty() {
        let looks_json = body.trim_start().starts_with(['{', '[']);
        let parsed = (content_type.contains("json") || looks_json)
            .then(|| Json::parse(body))
            .flatten();
        fields.push((
            Cow::Borrowed("body"),
            parsed.unwrap_or(Json::Str(Cow::Borrowed(body))),
        ));
    }
    Some(Event::json(command, correlation, Json::Obj(fields)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::testing::{assert_events, decode_bodies};

    #[test]
    fn frames_commands_and_receipts() {
        assert_events(
            &Stomp,
            &[
                ("c2s", "CONNECT\naccept-version:1.2\nhost:example\n\n\0"),
                ("s2c", "CONNECTED\nversion:1.2\nheart-beat:0,0\n\n\0"),
                ("c2s", "SUBSCRIBE\nid:sub-0\ndestination:/topic/orders\nreceipt:r1\n\n\0"),
                ("s2c", "RECEIPT\nreceipt-id:r1\n\n\0"),
                ("s2c", "MESSAGE\nsubscription:sub-0\nmessage-id:7\ndestination:/topic/orders\ncontent-type:application/json\n\n{\"order\":1}\0"),
                ("c2s", "\n"),
                ("c2s", "SEND\ndestination:/app/a\n\nhello\0SEND\ndestination:/app/b\n\n\0"),
            ], &[
                ("CONNECT", None),
                ("CONNECTED", None),
                ("SUBSCRIBE", Some("sub-0")),
                ("RECEIPT", Some("r1")),
                ("MESSAGE", Some("sub-0")),
                ("(heart-beat)", None),
                ("SEND", None),
                ("SEND", None),
            ]);
    }

    #[test]
    fn line_breaks_after_a_frame_are_not_a_heart_beat() {
        // RabbitMQ's web-STOMP ends every frame with `\0\n`.
        assert_events(
            &Stomp,
            &[
                ("s2c", "CONNECTED\nversion:1.2\nsession:session-x\n\n\0\n"),
                ("s2c", "RECEIPT\nreceipt-id:send-1\n\n\0\r\n\n"),
                (
                    "s2c",
                    "RECEIPT\nreceipt-id:a\n\n\0\nRECEIPT\nreceipt-id:b\n\n\0\n",
                ),
                ("s2c", "\r\n"),
            ],
            &[
                ("CONNECTED", None),
                ("RECEIPT", Some("send-1")),
                ("RECEIPT", Some("a")),
                ("RECEIPT", Some("b")),
                ("(heart-beat)", None),
            ],
        );
    }

    #[test]
    fn a_json_body_is_parsed() {
        let events = decode_bodies(
            &Stomp,
            &[(
                "s2c",
                "MESSAGE\nsubscription:s\ndestination:/topic/x\ncontent-type:application/json\n\n{\"order\":{\"id\":1}}\0",
            )],
        );
        assert!(
            events[0].2.contains(&"body.order.id".to_string()),
            "{:?}",
            events[0].2
        );
        assert!(events[0].2.contains(&"destination".to_string()));
    }
}
