//! The SignalR JSON hub protocol: JSON records each ended by `0x1E`, several per frame.
//!
//! The first record of each side is the handshake (`{"protocol":"json","version":1}`,
//! answered by `{}` or `{"error":..}`). Then each record's numeric `type` names it
//! (1 Invocation, 2 StreamItem, 3 Completion, 4 StreamInvocation, 5 CancelInvocation,
//! 6 Ping, 7 Close, 8 Ack, 9 Sequence); invocations add their `target`
//! (`Invocation SendMessage`). `invocationId` is the correlation.

use super::{opaque, text_of, Decoder, Event, Json, Protocol};
use crate::recording::{Body, Dir, Opcode};

/// SignalR's JSON hub protocol.
#[derive(Clone, Copy, Debug)]
pub struct SignalR;

impl Protocol for SignalR {
    fn name(&self) -> &'static str {
        "signalr"
    }

    fn decoder(&self) -> Box<dyn Decoder> {
        Box::new(SignalRDecoder {
            handshaken: [false; 2],
        })
    }

    fn is_discriminator(&self, path: &str) -> bool {
        matches!(path, "type" | "target")
    }
}

struct SignalRDecoder {
    /// Whether each side's handshake record has passed (c2s, s2c).
    handshaken: [bool; 2],
}

impl Decoder for SignalRDecoder {
    fn decode<'a>(&mut self, dir: Dir, op: Opcode, body: &'a Body, out: &mut Vec<Event<'a>>) {
        let Some(text) = text_of(op, body).filter(|t| t.ends_with('\u{1e}')) else {
            out.push(opaque(op, body));
            return;
        };
        let side = usize::from(dir == Dir::ServerToClient);
        for record in text.split('\u{1e}').filter(|r| !r.is_empty()) {
            let Some(json) = Json::parse(record) else {
                out.push(opaque(op, body));
                continue;
            };
            if !self.handshaken[side] {
                self.handshaken[side] = true;
                let kind = if side == 0 {
                    "handshake"
                } else {
                    "handshake response"
                };
                out.push(Event::json(kind, None, json));
                continue;
            }
            let name = match json.get("type") {
                Some(Json::Int(n)) => match *n as u32 {
                    1 => "Invocation",
                    2 => "StreamItem",
                    3 => "Completion",
                    4 => "StreamInvocation",
                    5 => "CancelInvocation",
                    6 => "Ping",
                    7 => "Close",
                    8 => "Ack",
                    9 => "Sequence",
                    _ => "(unknown type)",
                },
                _ => "(no type)",
            };
            let kind = match json.str("target") {
                Some(target) => format!("{name} {target}"),
                None => name.to_string(),
            };
            let correlation = json.str("invocationId").map(str::to_string);
            out.push(Event::json(kind, correlation, json));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::testing::assert_events;

    #[test]
    fn records_handshakes_and_invocations() {
        assert_events(
            &SignalR,
            &[
                ("c2s", "{\"protocol\":\"json\",\"version\":1}\u{1e}"),
                ("s2c", "{}\u{1e}{\"type\":6}\u{1e}"),
                ("c2s", "{\"type\":1,\"invocationId\":\"0\",\"target\":\"Send\",\"arguments\":[\"hi\"]}\u{1e}"),
                ("s2c", "{\"type\":1,\"target\":\"Receive\",\"arguments\":[\"hi\"]}\u{1e}{\"type\":3,\"invocationId\":\"0\",\"result\":null}\u{1e}"),
            ], &[
                ("handshake", None),
                ("handshake response", None),
                ("Ping", None),
                ("Invocation Send", Some("0")),
                ("Invocation Receive", None),
                ("Completion", Some("0")),
            ]);
    }
}
