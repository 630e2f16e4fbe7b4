//! The recording format: one JSON Lines file per recording.
//!
//! This module owns the on-disk contract. Everything that reads or writes a
//! recording goes through [`Record`], [`Header`], [`Writer`] and [`Recording::read`].
//!
//! # Layout
//!
//! The first line is a [`Header`]:
//!
//! ```json
//! {"format":"wsreplay-recording","version":"1.1","tool":"wsreplay 0.1.0","started_unix_ms":1763880000000}
//! ```
//!
//! `version` is `MAJOR.MINOR`. A reader accepts any minor version of its own major
//! version (new optional fields may appear) and refuses a newer major version. 1.1
//! added the `fault` record, which only replays run with `--fault` write.
//!
//! Every following line is one [`Record`], tagged by `kind`, in one global time
//! order across all routes and connections. `t_us` is the monotonic time since the
//! recording started, in microseconds. `conn` is the connection id, unique within the
//! recording. `dir` is `c2s` (client to server) or `s2c` (server to client).
//!
//! | `kind` | fields |
//! |---|---|
//! | `open` | `route`, `conn`, `client` (address), `upstream` (URL), `request` (request line, secrets redacted), `headers` (`[name, value]` pairs, redacted), `status` (upstream's response status, or the recorder's own 502 when the upstream was unreachable), `response_headers` |
//! | `message` | `conn`, `dir`, `op` (`text`, `binary`, `continuation` for an orphan continuation frame, or `0x3`..`0x7` for reserved opcodes), exactly one of `text` (valid UTF-8) or `base64` (anything else), `frames` (how many frames the message came in), optional `compressed` (permessage-deflate: the body is the inflated message), `rsv` (reserved bits of the first frame other than the compression bit), `size` (bytes on the wire after inflation, present when the body was truncated), `truncated`, `note` (what went wrong, e.g. an inflate error or a message cut short by a new one) |
//! | `ping`, `pong` | `conn`, `dir`, `text` or `base64` |
//! | `control` | a reserved control opcode (`0xb`..`0xf`): `conn`, `dir`, `op`, `text` or `base64` |
//! | `close` | `conn`, `dir`, `code` (absent when the frame had none, i.e. 1005), `reason`, `base64` (the raw payload, only when it was malformed) |
//! | `end` | `conn`, `how` (see [`EndHow`]), `by` (`client`, `upstream` or `recorder`: for `closed` the side that sent the first close frame, otherwise the side that ended first or failed), `error` |
//! | `fault` | a fault `wsreplay replay --fault` injected (only in captured replays): `conn`, `dir` (of the message it hit), `rule` (as given), `action` (`drop`, `delay=2s`, `duplicate`, `reorder`, `corrupt`, `disconnect`), `label` (the message's kind) |
//! | `finish` | last line of a cleanly stopped recording: `complete` (false when records were lost, e.g. disk full), `lost` (number of records that could not be written) |
//!
//! A recording whose last line is not `finish` was not stopped cleanly (the recorder
//! was killed); the reader warns and uses what is there. A torn last line (no newline,
//! not valid JSON) is reported as a warning, never as an error.

use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde::{Deserialize, Serialize};

/// The base64 engine for binary bodies everywhere (standard alphabet, padded): AVX2 or
/// NEON where the CPU has it, several times faster than the scalar engine on the
/// recorder's hot path (64 KiB binary messages are written as base64).
pub fn base64() -> &'static base64::engine::Simd {
    static ENGINE: std::sync::LazyLock<base64::engine::Simd> = std::sync::LazyLock::new(|| {
        base64::engine::Simd::standard(base64::engine::general_purpose::PAD)
    });
    &ENGINE
}

/// The value of the header's `format` field.
pub const FORMAT_NAME: &str = "wsreplay-recording";
/// Major version written by this build; files of a newer major version are refused.
pub const FORMAT_MAJOR: u32 = 1;
/// Minor version written by this build.
pub const FORMAT_MINOR: u32 = 1;
/// Longest line the reader accepts (a 16 MiB message in base64 is ~22 MiB).
pub const MAX_LINE_BYTES: usize = 256 << 20;

