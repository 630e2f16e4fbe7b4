//! The tap: turns a copy of one direction's bytes into recording records.
//!
//! A [`Tap`] sits beside one direction of one tunnelled connection. It runs the
//! passive [`FrameParser`], inflates permessage-deflate messages, decodes close frames,
//! and hands finished [`Record`]s to the sink. It only ever reads a copy: nothing it
//! does can change what is forwarded.

use crate::record::deflate::{Inflater, Negotiated};
use std::sync::Arc;

use crate::record::frame::{Budget, Event, FrameParser, ParsedControl, ParsedMessage};
use crate::recording::sink::SinkHandle;
use crate::recording::{Body, Close, Control, Dir, Message, Opcode, Record};

/// RSV1: the permessage-deflate "compressed" bit, as the parser reports RSV bits (0..=7).
const RSV1: u8 = 0b100;

/// Records one direction of one connection.
pub struct Tap {
    parser: FrameParser,
    describer: Describer,
}

struct Describer {
    conn: u64,
    dir: Dir,
    inflater: Option<Inflater>,
    max_body: usize,
    close_at: Option<std::time::Instant>,
    out: Vec<Record>,
}

impl Tap {
    pub fn new(
        conn: u64,
        dir: Dir,
        deflate: Option<&Negotiated>,
        max_body: usize,
        budget: Arc<Budget>,
    ) -> Tap {
        Tap {
            parser: FrameParser::with_budget(max_body, budget),
            describer: Describer {
                conn,
                dir,
                inflater: deflate.map(|n| Inflater::new(n, dir)),
                max_body,
                close_at: None,
                out: Vec::new(),
            },
        }
    }

    /// Parses bytes that were just forwarded and queues what they completed.
    pub fn feed(&mut self, bytes: &[u8], sink: &SinkHandle) {
        let d = &mut self.describer;
        self.parser.feed(bytes, &mut |event| d.describe(event));
        if !d.out.is_empty() {
            sink.push(d.out.drain(..));
        }
    }

    /// Records the message that was still arriving when the connection ended (the
    /// peer vanished mid-message): what was forwarded of it is kept, marked truncated.
    pub fn finish(&mut self, sink: &SinkHandle) {
        let Some(m) = self.parser.unfinished() else {
            return;
        };
        let mut message = self.describer.message(m);
        message.truncated = true;
        let size = message.size.unwrap_or(message.body.len() as u64);
        message.size = Some(size);
        let note = format!(
            "the connection ended mid-message: {} of {size} byte(s) arrived",
            message.body.len()
        );
        message.note = Some(match message.note.take() {
            Some(other) => format!("{note}; {other}"),
            None => note,
        });
        sink.push([Record::Message(message)]);
    }

    /// Whether this direction has sent a close frame.
    pub fn close_seen(&self) -> bool {
        self.describer.close_at.is_some()
    }

    /// When this direction sent its first close frame.
    pub fn close_at(&self) -> Option<std::time::Instant> {
        self.describer.close_at
    }
}

impl Describer {
    fn describe(&mut self, event: Event) {
        let record = match event {
            Event::Message(m) => Record::Message(self.message(m)),
            Event::Control(c) => self.control(c),
        };
        self.out.push(record);
    }

    fn message(&mut self, m: ParsedMessage) -> Message {
        let mut notes = Vec::new();
        if m.interrupted {
            notes.push("cut short: a new data frame started before this message's final fragment");
        }
        if m.over_budget {
            notes.push("truncated: the recorder's memory for unfinished messages (--max-buffered) was spent while it arrived");
        }
        let compressed = m.rsv & RSV1 != 0
            && matches!(m.op, Opcode::TEXT | Opcode::BINARY)
            && self.inflater.is_some();
        let truncated_on_wire = m.truncated();
        let (payload, size, inflate_error) = match (&mut self.inflater, compressed) {
            (Some(inflater), true) if !truncated_on_wire => {
                match inflater.inflate(&m.payload, self.max_body) {
                    Ok(inflated) => (inflated.body, inflated.size, None),
                    Err(e) => (m.payload, m.size, Some(e.to_string())),
                }
            }
            (Some(_), true) => (
                m.payload,
                m.size,
                Some("compressed message larger than --max-message-size; kept compressed and truncated".to_string()),
            ),
            _ => (m.payload, m.size, None),
        };
        let truncated = (payload.len() as u64) < size;
        // Text as text (when valid UTF-8); binary, as the format says, as base64.
        let body = if m.op == Opcode::BINARY {
            Body::Bytes(payload)
        } else {
            Body::from_bytes(payload)
        };
        if m.op == Opcode::TEXT
            && matches!(body, Body::Bytes(_))
            && !truncated
            && inflate_error.is_none()
        {
            notes.push("text message is not valid UTF-8");
        }
        let mut note = notes.join("; ");
        if let Some(e) = &inflate_error {
            if !note.is_empty() {
                note.push_str("; ");
            }
            note.push_str(e);
        }
        Message {
            t_us: 0,
            conn: self.conn,
            dir: self.dir,
            op: m.op,
            body,
            frames: m.frames,
            compressed: compressed && inflate_error.is_none(),
            rsv: if compressed { m.rsv & !RSV1 } else { m.rsv },
            truncated,
            size: truncated.then_some(size),
            note: (!note.is_empty()).then_some(note),
        }
    }

    fn control(&mut self, c: ParsedControl) -> Record {
        let control = |op: Option<Opcode>, payload: Vec<u8>| Control {
            t_us: 0,
            conn: self.conn,
            dir: self.dir,
            op,
            body: Body::from_bytes(payload),
        };
        match c.op {
            Opcode::PING => Record::Ping(control(None, c.payload)),
            Opcode::PONG => Record::Pong(control(None, c.payload)),
            Opcode::CLOSE => {
                self.close_at.get_or_insert_with(std::time::Instant::now);
                Record::Close(close_record(self.conn, self.dir, &c.payload))
            }
            other => Record::Control(control(Some(other), c.payload)),
        }
    }
}

/// Decodes a close frame's payload: a 2-byte code and a UTF-8 reason, when well formed.
fn close_record(conn: u64, dir: Dir, payload: &[u8]) -> Close {
    let mut close = Close {
        t_us: 0,
        conn,
        dir,
        code: None,
        reason: String::new(),
        base64: None,
    };
    if payload.len() >= 2 {
        close.code = Some(u16::from_be_bytes([payload[0], payload[1]]));
        match std::str::from_utf8(&payload[2..]) {
            Ok(reason) => close.reason = reason.to_string(),
            Err(_) => close.base64 = Some(encode_base64(payload)),
        }
    } else if !payload.is_empty() {
        close.base64 = Some(encode_base64(payload));
    }
    close
}

fn encode_base64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    crate::recording::base64().encode(bytes)
}
