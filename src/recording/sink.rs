//! The recording sink: the single writer that owns a recording file.
//!
//! Connection tasks [`SinkHandle::push`] records into a shared queue; the time stamp is
//! taken under the queue's lock, so the file is in one global time order across all
//! routes and connections. A dedicated writer thread (not a tokio task: file I/O would
//! block the runtime) wakes every [`WRITE_INTERVAL`] (at once for a close, an end or a
//! large batch), takes the whole queue, redacts secrets, serialises the batch through a
//! `BufWriter` and flushes it to the operating system. Waking per batch rather than
//! per message keeps the recorder off the forwarding path's back; a record reaches the
//! OS within [`WRITE_INTERVAL`] plus one batch's write, well inside the 100 ms promise
//! (a SIGKILLed recorder keeps everything forwarded more than 100 ms earlier). On
//! [`Sink::finish`] it writes the `finish` record and fsyncs.
//!
//! Backpressure: when more than [`QUEUE_LIMIT`] bytes wait for the disk,
//! [`SinkHandle::poll_ready`] returns `Pending` and the proxy stops reading from that
//! socket until the writer catches up; nothing is dropped for being slow.
//!
//! Failure (disk full, file removed): the writer logs one error, counts every record it
//! cannot write as lost, and keeps draining, so the system under test keeps working.
//! The `finish` record (if it can still be written) and the returned [`Outcome`] say
//! the recording is incomplete; `wsreplay record` then exits non-zero.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::recording::filter::{Filter, Selection};
use crate::recording::rotate::{self, Rotate};
use crate::recording::source::is_compressed_name;
use crate::recording::{Dir, Finish, Header, Record, Writer};
use crate::redact::Redactor;

/// Bytes of records allowed to wait for the writer before connections pause.
pub const QUEUE_LIMIT: usize = 4 << 20;
/// How often the writer takes the queue when nothing urgent happens.
pub const WRITE_INTERVAL: Duration = Duration::from_millis(20);
/// Queued bytes that make the writer start at once.
const URGENT_BYTES: usize = 1 << 20;

/// Where the recording goes.
#[derive(Clone, Debug)]
pub enum Output {
    /// A new file (created with mode 0600, parent directories made); zstd-compressed
    /// when its name ends in `.zst`.
    File(PathBuf),
    /// Parse and serialise everything, write nothing (for measuring).
    Discard,
}

/// The zstd level of compressed recordings: zstd's default, fast enough for the
/// recorder's writer thread and well over 5× on JSON traffic.
pub const ZSTD_LEVEL: i32 = 3;

/// The file the writer thread writes to. A compressed recording is one zstd frame
/// whose blocks are flushed with every batch: a reader decodes everything up to the
/// last flushed block, so a killed recorder loses no more than plain JSON Lines would.
enum Out {
    Plain(File),
    Zstd(zstd::Encoder<'static, File>),
    Discard,
}

impl Out {
    /// Ends the zstd frame (a plain file has nothing to end).
    fn end(&mut self) -> io::Result<()> {
        match self {
            Out::Zstd(z) => {
                z.do_finish()?;
                z.get_mut().flush()
            }
            _ => Ok(()),
        }
    }
}

impl Write for Out {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Out::Plain(f) => f.write(buf),
            Out::Zstd(z) => z.write(buf),
            Out::Discard => Ok(buf.len()),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Out::Plain(f) => f.flush(),
            Out::Zstd(z) => z.flush(),
            Out::Discard => Ok(()),
        }
    }
}

/// How a recording is written besides its output and redaction.
#[derive(Clone, Debug, Default)]
pub struct SinkOptions {
    /// Which connections are written (and noted in the header).
    pub filter: Filter,
    /// Start a new file (named with its start time) by size or age.
    pub rotate: Option<Rotate>,
}

/// Counts per route, kept by the writer from what it wrote.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RouteStats {
    pub connections: u64,
    pub messages: BTreeMap<Dir, u64>,
    pub abnormal_ends: u64,
}

/// What the writer reports when the recording is finished.
#[derive(Debug, Default)]
pub struct Outcome {
    pub routes: BTreeMap<String, RouteStats>,
    pub records: u64,
    /// Records that could not be written.
    pub lost: u64,
    /// The first write error, if any.
    pub error: Option<String>,
    /// The files written, in order (one unless the recording rotated).
    pub files: Vec<PathBuf>,
}

impl Outcome {
    pub fn complete(&self) -> bool {
        self.lost == 0 && self.error.is_none()
    }
}

