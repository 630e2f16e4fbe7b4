//! What a replay plays, read off a recording.
//!
//! [`ClientScript`]: for each recorded connection of a `--target` route, the client's
//! messages in order, each with the number of server messages that had arrived before
//! it was sent (causal pacing) and its time offset (wall-clock pacing).
//!
//! [`MockTable`]: for each `--mock` route, every recorded request with the responses
//! that answered it. A response answers the latest earlier request on its connection
//! whose id values (`message_id`, ...) it contains, else simply the latest earlier
//! request; responses before any request are greetings sent on connect.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::Value;

use super::correlate::{contains_string, id_values, Flat};
use crate::protocol::{self, Reader};
use crate::recording::{Body, Dir, EndHow, Opcode, Record, Recording};

/// One thing a replayed client does.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    Send(Opcode, Body),
    Ping(Vec<u8>),
    Close(Option<u16>, String),
}

/// An action with its causal and wall-clock position.
#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    /// Server messages recorded before this action (heartbeats aside, see
    /// [`ClientScript::heartbeats`]).
    pub after_server: usize,
    /// Microseconds after the connection opened.
    pub at_us: u64,
    pub action: Action,
}

impl Step {
    /// Label of the action (`chat`, `(text)`, `close`), for reports.
    pub fn label(&self) -> String {
        match &self.action {
            Action::Send(op, body) => protocol::label(*op, body),
            Action::Ping(_) => "ping".into(),
            Action::Close(..) => "close".into(),
        }
    }
}

/// How the recorded connection ended, once the client had nothing more to send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ending {
    /// The client sent a close frame (it is the last step).
    ClientClosed,
    /// The server closed first; wait for it to close again.
    ServerClosed,
    /// No close handshake: drop the connection once the server messages are in.
    Dropped,
}

/// Everything one recorded client connection did.
#[derive(Clone, Debug)]
pub struct ClientScript {
    pub conn: u64,
    pub route: String,
    /// Request target (path and query) of the recorded upgrade, with its placeholders.
    pub target: String,
    /// Recorded request headers worth replaying (see [`replayable_header`]), with
    /// their placeholders.
    pub headers: Vec<(String, String)>,
    /// Microseconds after the first replayed connection opened.
    pub start_us: u64,
    pub steps: Vec<Step>,
    /// Indices (in the recording) of the recorded server messages, in order.
    pub server: Vec<usize>,
    pub ending: Ending,
    /// The connection's protocol, when it has heartbeats: server messages that carry
    /// only those are not counted (neither in [`Step::after_server`] nor live).
    pub heartbeats: Option<protocol::Shared>,
    recording: Arc<Recording>,
}

impl ClientScript {
    /// Label of the `i`-th recorded server message, for reports (computed on demand:
    /// labelling parses JSON, which a large replay should not pay for up front).
    pub fn server_label(&self, i: usize) -> String {
        match self.server.get(i).map(|&r| &self.recording.records[r]) {
            Some(Record::Message(m)) => protocol::label(m.op, &m.body),
            _ => "?".into(),
        }
    }
}

/// Whether a recorded request header should be sent again: not hop-by-hop and not one
/// the WebSocket client sets itself. A redacted header is kept: its placeholder is
/// replaced by a live credential, or sent as it is ([`super::credentials`]).
pub fn replayable_header(name: &str) -> bool {
    const SKIP: &[&str] = &[
        "host",
        "connection",
        "upgrade",
        "sec-websocket-key",
        "sec-websocket-version",
        "sec-websocket-extensions",
        "sec-websocket-accept",
        "content-length",
        "transfer-encoding",
        "keep-alive",
        "te",
        "trailer",
        "proxy-connection",
        "proxy-authorization",
    ];
    !SKIP.contains(&name.to_ascii_lowercase().as_str())
}

