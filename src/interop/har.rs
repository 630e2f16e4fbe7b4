//! `wsreplay import har`: WebSocket sessions captured by a browser or mitmproxy, as
//! recordings.
//!
//! A HAR file (HTTP Archive 1.2) holds one entry per request. WebSocket entries carry
//! their frames in a non-standard `_webSocketMessages` list of
//! `{"type": "send"|"receive", "time", "opcode", "data"}`:
//!
//! | writer | marks | `time` | messages |
//! |---|---|---|---|
//! | Chrome DevTools ("Save all as HAR") | `_resourceType: "websocket"` | seconds since the epoch | in the entry |
//! | Playwright `recordHar` | `_resourceType: "websocket"` | milliseconds since the epoch | in the entry (`content: 'embed'`), or one JSON object per line in a side file named by `response.content._file` (`content: 'attach'`) |
//! | mitmproxy (HAR export) | `_resourceType: "websocket"` | seconds since the epoch | in the entry |
//!
//! `opcode` 1 is text (`data` as is), 2 binary (`data` in base64), -1 (or `type:
//! "error"`) an error the browser saw. The time unit is detected from the values
//! (epoch milliseconds are a thousand times larger than epoch seconds); values too
//! small to be either are taken as seconds on a clock of their own, anchored at the
//! entry's `startedDateTime`. Absurd times are refused, naming the entry and message,
//! rather than imported for a replay to sleep on: a value above 10¹⁴ (`1e300`), a
//! message more than 30 days from its entry's start, or entries started more than 30
//! days apart.
//!
//! A side file is read only if it is a regular file inside the HAR's directory (after
//! resolving symbolic links) of at most [`MAX_SIDE_FILE`] bytes: a `_file` that is
//! absolute, climbs out with `..`, or names a FIFO or a device is an error naming the
//! entry and the file ([`SideFileError`]), never a hang or an endless read.
//!
//! Every WebSocket entry becomes one connection of the recording's route, with its
//! handshake (URL, request and response headers) and messages, redacted like the
//! recorder redacts ([`crate::recording::sink::redact_record`]). Other entries are skipped and
//! counted. What a HAR does not carry (close frames and codes, pings, pongs, frame
//! boundaries, how a connection ended) is absent from the recording, and
//! [`ImportReport::missing`] says so.

use std::collections::BTreeMap;
use std::io::Read as _;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde::Deserialize;

use crate::recording::{
    Body, Close, Control, Dir, End, EndHow, Finish, Header, Message, Opcode, Open, Record, Side,
    Writer,
};
use crate::redact::{RedactConfig, Redactor};

/// What the HAR formats cannot carry, said after every import.
pub const NOT_IN_A_HAR: &str = "close frames and close codes, pings and pongs, frame boundaries \
(each message counts as one frame) and how connections ended";

/// Settings of an import.
#[derive(Clone, Debug)]
pub struct ImportOptions {
    /// The route every imported connection belongs to.
    pub route: String,
    /// Secrets to redact on top of the defaults.
    pub redact: RedactConfig,
}

/// How the HAR's message times were read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeUnit {
    /// Seconds since the epoch (Chrome DevTools, mitmproxy).
    Seconds,
    /// Milliseconds since the epoch (Playwright).
    Milliseconds,
    /// Seconds on a clock of their own (not since the epoch), anchored at each entry's
    /// start.
    RelativeSeconds,
    /// No message has a time (`-1`, Playwright's `omitTiming`): messages keep their
    /// order, 1 ms apart.
    None,
}

impl TimeUnit {
    pub fn describe(self) -> &'static str {
        match self {
            TimeUnit::Seconds => "seconds since the epoch (Chrome DevTools / mitmproxy style)",
            TimeUnit::Milliseconds => "milliseconds since the epoch (Playwright style)",
            TimeUnit::RelativeSeconds => {
                "seconds on the browser's own clock, anchored at each connection's start"
            }
            TimeUnit::None => "none recorded: messages keep their order, 1 ms apart",
        }
    }
}

