//! What a mock knows of the server it stands in for, read off a recording.
//!
//! [`MockTable`]: per recorded connection of the route, its upgrade (request, status,
//! response headers), the messages the server sent before any request (greetings), and
//! each request with the responses that answered it. A response answers, on its own
//! connection, the latest earlier request that shares its protocol correlation id
//! (JSON-RPC `id`, graphql-ws `id`, a Socket.IO ack id, ...), else whose id values
//! (`message_id`, ...) it contains, else whose `[[correlate]]` value it carries, else
//! simply the latest earlier request. Unsolicited messages (pushes, heartbeats) thereby
//! keep their recorded delay after what preceded them. A closing handshake the recorded
//! server started is kept the same way, after the request it followed.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::protocol::{self, Decoder, Event, Reader, Shared};
use crate::recording::{Body, Dir, Opcode, Open, Record, Recording};
use crate::replay::correlate::{contains_string, id_values, Flat, IdPair};

/// A recorded message, decoded once.
#[derive(Clone, Debug)]
pub struct RecordedMessage {
    pub op: Opcode,
    pub body: Body,
    pub json: Option<Value>,
    /// Its kind, as the route's protocol names it.
    pub label: String,
    /// The protocol correlation ids of its events, in order.
    pub correlations: Vec<String>,
}

/// A recorded response and how long after its request (or the connection's opening,
/// for a greeting) it was sent.
#[derive(Clone, Debug)]
pub struct RecordedResponse {
    /// Its index among the recording's records.
    pub position: usize,
    pub delay_us: u64,
    pub message: RecordedMessage,
}

/// A recorded request to the mocked server and what answered it.
#[derive(Clone, Debug)]
pub struct RecordedRequest {
    /// Its index among the recording's records.
    pub position: usize,
    pub message: RecordedMessage,
    pub flat: Option<Flat>,
    pub responses: Vec<RecordedResponse>,
}

/// The close frame with which the recorded server (not the client) began closing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordedClose {
    /// The request it followed (`None`: before any), and how long after it (or after
    /// the connection's opening) it was sent.
    pub after: Option<usize>,
    pub delay_us: u64,
    pub code: Option<u16>,
    pub reason: String,
}

/// One recorded connection to the mocked server.
#[derive(Clone, Debug)]
pub struct RecordedConn {
    /// Its upgrade: request target, headers, the server's status and response headers.
    pub open: Open,
    pub greetings: Vec<RecordedResponse>,
    pub requests: Vec<RecordedRequest>,
    pub close: Option<RecordedClose>,
}

/// Everything a mock needs to stand in for one route.
#[derive(Clone, Debug, Default)]
pub struct MockTable {
    pub conns: Vec<RecordedConn>,
    /// The protocol the route's recorded connections were read with: live messages
    /// are decoded the same way.
    pub protocol: Option<Shared>,
}

impl MockTable {
    /// A decoder for one live connection, reading as the recording was read.
    pub fn decoder(&self) -> Box<dyn Decoder> {
        match &self.protocol {
            Some(p) => p.decoder(),
            None => protocol::default().decoder(),
        }
    }

    /// Where a text message's framing carries its id (see
    /// [`crate::protocol::Protocol::framing_id`]).
    pub fn framing_id(&self, text: &str) -> Option<std::ops::Range<usize>> {
        self.protocol.as_ref()?.framing_id(text)
    }

    /// Every recorded reply, greetings included.
    pub fn replies(&self) -> impl Iterator<Item = &RecordedResponse> {
        self.conns.iter().flat_map(|c| {
            let answers = c.requests.iter().flat_map(|r| &r.responses);
            c.greetings.iter().chain(answers)
        })
    }
}

/// A live message, decoded through its connection's `decoder`.
pub fn decode(decoder: &mut dyn Decoder, dir: Dir, op: Opcode, body: Body) -> RecordedMessage {
    let mut events = Vec::with_capacity(1);
    decoder.decode(dir, op, &body, &mut events);
    RecordedMessage::of(&events, op, &body)
}