/// First line of every recording.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    pub format: String,
    pub version: String,
    pub tool: String,
    pub started_unix_ms: u64,
}

impl Header {
    /// The header this build writes.
    pub fn current(started_unix_ms: u64) -> Self {
        Header {
            format: FORMAT_NAME.to_string(),
            version: format!("{FORMAT_MAJOR}.{FORMAT_MINOR}"),
            tool: concat!("wsreplay ", env!("CARGO_PKG_VERSION")).to_string(),
            started_unix_ms,
        }
    }
}

/// Direction of a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Dir {
    #[serde(rename = "c2s")]
    ClientToServer,
    #[serde(rename = "s2c")]
    ServerToClient,
}

impl Dir {
    /// Both directions, client to server first.
    pub const BOTH: [Dir; 2] = [Dir::ClientToServer, Dir::ServerToClient];

    pub fn as_str(self) -> &'static str {
        match self {
            Dir::ClientToServer => "c2s",
            Dir::ServerToClient => "s2c",
        }
    }
}

impl fmt::Display for Dir {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who ended a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    Client,
    Upstream,
    Recorder,
}

impl Side {
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Client => "client",
            Side::Upstream => "upstream",
            Side::Recorder => "recorder",
        }
    }
}

/// How a connection ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndHow {
    /// Close frames went both ways, then TCP closed.
    Closed,
    /// TCP closed without a completed close handshake.
    Eof,
    /// A socket error (connection reset, broken pipe).
    Reset,
    /// The upstream could not be reached; the client got a 502.
    Unreachable,
    /// The upstream answered the upgrade with something other than 101.
    Rejected,
    /// The recorder was stopped while the connection was open.
    Stopped,
}

impl EndHow {
    /// Whether this end is worth a reader's attention.
    pub fn is_abnormal(self) -> bool {
        !matches!(self, EndHow::Closed | EndHow::Stopped)
    }
}

/// A WebSocket opcode as it appeared on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Opcode(pub u8);

impl Opcode {
    pub const CONTINUATION: Opcode = Opcode(0x0);
    pub const TEXT: Opcode = Opcode(0x1);
    pub const BINARY: Opcode = Opcode(0x2);
    pub const CLOSE: Opcode = Opcode(0x8);
    pub const PING: Opcode = Opcode(0x9);
    pub const PONG: Opcode = Opcode(0xa);

    pub fn is_control(self) -> bool {
        self.0 & 0x8 != 0
    }

    pub fn name(self) -> String {
        match self.0 {
            0x0 => "continuation".into(),
            0x1 => "text".into(),
            0x2 => "binary".into(),
            0x8 => "close".into(),
            0x9 => "ping".into(),
            0xa => "pong".into(),
            n => format!("0x{n:x}"),
        }
    }

    fn parse(s: &str) -> Option<Opcode> {
        Some(Opcode(match s {
            "continuation" => 0x0,
            "text" => 0x1,
            "binary" => 0x2,
            "close" => 0x8,
            "ping" => 0x9,
            "pong" => 0xa,
            hex => u8::from_str_radix(hex.strip_prefix("0x")?, 16)
                .ok()
                .filter(|n| *n < 16)?,
        }))
    }
}

impl Serialize for Opcode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.name())
    }
}

impl<'de> Deserialize<'de> for Opcode {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = std::borrow::Cow::<str>::deserialize(d)?;
        Opcode::parse(&s).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "unknown opcode {s:?}: expected text, binary, continuation, ping, pong, close or 0x0..0xf"
            ))
        })
    }
}

/// A message body: UTF-8 text is stored as `text`, anything else as `base64`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Body {
    Text(String),
    Bytes(Vec<u8>),
}

impl Body {
    /// Text when the bytes are valid UTF-8, bytes otherwise.
    pub fn from_bytes(bytes: Vec<u8>) -> Body {
        match String::from_utf8(bytes) {
            Ok(s) => Body::Text(s),
            Err(e) => Body::Bytes(e.into_bytes()),
        }
    }