/// The client scripts of every successfully opened connection of `route`.
pub fn client_scripts(recording: &Arc<Recording>, route: &str) -> Vec<ClientScript> {
    let mut scripts: Vec<ClientScript> = Vec::new();
    let mut index = BTreeMap::new();
    let mut opened_at = BTreeMap::new();
    let mut server_seen: BTreeMap<u64, usize> = BTreeMap::new();
    let mut first_close: BTreeMap<u64, Dir> = BTreeMap::new();
    for (position, record) in recording.records.iter().enumerate() {
        match record {
            Record::Open(o) if o.route == route && o.status == 101 => {
                index.insert(o.conn, scripts.len());
                opened_at.insert(o.conn, o.t_us);
                scripts.push(ClientScript {
                    conn: o.conn,
                    route: o.route.clone(),
                    target: o.path().to_string(),
                    headers: o
                        .headers
                        .iter()
                        .filter(|(n, _)| replayable_header(n))
                        .cloned()
                        .collect(),
                    start_us: o.t_us,
                    steps: Vec::new(),
                    server: Vec::new(),
                    ending: Ending::Dropped,
                    heartbeats: Some(protocol::choose(o, None).protocol)
                        .filter(|p| p.has_heartbeats()),
                    recording: recording.clone(),
                });
            }
            other => {
                let Some(conn) = other.conn() else { continue };
                let Some(&i) = index.get(&conn) else { continue };
                let script = &mut scripts[i];
                let at_us = other.t_us().saturating_sub(opened_at[&conn]);
                let after_server = server_seen.get(&conn).copied().unwrap_or(0);
                let step = |action| Step {
                    after_server,
                    at_us,
                    action,
                };
                match other {
                    Record::Message(m) if m.dir == Dir::ServerToClient => {
                        if let Some(p) = &script.heartbeats {
                            if protocol::only_heartbeats(p.as_ref(), m.dir, m.op, &m.body) {
                                continue;
                            }
                        }
                        script.server.push(position);
                        *server_seen.entry(conn).or_default() += 1;
                    }
                    Record::Message(m) if matches!(m.op, Opcode::TEXT | Opcode::BINARY) => {
                        script.steps.push(step(Action::Send(m.op, m.body.clone())));
                    }
                    Record::Ping(p) if p.dir == Dir::ClientToServer => {
                        script
                            .steps
                            .push(step(Action::Ping(p.body.as_bytes().to_vec())));
                    }
                    Record::Close(c) => {
                        let first = *first_close.entry(conn).or_insert(c.dir);
                        if c.dir == Dir::ClientToServer && first == Dir::ClientToServer {
                            script.ending = Ending::ClientClosed;
                            let action = Action::Close(c.code, c.reason.clone());
                            script.steps.push(step(action));
                        } else if first == Dir::ServerToClient {
                            script.ending = Ending::ServerClosed;
                        }
                    }
                    Record::End(e)
                        if e.how == EndHow::Closed && script.ending == Ending::Dropped =>
                    {
                        script.ending = Ending::ServerClosed;
                    }
                    _ => {}
                }
            }
        }
    }
    if let Some(first) = scripts.iter().map(|s| s.start_us).min() {
        for s in &mut scripts {
            s.start_us -= first;
        }
    }
    scripts
}

/// A recorded message with its parsed JSON, if it is JSON.
#[derive(Clone, Debug)]
pub struct RecordedMessage {
    pub op: Opcode,
    pub body: Body,
    pub json: Option<Value>,
    pub label: String,
}

impl RecordedMessage {
    fn new(op: Opcode, body: Body) -> Self {
        let json = body.as_text().and_then(|t| serde_json::from_str(t).ok());
        let label = protocol::label(op, &body);
        RecordedMessage {
            op,
            body,
            json,
            label,
        }
    }
}

/// A recorded response and how long after its request it was sent.
#[derive(Clone, Debug)]
pub struct RecordedResponse {
    pub delay_us: u64,
    pub message: RecordedMessage,
}

/// A recorded request to a mocked peer and what answered it.
#[derive(Clone, Debug)]
pub struct RecordedRequest {
    pub message: RecordedMessage,
    pub flat: Option<Flat>,
    pub responses: Vec<RecordedResponse>,
}

