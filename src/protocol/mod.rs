//! What a message means: the one place wsreplay asks "what kind of message is this, and
//! which id ties it to others".
//!
//! A [`Protocol`] reads one connection's messages, in order and in both directions,
//! through a [`Decoder`] of its own (protocols such as JSON-RPC name a response after
//! the request it answers, so a decoder remembers). Each message is decoded once into the
//! [`Event`]s it carries: each with its kind (the label snapshots, sequences, timing,
//! mocks and reports use), the correlation id that groups it into a conversation, and its
//! body as borrowed JSON ([`Json`]) or nothing decodable ([`Payload::Opaque`]). A frame
//! may carry several events (batches, SignalR's record separators), JSON inside text
//! (STOMP, Socket.IO) or inside strings (ActionCable), or positional arrays (Phoenix).
//!
//! Which protocol reads a connection is [`choose`]n from its handshake (the negotiated
//! `Sec-WebSocket-Protocol`, a path such as `/socket.io/?EIO=4`), or from its first
//! message, unless configured. [`PlainJson`] (one JSON value per frame, named by a
//! `type`-like key, correlated by `message_id`-like keys) is the default.
//!
//! Messages no protocol decodes get a label in parentheses that says what they are:
//! `(json object)`, `(text)`, `(binary)`, `(invalid UTF-8 text)`, `(opcode 0x3)`.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use crate::recording::{Body, Dir, Message, Opcode, Open};

pub mod actioncable;
pub mod declared;
pub mod graphql_ws;
pub mod json;
pub mod phoenix;
pub mod plain_json;
pub mod rpc;
pub mod signalr;
pub mod socketio;
pub mod stomp;

pub use json::Json;
pub use plain_json::{PlainJson, CORRELATION_KEYS, DISCRIMINATORS};

/// A way of reading events out of a connection's WebSocket messages.
pub trait Protocol: Send + Sync + fmt::Debug {
    /// Its name in configuration and reports (`json`, `socketio`, ...).
    fn name(&self) -> &'static str;

    /// A decoder for one connection.
    fn decoder(&self) -> Box<dyn Decoder>;

    /// Whether a key path of an event's body names its kind (its values are always kept
    /// literally in a snapshot).
    fn is_discriminator(&self, path: &str) -> bool;

    /// Where a text message's framing (not its JSON) carries the correlation id, for
    /// protocols that put it there (Socket.IO's ack id in `431[...]`): a mock rewrites
    /// the id in place.
    fn framing_id(&self, _text: &str) -> Option<std::ops::Range<usize>> {
        None
    }

    /// Whether events of `kind` are keep-alives sent on a timer (Engine.IO's ping and
    /// pong): counted once per connection and a step of no conversation, since how
    /// many there are and where they fall among the others depend on the clock, not
    /// on the system.
    fn is_heartbeat(&self, _kind: &str) -> bool {
        false
    }
}

/// Reads one connection's messages, in the order they were recorded.
pub trait Decoder: Send {
    /// Appends the events `body` carries to `out`: none for a message that carries no
    /// application event, one [`Payload::Opaque`] event for one that cannot be decoded.
    fn decode<'a>(&mut self, dir: Dir, op: Opcode, body: &'a Body, out: &mut Vec<Event<'a>>);

    /// Whether reading a message can change how later ones are read (JSON-RPC names a
    /// response after its request). A reader that only needs the events of some
    /// messages may skip the others when it does not (a replay skips decoding what its
    /// clients send, once per message).
    fn remembers(&self) -> bool {
        true
    }
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

impl<'a> Event<'a> {
    /// An event with a JSON body.
    pub fn json(
        kind: impl Into<Cow<'a, str>>,
        correlation: Option<String>,
        body: Json<'a>,
    ) -> Self {
        Event {
            kind: kind.into(),
            correlation,
            body: Payload::Json(body),
        }
    }
}

/// The body of an [`Event`].
#[derive(Debug)]
pub enum Payload<'a> {
    /// A JSON body, borrowing its strings from the message where it can.
    Json(Json<'a>),
    /// Nothing the protocol could decode: described by opcode and size only.
    Opaque,
}

/// The names of the built-in protocols.
pub const NAMES: &[&str] = &[
    "json",
    "socketio",
    "graphql-ws",
    "jsonrpc",
    "cdp",
    "stomp",
    "signalr",
    "phoenix",
    "actioncable",
];

/// A protocol to read connections with, shared by every reader of a configuration.
pub type Shared = Arc<dyn Protocol>;

/// The built-in protocol called `name` (one of [`NAMES`]).
pub fn builtin(name: &str) -> Option<Shared> {
    Some(match name {
        "json" => Arc::new(PlainJson),
        "socketio" => Arc::new(socketio::SocketIo),
        "graphql-ws" => Arc::new(graphql_ws::GraphqlWs),
        "jsonrpc" => Arc::new(rpc::JSON_RPC),
        "cdp" => Arc::new(rpc::CDP),
        "stomp" => Arc::new(stomp::Stomp),
        "signalr" => Arc::new(signalr::SignalR),
        "phoenix" => Arc::new(phoenix::Phoenix),
        "actioncable" => Arc::new(actioncable::ActionCable),
        _ => return None,
    })
}

/// The protocol used where none is chosen: [`PlainJson`].
pub fn default() -> &'static dyn Protocol {
    &PlainJson
}