/// What an import did.
#[derive(Clone, Debug)]
pub struct ImportReport {
    /// The tool that wrote the HAR (`log.creator`), e.g. `Playwright 1.65.1`.
    pub creator: String,
    pub unit: TimeUnit,
    /// Imported WebSocket connections.
    pub connections: usize,
    /// Messages per direction.
    pub messages: BTreeMap<Dir, usize>,
    /// Entries that are not WebSocket connections (pages, scripts, XHR).
    pub skipped_entries: usize,
    /// Things worth knowing about this file (errors the browser saw, frames that
    /// could not be imported).
    pub notes: Vec<String>,
    /// What no HAR carries: [`NOT_IN_A_HAR`].
    pub missing: &'static str,
}

/// Why a HAR could not be imported.
#[derive(Debug, thiserror::Error)]
pub enum HarError {
    #[error("{path}: cannot read: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: is a zip archive (Playwright writes one when the HAR path ends in .zip): unzip it and import the .har inside")]
    Zip { path: PathBuf },
    #[error("{path}: looks zlib-compressed (.zhar) but does not inflate: {source}")]
    Zlib {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not a HAR file: {source}. A HAR is JSON of the form {{\"log\": {{\"entries\": [...]}}}}, as Chrome DevTools (\"Save all as HAR\"), Playwright's recordHar or mitmproxy write it")]
    NotHar {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("{path}: entries[{index}].startedDateTime {value:?} is not an ISO-8601 date-time")]
    StartedDateTime {
        path: PathBuf,
        index: usize,
        value: String,
    },
    #[error("{path}: entries[{index}]: its messages are in the side file {file} (Playwright's content: 'attach'; keep it next to the HAR): {source}")]
    SideFile {
        path: PathBuf,
        index: usize,
        file: String,
        #[source]
        source: SideFileError,
    },
    #[error("{path}: entries[{first}] started {first_at} and entries[{last}] {last_at}, {days:.0} days apart: a capture does not span that long, so one of these times is wrong. Fix it, or import the entries from separate HARs")]
    Span {
        path: PathBuf,
        first: usize,
        first_at: String,
        last: usize,
        last_at: String,
        days: f64,
    },
    #[error("{path}: entries[{index}]: {source}")]
    Entry {
        path: PathBuf,
        index: usize,
        #[source]
        source: EntryError,
    },
    #[error("{path}: cannot write the recording: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// What is wrong with one WebSocket entry of a HAR.
#[derive(Debug, thiserror::Error)]
pub enum EntryError {
    #[error("request.url {url:?} is not a URL: {source}")]
    Url {
        url: String,
        #[source]
        source: url::ParseError,
    },
    #[error("request.url has scheme {0:?}, not ws or wss")]
    Scheme(String),
    /// `message` is the message's position in the entry (0-based).
    #[error("message {message}: type {kind:?} is neither \"send\" nor \"receive\"")]
    MessageType { message: usize, kind: String },
    #[error("message {message}: time {time:?} is no time stamp: too large for seconds or milliseconds since the epoch. Fix or remove the message")]
    AbsurdTime { message: usize, time: f64 },
    #[error("message {message}: time {time:?} ({unit}) is {days:.0} days from the entry's startedDateTime {started}: a WebSocket in a capture does not last that long, so the time is wrong. Fix or remove the message")]
    FarFromStart {
        message: usize,
        time: f64,
        unit: &'static str,
        days: f64,
        started: String,
    },
    #[error("message {message}: binary data is not base64: {source}")]
    Base64 {
        message: usize,
        #[source]
        source: base64::DecodeError,
    },
}

/// The largest side file read (1 GiB): a HAR's messages, not an unbounded stream.
pub const MAX_SIDE_FILE: u64 = 1 << 30;

/// Why the side file of a Playwright entry (`content: 'attach'`) cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum SideFileError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("it is not inside the HAR's directory {dir}; side files are only read from there (Playwright writes them next to the HAR), so an absolute path, `..` or a symbolic link leading elsewhere is refused. Move the file next to the HAR and name it relatively")]
    Outside { dir: PathBuf },
    #[error("{path} is {kind}, not a regular file")]
    NotAFile { path: PathBuf, kind: &'static str },
    #[error("{path} has {size} bytes, more than the {limit} bytes a side file may have")]
    TooLarge {
        path: PathBuf,
        size: u64,
        limit: u64,
    },
    #[error("{path}:{line}: not a WebSocket message of a HAR ({{\"type\",\"time\",\"opcode\",\"data\"}}): {source}")]
    Line {
        path: PathBuf,
        line: usize,
        #[source]
        source: serde_json::Error,
    },
}

#[derive(Deserialize)]
struct Har {
    log: Log,
}

#[derive(Deserialize)]
struct Log {
    #[serde(default)]
    creator: Option<Creator>,
    entries: Vec<Entry>,
}

#[derive(Deserialize)]
struct Creator {
    #[serde(default)]
    name: String,
    #[serde(default)]
    version: String,
}

#[derive(Deserialize)]
struct Entry {
    #[serde(rename = "startedDateTime")]
    started: String,
    request: Request,
    #[serde(default)]
    response: Option<Response>,
    #[serde(rename = "_resourceType", default)]
    resource_type: Option<String>,
    #[serde(rename = "_webSocketMessages", default)]
    messages: Option<Vec<WsMessage>>,
}

#[derive(Deserialize)]
struct Request {
    url: String,
    #[serde(default)]
    headers: Vec<NameValue>,
}

#[derive(Deserialize)]
struct Response {
    #[serde(default)]
    status: i64,
    #[serde(default)]
    headers: Vec<NameValue>,
    #[serde(default)]
    content: Option<Content>,
    /// Playwright's `_failureText`, mitmproxy's `_error`.
    #[serde(rename = "_failureText", alias = "_error", default)]
    failure: Option<String>,
}

#[derive(Deserialize)]
struct Content {
    #[serde(rename = "_file", default)]
    file: Option<String>,
}

#[derive(Deserialize)]
struct NameValue {
    name: String,
    value: String,
}

#[derive(Deserialize)]
struct WsMessage {
    #[serde(rename = "type")]
    kind: String,
    time: f64,
    opcode: i64,
    #[serde(default)]
    data: String,
}

impl Entry {
    fn is_websocket(&self) -> bool {
        self.resource_type.as_deref() == Some("websocket")
            || self.messages.is_some()
            || self.request.url.starts_with("ws://")
            || self.request.url.starts_with("wss://")
            || self.response.as_ref().is_some_and(|r| r.status == 101)
    }
}

/// A HAR read into records, ready to be written.
pub struct Imported {
    pub header: Header,
    pub records: Vec<Record>,
    pub report: ImportReport,
}

/// One WebSocket entry with its messages and their times (epoch microseconds).
struct Socket {
    /// Position in `log.entries`, for messages.
    index: usize,
    entry: Entry,
    started: i128,
    messages: Vec<WsMessage>,
    times: Vec<i128>,
}

impl Socket {
    /// mitmproxy's `hardump` writes a WebSocket flow at its upgrade (no messages yet)
    /// and again when it ends: the same handshake twice.
    fn repeats(&self, other: &Socket) -> bool {
        let key = |s: &Socket| {
            s.entry
                .request
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case("sec-websocket-key"))
                .map(|h| h.value.clone())
        };
        (self.messages.is_empty() || other.messages.is_empty())
            && self.started == other.started
            && self.entry.request.url == other.entry.request.url
            && key(self) == key(other)
    }
}

/// Reads a HAR file (and any side files it references) into recording records.
pub fn read(har: &Path, options: &ImportOptions) -> Result<Imported, HarError> {
    let log = load(har)?;
    let creator = log
        .creator
        .map(|c| format!("{} {}", c.name, c.version).trim().to_string())
        .filter(|c| !c.is_empty())
        .unwrap_or_else(|| "unknown tool".into());
    let mut report = ImportReport {
        creator,
        unit: TimeUnit::None,
        connections: 0,
        messages: BTreeMap::new(),
        skipped_entries: 0,
        notes: Vec::new(),
        missing: NOT_IN_A_HAR,
    };
    let dir = har.parent().unwrap_or(Path::new(""));
    let mut sockets: Vec<Socket> = Vec::new();
    let mut duplicates = 0;
    for (index, mut entry) in log.entries.into_iter().enumerate() {
        if !entry.is_websocket() {
            report.skipped_entries += 1;
            continue;
        }
        let started = parse_time(&entry.started).ok_or_else(|| HarError::StartedDateTime {
            path: har.to_owned(),
            index,
            value: entry.started.clone(),
        })?;
        let messages = match (entry.messages.take(), attached_file(&entry)) {
            (Some(list), _) => list,
            (None, Some(file)) => {
                read_attached(dir, file).map_err(|source| HarError::SideFile {
                    path: har.to_owned(),
                    index,
                    file: file.to_string(),
                    source,
                })?
            }
            (None, None) => Vec::new(),
        };
        if let Some((message, m)) = messages
            .iter()
            .enumerate()
            .find(|(_, m)| m.time > MAX_TIME_VALUE)
        {
            return Err(HarError::Entry {
                path: har.to_owned(),
                index,
                source: EntryError::AbsurdTime {
                    message,
                    time: m.time,
                },
            });
        }
        let socket = Socket {
            index,
            entry,
            started,
            messages,
            times: Vec::new(),
        };
        match sockets.iter_mut().find(|s| s.repeats(&socket)) {
            Some(seen) => {
                duplicates += 1;
                if socket.messages.len() > seen.messages.len() {
                    *seen = socket;
                }
            }
            None => sockets.push(socket),
        }
    }
    if duplicates > 0 {
        report.notes.push(format!(
            "{duplicates} entr{} repeated a WebSocket handshake (mitmproxy writes a flow at its upgrade and at its end): imported once, with the most messages",
            if duplicates == 1 { "y" } else { "ies" }
        ));
    }
    report.unit = detect_unit(
        sockets
            .iter()
            .flat_map(|s| s.messages.iter().map(|m| m.time)),
    );
    for socket in &mut sockets {
        socket.times = message_times(report.unit, socket.started, &socket.messages);
        check_span(socket, report.unit).map_err(|source| HarError::Entry {
            path: har.to_owned(),
            index: socket.index,
            source,
        })?;
    }
    let first = sockets.iter().min_by_key(|s| s.started);
    let last = sockets.iter().max_by_key(|s| s.started);
    if let (Some(first), Some(last)) = (first, last) {
        if last.started - first.started > MAX_SPAN_US {
            return Err(HarError::Span {
                path: har.to_owned(),
                first: first.index,
                first_at: first.entry.started.clone(),
                last: last.index,
                last_at: last.entry.started.clone(),
                days: days(last.started - first.started),
            });
        }
    }
    // The recording starts at the first moment of the capture, on a whole millisecond.
    let start_us = sockets
        .iter()
        .flat_map(|s| std::iter::once(s.started).chain(s.times.iter().copied()))
        .min()
        .unwrap_or(0);
    let start_us = start_us - start_us.rem_euclid(1000);
    let mut records = Vec::new();
    for (n, socket) in sockets.iter().enumerate() {
        let conn = n as u64 + 1;
        connection_records(
            socket,
            conn,
            &options.route,
            start_us,
            &mut report,
            &mut records,
        )
        .map_err(|source| HarError::Entry {
            path: har.to_owned(),
            index: socket.index,
            source,
        })?;
        report.connections += 1;
    }
    // One global time order; a connection's records stay in their order (stable sort,
    // its open first).
    records.sort_by_key(Record::t_us);
    let redactor = Redactor::new(&options.redact);
    for record in &mut records {
        crate::recording::sink::redact_record(&redactor, record);
    }
    let last = records.last().map_or(0, Record::t_us);
    records.push(Record::Finish(Finish {
        t_us: last,
        complete: true,
        lost: 0,
    }));
    Ok(Imported {
        header: Header::current((start_us / 1000).max(0) as u64),
        records,
        report,
    })
}

/// The HAR's `log`: plain JSON, or zlib-compressed JSON (mitmproxy's `.zhar`).
fn load(har: &Path) -> Result<Log, HarError> {
    let mut bytes = std::fs::read(har).map_err(|source| HarError::Io {
        path: har.to_owned(),
        source,
    })?;
    if bytes.starts_with(b"PK\x03\x04") {
        return Err(HarError::Zip {
            path: har.to_owned(),
        });
    }
    if bytes.first() == Some(&0x78) {
        let mut inflated = Vec::new();
        flate2::read::ZlibDecoder::new(bytes.as_slice())
            .read_to_end(&mut inflated)
            .map_err(|source| HarError::Zlib {
                path: har.to_owned(),
                source,
            })?;
        bytes = inflated;
    }
    let parsed: Har = serde_json::from_slice(&bytes).map_err(|source| HarError::NotHar {
        path: har.to_owned(),
        source,
    })?;
    Ok(parsed.log)
}

/// The largest message time taken as a time stamp: 10¹⁴ milliseconds since the epoch
/// is the year 5138. Anything larger (`1e300`) is refused, not slept on in a replay.
const MAX_TIME_VALUE: f64 = 1e14;

/// The longest a capture may span, in microseconds (30 days): between the first and
/// the last connection's start, and between a connection's start and its messages.
const MAX_SPAN_US: i128 = 30 * 86_400 * 1_000_000;

fn days(us: i128) -> f64 {
    us as f64 / 86_400e6
}

/// Refuses a message time more than [`MAX_SPAN_US`] from its entry's start.
fn check_span(socket: &Socket, unit: TimeUnit) -> Result<(), EntryError> {
    let far = socket
        .messages
        .iter()
        .zip(&socket.times)
        .enumerate()
        .find(|(_, (_, t))| (**t - socket.started).abs() > MAX_SPAN_US);
    match far {
        Some((message, (m, t))) => Err(EntryError::FarFromStart {
            message,
            time: m.time,
            unit: match unit {
                TimeUnit::Seconds => "seconds since the epoch",
                TimeUnit::Milliseconds => "milliseconds since the epoch",
                TimeUnit::RelativeSeconds => "seconds on the browser's own clock",
                TimeUnit::None => "no time",
            },
            days: days((t - socket.started).abs()),
            started: socket.entry.started.clone(),
        }),
        None => Ok(()),
    }
}

/// Each message's time in epoch microseconds.
fn message_times(unit: TimeUnit, started: i128, messages: &[WsMessage]) -> Vec<i128> {
    let first = messages.iter().map(|m| m.time).find(|t| *t >= 0.0);
    messages
        .iter()
        .enumerate()
        .map(|(n, m)| match unit {
            TimeUnit::Seconds if m.time >= 0.0 => (m.time * 1e6).round() as i128,
            TimeUnit::Milliseconds if m.time >= 0.0 => (m.time * 1e3).round() as i128,
            TimeUnit::RelativeSeconds if m.time >= 0.0 => {
                started + ((m.time - first.unwrap_or(0.0)) * 1e6).round() as i128
            }
            _ => started + 1000 * (n as i128 + 1),
        })
        .collect()
}

/// The records of one WebSocket entry: its open, messages, and end when it failed.
fn connection_records(
    socket: &Socket,
    conn: u64,
    route: &str,
    start_us: i128,
    report: &mut ImportReport,
    records: &mut Vec<Record>,
) -> Result<(), EntryError> {
    let rel = |t: i128| (t - start_us).max(0) as u64;
    let open_at = socket.times.iter().copied().fold(socket.started, i128::min);
    let Opened { open, end } = open_record(
        &socket.entry,
        conn,
        route,
        rel(open_at),
        !socket.messages.is_empty(),
    )?;
    records.push(Record::Open(open));
    for (n, (m, t)) in socket.messages.iter().zip(&socket.times).enumerate() {
        let t_us = rel(*t);
        if m.opcode == -1 || m.kind == "error" {
            report.notes.push(format!(
                "connection {conn}: the browser saw an error: {}",
                m.data
            ));
            records.push(Record::End(End {
                t_us,
                conn,
                how: EndHow::Reset,
                by: Side::Upstream,
                error: Some(m.data.clone()),
            }));
            continue;
        }
        let dir = match m.kind.as_str() {
            "send" => Dir::ClientToServer,
            "receive" => Dir::ServerToClient,
            other => {
                return Err(EntryError::MessageType {
                    message: n,
                    kind: other.to_string(),
                })
            }
        };
        let message = |op, body| {
            let mut m = Message::whole(conn, dir, op, body);
            m.t_us = t_us;
            Record::Message(m)
        };
        let control = || Control {
            t_us,
            conn,
            dir,
            op: None,
            body: Body::from_bytes(m.data.clone().into_bytes()),
        };
        let record = match m.opcode {
            1 => message(Opcode::TEXT, Body::Text(m.data.clone())),
            2 => {
                let bytes = crate::recording::base64()
                    .decode(m.data.trim())
                    .map_err(|source| EntryError::Base64 { message: n, source })?;
                message(Opcode::BINARY, Body::Bytes(bytes))
            }
            8 => Record::Close(Close {
                t_us,
                conn,
                dir,
                code: None,
                reason: m.data.clone(),
                base64: None,
            }),
            9 => Record::Ping(control()),
            10 => Record::Pong(control()),
            other => {
                report.notes.push(format!(
                    "connection {conn}: skipped a frame with opcode {other} (not a WebSocket data or control opcode)"
                ));
                continue;
            }
        };
        if let Record::Message(m) = &record {
            *report.messages.entry(m.dir).or_default() += 1;
        }
        records.push(record);
    }
    records.extend(end.map(Record::End));
    Ok(())
}

/// Imports a HAR file into a new recording at `out`.
pub fn import(har: &Path, out: &Path, options: &ImportOptions) -> Result<ImportReport, HarError> {
    let imported = read(har, options)?;
    let write_err = |source| HarError::Write {
        path: out.to_owned(),
        source,
    };
    let file = crate::files::create_private(out).map_err(write_err)?;
    let mut writer =
        Writer::new(std::io::BufWriter::new(&file), &imported.header).map_err(write_err)?;
    for record in &imported.records {
        writer.write(record).map_err(write_err)?;
    }
    writer.flush().map_err(write_err)?;
    drop(writer);
    file.sync_all().map_err(write_err)?;
    Ok(imported.report)
}

/// What [`open_record`] makes of an entry.
struct Opened {
    open: Open,
    end: Option<End>,
}

/// The `open` record of a WebSocket entry, and its `end` when the handshake failed.
fn open_record(
    entry: &Entry,
    conn: u64,
    route: &str,
    t_us: u64,
    has_messages: bool,
) -> Result<Opened, EntryError> {
    let url = url::Url::parse(&entry.request.url).map_err(|source| EntryError::Url {
        url: entry.request.url.clone(),
        source,
    })?;
    let scheme = match url.scheme() {
        "http" | "ws" => "ws",
        "https" | "wss" => "wss",
        other => return Err(EntryError::Scheme(other.to_string())),
    };
    let host = url.host_str().unwrap_or_default();
    let upstream = match url.port() {
        Some(port) => format!("{scheme}://{host}:{port}"),
        None => format!("{scheme}://{host}"),
    };
    let target = match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_string(),
    };
    let pairs = |list: &[NameValue]| -> Vec<(String, String)> {
        list.iter()
            // HTTP/2 pseudo-headers (`:authority`) are no upgrade headers.
            .filter(|h| !h.name.starts_with(':'))
            .map(|h| (h.name.clone(), h.value.clone()))
            .collect()
    };
    let response = entry.response.as_ref();
    let given = response.map_or(0, |r| r.status);
    let (status, end) = match u16::try_from(given).ok().filter(|s| (100..600).contains(s)) {
        Some(s) if s == 101 || has_messages => (s, None),
        Some(s) => (
            s,
            Some(End {
                t_us,
                conn,
                how: EndHow::Rejected,
                by: Side::Upstream,
                error: None,
            }),
        ),
        None if has_messages => (101, None),
        None => (
            502,
            Some(End {
                t_us,
                conn,
                how: EndHow::Unreachable,
                by: Side::Upstream,
                error: Some(
                    response
                        .and_then(|r| r.failure.clone())
                        .unwrap_or_else(|| "the HAR has no response for this WebSocket".into()),
                ),
            }),
        ),
    };
    Ok(Opened {
        open: Open {
            continued: false,
            t_us,
            route: route.to_string(),
            conn,
            client: "(imported from a HAR)".into(),
            upstream,
            request: format!("GET {target} HTTP/1.1"),
            headers: pairs(&entry.request.headers),
            status,
            response_headers: response.map(|r| pairs(&r.headers)).unwrap_or_default(),
        },
        end,
    })
}

