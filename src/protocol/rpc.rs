//! Request/response protocols that name requests by `method` and answer by `id`:
//! JSON-RPC 2.0 (single messages and batches) and the Chrome DevTools Protocol.
//!
//! A request or notification's kind is its method. A response has only its `id` and a
//! `result` or `error`, so the decoder remembers which method each id asked for (per
//! direction: either side may call the other) and names the response after it:
//! `getUser → result`, `getUser → error`. The id, of any JSON type, is the correlation.
//! In CDP, events (`{method, params}` without id) are correlated by their `sessionId`.

use std::collections::HashMap;

use super::{opaque, text_of, Decoder, Event, Json, Payload, Protocol};
use crate::recording::{Body, Dir, Opcode};

/// A request/response protocol: JSON-RPC 2.0 ([`JSON_RPC`]) or CDP ([`CDP`]).
#[derive(Clone, Copy, Debug)]
pub struct Rpc {
    /// CDP: no batches, and ids are scoped by `sessionId`.
    cdp: bool,
}

/// JSON-RPC 2.0.
pub const JSON_RPC: Rpc = Rpc { cdp: false };

/// The Chrome DevTools Protocol.
pub const CDP: Rpc = Rpc { cdp: true };

impl Protocol for Rpc {
    fn name(&self) -> &'static str {
        if self.cdp {
            "cdp"
        } else {
            "jsonrpc"
        }
    }

    fn decoder(&self) -> Box<dyn Decoder> {
        Box::new(RpcDecoder {
            cdp: self.cdp,
            pending: HashMap::new(),
        })
    }

    fn is_discriminator(&self, path: &str) -> bool {
        path == "method"
    }
}

struct RpcDecoder {
    cdp: bool,
    /// (direction of the request, its session, its id) → its method.
    pending: HashMap<(Dir, Option<String>, String), String>,
}

impl Decoder for RpcDecoder {
    fn decode<'a>(&mut self, dir: Dir, op: Opcode, body: &'a Body, out: &mut Vec<Event<'a>>) {
        match text_of(op, body).and_then(Json::parse) {
            Some(Json::Arr(batch)) if !self.cdp && !batch.is_empty() => {
                for item in batch {
                    out.push(self.event(dir, item));
                }
            }
            Some(json) => out.push(self.event(dir, json)),
            None => out.push(opaque(op, body)),
        }
    }
}

impl RpcDecoder {
    fn event<'a>(&mut self, dir: Dir, json: Json<'a>) -> Event<'a> {
        let id = json.get("id").and_then(Json::id_text);
        let session = json.str("sessionId").map(str::to_string);
        if let Some(method) = json.str("method").map(str::to_string) {
            let correlation = match &id {
                Some(id) => {
                    self.pending
                        .insert((dir, session.clone(), id.clone()), method.clone());
                    Some(self.correlation(&session, id))
                }
                // A notification (an event, in CDP): its session is its conversation.
                None => session.clone(),
            };
            return Event::json(method, correlation, json);
        }
        let answer = if json.get("error").is_some() {
            "error"
        } else if json.get("result").is_some() {
            "result"
        } else {
            return Event {
                kind: if json.get("id").is_some() {
                    "(response)".into()
                } else {
                    "(json object)".into()
                },
                correlation: id,
                body: Payload::Json(json),
            };
        };
        let Some(id) = id else {
            return Event::json(format!("(no id) → {answer}"), None, json);
        };
        let asked = match dir {
            Dir::ClientToServer => Dir::ServerToClient,
            Dir::ServerToClient => Dir::ClientToServer,
        };
        let method = self
            .pending
            .remove(&(asked, session.clone(), id.clone()))
            .unwrap_or_else(|| "(unknown request)".into());
        let correlation = Some(self.correlation(&session, &id));
        Event::json(format!("{method} → {answer}"), correlation, json)
    }

    fn correlation(&self, session: &Option<String>, id: &str) -> String {
        match session {
            Some(s) if self.cdp => format!("{s}/{id}"),
            _ => id.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::testing::assert_events;

    #[test]
    fn responses_are_named_after_the_method_they_answer() {
        assert_events(
            &JSON_RPC,
            &[
                (
                    "c2s",
                    r#"{"jsonrpc":"2.0","method":"getUser","params":[1],"id":1}"#,
                ),
                (
                    "c2s",
                    r#"{"jsonrpc":"2.0","method":"getOrder","params":{"n":2},"id":"b"}"#,
                ),
                ("c2s", r#"{"jsonrpc":"2.0","method":"log","params":["x"]}"#),
                ("s2c", r#"{"jsonrpc":"2.0","result":{"n":2},"id":"b"}"#),
                (
                    "s2c",
                    r#"{"jsonrpc":"2.0","error":{"code":-32000,"message":"no"},"id":1}"#,
                ),
                (
                    "c2s",
                    r#"[{"jsonrpc":"2.0","method":"a","id":3},{"jsonrpc":"2.0","method":"b","id":4}]"#,
                ),
                (
                    "s2c",
                    r#"[{"jsonrpc":"2.0","result":1,"id":4},{"jsonrpc":"2.0","result":2,"id":3}]"#,
                ),
                ("s2c", r#"{"jsonrpc":"2.0","method":"tick","params":{}}"#),
            ],
            &[
                ("getUser", Some("1")),
                ("getOrder", Some("b")),
                ("log", None),
                ("getOrder → result", Some("b")),
                ("getUser → error", Some("1")),
                ("a", Some("3")),
                ("b", Some("4")),
                ("b → result", Some("4")),
                ("a → result", Some("3")),
                ("tick", None),
            ],
        );
    }

    #[test]
    fn cdp_commands_events_and_sessions() {
        assert_events(
            &CDP,
            &[
                (
                    "c2s",
                    r#"{"id":1,"method":"Target.createTarget","params":{"url":"about:blank"}}"#,
                ),
                (
                    "s2c",
                    r#"{"method":"Target.targetCreated","params":{"targetInfo":{}}}"#,
                ),
                ("s2c", r#"{"id":1,"result":{"targetId":"T1"}}"#),
                (
                    "c2s",
                    r#"{"id":2,"method":"Page.navigate","params":{"url":"x"},"sessionId":"S1"}"#,
                ),
                (
                    "s2c",
                    r#"{"method":"Page.frameNavigated","params":{},"sessionId":"S1"}"#,
                ),
                (
                    "s2c",
                    r#"{"id":2,"result":{"frameId":"F"},"sessionId":"S1"}"#,
                ),
            ],
            &[
                ("Target.createTarget", Some("1")),
                ("Target.targetCreated", None),
                ("Target.createTarget → result", Some("1")),
                ("Page.navigate", Some("S1/2")),
                ("Page.frameNavigated", Some("S1")),
                ("Page.navigate → result", Some("S1/2")),
            ],
        );
    }
}
