//! A lenient, passive WebSocket frame parser (RFC 6455 section 5).
//!
//! The proxy forwards bytes untouched and feeds a copy of each direction to a
//! [`FrameParser`], which turns the byte stream back into messages for the recording.
//! It never rejects anything: invalid UTF-8, reserved bits, reserved opcodes, unmasked
//! client frames, oversized control frames and broken fragmentation are all described,
//! not refused, because the recorder must see what the peers saw.
//!
//! Input may arrive in chunks of any size; the parser keeps only the frame header in
//! progress and the payload of the message being assembled (capped at
//! `max_body` bytes; longer bodies are recorded truncated with their full size).

use crate::recording::Opcode;

/// Something the parser finished assembling.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A complete data message, or a frame that belongs to no message.
    Message(ParsedMessage),
    /// A control frame (close, ping, pong or a reserved control opcode).
    Control(ParsedControl),
}

/// A data message reassembled from its frames.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParsedMessage {
    pub op: Opcode,
    /// The unmasked payload, at most `max_body` bytes of it.
    pub payload: Vec<u8>,
    /// Total payload size on the wire.
    pub size: u64,
    pub frames: u32,
    /// RSV bits (0..=7) of the first frame.
    pub rsv: u8,
    /// Set when the message was cut short by a new data frame (a protocol violation).
    pub interrupted: bool,
    /// Set when the body was cut because the recorder's memory budget for unfinished
    /// messages ([`Budget`]) was spent.
    pub over_budget: bool,
}

/// The memory all unfinished messages of a recorder may hold together, shared by every
/// parser: connections stalling inside huge frames cannot add up past it. A message
/// that meets a spent budget keeps what it had and is recorded truncated (with its
/// size); forwarding never waits for it.
#[derive(Debug)]
pub struct Budget {
    held: std::sync::atomic::AtomicUsize,
    limit: usize,
}

impl Budget {
    pub fn new(limit: usize) -> std::sync::Arc<Budget> {
        std::sync::Arc::new(Budget {
            held: Default::default(),
            limit,
        })
    }

    /// Bytes held now by unfinished messages.
    pub fn held(&self) -> usize {
        self.held.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Takes up to `n` bytes of the budget; returns how many it granted.
    fn take(&self, n: usize) -> usize {
        use std::sync::atomic::Ordering;
        let mut granted = 0;
        let _ = self
            .held
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| {
                granted = n.min(self.limit.saturating_sub(held));
                Some(held + granted)
            });
        granted
    }

    fn give_back(&self, n: usize) {
        self.held.fetch_sub(n, std::sync::atomic::Ordering::AcqRel);
    }
}

impl ParsedMessage {
    pub fn truncated(&self) -> bool {
        (self.payload.len() as u64) < self.size
    }
}

/// A control frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParsedControl {
    pub op: Opcode,
    pub payload: Vec<u8>,
    pub rsv: u8,
}

#[derive(Clone, Copy, Debug)]
struct FrameHeader {
    fin: bool,
    rsv: u8,
    op: Opcode,
    mask: Option<[u8; 4]>,
    len: u64,
}

enum State {
    /// Collecting header bytes into `head`.
    Header,
    /// Reading `remaining` payload bytes of `frame`.
    Payload { frame: FrameHeader, remaining: u64 },
}

/// Incremental parser for one direction of one connection.
pub struct FrameParser {
    state: State,
    head: [u8; 14],
    head_len: usize,
    /// Data message being assembled, if any.
    message: Option<ParsedMessage>,
    /// Payload of the control frame being read.
    control: Vec<u8>,
    /// Bytes of the current frame's payload already read (for unmasking).
    offset: u64,
    max_body: usize,
    /// The recorder-wide budget for unfinished messages, if any.
    budget: Option<std::sync::Arc<Budget>>,
}

impl FrameParser {
    pub fn new(max_body: usize) -> Self {
        FrameParser {
            state: State::Header,
            head: [0; 14],
            head_len: 0,
            message: None,
            control: Vec::new(),
            offset: 0,
            max_body,
            budget: None,
        }
    }

