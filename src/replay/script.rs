//! What a replay plays, read off a recording.
//!
//! [`ClientScript`]: for each recorded connection of a `--target` route, the client's
//! messages in order, each with its place in the recording (causal pacing, see
//! [`super::causal`]) and its time offset (wall-clock pacing).
//!
//! What a mock answers with is read off the recording by [`super::mock::table`].

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::protocol;
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
    /// Its index among the recording's records (causal pacing, [`super::causal`]).
    pub position: usize,
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
    /// Index of its opening among the recording's records.
    pub opened: usize,
    pub steps: Vec<Step>,
    /// Indices (in the recording) of the recorded server messages, in order.
    pub server: Vec<usize>,
    pub ending: Ending,
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
                    opened: position,
                    steps: Vec::new(),
                    server: Vec::new(),
                    ending: Ending::Dropped,
                    recording: recording.clone(),
                });
            }
            other => {
                let Some(conn) = other.conn() else { continue };
                let Some(&i) = index.get(&conn) else { continue };
                let script = &mut scripts[i];
                let at_us = other.t_us().saturating_sub(opened_at[&conn]);
                let step = |action| Step {
                    position,
                    at_us,
                    action,
                };
                match other {
                    Record::Message(m) if m.dir == Dir::ServerToClient => {
                        script.server.push(position);
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

/// Recorded conversations for the replay modules' tests.
#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::recording::{Header, Message, Open};

    /// The opening of connection `conn` of `route` (`/ws?x=1`) at `t` µs.
    pub(crate) fn open(conn: u64, route: &str, t: u64) -> Record {
        Record::Open(Open {
            t_us: t,
            headers: vec![
                ("Host".into(), "h".into()),
                ("Origin".into(), "o".into()),
                (
                    "Authorization".into(),
                    "Bearer redacted-0123456789ab".into(),
                ),
                ("Connection".into(), "Upgrade".into()),
            ],
            ..Open::accepted(route, conn, "/ws?x=1")
        })
    }

    /// A text message of `conn` at `t` µs.
    pub(crate) fn msg(conn: u64, dir: Dir, t: u64, text: &str) -> Record {
        let mut m = Message::whole(conn, dir, Opcode::TEXT, Body::Text(text.into()));
        m.t_us = t;
        Record::Message(m)
    }

    /// A recording of `records`.
    pub(crate) fn recording(records: Vec<Record>) -> Recording {
        Recording {
            path: "r.jsonl".into(),
            header: Header::current(0),
            records,
            warnings: vec![],
        }
    }

    #[test]
    fn client_steps_keep_their_place_in_the_recording() {
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
            .map(|s| (s.label(), s.position, s.at_us))
            .collect();
        assert_eq!(
            steps,
            [
                ("heartbeat".to_string(), 1, 10),
                ("chat".to_string(), 3, 30)
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
}
