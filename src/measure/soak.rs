//! `wsreplay soak`: many concurrent connections through the recording proxy, with
//! nothing lost or altered.
//!
//! Every connection sends its own messages to an echo server through an in-process
//! recorder and checks each echo byte for byte, in order. Then the recording is read
//! back (streaming) and must hold exactly the messages sent, both ways: the same count
//! and the same order-independent checksum per direction.

use std::net::SocketAddr;
use std::path::Path;

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

use super::load::{checksum, echo_server, raise_fd_limit, read_back, ReadBack};
use crate::config::{Route, RouteError};
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
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct SoakReport {
    pub connections: u64,
    pub messages_per_connection: u64,
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
}

impl SoakReport {
    /// Nothing lost, nothing altered.
    pub fn passed(&self) -> bool {
        self.echoed_intact == self.sent
            && self.recorded == [self.sent, self.sent]
            && self.checksums_match
            && self.recording_warnings == 0
    }

    pub fn render(&self) -> String {
        format!(
            "{} connections × {} messages: {} sent, {} echoed intact; recording holds {} c2s + {} s2c messages, checksums {}; {}\n",
            self.connections,
            self.messages_per_connection,
            self.sent,
            self.echoed_intact,
            self.recorded[0],
            self.recorded[1],
            if self.checksums_match { "match" } else { "DIFFER" },
            if self.passed() { "PASS: 0 lost or altered" } else { "FAIL" }
        )
    }
}

/// Runs `connections` × `messages` through a recorder writing to `out` (compressed
/// when it ends in `.zst`; in files named after it, each read back on its own, when
/// `rotate` is given).
pub async fn run(
    connections: u64,
    messages: u64,
    out: &Path,
    rotate: Option<Rotate>,
) -> Result<SoakReport, SoakError> {
    raise_fd_limit();
    let echo = echo_server().await.map_err(SoakError::Echo)?;
    let route = Route::new("soak", "127.0.0.1:0", &format!("ws://{echo}"))?;
    let mut config = ProxyConfig::new(vec![route], Output::File(out.to_owned()));
    config.rotate = rotate;
    let proxy = Proxy::start(config).await?;
    let addr = proxy.addr("soak").expect("the route exists");
    let mut tasks = tokio::task::JoinSet::new();
    for c in 0..connections {
        tasks.spawn(connection(addr, c, messages));
    }
    let (mut intact, mut sum) = (0u64, 0u64);
    while let Some(done) = tasks.join_next().await {
        let echoed = done??;
        intact += echoed.intact;
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
            Ok::<_, ReadError>(sum)
        })
    })
    .await??;
    Ok(SoakReport {
        files: outcome.files.len(),
        connections,
        messages_per_connection: messages,
        sent: connections * messages,
        echoed_intact: intact,
        recorded: found.messages,
        checksums_match: found.checksums == [sum, sum],
        recording_warnings: found.warnings,
    })
}

/// What one soak connection sent and got back.
struct Echoed {
    /// Echoes that arrived byte-identical and in order.
    intact: u64,
    /// The summed [`checksum`] of the messages sent.
    checksum: u64,
}

/// One connection: send each message, check its echo.
async fn connection(addr: SocketAddr, c: u64, messages: u64) -> Result<Echoed, SoakError> {
    let err = |source| SoakError::Connection { conn: c, source };
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/soak/{c}"))
        .await
        .map_err(err)?;
    let (mut intact, mut sum) = (0, 0u64);
    for i in 0..messages {
        let text = format!(
            r#"{{"type":"soak","conn":{c},"seq":{i},"pad":"{}"}}"#,
            "é".repeat((i % 7) as usize)
        );
        sum = sum.wrapping_add(checksum(text.as_bytes()));
        ws.send(Message::text(text.clone())).await.map_err(err)?;
        match ws.next().await {
            Some(Ok(Message::Text(echo))) if echo.as_str() == text => intact += 1,
            _ => break,
        }
    }
    ws.close(None).await.map_err(err)?;
    while ws.next().await.is_some() {}
    Ok(Echoed {
        intact,
        checksum: sum,
    })
}
