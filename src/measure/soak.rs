//! `wsreplay soak`: many concurrent connections through the recording proxy, with
//! nothing lost or altered.
//!
//! Every connection sends the example system's traffic (agent events as the demo
//! backend sends them: fresh run and message ids per chat, the current time, nested
//! payloads) to an echo server through an in-process recorder, for a number of
//! messages or for a duration, and checks each echo byte for byte, in order. Then every
//! recording file is read back on its own (streaming) and together they must hold
//! exactly the messages sent, both ways: the same count and the same order-independent
//! checksum per direction. The report also gives the disk size of the files against
//! the JSON Lines they hold (the compression ratio of `--compress`).

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

use super::load::{checksum, echo_server, raise_fd_limit, read_back, ReadBack};
use crate::config::{Route, RouteError};
use crate::demo::protocol::{agent_event, fields, hex_id, uuid4, EventContext};
use crate::record::proxy::{Proxy, ProxyConfig, ProxyError};
use crate::recording::rotate::Rotate;
use crate::recording::sink::Output;
use crate::recording::ReadError;

/// Why a soak run could not finish (a run that finished but lost or altered messages
/// is a [`SoakReport`] that did not pass).
#[derive(Debug, thiserror::Error)]
pub enum SoakError {
    #[error("cannot start the echo server: {0}")]
    Echo(#[source] std::io::Error),
    #[error(transparent)]
    Route(#[from] RouteError),
    #[error(transparent)]
    Proxy(#[from] ProxyError),
    #[error("soak connection {conn}: {source}")]
    Connection {
        conn: u64,
        #[source]
        source: tokio_tungstenite::tungstenite::Error,
    },
    #[error("a soak task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
    #[error("the soak recording is incomplete: {0:?}")]
    Incomplete(Option<String>),
    #[error(transparent)]
    ReadBack(#[from] ReadError),
}

/// What a soak run found.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct SoakReport {
    pub connections: u64,
    /// Messages sent (and expected back), all connections.
    pub sent: u64,
    /// Echoes that arrived byte-identical and in order.
    pub echoed_intact: u64,
    /// Message records in the recording, client→server and server→client.
    pub recorded: [u64; 2],
    /// Whether each direction's checksum in the recording equals what was sent.
    pub checksums_match: bool,
    pub recording_warnings: usize,
    /// The recording files written (more than one when the recording rotated).
    pub files: usize,
    /// Their size on disk, and the size of the JSON Lines they hold.
    pub disk_bytes: u64,
    pub jsonl_bytes: u64,
    /// The least compression ratio (JSON Lines bytes per disk byte) that passes.
    pub min_ratio: Option<f64>,
}

impl SoakReport {
    /// Nothing lost, nothing altered.
    pub fn passed(&self) -> bool {
        self.failures().is_empty()
    }

    /// How many times smaller the files are than the JSON Lines they hold.
    pub fn ratio(&self) -> f64 {
        self.jsonl_bytes as f64 / self.disk_bytes.max(1) as f64
    }

    pub fn render(&self) -> String {
        let ratio = match self.min_ratio {
            Some(min) => format!(" (at least {min:.1}× asked)"),
            None => String::new(),
        };
        format!(
            "{} connections: {} sent, {} echoed intact; recording holds {} c2s + {} s2c messages, checksums {}, {} warning(s)\n{} file(s), each read on its own: {} bytes on disk for {} bytes of JSON Lines, {:.1}× smaller{ratio}\n{}\n",
            self.connections,
            self.sent,
            self.echoed_intact,
            self.recorded[0],
            self.recorded[1],
            if self.checksums_match { "match" } else { "DIFFER" },
            self.recording_warnings,
            self.files,
            self.disk_bytes,
            self.jsonl_bytes,
            self.ratio(),
            self.verdict()
        )
    }

    /// What went wrong, if anything.
    fn failures(&self) -> Vec<&'static str> {
        let mut failed = Vec::new();
        if self.echoed_intact != self.sent {
            failed.push("echoes lost or altered");
        }
        if self.recorded != [self.sent, self.sent] || !self.checksums_match {
            failed.push("the recording does not hold exactly what was sent and received");
        }
        if self.recording_warnings > 0 {
            failed.push("a file did not read cleanly on its own");
        }
        if self.min_ratio.is_some_and(|min| self.ratio() < min) {
            failed.push("the files are not compressed enough");
        }
        failed
    }

    /// `PASS: ...`, or `FAIL: ` and what failed.
    fn verdict(&self) -> String {
        let failed = self.failures();
        if failed.is_empty() {
            "PASS: 0 lost or altered".into()
        } else {
            format!("FAIL: {}", failed.join("; "))
        }
    }
}

/// How much traffic a soak sends.
#[derive(Clone, Debug, PartialEq)]
pub struct Load {
    /// Concurrent connections.
    pub connections: u64,
    /// Messages each connection sends, when there is no `duration`.
    pub messages: u64,
    /// Send until this much time has passed instead.
    pub duration: Option<Duration>,
    /// Messages per second per connection (as fast as the echoes come back when `None`).
    pub rate: Option<f64>,
    /// Fail when the files are not this many times smaller than their JSON Lines.
    pub min_ratio: Option<f64>,
}

impl Load {
    /// `connections` × `messages`, as fast as they go.
    pub fn count(connections: u64, messages: u64) -> Load {
        Load {
            connections,
            messages,
            duration: None,
            rate: None,
            min_ratio: None,
        }
    }
}

/// Runs `load` through a recorder writing to `out` (compressed when it ends in `.zst`;
/// in files named after it, each read back on its own, when `rotate` is given).
pub async fn run(load: &Load, out: &Path, rotate: Option<Rotate>) -> Result<SoakReport, SoakError> {
    let connections = load.connections;
    raise_fd_limit();
    let echo = echo_server().await.map_err(SoakError::Echo)?;
    let route = Route::new("soak", "127.0.0.1:0", &format!("ws://{echo}"))?;
    let mut config = ProxyConfig::new(vec![route], Output::File(out.to_owned()));
    config.rotate = rotate;
    let proxy = Proxy::start(config).await?;
    let addr = proxy.addr("soak").expect("the route exists");
    let mut tasks = tokio::task::JoinSet::new();
    let deadline = load.duration.map(|d| tokio::time::Instant::now() + d);
    for c in 0..connections {
        tasks.spawn(connection(addr, c, load.clone(), deadline));
    }
    let (mut intact, mut sum, mut sent) = (0u64, 0u64, 0u64);
    while let Some(done) = tasks.join_next().await {
        let echoed = done??;
        intact += echoed.intact;
        sent += echoed.sent;
        sum = sum.wrapping_add(echoed.checksum);
    }
    let outcome = proxy.stop().await;
    if !outcome.complete() {
        return Err(SoakError::Incomplete(outcome.error));
    }
    let files = outcome.files.clone();
    let found = tokio::task::spawn_blocking(move || {
        files.iter().try_fold(ReadBack::default(), |mut sum, file| {
            let one = read_back(file)?;
            for i in 0..2 {
                sum.messages[i] += one.messages[i];
                sum.checksums[i] = sum.checksums[i].wrapping_add(one.checksums[i]);
            }
            sum.warnings += one.warnings;
            sum.jsonl_bytes += one.jsonl_bytes;
            Ok::<_, ReadError>(sum)
        })
    })
    .await??;
    let disk_bytes = outcome
        .files
        .iter()
        .map(|f| std::fs::metadata(f).map_or(0, |m| m.len()))
        .sum();
    Ok(SoakReport {
        files: outcome.files.len(),
        disk_bytes,
        jsonl_bytes: found.jsonl_bytes,
        min_ratio: load.min_ratio,
        connections,
        sent,
        echoed_intact: intact,
        recorded: found.messages,
        checksums_match: found.checksums == [sum, sum],
        recording_warnings: found.warnings,
    })
}

/// What one soak connection sent and got back.
struct Echoed {
    sent: u64,
    /// Echoes that arrived byte-identical and in order.
    intact: u64,
    /// The summed [`checksum`] of the messages sent.
    checksum: u64,
}

/// One connection: send each message, check its echo.
async fn connection(
    addr: SocketAddr,
    c: u64,
    load: Load,
    deadline: Option<tokio::time::Instant>,
) -> Result<Echoed, SoakError> {
    let err = |source| SoakError::Connection { conn: c, source };
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/soak/{c}"))
        .await
        .map_err(err)?;
    let mut pace = load
        .rate
        .map(|r| tokio::time::interval(Duration::from_secs_f64(1.0 / r.max(1e-3))));
    let mut chat = new_chat(c);
    let (mut sent, mut intact, mut sum) = (0, 0, 0u64);
    loop {
        let more = match deadline {
            Some(at) => tokio::time::Instant::now() < at,
            None => sent < load.messages,
        };
        if !more {
            break;
        }
        if let Some(pace) = &mut pace {
            pace.tick().await;
        }
        let text = example_message(c, sent, &mut chat);
        sum = sum.wrapping_add(checksum(text.as_bytes()));
        sent += 1;
        ws.send(Message::text(text.clone())).await.map_err(err)?;
        match ws.next().await {
            Some(Ok(Message::Text(echo))) if echo.as_str() == text => intact += 1,
            _ => break,
        }
    }
    ws.close(None).await.map_err(err)?;
    while ws.next().await.is_some() {}
    Ok(Echoed {
        sent,
        intact,
        checksum: sum,
    })
}

/// The ids of one chat of soak connection `c`.
fn new_chat(c: u64) -> EventContext {
    EventContext {
        run_id: format!("run_{}", uuid4()),
        thread_id: format!("thread_{}", hex_id(4)).into(),
        user_id: format!("user{c}"),
        message_id: format!("msg_{}", hex_id(12)).into(),
        correlation_id: format!("corr_{}", hex_id(12)),
    }
}

/// Message `i` of soak connection `c`: the events of a demo chat in turn, a new chat
/// (new ids) every six.
fn example_message(c: u64, i: u64, chat: &mut EventContext) -> String {
    let step = i % 6;
    if step == 0 && i > 0 {
        *chat = new_chat(c);
    }
    let text = crate::demo::frontend::CHATS[(i / 6 % 4) as usize];
    let rows = serde_json::json!([
        {"service": "EC2", "cost_usd": 1000.0 + (i % 997) as f64 / 7.0, "usage_hours": i % 720},
        {"service": "S3", "cost_usd": 20.0 + (c % 89) as f64 / 3.0, "usage_hours": c % 720},
    ]);
    let (kind, agent, extra) = match step {
        0 => (
            "agent_started",
            "supervisor",
            fields([
                ("status", "started".into()),
                ("input", serde_json::json!({"text": text})),
            ]),
        ),
        1 => (
            "agent_thinking",
            "supervisor",
            fields([
                ("step", 1.into()),
                (
                    "thought",
                    format!("User intent is cost_analysis; planning tools for «{text}»").into(),
                ),
            ]),
        ),
        2 => (
            "progress_update",
            "supervisor",
            fields([
                ("progress", 0.5.into()),
                ("message", "Preparing analysis step 1/2".into()),
            ]),
        ),
        3 => (
            "tool_executing",
            "data_helper",
            fields([
                ("tool_name", "aws_cost_analyzer".into()),
                (
                    "parameters",
                    serde_json::json!({"intent": "cost_analysis", "services": ["EC2", "S3"]}),
                ),
            ]),
        ),
        4 => (
            "tool_completed",
            "data_helper",
            fields([
                ("tool_name", "aws_cost_analyzer".into()),
                ("status", "success".into()),
                ("result", serde_json::json!({"row_count": 2, "rows": rows})),
            ]),
        ),
        _ => (
            "agent_completed",
            "supervisor",
            fields([
                ("status", "completed".into()),
                (
                    "result",
                    serde_json::json!({"answer": format!("Total cost for {text}: {rows}"), "chart_id": format!("chart_{}", hex_id(8))}),
                ),
            ]),
        ),
    };
    agent_event(kind, chat, agent, &extra, false)
}
