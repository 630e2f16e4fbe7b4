//! Writing what a replay did in the recording format.
//!
//! Replayed clients and mocks are real WebSocket peers built on tokio-tungstenite
//! messages; [`Capture`] turns what they send and receive into the same records the
//! recording proxy writes, through the same [`crate::recording::sink`], so every command works on a
//! replay's output as on a recording. Live credentials a replay sends
//! ([`super::credentials`]) are scrubbed from every record before it is handed over.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio_tungstenite::tungstenite::http::HeaderMap;
use tokio_tungstenite::tungstenite::Message as WsMessage;

use super::credentials::Scrubber;
use crate::recording::sink::SinkHandle;
use crate::recording::{
    Body, Close, Control, Dir, End, EndHow, Fault, Message, Opcode, Open, Record, Side,
};

/// The `client` of a replayed client connection's `open` record.
pub const REPLAY_CLIENT: &str = "wsreplay replay";
/// How the `upstream` of a mocked connection's `open` record begins.
pub const MOCK_UPSTREAM: &str = "wsreplay mock on ";

/// Shared by every replayed connection and mock of one replay.
#[derive(Clone)]
pub struct Capture {
    sink: SinkHandle,
    ids: Arc<AtomicU64>,
    scrubber: Option<Arc<Scrubber>>,
}

/// The capture of one connection. Records are buffered and handed to the writer in
/// batches ([`ConnCapture::flush`]; `end` flushes): their time stamps are those of the
/// hand-over, at most one burst of messages late.
pub struct ConnCapture {
    sink: SinkHandle,
    pub conn: u64,
    pending: Vec<Record>,
    scrubber: Option<Arc<Scrubber>>,
}

impl Capture {
    pub fn new(sink: SinkHandle) -> Self {
        Capture {
            sink,
            ids: Arc::new(AtomicU64::new(1)),
            scrubber: None,
        }
    }

    /// A capture that scrubs live credential values from every record.
    pub fn scrubbing(sink: SinkHandle, scrubber: Option<Scrubber>) -> Self {
        Capture {
            scrubber: scrubber.map(Arc::new),
            ..Capture::new(sink)
        }
    }

    /// Records a connection opening and returns its capture.
    pub fn open(&self, mut open: Open) -> ConnCapture {
        let conn = self.ids.fetch_add(1, Ordering::Relaxed);
        open.conn = conn;
        let mut record = Record::Open(open);
        if let Some(scrubber) = &self.scrubber {
            scrubber.record(&mut record);
        }
        self.sink.push([record]);
        ConnCapture {
            sink: self.sink.clone(),
            conn,
            pending: Vec::new(),
            scrubber: self.scrubber.clone(),
        }
    }
}

impl ConnCapture {
    /// Records a WebSocket message (data, ping, pong or close) going `dir`.
    pub fn message(&mut self, dir: Dir, msg: &WsMessage) {
        let conn = self.conn;
        let control = |bytes: &[u8]| Control {
            t_us: 0,
            conn,
            dir,
            op: None,
            body: Body::from_bytes(bytes.to_vec()),
        };
        if let Some((op, body)) = data_of(msg) {
            return self.data(dir, op, body);
        }
        let record = match msg {
            WsMessage::Text(_) | WsMessage::Binary(_) | WsMessage::Frame(_) => return,
            WsMessage::Ping(p) => Record::Ping(control(p)),
            WsMessage::Pong(p) => Record::Pong(control(p)),
            WsMessage::Close(frame) => Record::Close(Close {
                t_us: 0,
                conn,
                dir,
                code: frame.as_ref().map(|f| u16::from(f.code)),
                reason: frame
                    .as_ref()
                    .map(|f| f.reason.to_string())
                    .unwrap_or_default(),
                base64: None,
            }),
        };
        self.push(record);
    }

    /// Records a data message going `dir` whose body the caller already has as a
    /// [`Body`] (one copy of a message's bytes, not one per use).
    pub fn data(&mut self, dir: Dir, op: Opcode, body: Body) {
        self.push(Record::Message(Message::whole(self.conn, dir, op, body)));
    }

    fn push(&mut self, record: Record) {
        self.pending.push(record);
        if self.pending.len() >= 256 {
            self.flush();
        }
    }

    /// Records a fault injected into this connection (`--fault`).
    pub fn fault(&mut self, dir: Dir, rule: &str, action: &str, label: &str) {
        self.pending.push(Record::Fault(Fault {
            t_us: 0,
            conn: self.conn,
            dir,
            rule: rule.to_string(),
            action: action.to_string(),
            label: label.to_string(),
        }));
    }

    /// Another capture of the same connection (for a task handling the other direction).
    pub fn fork(&self) -> ConnCapture {
        ConnCapture {
            sink: self.sink.clone(),
            conn: self.conn,
            pending: Vec::new(),
            scrubber: self.scrubber.clone(),
        }
    }

    /// Hands the buffered records to the writer.
    pub fn flush(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        if let Some(scrubber) = &self.scrubber {
            self.pending.iter_mut().for_each(|r| scrubber.record(r));
        }
        self.sink.push(self.pending.drain(..));
    }

    /// Records how the connection ended.
    pub fn end(&mut self, how: EndHow, by: Side, error: Option<String>) {
        self.pending.push(Record::End(End {
            t_us: 0,
            conn: self.conn,
            how,
            by,
            error,
        }));
        self.flush();
    }
}

/// The opcode and body of a data message (text or binary); `None` for control frames.
pub fn data_of(msg: &WsMessage) -> Option<(Opcode, Body)> {
    match msg {
        WsMessage::Text(t) => Some((Opcode::TEXT, Body::Text(t.to_string()))),
        WsMessage::Binary(b) => Some((Opcode::BINARY, Body::Bytes(b.to_vec()))),
        _ => None,
    }
}

/// Header pairs as the recording stores them.
pub fn header_pairs(headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(n, v)| {
            (
                n.to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect()
}

/// The tungstenite message for a recorded body.
pub fn to_ws(op: Opcode, body: &Body) -> WsMessage {
    match (op, body) {
        (Opcode::TEXT, Body::Text(t)) => WsMessage::text(t.clone()),
        (_, body) => WsMessage::binary(body.as_bytes().to_vec()),
    }
}