/// The protocol a connection is read with, and why.
#[derive(Clone, Debug)]
pub struct Choice {
    pub protocol: Shared,
    pub why: &'static str,
}

/// Chooses the protocol of a connection from its handshake, else from its first
/// message (`first`, if there is one).
pub fn choose(open: &Open, first: Option<&Body>) -> Choice {
    let subprotocol = open
        .response_header("sec-websocket-protocol")
        .or_else(|| open.header("sec-websocket-protocol"))
        .map(|p| {
            p.split(',')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        });
    let choice = |name: &str, why| Choice {
        protocol: builtin(name).unwrap_or_else(|| Arc::new(PlainJson)),
        why,
    };
    match subprotocol.as_deref() {
        Some("graphql-transport-ws" | "graphql-ws") => {
            return choice("graphql-ws", "its subprotocol")
        }
        Some(p) if p.starts_with("v1") && p.ends_with(".stomp") => {
            return choice("stomp", "its subprotocol")
        }
        Some("stomp") => return choice("stomp", "its subprotocol"),
        Some("actioncable-v1-json" | "actioncable-unsupported") => {
            return choice("actioncable", "its subprotocol")
        }
        Some("jsonrpc" | "json-rpc" | "jsonrpc-2.0") => {
            return choice("jsonrpc", "its subprotocol")
        }
        _ => {}
    }
    let path = open.path();
    if path.contains("EIO=4") || path.contains("/socket.io/") {
        return choice("socketio", "its path (/socket.io/, EIO=4)");
    }
    if path.starts_with("/devtools/") {
        return choice("cdp", "its path (/devtools/)");
    }
    let (route_path, query) = path.split_once('?').unwrap_or((path, ""));
    if route_path.ends_with("/websocket") && query.contains("vsn=2") {
        return choice("phoenix", "its path (/websocket?vsn=2)");
    }
    let Some(text) = first.and_then(Body::as_text) else {
        return choice("json", "the default");
    };
    let text = text.trim_start();
    if text.ends_with('\u{1e}') && text.contains("\"protocol\"") {
        return choice("signalr", "its first message (a SignalR handshake)");
    }
    if ["CONNECT\n", "STOMP\n", "CONNECT\r\n", "STOMP\r\n"]
        .iter()
        .any(|c| text.starts_with(c))
    {
        return choice("stomp", "its first message (a STOMP CONNECT frame)");
    }
    if text.contains("\"jsonrpc\"") && text.contains("2.0") {
        return choice("jsonrpc", "its first message (\"jsonrpc\": \"2.0\")");
    }
    if text.starts_with("{\"command\":\"subscribe\"") || is_actioncable_welcome(text) {
        return choice("actioncable", "its first message (ActionCable)");
    }
    choice("json", "the default")
}

/// ActionCable's greeting, `{"type":"welcome"}` (with a `sid` in newer servers) and
/// nothing else: an application's own `welcome` carrying data is not ActionCable.
fn is_actioncable_welcome(text: &str) -> bool {
    let Ok(serde_json::Value::Object(map)) = serde_json::from_str(text) else {
        return false;
    };
    map.get("type").and_then(|t| t.as_str()) == Some("welcome")
        && map.keys().all(|k| k == "type" || k == "sid")
}

/// Protocols configured per route (`protocol = "socketio"` in `wsreplay.toml`); the
/// routes not named are chosen per connection.
pub type Overrides = std::collections::BTreeMap<String, Shared>;

/// Reads a recording's messages connection by connection, each with a decoder of its
/// connection's protocol (configured for its route, or [`choose`]n at its first
/// message). Feed it every record in order.
#[derive(Default)]
pub struct Reader<'r> {
    overrides: Overrides,
    opens: HashMap<u64, &'r Open>,
    decoders: HashMap<u64, (Choice, Box<dyn Decoder>)>,
}

impl<'r> Reader<'r> {
    pub fn new(overrides: Overrides) -> Reader<'r> {
        Reader {
            overrides,
            ..Reader::default()
        }
    }

    /// Takes note of a connection's opening.
    pub fn open(&mut self, open: &'r Open) {
        self.opens.insert(open.conn, open);
    }

    /// Decodes a message of a connection opened before into `out`; returns the
    /// protocol it was read with.
    pub fn decode<'a>(&mut self, m: &'a Message, out: &mut Vec<Event<'a>>) -> &Choice {
        let (choice, decoder) = self.decoders.entry(m.conn).or_insert_with(|| {
            let open = self.opens.get(&m.conn);
            let configured = open.and_then(|o| self.overrides.get(&o.route));
            let choice = match (configured, open) {
                (Some(p), _) => Choice {
                    protocol: Arc::clone(p),
                    why: "its route's configuration",
                },
                (None, Some(open)) => choose(open, Some(&m.body)),
                (None, None) => Choice {
                    protocol: Arc::new(PlainJson),
                    why: "the default",
                },
            };
            let decoder = choice.protocol.decoder();
            (choice, decoder)
        });
        decoder.decode(m.dir, m.op, &m.body, out);
        choice
    }

    /// Whether decoding `m` can be skipped by a reader that does not need its events:
    /// its connection's decoder is chosen already and keeps no state
    /// ([`Decoder::remembers`]).
    pub fn skippable(&self, m: &Message) -> bool {
        (self.decoders.get(&m.conn)).is_some_and(|(_, decoder)| !decoder.remembers())
    }

    /// The label of a message: the kinds of its events.
    pub fn label(&mut self, m: &Message) -> String {
        let mut events = Vec::with_capacity(1);
        self.decode(m, &mut events);
        label_of_events(&events, m.op, &m.body)
    }
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