struct State {
    queue: Vec<Record>,
    queued_bytes: usize,
    closed: bool,
    /// The writer should not wait for its next interval.
    urgent: bool,
    waiters: Vec<Waker>,
}

struct Shared {
    state: Mutex<State>,
    wake_writer: Condvar,
    clock: Instant,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A cheap, clonable handle for submitting records.
#[derive(Clone)]
pub struct SinkHandle {
    shared: Arc<Shared>,
}

impl SinkHandle {
    /// Ready when the queue has room; otherwise registers the task to be woken.
    pub fn poll_ready(&self, cx: &mut Context<'_>) -> Poll<()> {
        let mut state = self.shared.lock();
        if state.queued_bytes < QUEUE_LIMIT || state.closed {
            Poll::Ready(())
        } else {
            state.waiters.push(cx.waker().clone());
            Poll::Pending
        }
    }

    /// Queues records, stamping each with the current recording time.
    pub fn push(&self, records: impl IntoIterator<Item = Record>) {
        let mut state = self.shared.lock();
        if state.closed {
            return;
        }
        let t = self.now_us();
        let mut urgent = false;
        for mut record in records {
            record.set_t_us(t);
            state.queued_bytes += approx_size(&record);
            urgent |= matches!(record, Record::Close(_) | Record::End(_));
            state.queue.push(record);
        }
        urgent |= state.queued_bytes >= URGENT_BYTES;
        if urgent && !state.urgent {
            state.urgent = true;
            drop(state);
            self.shared.wake_writer.notify_one();
        }
    }

    /// Microseconds since the recording started.
    pub fn now_us(&self) -> u64 {
        self.shared.clock.elapsed().as_micros() as u64
    }
}

/// Memory a queued record holds: the record itself and its body.
fn approx_size(record: &Record) -> usize {
    std::mem::size_of::<Record>()
        + match record {
            Record::Message(m) => m.body.len(),
            _ => 64,
        }
}

/// Owns the writer thread of one recording.
pub struct Sink {
    handle: SinkHandle,
    thread: JoinHandle<Outcome>,
}

impl Sink {
    /// Creates the output and starts the writer thread.
    pub fn start(output: &Output, redactor: Redactor, options: SinkOptions) -> io::Result<Sink> {
        let started = SystemTime::now();
        let base = match output {
            Output::File(path) => Some(path.clone()),
            Output::Discard => None,
        };
        let path = match (&base, options.rotate) {
            (Some(base), Some(_)) => Some(rotate::path_for(base, started)),
            (base, _) => base.clone(),
        };
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                queue: Vec::new(),
                queued_bytes: 0,
                closed: false,
                urgent: false,
                waiters: Vec::new(),
            }),
            wake_writer: Condvar::new(),
            clock: Instant::now(),
        });
        let mut header = Header::current(unix_ms(started));
        header.filter = options.filter.clone();
        let (file, writer) = open_output(path.as_deref(), &header)?;
        let worker = WriterThread {
            shared: shared.clone(),
            writer,
            file,
            redactor,
            selection: Selection::new(options.filter),
            outcome: Outcome {
                files: path.into_iter().collect(),
                ..Outcome::default()
            },
            routes_by_conn: HashMap::new(),
            rotation: options.rotate.zip(base).map(|(every, base)| Rotation {
                every,
                base,
                started,
                file_started: Instant::now(),
                offset_us: 0,
                live: BTreeMap::new(),
                header,
            }),
        };
        let thread = std::thread::Builder::new()
            .name("wsreplay-writer".into())
            .spawn(move || worker.run())?;
        Ok(Sink {
            handle: SinkHandle { shared },
            thread,
        })
    }

    pub fn handle(&self) -> SinkHandle {
        self.handle.clone()
    }

    /// Writes what is queued, the `finish` record, fsyncs, and reports.
    pub fn finish(self) -> Outcome {
        {
            let mut state = self.handle.shared.lock();
            state.closed = true;
            state.urgent = true;
        }
        self.handle.shared.wake_writer.notify_one();
        self.thread.join().unwrap_or_else(|_| Outcome {
            error: Some("the recording writer thread panicked".into()),
            ..Outcome::default()
        })
    }
}