/// Everything a mock needs to stand in for one route.
#[derive(Clone, Debug, Default)]
pub struct MockTable {
    pub requests: Vec<RecordedRequest>,
    /// Per recorded connection, in order: messages sent before any request.
    pub greetings: Vec<Vec<RecordedResponse>>,
    /// The protocol the route's recorded connections were read with: live requests are
    /// named the same way.
    pub protocol: Option<crate::protocol::Shared>,
}

impl MockTable {
    /// The label of a live request, as the recorded requests' protocol names it.
    pub fn label(&self, op: Opcode, body: &Body) -> String {
        let Some(protocol) = &self.protocol else {
            return protocol::label(op, body);
        };
        let mut events = Vec::with_capacity(1);
        protocol
            .decoder()
            .decode(Dir::ClientToServer, op, body, &mut events);
        protocol::label_of_events(&events, op, body)
    }
}

/// Builds the mock table of `route`.
pub fn mock_table(recording: &Recording, route: &str) -> MockTable {
    let mut table = MockTable::default();
    // Per connection: (greeting index, indices into table.requests, time of each).
    let mut conns: BTreeMap<u64, (usize, Vec<usize>, u64)> = BTreeMap::new();
    let mut request_t: Vec<u64> = Vec::new();
    let mut reader = Reader::default();
    for record in &recording.records {
        match record {
            Record::Open(o) if o.route == route => {
                reader.open(o);
                conns.insert(o.conn, (table.greetings.len(), Vec::new(), o.t_us));
                table.greetings.push(Vec::new());
            }
            Record::Message(m) => {
                let Some((greeting, requests, opened)) = conns.get_mut(&m.conn) else {
                    continue;
                };
                let mut message = RecordedMessage::new(m.op, m.body.clone());
                let mut events = Vec::with_capacity(1);
                let choice = reader.decode(m, &mut events);
                message.label = protocol::label_of_events(&events, m.op, &m.body);
                table
                    .protocol
                    .get_or_insert_with(|| choice.protocol.clone());
                if m.dir == Dir::ClientToServer {
                    requests.push(table.requests.len());
                    request_t.push(m.t_us);
                    table.requests.push(RecordedRequest {
                        flat: message.json.as_ref().map(Flat::of),
                        message,
                        responses: Vec::new(),
                    });
                    continue;
                }
                let answered = message
                    .json
                    .as_ref()
                    .and_then(|json| {
                        requests.iter().rev().copied().find(|&r| {
                            table.requests[r].message.json.as_ref().is_some_and(|req| {
                                id_values(req).iter().any(|id| contains_string(json, id))
                            })
                        })
                    })
                    .or_else(|| requests.last().copied());
                match answered {
                    Some(r) => table.requests[r].responses.push(RecordedResponse {
                        delay_us: m.t_us.saturating_sub(request_t[r]),
                        message,
                    }),
                    None => table.greetings[*greeting].push(RecordedResponse {
                        delay_us: m.t_us.saturating_sub(*opened),
                        message,
                    }),
                }
            }
            _ => {}
        }
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recording::{Header, Message, Open};

    fn open(conn: u64, route: &str, t: u64) -> Record {
        Record::Open(Open {
            t_us: t,
            route: route.into(),
            conn,
            client: "c".into(),
            upstream: "u".into(),
            request: "GET /ws?x=1 HTTP/1.1".into(),
            headers: vec![
                ("Host".into(), "h".into()),
                ("Origin".into(), "o".into()),
                (
                    "Authorization".into(),
                    "Bearer redacted-0123456789ab".into(),
                ),
                ("Connection".into(), "Upgrade".into()),
            ],
            status: 101,
            response_headers: vec![],
        })
    }

    fn msg(conn: u64, dir: Dir, t: u64, text: &str) -> Record {
        let mut m = Message::whole(conn, dir, Opcode::TEXT, Body::Text(text.into()));
        m.t_us = t;
        Record::Message(m)
    }

    fn recording(records: Vec<Record>) -> Recording {
        Recording {
            path: "r.jsonl".into(),
            header: Header::current(0),
            records,
            warnings: vec![],
        }
    }

    /// Issue 16: socketioxide pings at once and then on its timer; a step recorded
    /// after its CONNECT answer waited for the ping instead when the ping came later
    /// in the recording than in the replay, and the event reached the server too early.
    #[test]
    fn socketio_steps_do_not_count_the_servers_pings() {
        use Dir::*;
        let mut opened = open(1, "chat", 100);
        if let Record::Open(o) = &mut opened {
            o.request = "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1".into();
        }
        let rec = recording(vec![
            opened,
            msg(1, ServerToClient, 110, r#"0{"sid":"a"}"#),
            msg(1, ClientToServer, 120, "40"),
            msg(1, ServerToClient, 130, r#"40{"sid":"b"}"#),
            msg(1, ClientToServer, 140, r#"42["join",{}]"#),
            msg(1, ServerToClient, 150, "2"),
            msg(1, ClientToServer, 160, "3"),
        ]);
        let s = &client_scripts(&Arc::new(rec), "chat")[0];
        let steps: Vec<_> = s
            .steps
            .iter()
            .map(|s| (s.label(), s.after_server))
            .collect();
        assert_eq!(steps.len(), 3);
        assert_eq!((steps[1].1, steps[2].1), (2, 2), "{steps:?}");
        assert_eq!(s.server.len(), 2);
        let live = s.heartbeats.as_deref().unwrap();
        assert!(protocol::only_heartbeats(
            live,
            ServerToClient,
            Opcode::TEXT,
            &Body::Text("2".into())
        ));
        assert!(!protocol::only_heartbeats(
            live,
            ServerToClient,
            Opcode::TEXT,
            &Body::Text("40".into())
        ));
    }

    #[test]
    fn client_steps_wait_for_the_server_messages_recorded_before_them() {
        use Dir::*;
        let rec = recording(vec![
            open(1, "frontend", 100),
            msg(1, ClientToServer, 110, r#"{"type":"heartbeat"}"#),
            msg(1, ServerToClient, 120, r#"{"type":"heartbeat_response"}"#),
            msg(1, ClientToServer, 130, r#"{"type":"chat"}"#),
            msg(1, ServerToClient, 140, r#"{"type":"agent_started"}"#),
        ]);
        let s = &client_scripts(&Arc::new(rec), "frontend")[0];
        let steps: Vec<_> = s
            .steps
            .iter()
            .map(|s| (s.label(), s.after_server, s.at_us))
            .collect();
        assert_eq!(
            steps,
            [
                ("heartbeat".to_string(), 0, 10),
                ("chat".to_string(), 1, 30)
            ]
        );
        assert_eq!(
            [s.server_label(0), s.server_label(1)],
            ["heartbeat_response", "agent_started"]
        );
        assert_eq!(s.target, "/ws?x=1");
        let headers: Vec<_> = s.headers.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(headers, ["Origin", "Authorization"]);
    }

    #[test]
    fn out_of_order_responses_go_to_the_request_whose_id_they_echo() {
        use Dir::*;
        let rec = recording(vec![
            open(1, "nlp", 0),
            msg(1, ServerToClient, 5, r#"{"type":"hello"}"#),
            msg(
                1,
                ClientToServer,
                10,
                r#"{"type":"q","message_id":"msg_a"}"#,
            ),
            msg(
                1,
                ClientToServer,
                20,
                r#"{"type":"q","message_id":"msg_b"}"#,
            ),
            msg(
                1,
                ServerToClient,
                30,
                r#"{"type":"r","response_to":"msg_b"}"#,
            ),
            msg(
                1,
                ServerToClient,
                40,
                r#"{"type":"r","response_to":"msg_a"}"#,
            ),
        ]);
        let t = mock_table(&rec, "nlp");
        assert_eq!(t.greetings[0].len(), 1);
        let delays: Vec<Vec<u64>> = t
            .requests
            .iter()
            .map(|r| r.responses.iter().map(|x| x.delay_us).collect())
            .collect();
        assert_eq!(delays, [vec![30], vec![10]]);
    }
}