impl RecordedMessage {
    /// A message named by the events it was decoded into.
    fn of(events: &[Event<'_>], op: Opcode, body: &Body) -> RecordedMessage {
        RecordedMessage {
            label: protocol::label_of_events(events, op, body),
            correlations: events
                .iter()
                .filter_map(|e| e.correlation.clone())
                .collect(),
            json: json_of(body),
            op,
            body: body.clone(),
        }
    }
}

/// The JSON of a text message that is one JSON value.
pub fn json_of(body: &Body) -> Option<Value> {
    body.as_text().and_then(|t| serde_json::from_str(t).ok())
}

/// Builds the mock table of `route`; `pairs` are the `[[correlate]]` declarations.
pub fn mock_table(recording: &Recording, route: &str, pairs: &[IdPair]) -> MockTable {
    let mut table = MockTable::default();
    // Per recorded connection: its index in the table, when each request was sent, and
    // whether a close frame went either way yet.
    let mut conns: BTreeMap<u64, (usize, Vec<u64>, bool)> = BTreeMap::new();
    let mut reader = Reader::default();
    let pairs: Vec<&IdPair> = pairs.iter().filter(|p| p.route == route).collect();
    for (position, record) in recording.records.iter().enumerate() {
        match record {
            Record::Open(o) if o.route == route => {
                reader.open(o);
                conns.insert(o.conn, (table.conns.len(), Vec::new(), false));
                table.conns.push(RecordedConn {
                    open: o.clone(),
                    greetings: Vec::new(),
                    requests: Vec::new(),
                    close: None,
                });
            }
            Record::Close(c) => {
                let Some((index, sent_at, closing)) = conns.get_mut(&c.conn) else {
                    continue;
                };
                if c.dir == Dir::ServerToClient && !*closing {
                    let conn = &mut table.conns[*index];
                    let after = sent_at.len().checked_sub(1);
                    let since = after.map_or(conn.open.t_us, |r| sent_at[r]);
                    conn.close = Some(RecordedClose {
                        after,
                        delay_us: c.t_us.saturating_sub(since),
                        code: c.code,
                        reason: c.reason.clone(),
                    });
                }
                *closing = true;
            }
            Record::Message(m) => {
                let Some((index, sent_at, _)) = conns.get_mut(&m.conn) else {
                    continue;
                };
                let mut events = Vec::with_capacity(1);
                let choice = reader.decode(m, &mut events);
                table
                    .protocol
                    .get_or_insert_with(|| choice.protocol.clone());
                let message = RecordedMessage::of(&events, m.op, &m.body);
                drop(events);
                let conn = &mut table.conns[*index];
                if m.dir == Dir::ClientToServer {
                    sent_at.push(m.t_us);
                    conn.requests.push(RecordedRequest {
                        position,
                        flat: message.json.as_ref().map(Flat::of),
                        message,
                        responses: Vec::new(),
                    });
                    continue;
                }
                match answered(&conn.requests, &message, &pairs) {
                    Some(r) => conn.requests[r].responses.push(RecordedResponse {
                        position,
                        delay_us: m.t_us.saturating_sub(sent_at[r]),
                        message,
                    }),
                    None => conn.greetings.push(RecordedResponse {
                        position,
                        delay_us: m.t_us.saturating_sub(conn.open.t_us),
                        message,
                    }),
                }
            }
            _ => {}
        }
    }
    table
}

/// Which of a connection's requests (so far) a response answers.
fn answered(
    requests: &[RecordedRequest],
    response: &RecordedMessage,
    pairs: &[&IdPair],
) -> Option<usize> {
    let latest = |found: &dyn Fn(&RecordedRequest) -> bool| requests.iter().rposition(found);
    let by_correlation = || {
        latest(&|r| {
            r.message
                .correlations
                .iter()
                .any(|c| response.correlations.contains(c))
        })
    };
    let json = response.json.as_ref();
    let by_id = || {
        let json = json?;
        latest(&|r| {
            r.message
                .json
                .as_ref()
                .is_some_and(|req| id_values(req).iter().any(|id| contains_string(json, id)))
        })
    };
    let by_pair = || {
        let json = json?;
        latest(&|r| {
            let Some(req) = &r.message.json else {
                return false;
            };
            pairs.iter().any(|p| {
                let value = |v: &Value, path: &str| v.pointer(&pointer(path)).cloned();
                value(req, &p.request).is_some_and(|v| Some(v) == value(json, &p.response))
            })
        })
    };
    by_correlation()
        .or_else(by_id)
        .or_else(by_pair)
        .or_else(|| requests.len().checked_sub(1))
}

/// A dotted path (`meta.request_id`) as a JSON pointer.
pub fn pointer(dotted: &str) -> String {
    dotted
        .split('.')
        .map(|k| format!("/{}", k.replace('~', "~0").replace('/', "~1")))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::replay::script::tests::{msg, open, recording};

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
        let t = mock_table(&rec, "nlp", &[]);
        assert_eq!(t.conns[0].greetings.len(), 1);
        let delays: Vec<Vec<u64>> = t.conns[0]
            .requests
            .iter()
            .map(|r| r.responses.iter().map(|x| x.delay_us).collect())
            .collect();
        assert_eq!(delays, [vec![30], vec![10]]);
    }

