//! Load generation both measuring tools share: an echo server that answers in bursts,
//! an order-independent checksum of a message set, reading a recording back to count
//! and checksum its messages, and a raised open-file limit for many connections.

use std::net::SocketAddr;
use std::path::Path;

use futures_util::{FutureExt, SinkExt, StreamExt};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::recording::{Dir, ReadError, Reader, Record};

pub(crate) fn small_config() -> WebSocketConfig {
    WebSocketConfig::default().read_buffer_size(8 * 1024)
}

/// An echo server: answers every data message, writing in bursts (feed, flush when idle).
pub(crate) async fn echo_server() -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            let _ = s.set_nodelay(true);
            tokio::spawn(async move {
                let Ok(mut ws) =
                    tokio_tungstenite::accept_async_with_config(s, Some(small_config())).await
                else {
                    return;
                };
                while let Some(Ok(msg)) = ws.next().await {
                    let mut next = Some(msg);
                    while let Some(msg) = next.take() {
                        if (msg.is_text() || msg.is_binary()) && ws.feed(msg).await.is_err() {
                            return;
                        }
                        if let Some(Some(Ok(more))) = ws.next().now_or_never() {
                            next = Some(more);
                        }
                    }
                    if ws.flush().await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    Ok(addr)
}

/// FNV-1a over a message, summed: an order-independent checksum of a message set.
pub(crate) fn checksum(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

pub(crate) fn raise_fd_limit() {
    // SAFETY: getrlimit/setrlimit with a valid struct; raising the soft limit to the hard one.
    unsafe {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

/// What [`read_back`] found in a recording.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct ReadBack {
    /// Message records per direction: client→server, server→client.
    pub messages: [u64; 2],
    /// The order-independent [`checksum`] of those messages, summed, per direction.
    pub checksums: [u64; 2],
    /// How many warnings the reader had (a torn end, a missing `finish`).
    pub warnings: usize,
    /// Bytes of JSON Lines read (after decompression).
    pub jsonl_bytes: u64,
}

/// Counts and checksums the recording's messages per direction (c2s, s2c), streaming
/// it, and counts the reader's warnings.
pub(crate) fn read_back(path: &Path) -> Result<ReadBack, ReadError> {
    let input = Counted {
        inner: crate::recording::open(path)?,
        bytes: 0,
    };
    let mut reader = Reader::new(path, input)?;
    let mut found = ReadBack::default();
    while let Some(record) = reader.next_record()? {
        if let Record::Message(m) = record {
            let i = usize::from(m.dir == Dir::ServerToClient);
            found.messages[i] += 1;
            found.checksums[i] = found.checksums[i].wrapping_add(checksum(m.body.as_bytes()));
        }
    }
    found.warnings = reader.finish().len() + usize::from(reader.input().inner.truncated());
    found.jsonl_bytes = reader.input().bytes;
    Ok(found)
}

/// A reader that counts the bytes consumed from it.
struct Counted<R> {
    inner: R,
    bytes: u64,
}

impl<R: std::io::BufRead> std::io::Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }
}

impl<R: std::io::BufRead> std::io::BufRead for Counted<R> {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        self.inner.fill_buf()
    }

    fn consume(&mut self, amount: usize) {
        self.bytes += amount as u64;
        self.inner.consume(amount);
    }
}