    /// A parser whose unfinished messages also draw on `budget`.
    pub fn with_budget(max_body: usize, budget: std::sync::Arc<Budget>) -> Self {
        let mut parser = FrameParser::new(max_body);
        parser.budget = Some(budget);
        parser
    }

    /// Takes the message in progress out of the parser, giving back what its body held
    /// of the budget.
    fn take_message(&mut self) -> Option<ParsedMessage> {
        let m = self.message.take()?;
        if let Some(budget) = &self.budget {
            budget.give_back(m.payload.len());
        }
        Some(m)
    }

    /// Feeds the next bytes of the stream, calling `emit` for every finished event.
    pub fn feed(&mut self, mut data: &[u8], emit: &mut impl FnMut(Event)) {
        while !data.is_empty() {
            match self.state {
                State::Header => {
                    let need = header_len(&self.head[..self.head_len]);
                    let take = (need - self.head_len).min(data.len());
                    self.head[self.head_len..self.head_len + take].copy_from_slice(&data[..take]);
                    self.head_len += take;
                    data = &data[take..];
                    if self.head_len == header_len(&self.head[..self.head_len]) {
                        let frame = decode_header(&self.head[..self.head_len]);
                        self.head_len = 0;
                        self.begin_frame(frame, emit);
                    }
                }
                State::Payload { frame, remaining } => {
                    let take = remaining.min(data.len() as u64) as usize;
                    self.payload(frame, &data[..take]);
                    data = &data[take..];
                    let remaining = remaining - take as u64;
                    self.state = State::Payload { frame, remaining };
                    if remaining == 0 {
                        self.end_frame(frame, emit);
                    }
                }
            }
        }
    }

    /// The data message still being assembled when the stream ended, if any: what
    /// arrived of it, with `size` counting the announced rest of its current frame.
    pub fn unfinished(&mut self) -> Option<ParsedMessage> {
        let mut m = self.take_message()?;
        if let State::Payload { frame, remaining } = self.state {
            if !frame.op.is_control() {
                m.size += remaining;
            }
        }
        self.state = State::Header;
        Some(m)
    }

    fn begin_frame(&mut self, frame: FrameHeader, emit: &mut impl FnMut(Event)) {
        self.offset = 0;
        if frame.op.is_control() {
            self.control.clear();
        } else if frame.op == Opcode::CONTINUATION && self.message.is_some() {
            if let Some(m) = &mut self.message {
                m.frames += 1;
            }
        } else {
            // A new data frame (or an orphan continuation): any message in progress
            // was cut short.
            if let Some(mut cut) = self.take_message() {
                cut.interrupted = true;
                emit(Event::Message(cut));
            }
            self.message = Some(ParsedMessage {
                op: frame.op,
                payload: Vec::new(),
                size: 0,
                frames: 1,
                rsv: frame.rsv,
                interrupted: false,
                over_budget: false,
            });
        }
        self.state = State::Payload {
            frame,
            remaining: frame.len,
        };
        if frame.len == 0 {
            self.end_frame(frame, emit);
        }
    }

    fn payload(&mut self, frame: FrameHeader, bytes: &[u8]) {
        let (buf, keep) = if frame.op.is_control() {
            (&mut self.control, bytes.len())
        } else {
            let Some(m) = self.message.as_mut() else {
                return;
            };
            m.size += bytes.len() as u64;
            let mut keep = self
                .max_body
                .saturating_sub(m.payload.len())
                .min(bytes.len());
            if let Some(budget) = &self.budget {
                // Once cut, a body stays cut: later bytes would leave a gap in it.
                let granted = if m.over_budget { 0 } else { budget.take(keep) };
                m.over_budget |= granted < keep;
                keep = granted;
            }
            (&mut m.payload, keep)
        };
        let start = buf.len();
        buf.extend_from_slice(&bytes[..keep]);
        if let Some(mask) = frame.mask {
            unmask(&mut buf[start..], mask, self.offset);
        }
        self.offset += bytes.len() as u64;
    }

    fn end_frame(&mut self, frame: FrameHeader, emit: &mut impl FnMut(Event)) {
        self.state = State::Header;
        if frame.op.is_control() {
            emit(Event::Control(ParsedControl {
                op: frame.op,
                payload: std::mem::take(&mut self.control),
                rsv: frame.rsv,
            }));
            return;
        }
        if frame.fin {
            if let Some(m) = self.take_message() {
                emit(Event::Message(m));
            }
        }
    }
}

