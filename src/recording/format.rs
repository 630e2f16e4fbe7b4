//! The recording format: one JSON Lines file per recording.
//!
//! This module owns the on-disk contract. Everything that reads or writes a
//! recording goes through [`Record`], [`Header`], [`Writer`](super::Writer) and
//! [`Recording::read`](super::Recording::read). This module holds the records; `read`
//! and `write` hold the two directions.
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
//! added the `fault` record, which only replays run with `--fault` write. Optional
//! header fields: `filter` (record-time `--only-path`/`--sample`), and in files
//! `wsreplay split` and `wsreplay merge` wrote, `sources` (the files they were made
//! from) and `split` (which part of its source a split file holds); older readers
//! ignore them.
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

use std::collections::BTreeMap;
use std::fmt;

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
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Header {
    pub format: String,
    pub version: String,
    pub tool: String,
    pub started_unix_ms: u64,
    /// The connections the recorder kept, when it did not keep them all (absent in
    /// files written without `--only-path` or `--sample`, and in older files).
    #[serde(default, skip_serializing_if = "Filter::keeps_all")]
    pub filter: Filter,
    /// The recordings this one was made from, when `wsreplay split` or `wsreplay merge`
    /// made it (absent in files a recorder wrote).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<SourceNote>,
    /// Which part of its source this file holds, when `wsreplay split` wrote it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split: Option<SplitNote>,
}

impl Header {
    /// The header this build writes.
    pub fn current(started_unix_ms: u64) -> Self {
        Header {
            format: FORMAT_NAME.to_string(),
            version: format!("{FORMAT_MAJOR}.{FORMAT_MINOR}"),
            tool: concat!("wsreplay ", env!("CARGO_PKG_VERSION")).to_string(),
            started_unix_ms,
            filter: Filter::default(),
            sources: Vec::new(),
            split: None,
        }
    }
}

/// A recording another was made from (header field `sources`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceNote {
    /// Its file name, as it was given.
    pub file: String,
    /// The tool that wrote it and when it started.
    pub tool: String,
    pub started_unix_ms: u64,
    /// Connection ids of this source that were given new ids (`merge`), old → new.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub renumbered: BTreeMap<u64, u64>,
}

impl SourceNote {
    /// The note for a recording read from `path` with `header`.
    pub fn of(path: &std::path::Path, header: &Header) -> SourceNote {
        SourceNote {
            file: path.display().to_string(),
            tool: header.tool.clone(),
            started_unix_ms: header.started_unix_ms,
            renumbered: BTreeMap::new(),
        }
    }
}

/// The part of a recording a `wsreplay split` file holds (header field `split`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SplitNote {
    /// `connection`, `user` or `session`.
    pub by: String,
    /// What the part is: the session's or connection's number and its user, or the
    /// user (`session 3 of user alice`).
    pub part: String,
    /// The route whose connections were split; the other routes' records are those
    /// that belong to them.
    pub frontend: String,
}

/// The connections a recording keeps (`record --only-path`, `--sample`; the default
/// keeps every one); [`super::filter`] applies it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Filter {
    /// Only upgrades whose request path starts with this were recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub only_path: Option<String>,
    /// The fraction of connections recorded, drawn at random per connection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sample: Option<f64>,
}

impl Filter {
    /// Whether this filter keeps every connection.
    pub fn keeps_all(&self) -> bool {
        self.only_path.is_none() && self.sample.is_none()
    }
}

/// Direction of a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum Dir {
    #[serde(rename = "c2s")]
    #[cfg_attr(feature = "cli", value(name = "c2s"))]
    ClientToServer,
    #[serde(rename = "s2c")]
    #[cfg_attr(feature = "cli", value(name = "s2c"))]
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
    /// This connection was opened in an earlier file of a rotated recording
    /// (`record --rotate`): this `open` repeats its handshake so the file stands alone,
    /// and the messages before the rotation are in the earlier file.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub continued: bool,
}

impl Open {
    /// Path and query of the request line (`/ws?user_id=x`).
    pub fn path(&self) -> &str {
        self.request.split(' ').nth(1).unwrap_or("")
    }

    /// The query parameters of the request line, decoded (`user_id=x` → `("user_id", "x")`).
    pub fn query_pairs(&self) -> impl Iterator<Item = (String, String)> + '_ {
        let query = self.path().split_once('?').map_or("", |(_, q)| q);
        url::form_urlencoded::parse(query.as_bytes()).into_owned()
    }

    /// First value of a request header, matched case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }

    /// First value of a header of the upstream's response, matched case-insensitively.
    pub fn response_header(&self, name: &str) -> Option<&str> {
        find_header(&self.response_headers, name)
    }
}

#[cfg(test)]
impl Open {
    /// An accepted (`101`) connection of `route` asking for `target`, for tests.
    pub(crate) fn accepted(route: &str, conn: u64, target: &str) -> Open {
        Open {
            continued: false,
            t_us: 0,
            route: route.into(),
            conn,
            client: "c".into(),
            upstream: "u".into(),
            request: format!("GET {target} HTTP/1.1"),
            headers: Vec::new(),
            status: 101,
            response_headers: Vec::new(),
        }
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

    /// Moves a record to connection `id` (`finish` belongs to none).
    pub fn set_conn(&mut self, id: u64) {
        match self {
            Record::Open(r) => r.conn = id,
            Record::Message(r) => r.conn = id,
            Record::Ping(r) | Record::Pong(r) | Record::Control(r) => r.conn = id,
            Record::Close(r) => r.conn = id,
            Record::End(r) => r.conn = id,
            Record::Fault(r) => r.conn = id,
            Record::Finish(_) => {}
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