    #[test]
    fn a_close_the_server_began_follows_its_request_and_a_client_close_is_not_kept() {
        use crate::recording::Close;
        use Dir::*;
        let close = |conn, t_us, dir, code| {
            Record::Close(Close {
                t_us,
                conn,
                dir,
                code,
                reason: "STOMP died".into(),
                base64: None,
            })
        };
        let rec = recording(vec![
            open(1, "stomp", 0),
            msg(1, ClientToServer, 10, "CONNECT\n\n\0"),
            msg(1, ClientToServer, 20, "DISCONNECT\nreceipt:close-1\n\n\0"),
            close(1, 25, ServerToClient, Some(1000)),
            close(1, 26, ClientToServer, Some(1000)),
            open(2, "stomp", 30),
            msg(2, ClientToServer, 40, "CONNECT\n\n\0"),
            close(2, 50, ClientToServer, None),
            close(2, 51, ServerToClient, None),
        ]);
        let t = mock_table(&rec, "stomp", &[]);
        let expected = RecordedClose {
            after: Some(1),
            delay_us: 5,
            code: Some(1000),
            reason: "STOMP died".into(),
        };
        assert_eq!(t.conns[0].close, Some(expected));
        assert_eq!(
            t.conns[1].close, None,
            "the server only answered the client's close"
        );
    }

    #[test]
    fn numeric_ids_attach_concurrent_answers_to_their_requests() {
        use Dir::*;
        let rec = recording(vec![
            open(1, "rpc", 0),
            msg(
                1,
                ClientToServer,
                10,
                r#"{"jsonrpc":"2.0","id":1,"method":"a"}"#,
            ),
            msg(
                1,
                ClientToServer,
                20,
                r#"{"jsonrpc":"2.0","id":2,"method":"b"}"#,
            ),
            msg(
                1,
                ServerToClient,
                30,
                r#"{"jsonrpc":"2.0","id":2,"result":{}}"#,
            ),
            msg(
                1,
                ServerToClient,
                40,
                r#"{"jsonrpc":"2.0","id":1,"result":{}}"#,
            ),
        ]);
        let t = mock_table(&rec, "rpc", &[]);
        let delays: Vec<Vec<u64>> = t.conns[0]
            .requests
            .iter()
            .map(|r| r.responses.iter().map(|x| x.delay_us).collect())
            .collect();
        assert_eq!(delays, [vec![30], vec![10]]);
    }
}