impl Drop for FrameParser {
    fn drop(&mut self) {
        self.take_message();
    }
}

/// XORs `data` with the mask, `offset` bytes into the frame's payload; eight bytes at
/// a time (a byte loop costs ~1 ns a byte, too much for 16 MiB frames).
fn unmask(data: &mut [u8], mask: [u8; 4], offset: u64) {
    let shift = (offset % 4) as usize;
    let rotated: [u8; 4] = std::array::from_fn(|i| mask[(i + shift) % 4]);
    let word = u64::from_ne_bytes([
        rotated[0], rotated[1], rotated[2], rotated[3], rotated[0], rotated[1], rotated[2],
        rotated[3],
    ]);
    let mut chunks = data.chunks_exact_mut(8);
    for chunk in &mut chunks {
        let v = u64::from_ne_bytes(chunk.try_into().expect("8 bytes")) ^ word;
        chunk.copy_from_slice(&v.to_ne_bytes());
    }
    for (i, b) in chunks.into_remainder().iter_mut().enumerate() {
        *b ^= rotated[i % 4];
    }
}

/// Header length implied by the bytes seen so far (at least 2).
fn header_len(head: &[u8]) -> usize {
    if head.len() < 2 {
        return 2;
    }
    let masked = if head[1] & 0x80 != 0 { 4 } else { 0 };
    let ext = match head[1] & 0x7f {
        126 => 2,
        127 => 8,
        _ => 0,
    };
    2 + ext + masked
}

fn decode_header(head: &[u8]) -> FrameHeader {
    let len7 = head[1] & 0x7f;
    let (len, rest) = match len7 {
        126 => (u16::from_be_bytes([head[2], head[3]]) as u64, &head[4..]),
        127 => {
            let mut b = [0u8; 8];
            b.copy_from_slice(&head[2..10]);
            (u64::from_be_bytes(b), &head[10..])
        }
        n => (n as u64, &head[2..]),
    };
    let mask = (head[1] & 0x80 != 0).then(|| [rest[0], rest[1], rest[2], rest[3]]);
    FrameHeader {
        fin: head[0] & 0x80 != 0,
        rsv: (head[0] >> 4) & 0x7,
        op: Opcode(head[0] & 0x0f),
        mask,
        len,
    }
}

