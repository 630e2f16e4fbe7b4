//! Socket.IO v5 packets over Engine.IO v4 (`/socket.io/?EIO=4`).
//!
//! An Engine.IO packet is a type digit and data: `0{"sid":..}` open, `1` close, `2`
//! ping, `3` pong, `4…` message, `5` upgrade, `6` noop; each is a kind of its own
//! (`engine.io open`, ...). A message carries a Socket.IO packet: a type digit (`0`
//! CONNECT, `1` DISCONNECT, `2` EVENT, `3` ACK, `4` CONNECT_ERROR, `5` BINARY_EVENT, `6`
//! BINARY_ACK), for binary packets the number of attachments and `-`, an optional
//! namespace (`/admin,`), an optional ack id, then JSON.
//!
//! An event's kind is its name (`42["chat",{..}]` is `chat`; `/admin chat` in another
//! namespace); its body is its argument (the array of them when there are several),
//! with `attachments` counted for binary events. An acknowledgement is named after the
//! event it answers (`chat ack`) and both carry the ack id as their correlation. Binary
//! attachments (frames of their own) are `(binary attachment)`. Engine.IO's ping and
//! pong are heartbeats: the server pings on a timer, so they are counted once per
//! connection, belong to no conversation sequence, and a replay does not wait for them.

use std::borrow::Cow;
use std::collections::HashMap;

use super::{opaque, text_of, Decoder, Event, Json, Payload, Protocol};
use crate::recording::{Body, Dir, Opcode};

/// Socket.IO over Engine.IO v4.
#[derive(Clone, Copy, Debug)]
pub struct SocketIo;

impl Protocol for SocketIo {
    fn name(&self) -> &'static str {
        "socketio"
    }

    fn decoder(&self) -> Box<dyn Decoder> {
        Box::<SocketIoDecoder>::default()
    }

    fn is_discriminator(&self, _: &str) -> bool {
        false
    }

    fn framing_id(&self, text: &str) -> Option<std::ops::Range<usize>> {
        // `4` (message), the packet type, `N-` (attachments), `/nsp,`, then the ack id.
        let rest = text.strip_prefix('4')?.get(1..)?;
        let mut at = text.len() - rest.len();
        if matches!(&text[1..2], "5" | "6") {
            at += rest.find('-')? + 1;
        }
        if text[at..].starts_with('/') {
            at += text[at..].find(',')? + 1;
        }
        let digits = text[at..].bytes().take_while(u8::is_ascii_digit).count();
        (digits > 0).then_some(at..at + digits)
    }

    fn is_heartbeat(&self, kind: &str) -> bool {
        matches!(kind, "engine.io ping" | "engine.io pong")
    }
}

/// Remembers which event each ack id belongs to, per direction of the event.
#[derive(Default)]
struct SocketIoDecoder {
    acks: HashMap<(Dir, String), String>,
    /// Binary attachments still expected after a binary packet.
    attachments: usize,
}

impl Decoder for SocketIoDecoder {
    fn decode<'a>(&mut self, dir: Dir, op: Opcode, body: &'a Body, out: &mut Vec<Event<'a>>) {
        if op == Opcode::BINARY && self.attachments > 0 {
            self.attachments -= 1;
            out.push(Event {
                kind: "(binary attachment)".into(),
                correlation: None,
                body: Payload::Opaque,
            });
            return;
        }
        let Some(text) = text_of(op, body) else {
            out.push(opaque(op, body));
            return;
        };
        let engine = |name: &'static str, rest: &'a str| {
            let body = Json::parse(rest).unwrap_or(Json::Obj(Vec::new()));
            Event::json(name, None, body)
        };
        let (kind, rest) = text.split_at(text.len().min(1));
        out.push(match kind {
            "0" => engine("engine.io open", rest),
            "1" => engine("engine.io close", rest),
            "2" => engine("engine.io ping", ""),
            "3" => engine("engine.io pong", ""),
            "5" => engine("engine.io upgrade", ""),
            "6" => engine("engine.io noop", ""),
            "4" => match self.packet(dir, rest) {
                Some(event) => event,
                None => opaque(op, body),
            },
            _ => opaque(op, body),
        });
    }
}