    pub fn as_text(&self) -> Option<&str> {
        match self {
            Body::Text(s) => Some(s),
            Body::Bytes(_) => None,
        }
    }

    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Body::Text(s) => s.as_bytes(),
            Body::Bytes(b) => b,
        }
    }

    pub fn len(&self) -> usize {
        self.as_bytes().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Serialize for Body {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(Some(1))?;
        match self {
            Body::Text(t) => map.serialize_entry("text", t)?,
            Body::Bytes(b) => map.serialize_entry("base64", &base64().encode(b))?,
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Body {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Raw {
            text: Option<String>,
            base64: Option<String>,
        }
        let raw = Raw::deserialize(d)?;
        match (raw.text, raw.base64) {
            (Some(t), None) => Ok(Body::Text(t)),
            (None, Some(b)) => base64()
                .decode(b)
                .map(Body::Bytes)
                .map_err(|e| serde::de::Error::custom(format!("invalid base64: {e}"))),
            (None, None) => Err(serde::de::Error::custom(
                "missing body: expected a \"text\" or a \"base64\" field",
            )),
            (Some(_), Some(_)) => Err(serde::de::Error::custom(
                "both \"text\" and \"base64\" given: a body has exactly one",
            )),
        }
    }
}

/// A connection opened (or tried to open) through the recorder.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Open {
    pub t_us: u64,
    pub route: String,
    pub conn: u64,
    pub client: String,
    pub upstream: String,
    pub request: String,
    pub headers: Vec<(String, String)>,
    pub status: u16,
    #[serde(default)]
    pub response_headers: Vec<(String, String)>,
}

impl Open {
    /// Path and query of the request line (`/ws?user_id=x`).
    pub fn path(&self) -> &str {
        self.request.split(' ').nth(1).unwrap_or("")
    }

    /// First value of a request header, matched case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }
}

fn find_header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// One complete data message (or a stray data frame that belongs to none).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub t_us: u64,
    pub conn: u64,
    pub dir: Dir,
    pub op: Opcode,
    #[serde(flatten)]
    pub body: Body,
    pub frames: u32,
    #[serde(default, skip_serializing_if = "is_false")]
    pub compressed: bool,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub rsv: u8,
    #[serde(default, skip_serializing_if = "is_false")]
    pub truncated: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl Message {
    /// A message that came in one plain frame (as replayed peers send them).
    pub fn whole(conn: u64, dir: Dir, op: Opcode, body: Body) -> Message {
        Message {
            t_us: 0,
            conn,
            dir,
            op,
            body,
            frames: 1,
            compressed: false,
            rsv: 0,
            truncated: false,
            size: None,
            note: None,
        }
    }
}

/// A ping, pong or reserved control frame.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Control {
    pub t_us: u64,
    pub conn: u64,
    pub dir: Dir,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub op: Option<Opcode>,
    #[serde(flatten)]
    pub body: Body,
}

/// A close frame.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Close {
    pub t_us: u64,
    pub conn: u64,
    pub dir: Dir,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<u16>,
    #[serde(default)]
    pub reason: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base64: Option<String>,
}

/// The end of a connection.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct End {
    pub t_us: u64,
    pub conn: u64,
    pub how: EndHow,
    pub by: Side,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A fault injected by a replay (`--fault`), next to the message it hit (version 1.1).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fault {
    pub t_us: u64,
    pub conn: u64,
    pub dir: Dir,
    /// The `--fault` rule as the user gave it.
    pub rule: String,
    /// What was done: `drop`, `delay=2s`, `duplicate`, `reorder`, `corrupt`, `disconnect`.
    pub action: String,
    /// The kind of the message it hit.
    pub label: String,
}

/// Last line of a cleanly stopped recording.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finish {
    pub t_us: u64,
    pub complete: bool,
    #[serde(default)]
    pub lost: u64,
}

