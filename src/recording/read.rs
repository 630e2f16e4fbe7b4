//! Reading a recording: the header's version checked, every line parsed into a
//! [`Record`], a torn or unfinished end tolerated with a [`Warning`], and every error
//! naming the file and line.

use std::fmt;
use std::io::{self, BufRead};
use std::path::{Path, PathBuf};

use super::format::*;
use super::source::Source;

/// The warning for a compressed recording cut in the middle of a frame.
pub const TRUNCATED_FRAME: &str =
    "the compressed stream ends in the middle of a frame (the recorder was probably killed); read up to its last flushed block";

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
    #[error("{path}:1: {source}")]
    Header {
        path: PathBuf,
        #[source]
        source: HeaderError,
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

/// Why the first line of a file is not a recording header.
#[derive(Debug, thiserror::Error)]
pub enum HeaderError {
    #[error("invalid UTF-8 at byte {0}")]
    Utf8(usize),
    /// Not JSON, or not a header object (the JSON error, described).
    #[error("not a wsreplay recording: the first line must be a {FORMAT_NAME:?} header ({0})")]
    NotAHeader(String),
    #[error("not a wsreplay recording: format is {0:?}, expected {FORMAT_NAME:?}")]
    Format(String),
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
    /// What the reader tolerated, as `FILE:LINE: message` lines (a torn last line, no
    /// `finish` record, ...).
    pub fn warning_lines(&self) -> Vec<String> {
        self.warnings.iter().map(|w| w.at(&self.path)).collect()
    }

    /// Reads and validates a recording file, plain or zstd-compressed.
    pub fn read(path: impl AsRef<Path>) -> Result<Recording, ReadError> {
        let path = path.as_ref();
        let mut reader = Reader::new(path, open(path)?)?;
        let records = reader.collect_records()?;
        let mut warnings = reader.finish();
        if reader.input.truncated() {
            warnings.push(Warning {
                line: reader.lines.line,
                message: TRUNCATED_FRAME.into(),
            });
        }
        Ok(Recording {
            path: path.to_owned(),
            header: reader.header,
            records,
            warnings,
        })
    }

    /// Reads a recording from any buffered reader; `path` is used in messages.
    pub fn from_reader(path: &Path, input: impl BufRead) -> Result<Recording, ReadError> {
        let mut reader = Reader::new(path, input)?;
        let records = reader.collect_records()?;
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
            continued: false,
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
            .map_err(|e| HeaderError::Utf8(e.valid_up_to()))
            .and_then(parse_header)
            .map_err(|source| ReadError::Header {
                path: path.to_owned(),
                source,
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

    fn collect_records(&mut self) -> Result<Vec<Record>, ReadError> {
        let mut records = Vec::new();
        while let Some(record) = self.next_record()? {
            records.push(record);
        }
        Ok(records)
    }

    /// What the records are read from.
    pub fn input(&self) -> &R {
        &self.input
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

fn parse_header(text: &str) -> Result<Header, HeaderError> {
    let header: Header =
        serde_json::from_str(text).map_err(|e| HeaderError::NotAHeader(describe_json_error(&e)))?;
    if header.format != FORMAT_NAME {
        return Err(HeaderError::Format(header.format));
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

/// Opens a recording file for a [`Reader`], plain or zstd-compressed.
pub fn open(path: &Path) -> Result<Source, ReadError> {
    Source::open(path).map_err(|source| ReadError::Io {
        path: path.to_owned(),
        source,
    })
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