impl SocketIoDecoder {
    /// A Socket.IO packet (the data of an Engine.IO message).
    fn packet<'a>(&mut self, dir: Dir, text: &'a str) -> Option<Event<'a>> {
        let mut rest = text;
        let kind = rest.get(..1)?;
        rest = &rest[1..];
        let binary = matches!(kind, "5" | "6");
        let mut attachments = 0;
        if binary {
            let dash = rest.find('-')?;
            attachments = rest[..dash].parse().ok()?;
            rest = &rest[dash + 1..];
        }
        let mut namespace = "/";
        if rest.starts_with('/') {
            let end = rest.find(',').unwrap_or(rest.len());
            namespace = &rest[..end];
            rest = rest.get(end + 1..).unwrap_or("");
        }
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let ack = (digits > 0).then(|| rest[..digits].to_string());
        rest = &rest[digits..];
        let json = if rest.is_empty() {
            None
        } else {
            Some(Json::parse(rest)?)
        };
        self.attachments = attachments;
        let named = |name: &str| -> Cow<'a, str> {
            if namespace == "/" {
                Cow::Owned(name.to_string())
            } else {
                Cow::Owned(format!("{namespace} {name}"))
            }
        };
        match kind {
            "2" | "5" => {
                let Some(Json::Arr(mut args)) = json else {
                    return None;
                };
                if args.is_empty() {
                    return None;
                }
                let name = match args.remove(0) {
                    Json::Str(s) => s.into_owned(),
                    _ => return None,
                };
                if let Some(id) = &ack {
                    self.acks.insert((dir, id.clone()), name.clone());
                }
                let body = arguments(args);
                return Some(Event::json(
                    named(&name),
                    ack,
                    with_attachments(body, binary, attachments),
                ));
            }
            "3" | "6" => {
                let Some(Json::Arr(args)) = json else {
                    return None;
                };
                let other = match dir {
                    Dir::ClientToServer => Dir::ServerToClient,
                    Dir::ServerToClient => Dir::ClientToServer,
                };
                let event = ack
                    .as_ref()
                    .and_then(|id| self.acks.remove(&(other, id.clone())))
                    .unwrap_or_else(|| "(unknown event)".into());
                let body = arguments(args);
                return Some(Event::json(
                    named(&format!("{event} ack")),
                    ack,
                    with_attachments(body, binary, attachments),
                ));
            }
            _ => {}
        }
        let name = match kind {
            "0" => "connect",
            "1" => "disconnect",
            "4" => "connect_error",
            _ => return None,
        };
        Some(Event::json(
            named(name),
            None,
            json.unwrap_or(Json::Obj(Vec::new())),
        ))
    }
}

/// An event's arguments as its body: the argument itself when there is one.
fn arguments(mut args: Vec<Json<'_>>) -> Json<'_> {
    if args.len() == 1 {
        args.remove(0)
    } else {
        Json::Arr(args)
    }
}

/// A binary event's body, with its placeholders' count as `attachments`.
fn with_attachments(body: Json<'_>, binary: bool, attachments: usize) -> Json<'_> {
    if !binary {
        return body;
    }
    Json::Obj(vec![
        (Cow::Borrowed("args"), body),
        (Cow::Borrowed("attachments"), Json::Int(attachments as f64)),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::testing::{decode_all, decode_bodies};

    #[test]
    fn engine_io_and_socket_io_packets() {
        let events = decode_all(
            &SocketIo,
            &[
                (
                    "s2c",
                    r#"0{"sid":"abc","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#,
                ),
                ("c2s", "40"),
                ("s2c", r#"40{"sid":"xyz"}"#),
                ("c2s", r#"42["chat",{"text":"hi","room":"a"}]"#),
                ("c2s", r#"4217["join",{"room":"a"}]"#),
                ("s2c", r#"4317[{"ok":true}]"#),
                ("s2c", "2"),
                ("c2s", "3"),
                ("c2s", r#"42/admin,["ban",{"user":"x"}]"#),
                ("s2c", r#"42/admin,5["ask",1,2]"#),
                ("c2s", r#"43/admin,5["yes"]"#),
                ("c2s", "41"),
            ],
        );
        let kinds: Vec<_> = events
            .iter()
            .map(|(k, c)| (k.as_str(), c.as_deref()))
            .collect();
        assert_eq!(
            kinds,
            [
                ("engine.io open", None),
                ("connect", None),
                ("connect", None),
                ("chat", None),
                ("join", Some("17")),
                ("join ack", Some("17")),
                ("engine.io ping", None),
                ("engine.io pong", None),
                ("/admin ban", None),
                ("/admin ask", Some("5")),
                ("/admin ask ack", Some("5")),
                ("disconnect", None),
            ]
        );
    }

    #[test]
    fn arguments_are_the_body_and_attachments_are_counted() {
        let events = decode_bodies(
            &SocketIo,
            &[
                ("c2s", r#"42["chat",{"text":"hi","meta":{"at":1}}]"#),
                (
                    "c2s",
                    r#"451-["upload",{"name":"a.png","data":{"_placeholder":true,"num":0}}]"#,
                ),
            ],
        );
        assert_eq!(events[0].2, ["text", "meta", "meta.at"]);
        assert_eq!(events[1].0, "upload");
        assert!(
            events[1].2.contains(&"attachments".to_string()),
            "{:?}",
            events[1].2
        );
        assert!(
            events[1].2.contains(&"args.name".to_string()),
            "{:?}",
            events[1].2
        );
    }
}