/// Creates one recording file (none for `Discard`) and writes its header.
fn open_output(
    path: Option<&std::path::Path>,
    header: &Header,
) -> io::Result<(Option<File>, Writer<BufWriter<Out>>)> {
    let file = path.map(crate::files::create_private).transpose()?;
    let out = match (&file, path) {
        (Some(f), Some(path)) if is_compressed_name(path) => {
            Out::Zstd(zstd::Encoder::new(f.try_clone()?, ZSTD_LEVEL)?)
        }
        (Some(f), _) => Out::Plain(f.try_clone()?),
        (None, _) => Out::Discard,
    };
    let writer = Writer::new(BufWriter::with_capacity(1 << 16, out), header)?;
    Ok((file, writer))
}

fn unix_ms(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// What the writer needs to rotate: the policy, the base name, and the connections
/// still open (their `open` records begin the next file, marked `continued`).
struct Rotation {
    every: Rotate,
    base: PathBuf,
    /// When the recording started (files' headers are stamped from it).
    started: SystemTime,
    file_started: Instant,
    /// The recording time at which the current file started: its records' `t_us` are
    /// counted from there, so each file's times start near 0.
    offset_us: u64,
    live: BTreeMap<u64, crate::recording::Open>,
    header: Header,
}

struct WriterThread {
    shared: Arc<Shared>,
    writer: Writer<BufWriter<Out>>,
    file: Option<File>,
    redactor: Redactor,
    selection: Selection,
    outcome: Outcome,
    routes_by_conn: HashMap<u64, String>,
    rotation: Option<Rotation>,
}

impl WriterThread {
    fn run(mut self) -> Outcome {
        let mut batch = Vec::new();
        loop {
            let closed = {
                let mut state = self.shared.lock();
                if !state.urgent && !state.closed {
                    state = self
                        .shared
                        .wake_writer
                        .wait_timeout(state, WRITE_INTERVAL)
                        .map(|(s, _)| s)
                        .unwrap_or_else(|p| p.into_inner().0);
                }
                state.urgent = false;
                std::mem::swap(&mut batch, &mut state.queue);
                state.queued_bytes = 0;
                for w in state.waiters.drain(..) {
                    w.wake();
                }
                state.closed
            };
            if batch.is_empty() && !closed {
                continue;
            }
            for record in batch.drain(..) {
                self.write(record);
            }
            // A burst must not leave its high-water capacity behind for the whole session.
            batch.shrink_to(4096);
            self.flush();
            if closed && self.shared.lock().queue.is_empty() {
                break;
            }
            if self.rotation_due() {
                self.rotate();
            }
        }
        self.close_file();
        self.outcome
    }

    /// Ends the current file: its `finish` record, the end of its zstd frame, fsync.
    fn close_file(&mut self) {
        let finish = Record::Finish(Finish {
            t_us: self.shared.clock.elapsed().as_micros() as u64,
            complete: self.outcome.lost == 0 && self.outcome.error.is_none(),
            lost: self.outcome.lost,
        });
        self.write(finish);
        self.flush();
        if self.outcome.error.is_none() {
            if let Err(e) = self.writer.get_mut().get_mut().end() {
                self.fail(&e);
            }
        }
        if let Some(f) = &self.file {
            if let Err(e) = f.sync_all() {
                self.fail(&e);
            }
        }
    }

    fn rotation_due(&self) -> bool {
        let (Some(r), Some(file)) = (&self.rotation, &self.file) else {
            return false;
        };
        let bytes = file.metadata().map(|m| m.len()).unwrap_or(0);
        self.outcome.error.is_none() && r.every.due(bytes, r.file_started.elapsed())
    }

    /// Closes the current file and starts the next one: a header stamped with its start,
    /// then a `continued` copy of every open connection's `open` record.
    fn rotate(&mut self) {
        self.close_file();
        let Some(r) = &mut self.rotation else { return };
        let now_us = self.shared.clock.elapsed().as_micros() as u64;
        let now = r.started + Duration::from_micros(now_us);
        let path = rotate::path_for(&r.base, now);
        r.header.started_unix_ms = unix_ms(now);
        r.offset_us = now_us;
        r.file_started = Instant::now();
        let opened = open_output(Some(&path), &r.header).and_then(|(file, mut writer)| {
            for open in r.live.values() {
                let mut open = open.clone();
                open.t_us = 0;
                open.continued = true;
                writer.write(&Record::Open(open))?;
            }
            writer.flush()?;
            Ok((file, writer))
        });
        match opened {
            Ok((file, writer)) => {
                (self.file, self.writer) = (file, writer);
                self.outcome.files.push(path);
            }
            Err(e) => {
                // The old file is finished; nothing more can be written anywhere.
                self.fail(&e);
                self.file = None;
            }
        }
    }

    fn write(&mut self, mut record: Record) {
        if !self.selection.keeps(&record) {
            return;
        }
        self.redact(&mut record);
        self.count(&record);
        if let Some(r) = &mut self.rotation {
            record.set_t_us(record.t_us().saturating_sub(r.offset_us));
            match &record {
                Record::Open(o) => {
                    r.live.insert(o.conn, o.clone());
                }
                Record::End(e) => {
                    r.live.remove(&e.conn);
                }
                _ => {}
            }
        }
        if self.outcome.error.is_some() {
            self.outcome.lost += 1;
            return;
        }
        match self.writer.write(&record) {
            Ok(()) => self.outcome.records += 1,
            Err(e) => {
                self.outcome.lost += 1;
                self.fail(&e);
            }
        }
    }

    fn flush(&mut self) {
        if self.outcome.error.is_none() {
            if let Err(e) = self.writer.flush() {
                self.fail(&e);
            }
        }
    }

    fn fail(&mut self, e: &io::Error) {
        if self.outcome.error.is_none() {
            tracing::error!(
                "cannot write the recording: {e}. Traffic keeps flowing but is no longer recorded; the recording will be marked incomplete"
            );
            self.outcome.error = Some(e.to_string());
        }
    }

    fn redact(&self, record: &mut Record) {
        redact_record(&self.redactor, record);
    }

    fn count(&mut self, record: &Record) {
        match record {
            Record::Open(o) => {
                self.routes_by_conn.insert(o.conn, o.route.clone());
                self.outcome
                    .routes
                    .entry(o.route.clone())
                    .or_default()
                    .connections += 1;
            }
            Record::Message(m) => {
                if let Some(stats) = self.stats_of(m.conn) {
                    *stats.messages.entry(m.dir).or_default() += 1;
                }
            }
            Record::End(e) if e.how.is_abnormal() => {
                if let Some(stats) = self.stats_of(e.conn) {
                    stats.abnormal_ends += 1;
                }
            }
            _ => {}
        }
    }

    fn stats_of(&mut self, conn: u64) -> Option<&mut RouteStats> {
        let route = self.routes_by_conn.get(&conn)?;
        self.outcome.routes.get_mut(route)
    }
}

/// Removes the secrets of one record before it is written: the handshake's headers,
/// request target and upstream URL, the bodies of text messages (and of binary ones that
/// hold JSON as UTF-8), ping, pong and reserved control payloads, close reasons and error
/// texts ([`Redactor::text`]). Every writer of recordings (the recorder, `import har`)
/// goes through this.
pub fn redact_record(redactor: &Redactor, record: &mut Record) {
    use crate::recording::Body;
    let body = |body: &mut Body| match body {
        Body::Text(text) => {
            if let Some(redacted) = redactor.text(text) {
                *text = redacted;
            }
        }
        // A binary message holding JSON (UTF-8) is scanned like a text message; other
        // binary payloads (and the recorder's 64 KiB streams) are left as they are.
        Body::Bytes(bytes)
            if bytes.trim_ascii_start().starts_with(b"{")
                || bytes.trim_ascii_start().starts_with(b"[") =>
        {
            let redacted = std::str::from_utf8(bytes)
                .ok()
                .and_then(|text| redactor.text(text));
            if let Some(redacted) = redacted {
                *bytes = redacted.into_bytes();
            }
        }
        Body::Bytes(_) => {}
    };
    let text = |text: &mut String| {
        if let Some(redacted) = redactor.text(text) {
            *text = redacted;
        }
    };
    match record {
        Record::Open(open) => {
            redactor.headers(&mut open.headers);
            redactor.headers(&mut open.response_headers);
            open.request = redact_request_line(redactor, &open.request);
            open.upstream = redactor.url(&open.upstream);
        }
        Record::Message(m) => body(&mut m.body),
        Record::Ping(c) | Record::Pong(c) | Record::Control(c) => body(&mut c.body),
        Record::Close(c) => text(&mut c.reason),
        Record::End(e) => {
            if let Some(error) = &mut e.error {
                text(error);
            }
        }
        _ => {}
    }
}

fn redact_request_line(redactor: &Redactor, line: &str) -> String {
    let mut parts: Vec<&str> = line.splitn(3, ' ').collect();
    if parts.len() < 2 {
        return line.to_string();
    }
    let target = redactor.target(parts[1]);
    parts[1] = &target;
    parts.join(" ")
}
