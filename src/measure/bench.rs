//! `wsreplay bench`: the performance figures, measured side by side in one run.
//!
//! Paths compared (alternating rounds, medians): a direct connection to an echo server;
//! a blind TCP relay (`copy_bidirectional`, no parsing); `wsreplay record` writing a real
//! file; `wsreplay record --discard` (parsing and serialising, no disk). The relay and
//! the recorder each run as a separate process with the same single-threaded runtime,
//! so both hops pay the same cross-process cost (and the recorder's RSS can be read
//! from `/proc`).
//!
//! Workloads: small-JSON ping-pong (msg/s, p50/p99), pipelined 64 KiB binary streaming
//! (MB/s), one connection carrying many messages (proxy RSS at the end; the recording is
//! verified message by message), many idle connections (RSS per connection), the
//! structure normaliser and comparison (events/s on one core), and a replay against an
//! echo target next to a minimal tokio-tungstenite client sending the same messages.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde::Serialize;
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::Message;

use super::load::{checksum, echo_server, raise_fd_limit, read_back, small_config};
use crate::recording::{
    Body, Dir, Header, Message as RecMessage, Opcode, Open, ReadError, Record, Recording, Writer,
};
use crate::replay::ReplayError;

/// Why the bench could not measure.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("cannot start {what}: {source}")]
    Start {
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("the recorder did not start listening on {0}")]
    NotListening(SocketAddr),
    #[error("connection to {addr}: {source}")]
    Connection {
        addr: SocketAddr,
        #[source]
        source: tokio_tungstenite::tungstenite::Error,
    },
    #[error("connection to {0}: echo closed")]
    EchoClosed(SocketAddr),
    #[error("the recorder at {0} wrote no recording")]
    NoRecording(SocketAddr),
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Read(#[from] ReadError),
    #[error(transparent)]
    Replay(#[from] ReplayError),
    #[error("bench replay reported problems:\n{0}")]
    ReplayProblems(String),
    #[error("a bench task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
    #[error("a bench task lost its send window: {0}")]
    Window(#[from] tokio::sync::AcquireError),
}

impl BenchError {
    fn start(what: &'static str) -> impl FnOnce(std::io::Error) -> BenchError {
        move |source| BenchError::Start { what, source }
    }

    fn connection(
        addr: SocketAddr,
    ) -> impl Fn(tokio_tungstenite::tungstenite::Error) -> BenchError {
        move |source| BenchError::Connection { addr, source }
    }
}

/// How much to measure.
#[derive(Clone, Copy, Debug)]
pub struct BenchOptions {
    /// Smaller workloads (seconds instead of minutes); figures are noisier.
    pub quick: bool,
    /// Run only this workload.
    pub only: Option<Workload>,
}

/// A workload of the bench.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum Workload {
    /// Ping-pong and 64 KiB streaming on the four paths.
    Paths,
    /// One connection carrying many messages.
    Long,
    /// Many idle connections.
    Idle,
    /// The structure normaliser and comparison.
    Normalise,
    /// Replay against an echo target vs a minimal client.
    Replay,
}

/// One path's figures for the throughput workloads.
#[derive(Clone, Debug, Default, Serialize)]
pub struct PathFigures {
    pub path: &'static str,
    pub pingpong_msgs_per_s: f64,
    pub pingpong_p50_us: f64,
    pub pingpong_p99_us: f64,
    pub stream_mb_per_s: f64,
}

/// Everything `wsreplay bench` measured.
#[derive(Clone, Debug, Default, Serialize)]
pub struct BenchReport {
    pub paths: Vec<PathFigures>,
    pub long_session_messages: u64,
    pub long_session_proxy_rss_mib: f64,
    pub long_session_recording_verified: bool,
    pub idle_connections: u64,
    pub idle_proxy_rss_per_connection_kib: f64,
    pub normalise_events: u64,
    pub normalise_events_per_s: f64,
    pub replay_messages: u64,
    pub replay_seconds: f64,
    pub minimal_client_seconds: f64,
    /// The minimal client again, writing every message it sends and receives to a file
    /// as JSON Lines (what the replay's capture has to do at the least).
    pub minimal_logging_client_seconds: f64,
}

const PATHS: [&str; 4] = ["direct", "blind relay", "record → file", "record → discard"];

/// A blind TCP relay: bytes copied both ways, nothing parsed. `wsreplay bench` runs it
/// in a process of its own (`wsreplay bench-relay`), like the recorder, so both hops
/// pay the same cross-process cost and the ratio measures only what recording adds.
pub async fn blind_relay(listen: SocketAddr, target: SocketAddr) -> std::io::Result<()> {
    let listener = TcpListener::bind(listen).await?;
    while let Ok((mut a, _)) = listener.accept().await {
        tokio::spawn(async move {
            let _ = a.set_nodelay(true);
            if let Ok(mut b) = TcpStream::connect(target).await {
                let _ = b.set_nodelay(true);
                let _ = tokio::io::copy_bidirectional(&mut a, &mut b).await;
            }
        });
    }
    Ok(())
}

/// What runs in a hop process.
#[derive(Clone, Copy)]
enum Hop<'a> {
    Relay,
    Record(Option<&'a Path>),
}

/// `wsreplay record` (or the blind relay) in its own process.
struct ProxyProcess {
    child: Child,
    addr: SocketAddr,
    out: Option<PathBuf>,
}

impl ProxyProcess {
    async fn start(upstream: SocketAddr, out: Option<&Path>) -> Result<ProxyProcess, BenchError> {
        Self::start_hop(upstream, Hop::Record(out)).await
    }

    async fn start_hop(upstream: SocketAddr, hop: Hop<'_>) -> Result<ProxyProcess, BenchError> {
        let what = match hop {
            Hop::Relay => "the blind relay",
            Hop::Record(_) => "the recorder",
        };
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(BenchError::start(what))?
            .port();
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let mut cmd = Command::new(std::env::current_exe().map_err(BenchError::start(what))?);
        cmd.stdout(Stdio::null()).stderr(Stdio::null());
        let out = match hop {
            Hop::Relay => {
                cmd.args(["bench-relay", &addr.to_string(), &upstream.to_string()]);
                None
            }
            Hop::Record(out) => {
                cmd.args(["record", "--route", &format!("b={addr}=ws://{upstream}")]);
                match out {
                    Some(p) => cmd.arg("--out").arg(p),
                    None => cmd.arg("--discard"),
                };
                out
            }
        };
        let child = cmd.spawn().map_err(BenchError::start(what))?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(addr).await.is_err() {
            if Instant::now() >= deadline {
                return Err(BenchError::NotListening(addr));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(ProxyProcess {
            child,
            addr,
            out: out.map(Path::to_owned),
        })
    }

    fn rss_kib(&self) -> f64 {
        rss_kib(self.child.id())
    }

    /// SIGTERM, then wait for the recording to be finished.
    fn stop(mut self) -> Option<PathBuf> {
        // SAFETY: kill(2) on our own child's pid.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let _ = self.child.wait();
        self.out
    }
}

/// VmRSS of a process, in KiB.
fn rss_kib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0.0)
}

async fn connect(
    addr: SocketAddr,
) -> Result<
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>,
    BenchError,
> {
    let (ws, _) = tokio_tungstenite::connect_async_with_config(
        format!("ws://{addr}/bench"),
        Some(small_config()),
        true,
    )
    .await
    .map_err(BenchError::connection(addr))?;
    Ok(ws)
}

/// One ping-pong run's figures.
#[derive(Clone, Copy, Debug)]
struct PingPong {
    msgs_per_s: f64,
    p50_us: f64,
    p99_us: f64,
}

/// Ping-pong of small JSON messages for `duration`.
async fn pingpong(addr: SocketAddr, duration: Duration) -> Result<PingPong, BenchError> {
    let ws_err = BenchError::connection(addr);
    let mut ws = connect(addr).await?;
    let mut latencies = Vec::new();
    let start = Instant::now();
    let mut seq = 0u64;
    while start.elapsed() < duration {
        let t = Instant::now();
        ws.send(Message::text(format!(
            r#"{{"type":"ping","seq":{seq},"payload":{{"agent_name":"supervisor","status":"ok"}}}}"#
        )))
        .await
        .map_err(&ws_err)?;
        ws.next()
            .await
            .ok_or(BenchError::EchoClosed(addr))?
            .map_err(&ws_err)?;
        latencies.push(t.elapsed().as_secs_f64() * 1e6);
        seq += 1;
    }
    let elapsed = start.elapsed().as_secs_f64();
    let _ = ws.close(None).await;
    latencies.sort_by(f64::total_cmp);
    let pct = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    Ok(PingPong {
        msgs_per_s: latencies.len() as f64 / elapsed,
        p50_us: pct(0.50),
        p99_us: pct(0.99),
    })
}

/// Pipelined 64 KiB binary messages for `duration`, at most 16 in flight: MB/s echoed.
async fn stream(addr: SocketAddr, duration: Duration) -> Result<f64, BenchError> {
    let ws = connect(addr).await?;
    let (mut tx, mut rx) = ws.split();
    let window = Arc::new(tokio::sync::Semaphore::new(16));
    let payload = vec![0x5a_u8; 64 * 1024];
    let start = Instant::now();
    let w = window.clone();
    let writer = tokio::spawn(async move {
        let mut sent = 0u64;
        while start.elapsed() < duration {
            w.acquire().await?.forget();
            tx.send(Message::binary(payload.clone()))
                .await
                .map_err(BenchError::connection(addr))?;
            sent += 1;
        }
        Ok::<_, BenchError>((sent, tx))
    });
    let mut received = 0u64;
    let mut bytes = 0u64;
    loop {
        if writer.is_finished() && received > 0 {
            break;
        }
        match tokio::time::timeout(Duration::from_millis(200), rx.next()).await {
            Ok(Some(Ok(m))) => {
                bytes += m.len() as u64;
                received += 1;
                window.add_permits(1);
            }
            Ok(_) => break,
            Err(_) => {}
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    let (sent, mut tx) = writer.await??;
    while received < sent {
        match tokio::time::timeout(Duration::from_secs(5), rx.next()).await {
            Ok(Some(Ok(m))) => {
                bytes += m.len() as u64;
                received += 1;
            }
            _ => break,
        }
    }
    let _ = tx.close().await;
    Ok(bytes as f64 / elapsed.max(1e-9) / 1e6)
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        0.0
    } else {
        v[v.len() / 2]
    }
}

/// What [`long_session`] measured.
struct LongSession {
    /// The proxy's RSS at the end, in KiB.
    proxy_rss_kib: f64,
    /// Whether every message came back and the recording holds every one both ways.
    verified: bool,
}

/// Many messages on one connection through a recording proxy.
async fn long_session(echo: SocketAddr, dir: &Path, n: u64) -> Result<LongSession, BenchError> {
    let out = dir.join("long.jsonl");
    let proxy = ProxyProcess::start(echo, Some(&out)).await?;
    let addr = proxy.addr;
    let ws = connect(addr).await?;
    let (mut tx, mut rx) = ws.split();
    let window = Arc::new(tokio::sync::Semaphore::new(256));
    let w = window.clone();
    let writer = tokio::spawn(async move {
        let mut sum = 0u64;
        for i in 0..n {
            w.acquire().await?.forget();
            let text =
                format!(r#"{{"type":"progress_update","payload":{{"seq":{i},"progress":0.5}}}}"#);
            sum = sum.wrapping_add(checksum(text.as_bytes()));
            let ws_err = BenchError::connection(addr);
            tx.feed(Message::text(text)).await.map_err(&ws_err)?;
            if w.available_permits() == 0 {
                tx.flush().await.map_err(&ws_err)?;
            }
        }
        tx.flush().await.map_err(BenchError::connection(addr))?;
        Ok::<_, BenchError>((sum, tx))
    });
    let mut got = 0u64;
    while got < n {
        match rx.next().await {
            Some(Ok(_)) => {
                got += 1;
                window.add_permits(1);
            }
            _ => break,
        }
    }
    let (sum, mut tx) = writer.await??;
    let _ = tx.close().await;
    let rss = proxy.rss_kib();
    let out = proxy.stop().ok_or(BenchError::NoRecording(addr))?;
    let verified = tokio::task::spawn_blocking(move || verify(&out, n, sum)).await??;
    Ok(LongSession {
        proxy_rss_kib: rss,
        verified: verified && got == n,
    })
}

/// Whether the recording holds exactly `n` messages each way with checksum `sum`.
fn verify(path: &Path, n: u64, sum: u64) -> Result<bool, ReadError> {
    let found = read_back(path)?;
    Ok(found.messages == [n, n] && found.checksums == [sum, sum] && found.warnings == 0)
}

/// Opens `n` idle connections through a recording proxy; returns its RSS per
/// connection in KiB.
async fn idle_connections(echo: SocketAddr, dir: &Path, n: u64) -> Result<f64, BenchError> {
    raise_fd_limit();
    let proxy = ProxyProcess::start(echo, Some(&dir.join("idle.jsonl"))).await?;
    // Warm the proxy up with one connection so its runtime's fixed cost is excluded.
    drop(connect(proxy.addr).await?);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let before = proxy.rss_kib();
    let mut conns = Vec::new();
    for _ in 0..n {
        conns.push(connect(proxy.addr).await?);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = proxy.rss_kib();
    drop(conns);
    proxy.stop();
    Ok((after - before) / n as f64)
}

/// A recording of `users` conversations of demo-like events (ids, timestamps vary).
pub fn synthetic_recording(users: u64) -> Recording {
    let mut messages = Vec::new();
    let mut push = |dir, text: String| messages.push((dir, Body::Text(text)));
    for u in 0..users {
        let mid = format!("msg_{:016x}", u.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        push(
            Dir::ClientToServer,
            format!(r#"{{"type":"chat","message_id":"{mid}","text":"What did we spend on EC2?"}}"#),
        );
        for (kind, extra) in [
            (
                "agent_started",
                r#""status":"started","input":{"text":"What did we spend on EC2?"}"#,
            ),
            (
                "agent_thinking",
                r#""step":1,"thought":"User intent is cost_analysis; planning tools.""#,
            ),
            (
                "progress_update",
                r#""progress":0.25,"message":"Preparing analysis step 1/2""#,
            ),
            (
                "tool_executing",
                r#""tool_name":"aws_cost_analyzer","parameters":{"intent":"cost_analysis","services":["EC2","S3"]}"#,
            ),
            (
                "tool_completed",
                r#""tool_name":"aws_cost_analyzer","status":"success","duration_ms":15.25,"result":{"row_count":2,"rows":[{"service":"EC2","cost_usd":1200.5,"usage_hours":720}]}"#,
            ),
            (
                "agent_completed",
                r#""status":"completed","duration_ms":120.5,"result":{"answer":"Total cost: $1,200.50","chart_id":"chart_0a1b2c3d4e5f"}"#,
            ),
        ] {
            push(
                Dir::ServerToClient,
                format!(
                    r#"{{"type":"{kind}","payload":{{"agent_name":"supervisor","run_id":"run_3f2a6c1e-8b7d-4e2f-9a1b-{u:012x}","thread_id":"thread_1","timestamp":1795417733.{u},"user_id":"alice","message_id":"{mid}",{extra}}}}}"#
                ),
            );
        }
    }
    Recording::single_connection("frontend", messages)
}

/// Normalises two recordings and compares them on this thread: events per second.
fn normalise_and_compare(events: u64) -> f64 {
    let users = events / 14;
    let (a, b) = (synthetic_recording(users), synthetic_recording(users));
    let start = Instant::now();
    let base = crate::structure::Observation::of(&a);
    let hints = base.hints();
    let old = base.render(&hints);
    let new = crate::structure::Observation::of(&b).render(&hints);
    let diffs = crate::structure::diff::compare(&old, &new, &["frontend".to_string()]);
    let elapsed = start.elapsed().as_secs_f64();
    assert!(
        diffs.iter().all(|d| d.same()),
        "the synthetic recordings must have the same structure"
    );
    (2 * users * 7) as f64 / elapsed
}

/// What [`replay_vs_minimal`] measured.
struct ReplayTimes {
    replay_s: f64,
    minimal_client_s: f64,
    minimal_logging_client_s: f64,
}

/// Writes the recording [`replay_vs_minimal`] replays: `texts` both ways on one
/// connection.
fn write_replay_recording(path: &Path, texts: &[String]) -> std::io::Result<()> {
    let mut w = Writer::new(
        std::io::BufWriter::new(std::fs::File::create(path)?),
        &Header::current(0),
    )?;
    w.write(&Record::Open(Open {
        continued: false,
        t_us: 0,
        route: "echo".into(),
        conn: 1,
        client: "bench".into(),
        upstream: "ws://bench".into(),
        request: "GET /bench HTTP/1.1".into(),
        headers: vec![],
        status: 101,
        response_headers: vec![],
    }))?;
    for dir in Dir::BOTH {
        for t in texts {
            w.write(&Record::Message(RecMessage::whole(
                1,
                dir,
                Opcode::TEXT,
                Body::Text(t.clone()),
            )))?;
        }
    }
    w.flush()
}

/// Replays an `n`-message pipelined recording against the echo server, and runs a
/// minimal client with the same messages.
async fn replay_vs_minimal(
    echo: SocketAddr,
    dir: &Path,
    n: u64,
) -> Result<ReplayTimes, BenchError> {
    let path = dir.join("replay.jsonl");
    let texts: Vec<String> = (0..n)
        .map(|i| format!(r#"{{"type":"tick","seq":{i}}}"#))
        .collect();
    write_replay_recording(&path, &texts).map_err(|source| BenchError::Write {
        path: path.clone(),
        source,
    })?;
    let recording = Recording::read(&path)?;
    let start = Instant::now();
    let mut config = crate::replay::ReplayConfig::new(crate::recording::sink::Output::File(
        dir.join("replay-run.jsonl"),
    ));
    config.step_timeout = Duration::from_secs(30);
    let mut replay = crate::replay::Replay::start(recording, config).await?;
    replay.target("echo", &format!("ws://{echo}"))?;
    let report = replay.run().await?;
    let replay_s = start.elapsed().as_secs_f64();
    if !report.problems.is_empty() {
        return Err(BenchError::ReplayProblems(report.render()));
    }

    let minimal_client_s = minimal_client(echo, texts.clone(), None).await?;
    let log = dir.join("minimal-client.jsonl");
    let minimal_logging_client_s = minimal_client(echo, texts, Some(&log)).await?;
    Ok(ReplayTimes {
        replay_s,
        minimal_client_s,
        minimal_logging_client_s,
    })
}

/// One line of the minimal client's log: a message with its time and direction.
#[derive(Serialize)]
struct LoggedMessage<'a> {
    t_us: u64,
    dir: &'static str,
    text: &'a str,
}

/// A log of JSON Lines: buffered, synced to disk when done, as the replay's capture is.
struct MessageLog {
    file: std::io::BufWriter<std::fs::File>,
    start: Instant,
}

impl MessageLog {
    fn create(path: &Path) -> Result<MessageLog, BenchError> {
        let file = std::fs::File::create(path).map_err(|source| BenchError::Write {
            path: path.to_owned(),
            source,
        })?;
        Ok(MessageLog {
            file: std::io::BufWriter::with_capacity(1 << 16, file),
            start: Instant::now(),
        })
    }

    fn write(&mut self, dir: &'static str, text: &str) -> std::io::Result<()> {
        use std::io::Write;
        let t_us = self.start.elapsed().as_micros() as u64;
        serde_json::to_writer(&mut self.file, &LoggedMessage { t_us, dir, text })?;
        self.file.write_all(b"\n")
    }

    fn finish(self) -> std::io::Result<()> {
        let file = self.file.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()
    }
}

/// Sends `texts` to the echo server with a minimal tokio-tungstenite client, pipelined,
/// and waits for every echo: seconds taken. With `log`, every message sent and
/// received is also written there as JSON Lines (one file per direction's task).
async fn minimal_client(
    echo: SocketAddr,
    texts: Vec<String>,
    log: Option<&Path>,
) -> Result<f64, BenchError> {
    let n = texts.len();
    let logs = match log {
        Some(path) => Some((
            MessageLog::create(&path.with_extension("c2s.jsonl"))?,
            MessageLog::create(&path.with_extension("s2c.jsonl"))?,
        )),
        None => None,
    };
    let (mut sent_log, mut received_log) = logs.unzip();
    let log_path = log.map(Path::to_owned).unwrap_or_default();
    let log_err = move |source: std::io::Error| BenchError::Write {
        path: log_path.clone(),
        source,
    };
    let sent_log_err = log_err.clone();
    let start = Instant::now();
    let ws_err = BenchError::connection(echo);
    let (ws, _) = tokio_tungstenite::connect_async(format!("ws://{echo}/bench"))
        .await
        .map_err(&ws_err)?;
    let (mut tx, mut rx) = ws.split();
    let writer = tokio::spawn(async move {
        for t in texts {
            if let Some(log) = &mut sent_log {
                log.write("c2s", &t).map_err(&sent_log_err)?;
            }
            tx.feed(Message::text(t)).await.map_err(&ws_err)?;
        }
        tx.flush().await.map_err(&ws_err)?;
        Ok::<_, BenchError>((tx, sent_log))
    });
    let mut got = 0;
    while got < n {
        match rx.next().await {
            Some(Ok(m)) => {
                if let (Some(log), Message::Text(t)) = (&mut received_log, &m) {
                    log.write("s2c", t).map_err(&log_err)?;
                }
                got += 1;
            }
            _ => break,
        }
    }
    let (mut tx, sent_log) = writer.await??;
    let _ = tx.close().await;
    for log in sent_log.into_iter().chain(received_log) {
        log.finish().map_err(&log_err)?;
    }
    Ok(start.elapsed().as_secs_f64())
}

/// Runs every workload (or the one asked for).
pub async fn run(options: BenchOptions) -> Result<BenchReport, BenchError> {
    let quick = options.quick;
    let wanted = |w: Workload| options.only.is_none_or(|o| o == w);
    let dir = tempfile_dir().map_err(BenchError::start("a temporary directory"))?;
    let echo = echo_server()
        .await
        .map_err(BenchError::start("the echo server"))?;
    let mut report = BenchReport::default();
    // First, before the network workloads leave the allocator fragmented.
    if wanted(Workload::Normalise) {
        report.normalise_events = if quick { 100_000 } else { 700_000 };
        let events = report.normalise_events;
        report.normalise_events_per_s =
            tokio::task::spawn_blocking(move || normalise_and_compare(events)).await?;
    }
    if wanted(Workload::Paths) {
        report.paths = paths(echo, &dir, quick).await?;
    }
    if wanted(Workload::Long) {
        report.long_session_messages = if quick { 100_000 } else { 1_000_000 };
        let long = long_session(echo, &dir, report.long_session_messages).await?;
        report.long_session_proxy_rss_mib = long.proxy_rss_kib / 1024.0;
        report.long_session_recording_verified = long.verified;
    }
    if wanted(Workload::Idle) {
        report.idle_connections = if quick { 1_000 } else { 5_000 };
        report.idle_proxy_rss_per_connection_kib =
            idle_connections(echo, &dir, report.idle_connections).await?;
    }
    if wanted(Workload::Replay) {
        report.replay_messages = if quick { 20_000 } else { 100_000 };
        let times = replay_vs_minimal(echo, &dir, report.replay_messages).await?;
        report.replay_seconds = times.replay_s;
        report.minimal_client_seconds = times.minimal_client_s;
        report.minimal_logging_client_seconds = times.minimal_logging_client_s;
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(report)
}

/// Ping-pong and streaming on the four paths, in alternating rounds; medians.
async fn paths(echo: SocketAddr, dir: &Path, quick: bool) -> Result<Vec<PathFigures>, BenchError> {
    let (rounds, slice) = if quick {
        (1, Duration::from_millis(500))
    } else {
        (3, Duration::from_secs(2))
    };
    let relay = ProxyProcess::start_hop(echo, Hop::Relay).await?;
    let to_file = ProxyProcess::start(echo, Some(&dir.join("paths.jsonl"))).await?;
    let to_nothing = ProxyProcess::start(echo, None).await?;
    let addrs = [echo, relay.addr, to_file.addr, to_nothing.addr];
    let mut pp: Vec<Vec<PingPong>> = vec![Vec::new(); 4];
    let mut st: Vec<Vec<f64>> = vec![Vec::new(); 4];
    for _ in 0..rounds {
        for (i, addr) in addrs.iter().enumerate() {
            pp[i].push(pingpong(*addr, slice).await?);
        }
        for (i, addr) in addrs.iter().enumerate() {
            st[i].push(stream(*addr, slice).await?);
        }
    }
    relay.stop();
    to_file.stop();
    to_nothing.stop();
    let mut out = Vec::new();
    for i in 0..4 {
        let col = |figure: fn(&PingPong) -> f64| -> f64 {
            let mut v: Vec<f64> = pp[i].iter().map(figure).collect();
            median(&mut v)
        };
        out.push(PathFigures {
            path: PATHS[i],
            pingpong_msgs_per_s: col(|p| p.msgs_per_s),
            pingpong_p50_us: col(|p| p.p50_us),
            pingpong_p99_us: col(|p| p.p99_us),
            stream_mb_per_s: median(&mut st[i]),
        });
    }
    Ok(out)
}

fn tempfile_dir() -> std::io::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("wsreplay-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

impl BenchReport {
    /// The human table, with ratios against the blind relay, and the targets.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if self.paths.len() == 4 {
            out += &self.render_paths();
        }
        if self.long_session_messages > 0 {
            out += &format!(
                "  {} messages on one connection: proxy RSS {:.1} MiB at the end (target ≤ 20: {}); recording holds every message both ways with matching checksums: {}\n",
                self.long_session_messages,
                self.long_session_proxy_rss_mib,
                mark(self.long_session_proxy_rss_mib <= 20.0),
                if self.long_session_recording_verified { "yes" } else { "NO" }
            );
        }
        if self.idle_connections > 0 {
            out += &format!(
                "  {} idle connections: proxy RSS {:.1} KiB per connection (target ≤ 64: {})\n",
                self.idle_connections,
                self.idle_proxy_rss_per_connection_kib,
                mark(self.idle_proxy_rss_per_connection_kib <= 64.0)
            );
        }
        if self.normalise_events > 0 {
            out += &format!(
                "  normalise + compare: {:.0} events/s on one core over {} events (target ≥ 500,000: {})\n",
                self.normalise_events_per_s,
                self.normalise_events,
                mark(self.normalise_events_per_s >= 500_000.0)
            );
        }
        if self.replay_messages > 0 {
            let ratio = self.replay_seconds / self.minimal_client_seconds;
            out += &format!(
                "  replay of {} messages: {:.2} s vs minimal tokio-tungstenite client {:.2} s = {ratio:.2}× (target ≤ 1.10: {})\n",
                self.replay_messages,
                self.replay_seconds,
                self.minimal_client_seconds,
                mark(ratio <= 1.10)
            );
            let logging = self.replay_seconds / self.minimal_logging_client_seconds;
            out += &format!(
                "  the same replay vs the minimal client also writing each message it sends and receives to a file as JSON Lines {:.2} s = {logging:.2}× (for comparison: the replay captures every message)\n",
                self.minimal_logging_client_seconds,
            );
        }
        out
    }

    fn render_paths(&self) -> String {
        let relay = &self.paths[1];
        let mut out = String::from(
            "path               ping-pong msg/s   p50 µs   p99 µs   64 KiB stream MB/s   msg/s ÷ relay   MB/s ÷ relay\n",
        );
        for p in &self.paths {
            out += &format!(
                "{:<18} {:>15.0} {:>8.0} {:>8.0} {:>20.1} {:>15.2} {:>14.2}\n",
                p.path,
                p.pingpong_msgs_per_s,
                p.pingpong_p50_us,
                p.pingpong_p99_us,
                p.stream_mb_per_s,
                p.pingpong_msgs_per_s / relay.pingpong_msgs_per_s,
                p.stream_mb_per_s / relay.stream_mb_per_s
            );
        }
        let rec = &self.paths[2];
        let pp = rec.pingpong_msgs_per_s / relay.pingpong_msgs_per_s;
        let st = rec.stream_mb_per_s / relay.stream_mb_per_s;
        out += &format!(
            "\ntargets (record → file vs blind relay, same run):\n  ping-pong {pp:.2}× relay (target ≥ 0.95: {})\n  64 KiB stream {st:.2}× relay (target ≥ 0.90: {})\n",
            mark(pp >= 0.95),
            mark(st >= 0.90)
        );
        out
    }
}

fn mark(ok: bool) -> &'static str {
    if ok {
        "ok"
    } else {
        "MISSED"
    }
}