fn attached_file(entry: &Entry) -> Option<&str> {
    entry.response.as_ref()?.content.as_ref()?.file.as_deref()
}

/// Playwright's `content: 'attach'` side file `file`, named relative to the HAR's
/// directory `dir`: one message object per line.
fn read_attached(dir: &Path, file: &str) -> Result<Vec<WsMessage>, SideFileError> {
    let (path, file) = open_side_file(dir, file)?;
    let io = |source| SideFileError::Io {
        path: path.clone(),
        source,
    };
    let mut text = String::new();
    file.take(MAX_SIDE_FILE + 1)
        .read_to_string(&mut text)
        .map_err(io)?;
    if text.len() as u64 > MAX_SIDE_FILE {
        return Err(SideFileError::TooLarge {
            path,
            size: text.len() as u64,
            limit: MAX_SIDE_FILE,
        });
    }
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(n, l)| {
            serde_json::from_str(l).map_err(|source| SideFileError::Line {
                path: path.to_owned(),
                line: n + 1,
                source,
            })
        })
        .collect()
}

/// Opens a side file: only a regular file inside `dir` (the HAR's directory, symbolic
/// links resolved), of at most [`MAX_SIDE_FILE`] bytes. Never blocks on a FIFO and
/// never reads a device. Returns the resolved path and the open file.
fn open_side_file(dir: &Path, file: &str) -> Result<(PathBuf, std::fs::File), SideFileError> {
    use std::path::Component;
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let outside = || SideFileError::Outside {
        dir: dir.to_owned(),
    };
    let relative = Path::new(file);
    let plain = relative
        .components()
        .all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
    if file.is_empty() || !plain {
        return Err(outside());
    }
    let joined = dir.join(relative);
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| SideFileError::Io { path, source }
    };
    let real_dir = dir.canonicalize().map_err(io(dir))?;
    let path = joined.canonicalize().map_err(io(&joined))?;
    if !path.starts_with(&real_dir) {
        return Err(outside());
    }
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        // Opening a FIFO for reading would wait for a writer; a symbolic link put
        // in place since it was resolved is not followed.
        options.custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW);
    }
    #[cfg(not(unix))]
    {
        let meta = std::fs::metadata(&path).map_err(io(&path))?;
        if !meta.is_file() {
            return Err(SideFileError::NotAFile {
                path,
                kind: file_kind(&meta.file_type()),
            });
        }
    }
    let opened = options.open(&path).map_err(io(&path))?;
    let meta = opened.metadata().map_err(io(&path))?;
    if !meta.is_file() {
        return Err(SideFileError::NotAFile {
            kind: file_kind(&meta.file_type()),
            path,
        });
    }
    if meta.len() > MAX_SIDE_FILE {
        return Err(SideFileError::TooLarge {
            path,
            size: meta.len(),
            limit: MAX_SIDE_FILE,
        });
    }
    Ok((path, opened))
}