/// One line of a recording after the header.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Record {
    Open(Open),
    Message(Message),
    Ping(Control),
    Pong(Control),
    Control(Control),
    Close(Close),
    End(End),
    Fault(Fault),
    Finish(Finish),
}

impl Record {
    pub fn t_us(&self) -> u64 {
        match self {
            Record::Open(r) => r.t_us,
            Record::Message(r) => r.t_us,
            Record::Ping(r) | Record::Pong(r) | Record::Control(r) => r.t_us,
            Record::Close(r) => r.t_us,
            Record::End(r) => r.t_us,
            Record::Fault(r) => r.t_us,
            Record::Finish(r) => r.t_us,
        }
    }

    pub fn set_t_us(&mut self, t: u64) {
        match self {
            Record::Open(r) => r.t_us = t,
            Record::Message(r) => r.t_us = t,
            Record::Ping(r) | Record::Pong(r) | Record::Control(r) => r.t_us = t,
            Record::Close(r) => r.t_us = t,
            Record::End(r) => r.t_us = t,
            Record::Fault(r) => r.t_us = t,
            Record::Finish(r) => r.t_us = t,
        }
    }

    /// The connection a record belongs to (none for `finish`).
    pub fn conn(&self) -> Option<u64> {
        match self {
            Record::Open(r) => Some(r.conn),
            Record::Message(r) => Some(r.conn),
            Record::Ping(r) | Record::Pong(r) | Record::Control(r) => Some(r.conn),
            Record::Close(r) => Some(r.conn),
            Record::End(r) => Some(r.conn),
            Record::Fault(r) => Some(r.conn),
            Record::Finish(_) => None,
        }
    }
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn is_zero(n: &u8) -> bool {
    *n == 0
}

/// Writes a recording, one line at a time.
pub struct Writer<W: Write> {
    out: W,
    /// Reused for the base64 of binary bodies.
    scratch: Vec<u8>,
}

impl<W: Write> Writer<W> {
    /// Starts a recording by writing its header line.
    pub fn new(mut out: W, header: &Header) -> io::Result<Self> {
        serde_json::to_writer(&mut out, header)?;
        out.write_all(b"\n")?;
        Ok(Writer {
            out,
            scratch: Vec::new(),
        })
    }