/// The kinds of a message's events as one label (`a + b` for a frame that carries two).
pub fn label_of_events(events: &[Event<'_>], op: Opcode, body: &Body) -> String {
    match events {
        [] => opaque_label(op, body),
        [one] => one.kind.to_string(),
        many => many
            .iter()
            .map(|e| e.kind.as_ref())
            .collect::<Vec<_>>()
            .join(" + "),
    }
}

/// A short label for a message read on its own with the default protocol.
pub fn label(op: Opcode, body: &Body) -> String {
    let mut events = Vec::with_capacity(1);
    PlainJson.decode_one(op, body, &mut events);
    label_of_events(&events, op, body)
}

/// The label of a parsed JSON message under the default protocol.
pub fn label_of_json(v: &serde_json::Value) -> String {
    plain_json::label_of_value(v)
}

/// The text of a message as text, when it is.
pub(crate) fn text_of(op: Opcode, body: &Body) -> Option<&str> {
    body.as_text().filter(|_| op == Opcode::TEXT)
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

    #[test]
    fn only_actioncables_bare_welcome_is_taken_for_actioncable() {
        assert!(is_actioncable_welcome(r#"{"type":"welcome"}"#));
        assert!(is_actioncable_welcome(r#"{"type":"welcome","sid":"abc"}"#));
        assert!(!is_actioncable_welcome(
            r#"{"type":"welcome","session":{"id":"sess_1"}}"#
        ));
        assert!(!is_actioncable_welcome(r#"{"type":"welcome""#));
    }
}

/// Helpers for the protocols' tests: decoding a scripted conversation.
#[cfg(test)]
pub(crate) mod testing {
    use super::*;

    /// Decodes `(dir, text)` messages in order with one decoder of `protocol`; returns
    /// each event's kind and correlation id.
    pub fn decode_all(
        protocol: &dyn Protocol,
        messages: &[(&str, &str)],
    ) -> Vec<(String, Option<String>)> {
        decode_bodies(protocol, messages)
            .into_iter()
            .map(|(kind, correlation, _)| (kind, correlation))
            .collect()
    }

    /// Asserts the kinds and correlation ids `protocol` decodes from `messages`.
    #[track_caller]
    pub fn assert_events(
        protocol: &dyn Protocol,
        messages: &[(&str, &str)],
        expected: &[(&str, Option<&str>)],
    ) {
        let events = decode_all(protocol, messages);
        let got: Vec<_> = events
            .iter()
            .map(|(k, c)| (k.as_str(), c.as_deref()))
            .collect();
        assert_eq!(got, expected);
    }

    /// Like [`decode_all`], with each event's body paths (`a`, `a.b`, `c[]`) too.
    pub fn decode_bodies(
        protocol: &dyn Protocol,
        messages: &[(&str, &str)],
    ) -> Vec<(String, Option<String>, Vec<String>)> {
        let mut decoder = protocol.decoder();
        let bodies: Vec<Body> = messages
            .iter()
            .map(|(_, t)| Body::Text((*t).into()))
            .collect();
        let mut out = Vec::new();
        for ((dir, _), body) in messages.iter().zip(&bodies) {
            let dir = if *dir == "c2s" {
                Dir::ClientToServer
            } else {
                Dir::ServerToClient
            };
            let mut events = Vec::new();
            decoder.decode(dir, Opcode::TEXT, body, &mut events);
            for e in events {
                let mut paths = Vec::new();
                if let Payload::Json(j) = &e.body {
                    collect_paths(j, String::new(), &mut paths);
                }
                out.push((e.kind.into_owned(), e.correlation, paths));
            }
        }
        out
    }

    fn collect_paths(value: &Json<'_>, path: String, out: &mut Vec<String>) {
        match value {
            Json::Obj(fields) => {
                for (k, v) in fields {
                    let p = if path.is_empty() {
                        k.to_string()
                    } else {
                        format!("{path}.{k}")
                    };
                    out.push(p.clone());
                    collect_paths(v, p, out);
                }
            }
            Json::Arr(items) => {
                for item in items {
                    collect_paths(item, format!("{path}[]"), out);
                }
            }
            _ => {}
        }
    }
}