/// What a file that is not a regular file is, for an error message.
fn file_kind(t: &std::fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if t.is_fifo() {
            return "a FIFO (named pipe)";
        }
        if t.is_char_device() {
            return "a character device";
        }
        if t.is_block_device() {
            return "a block device";
        }
        if t.is_socket() {
            return "a socket";
        }
    }
    if t.is_dir() {
        "a directory"
    } else {
        "not a regular file"
    }
}

/// Epoch milliseconds are ~10¹², epoch seconds ~10⁹; anything much smaller is a clock
/// of its own.
fn detect_unit(times: impl Iterator<Item = f64>) -> TimeUnit {
    let largest = times
        .filter(|t| *t >= 0.0)
        .fold(None, |m: Option<f64>, t| Some(m.map_or(t, |m| m.max(t))));
    match largest {
        None => TimeUnit::None,
        Some(t) if t >= 1e11 => TimeUnit::Milliseconds,
        Some(t) if t >= 1e8 => TimeUnit::Seconds,
        Some(_) => TimeUnit::RelativeSeconds,
    }
}

/// An ISO-8601 date-time (`2026-11-23T09:05:51.123Z`, `...+00:00`) in epoch microseconds.
fn parse_time(s: &str) -> Option<i128> {
    let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()?;
    Some(t.unix_timestamp_nanos() / 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_units_are_told_apart_by_size() {
        assert_eq!(
            detect_unit([1.795e9, 1.7951e9].into_iter()),
            TimeUnit::Seconds
        );
        assert_eq!(detect_unit([1.795e12].into_iter()), TimeUnit::Milliseconds);
        assert_eq!(
            detect_unit([12345.6].into_iter()),
            TimeUnit::RelativeSeconds
        );
        assert_eq!(detect_unit([-1.0, -1.0].into_iter()), TimeUnit::None);
        assert_eq!(
            parse_time("2026-11-23T09:05:51.123Z"),
            parse_time("2026-11-23T10:05:51.123+01:00")
        );
        assert_eq!(
            parse_time("2026-11-23T09:05:51.000Z").unwrap() % 1_000_000,
            0
        );
    }

    #[test]
    fn times_become_epoch_microseconds() {
        let at = |times: &[f64]| -> Vec<WsMessage> {
            times
                .iter()
                .map(|t| WsMessage {
                    kind: "send".into(),
                    time: *t,
                    opcode: 1,
                    data: String::new(),
                })
                .collect()
        };
        let started = 1_795_425_177_000_000;
        let seconds = message_times(TimeUnit::Seconds, started, &at(&[1_795_425_177.734_363]));
        let millis = message_times(
            TimeUnit::Milliseconds,
            started,
            &at(&[1_795_425_177_734.362_8]),
        );
        assert_eq!(seconds, [1_795_425_177_734_363]);
        assert_eq!(seconds, millis);
        // A clock of its own: the first message at the entry's start, gaps kept.
        let relative = message_times(TimeUnit::RelativeSeconds, started, &at(&[812.25, 812.5]));
        assert_eq!(relative, [started, started + 250_000]);
        // No times at all: order kept, 1 ms apart.
        let none = message_times(TimeUnit::None, started, &at(&[-1.0, -1.0]));
        assert_eq!(none, [started + 1000, started + 2000]);
    }
}