/// Encodes one frame (used by tests, benchmarks and the fuzzers to build raw input).
pub fn encode_frame(
    fin: bool,
    rsv: u8,
    op: Opcode,
    mask: Option<[u8; 4]>,
    payload: &[u8],
) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 14);
    out.push((u8::from(fin) << 7) | ((rsv & 7) << 4) | (op.0 & 0xf));
    let mask_bit = if mask.is_some() { 0x80 } else { 0 };
    match payload.len() {
        n if n < 126 => out.push(mask_bit | n as u8),
        n if n <= u16::MAX as usize => {
            out.push(mask_bit | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(mask_bit | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    match mask {
        Some(m) => {
            out.extend_from_slice(&m);
            out.extend(payload.iter().enumerate().map(|(i, b)| b ^ m[i % 4]));
        }
        None => out.extend_from_slice(payload),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The budget counts unfinished bodies only: given back when a message is done,
    /// cut short, or its parser goes away.
    #[test]
    fn the_budget_is_given_back() {
        let budget = Budget::new(100);
        let mut a = FrameParser::with_budget(1 << 20, budget.clone());
        let mut b = FrameParser::with_budget(1 << 20, budget.clone());
        // a: a 1000-byte frame, 80 bytes of it so far.
        let mut head = vec![0x82, 126];
        head.extend_from_slice(&1000u16.to_be_bytes());
        a.feed(&[head, vec![1; 80]].concat(), &mut |_| {});
        assert_eq!(budget.held(), 80);
        // b: a whole 50-byte message gets the 20 bytes left, and says so.
        let mut got = Vec::new();
        b.feed(&[&[0x82, 50][..], &[2; 50]].concat(), &mut |e| got.push(e));
        let Some(Event::Message(m)) = got.pop() else {
            panic!("a message")
        };
        assert_eq!((m.payload.len(), m.size, m.over_budget), (20, 50, true));
        assert_eq!(budget.held(), 80);
        drop(a);
        assert_eq!(budget.held(), 0);
    }

    fn parse_all(bytes: &[u8], chunk: usize) -> Vec<Event> {
        let mut p = FrameParser::new(1 << 20);
        let mut out = Vec::new();
        for c in bytes.chunks(chunk.max(1)) {
            p.feed(c, &mut |e| out.push(e));
        }
        out
    }

    #[test]
    fn fragmented_text_with_ping_between_fragments_in_any_chunking() {
        let mask = Some([1, 2, 3, 4]);
        let mut wire = encode_frame(false, 0, Opcode::TEXT, mask, b"hel");
        wire.extend(encode_frame(true, 0, Opcode::PING, mask, b"p"));
        wire.extend(encode_frame(true, 0, Opcode::CONTINUATION, mask, b"lo"));
        for chunk in [1, 2, 3, 7, 1000] {
            let events = parse_all(&wire, chunk);
            assert_eq!(events.len(), 2, "chunk {chunk}");
            assert_eq!(
                events[0],
                Event::Control(ParsedControl {
                    op: Opcode::PING,
                    payload: b"p".to_vec(),
                    rsv: 0
                })
            );
            let Event::Message(m) = &events[1] else {
                panic!("expected a message")
            };
            assert_eq!(
                (m.payload.as_slice(), m.frames, m.op),
                (&b"hello"[..], 2, Opcode::TEXT)
            );
        }
    }

    #[test]
    fn long_lengths_rsv_and_reserved_opcodes() {
        let big = vec![7u8; 70_000];
        let mut wire = encode_frame(true, 0b101, Opcode::BINARY, None, &big);
        wire.extend(encode_frame(true, 0, Opcode(0x3), None, b"x"));
        wire.extend(encode_frame(true, 0, Opcode(0xb), None, b"y"));
        let events = parse_all(&wire, 4096);
        let Event::Message(m) = &events[0] else {
            panic!()
        };
        assert_eq!((m.payload.len(), m.rsv), (70_000, 0b101));
        let Event::Message(r) = &events[1] else {
            panic!()
        };
        assert_eq!(r.op, Opcode(3));
        assert!(matches!(&events[2], Event::Control(c) if c.op == Opcode(0xb)));
    }

    #[test]
    fn unmasking_works_at_every_offset_and_length() {
        let mask = [0x11, 0x22, 0x33, 0x44];
        let plain: Vec<u8> = (0..100u8).collect();
        for offset in 0..8u64 {
            for len in [0, 1, 7, 8, 9, 31, 100] {
                let mut data: Vec<u8> = plain[..len]
                    .iter()
                    .enumerate()
                    .map(|(i, b)| b ^ mask[((offset + i as u64) % 4) as usize])
                    .collect();
                unmask(&mut data, mask, offset);
                assert_eq!(data, &plain[..len], "offset {offset} len {len}");
            }
        }
    }

    #[test]
    fn bodies_over_the_cap_are_truncated_but_sized() {
        let mut p = FrameParser::new(10);
        let mut out = Vec::new();
        p.feed(
            &encode_frame(true, 0, Opcode::BINARY, Some([9, 9, 9, 9]), &[1; 100]),
            &mut |e| out.push(e),
        );
        let Event::Message(m) = &out[0] else { panic!() };
        assert_eq!(
            (&m.payload[..], m.size, m.truncated()),
            (&[1u8; 10][..], 100, true)
        );
    }

    #[test]
    fn a_new_message_interrupts_an_unfinished_one() {
        let mut wire = encode_frame(false, 0, Opcode::TEXT, None, b"a");
        wire.extend(encode_frame(true, 0, Opcode::TEXT, None, b"b"));
        let events = parse_all(&wire, 100);
        let msgs: Vec<_> = events
            .iter()
            .map(|e| match e {
                Event::Message(m) => (m.payload.clone(), m.interrupted),
                Event::Control(_) => panic!(),
            })
            .collect();
        assert_eq!(msgs, vec![(b"a".to_vec(), true), (b"b".to_vec(), false)]);
    }
}