    pub fn write(&mut self, record: &Record) -> io::Result<()> {
        match record {
            Record::Message(m) => write_message(&mut self.out, &mut self.scratch, m),
            other => {
                serde_json::to_writer(&mut self.out, other)?;
                self.out.write_all(b"\n")
            }
        }
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// Writes a message record exactly as serde would, without serde's map machinery for
/// the tagged, flattened record (the recorder's and the replay capture's hottest path:
/// every message goes through here). A binary body's base64 is encoded in one SIMD pass
/// into a reused buffer: no intermediate string and no escape scan (base64 needs none).
fn write_message<W: Write>(out: &mut W, scratch: &mut Vec<u8>, m: &Message) -> io::Result<()> {
    write!(
        out,
        r#"{{"kind":"message","t_us":{},"conn":{},"dir":"{}","op":"{}","#,
        m.t_us,
        m.conn,
        m.dir,
        m.op.name()
    )?;
    match &m.body {
        Body::Text(text) => {
            out.write_all(br#""text":"#)?;
            serde_json::to_writer(&mut *out, text)?;
        }
        Body::Bytes(bytes) => {
            out.write_all(br#""base64":""#)?;
            scratch.resize(bytes.len().div_ceil(3) * 4, 0);
            let n = base64()
                .encode_slice(bytes, scratch)
                .map_err(|e| io::Error::other(e.to_string()))?;
            out.write_all(&scratch[..n])?;
            out.write_all(b"\"")?;
        }
    }
    write!(out, r#","frames":{}"#, m.frames)?;
    if m.compressed {
        out.write_all(br#","compressed":true"#)?;
    }
    if m.rsv != 0 {
        write!(out, r#","rsv":{}"#, m.rsv)?;
    }
    if m.truncated {
        out.write_all(br#","truncated":true"#)?;
    }
    if let Some(size) = m.size {
        write!(out, r#","size":{size}"#)?;
    }
    if let Some(note) = &m.note {
        out.write_all(br#","note":"#)?;
        serde_json::to_writer(&mut *out, note)?;
    }
    out.write_all(b"}\n")
}

/// Why a recording could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("{path}: cannot read: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path}:{line}: {message}")]
    Line {
        path: PathBuf,
        line: u64,
        message: String,
    },
    #[error("{path}: is empty; a recording starts with a {FORMAT_NAME:?} header line")]
    Empty { path: PathBuf },
    #[error(
        "{path}: written by {tool} in format version {found}; this wsreplay reads version {FORMAT_MAJOR}.x. Upgrade wsreplay to read it"
    )]
    NewerVersion {
        path: PathBuf,
        found: String,
        tool: String,
    },
}

/// Something the reader tolerated but the user should know about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Warning {
    pub line: u64,
    pub message: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl Warning {
    /// `FILE:LINE: message`, as errors name a place in a recording.
    pub fn at(&self, path: &Path) -> String {
        format!("{}:{}: {}", path.display(), self.line, self.message)
    }
}

/// A recording loaded into memory.
#[derive(Clone, Debug)]
pub struct Recording {
    pub path: PathBuf,
    pub header: Header,
    pub records: Vec<Record>,
    pub warnings: Vec<Warning>,
}

impl Recording {
    /// Reads and validates a recording file.
    pub fn read(path: impl AsRef<Path>) -> Result<Recording, ReadError> {
        let path = path.as_ref();
        let file = File::open(path).map_err(|source| ReadError::Io {
            path: path.to_owned(),
            source,
        })?;
        Self::from_reader(path, BufReader::with_capacity(1 << 16, file))
    }

    /// Reads a recording from any buffered reader; `path` is used in messages.
    pub fn from_reader(path: &Path, input: impl BufRead) -> Result<Recording, ReadError> {
        let mut reader = Reader::new(path, input)?;
        let mut records = Vec::new();
        while let Some(record) = reader.next_record()? {
            records.push(record);
        }
        let warnings = reader.finish();
        Ok(Recording {
            path: path.to_owned(),
            header: reader.header,
            records,
            warnings,
        })
    }

    /// An in-memory recording of one connection on `route` that carried `messages`, in
    /// order, all at time 0 (for benchmarks, tests and fuzzing).
    pub fn single_connection(
        route: &str,
        messages: impl IntoIterator<Item = (Dir, Body)>,
    ) -> Recording {
        let open = Open {
            t_us: 0,
            route: route.into(),
            conn: 1,
            client: "in-memory".into(),
            upstream: "ws://in-memory".into(),
            request: "GET / HTTP/1.1".into(),
            headers: vec![],
            status: 101,
            response_headers: vec![],
        };
        let messages = messages.into_iter().map(|(dir, body)| {
            let op = match body {
                Body::Text(_) => Opcode::TEXT,
                Body::Bytes(_) => Opcode::BINARY,
            };
            Record::Message(Message::whole(1, dir, op, body))
        });
        Recording {
            path: format!("{route}.jsonl").into(),
            header: Header::current(0),
            records: std::iter::once(Record::Open(open))
                .chain(messages)
                .collect(),
            warnings: vec![],
        }
    }

    /// The `open` records, in order.
    pub fn opens(&self) -> impl Iterator<Item = &Open> {
        self.records.iter().filter_map(|r| match r {
            Record::Open(o) => Some(o),
            _ => None,
        })
    }

    /// The names of the routes its connections were recorded on, sorted.
    pub fn routes(&self) -> Vec<&str> {
        let mut routes: Vec<&str> = self.opens().map(|o| o.route.as_str()).collect();
        routes.sort();
        routes.dedup();
        routes
    }
}

/// Streams the records of a recording one at a time, in bounded memory, with the same
/// checks and warnings as [`Recording::read`].
pub struct Reader<'p, R> {
    pub header: Header,
    input: R,
    lines: LineReader<'p>,
    open: std::collections::HashSet<u64>,
    warnings: Vec<Warning>,
    /// Whether the last record read was `finish` (`None`: no record yet).
    last_was_finish: Option<bool>,
    done: bool,
}

impl<'p, R: BufRead> Reader<'p, R> {
    /// Reads and checks the header line.
    pub fn new(path: &'p Path, mut input: R) -> Result<Self, ReadError> {
        let mut lines = LineReader {
            path,
            line: 0,
            buf: Vec::new(),
        };
        let Some(first) = lines.next(&mut input)? else {
            return Err(ReadError::Empty {
                path: path.to_owned(),
            });
        };
        let header = std::str::from_utf8(first.bytes)
            .map_err(|e| format!("invalid UTF-8 at byte {}", e.valid_up_to()))
            .and_then(parse_header)
            .map_err(|message| ReadError::Line {
                path: path.to_owned(),
                line: 1,
                message,
            })?;
        check_version(path, &header)?;
        Ok(Reader {
            header,
            input,
            lines,
            open: std::collections::HashSet::new(),
            warnings: Vec::new(),
            last_was_finish: None,
            done: false,
        })
    }

    /// The next record, `None` at the end (or after a torn last line).
    pub fn next_record(&mut self) -> Result<Option<Record>, ReadError> {
        if self.done {
            return Ok(None);
        }
        let path = self.lines.path;
        loop {
            let Some(l) = self.lines.next(&mut self.input)? else {
                self.done = true;
                return Ok(None);
            };
            let line = l.number;
            let line_err = |message: String| ReadError::Line {
                path: path.to_owned(),
                line,
                message,
            };
            if l.bytes.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let parsed = std::str::from_utf8(l.bytes)
                .map_err(|e| format!("invalid UTF-8 at byte {}", e.valid_up_to()))
                .and_then(|text| {
                    serde_json::from_str::<Record>(text).map_err(|e| describe_json_error(&e))
                });
            let record = match parsed {
                Ok(r) => r,
                Err(e) if !l.terminated => {
                    self.warnings.push(Warning {
                        line,
                        message: format!(
                            "torn last line ignored ({e}); the recorder was probably killed while writing it"
                        ),
                    });
                    self.done = true;
                    return Ok(None);
                }
                Err(e) => return Err(line_err(e)),
            };
            match &record {
                Record::Open(o) if !self.open.insert(o.conn) => {
                    return Err(line_err(format!("connection {} is opened twice", o.conn)));
                }
                Record::Open(_) => {}
                other => {
                    if let Some(conn) = other.conn().filter(|c| !self.open.contains(c)) {
                        return Err(line_err(format!(
                            "record for connection {conn}, which has no \"open\" record before it"
                        )));
                    }
                }
            }
            self.last_was_finish = Some(matches!(record, Record::Finish(_)));
            if let Record::Finish(f) = &record {
                if !f.complete {
                    self.warnings.push(Warning {
                        line,
                        message: format!(
                            "the recorder could not write {} record(s): this recording is incomplete",
                            f.lost
                        ),
                    });
                }
            }
            return Ok(Some(record));
        }
    }

    /// The warnings, once every record was read.
    pub fn finish(&mut self) -> Vec<Warning> {
        if self.last_was_finish != Some(true) {
            self.warnings.push(Warning {
                line: self.lines.line,
                message: "no \"finish\" record: the recording was not stopped cleanly; using what is there".into(),
            });
        }
        std::mem::take(&mut self.warnings)
    }
}

fn parse_header(text: &str) -> Result<Header, String> {
    let header: Header = serde_json::from_str(text).map_err(|e| {
        format!(
            "not a wsreplay recording: the first line must be a {FORMAT_NAME:?} header ({})",
            describe_json_error(&e)
        )
    })?;
    if header.format != FORMAT_NAME {
        return Err(format!(
            "not a wsreplay recording: format is {:?}, expected {FORMAT_NAME:?}",
            header.format
        ));
    }
    Ok(header)
}

fn describe_json_error(e: &serde_json::Error) -> String {
    // serde_json reports "at line 1 column N" for a single line; keep the column only.
    let msg = e.to_string();
    match msg.rfind(" at line ") {
        Some(i) => format!("{} (column {})", &msg[..i], e.column()),
        None => msg,
    }
}

struct Line<'a> {
    number: u64,
    bytes: &'a [u8],
    terminated: bool,
}

/// Reads lines with a length limit, so a hostile file cannot exhaust memory.
struct LineReader<'p> {
    path: &'p Path,
    line: u64,
    buf: Vec<u8>,
}

impl LineReader<'_> {
    fn next(&mut self, input: &mut impl BufRead) -> Result<Option<Line<'_>>, ReadError> {
        self.buf.clear();
        self.line += 1;
        let line = self.line;
        let path = self.path;
        let io_err = |source| ReadError::Io {
            path: path.to_owned(),
            source,
        };
        loop {
            let available = input.fill_buf().map_err(io_err)?;
            if available.is_empty() {
                break;
            }
            let (take, done) = match memchr(b'\n', available) {
                Some(i) => (i + 1, true),
                None => (available.len(), false),
            };
            if self.buf.len() + take > MAX_LINE_BYTES {
                return Err(ReadError::Line {
                    path: path.to_owned(),
                    line,
                    message: format!(
                        "line is longer than {} MiB; this is not a recording written by wsreplay",
                        MAX_LINE_BYTES >> 20
                    ),
                });
            }
            self.buf.extend_from_slice(&available[..take]);
            input.consume(take);
            if done {
                break;
            }
        }
        if self.buf.is_empty() {
            return Ok(None);
        }
        let terminated = self.buf.last() == Some(&b'\n');
        let end = self.buf.len() - usize::from(terminated);
        Ok(Some(Line {
            number: line,
            bytes: &self.buf[..end],
            terminated,
        }))
    }
}

fn memchr(needle: u8, haystack: &[u8]) -> Option<usize> {
    haystack.iter().position(|b| *b == needle)
}

/// Checks a header's version against what this build reads.
pub fn check_version(path: &Path, header: &Header) -> Result<(), ReadError> {
    let major = header
        .version
        .split('.')
        .next()
        .and_then(|m| m.parse::<u32>().ok());
    match major {
        Some(m) if m <= FORMAT_MAJOR => Ok(()),
        _ => Err(ReadError::NewerVersion {
            path: path.to_owned(),
            found: header.version.clone(),
            tool: header.tool.clone(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_written_exactly_as_serde_writes_them() {
        let bodies = [
            (Opcode::BINARY, Body::Bytes((0..=255).collect())),
            (
                Opcode::TEXT,
                Body::Text("{\"a\":\"\\u00e9 é \\\" \u{1}\n\"}".into()),
            ),
        ];
        let options = [
            (false, 0, false, None, None),
            (
                true,
                3,
                true,
                Some(99_u64),
                Some("a \"note\"\n".to_string()),
            ),
        ];
        for ((op, body), (compressed, rsv, truncated, size, note)) in bodies
            .into_iter()
            .flat_map(|b| options.clone().into_iter().map(move |o| (b.clone(), o)))
        {
            let mut m = Message::whole(7, Dir::ServerToClient, op, body);
            m.t_us = 123;
            (m.compressed, m.rsv, m.truncated, m.size, m.note) =
                (compressed, rsv, truncated, size, note);
            let record = Record::Message(m);
            let mut fast = Vec::new();
            Writer {
                out: &mut fast,
                scratch: Vec::new(),
            }
            .write(&record)
            .unwrap();
            let mut slow = serde_json::to_vec(&record).unwrap();
            slow.push(b'\n');
            assert_eq!(
                String::from_utf8(fast).unwrap(),
                String::from_utf8(slow).unwrap()
            );
        }
    }
}
