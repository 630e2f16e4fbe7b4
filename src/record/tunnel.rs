//! The byte tunnel: copies an upgraded connection both ways, unchanged.
//!
//! Both directions run in one task, polled side by side like
//! `tokio::io::copy_bidirectional`, so there is no lock and no extra task per
//! connection. Each chunk is written to the other side first and only then given to
//! that direction's [`Tap`], so recording never delays a frame. Half-closes are passed
//! on (EOF on one side becomes a write shutdown on the other). After one side has
//! ended, the other gets [`CLOSE_GRACE`] to follow if a close handshake was under way,
//! [`EOF_GRACE`] if the side simply vanished; then both sockets are dropped.

use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::watch;

use crate::record::tap::Tap;
use crate::recording::sink::SinkHandle;
use crate::recording::{EndHow, Side};

/// Read buffer per direction.
pub const BUF_SIZE: usize = 16 * 1024;
/// How long the other side may take to finish after a close handshake started.
pub const CLOSE_GRACE: Duration = Duration::from_secs(5);
/// How long the other side may take to finish after a side vanished without a close.
pub const EOF_GRACE: Duration = Duration::from_secs(1);

/// How a tunnelled connection ended.
#[derive(Debug)]
pub struct TunnelEnd {
    pub how: EndHow,
    pub by: Side,
    pub error: Option<String>,
}

enum HalfError {
    Read(io::Error),
    Write(io::Error),
}

/// One direction's state.
struct Half {
    buf: Box<[u8]>,
    start: usize,
    end: usize,
    eof: bool,
    done: bool,
}

impl Half {
    fn new() -> Self {
        Half {
            buf: vec![0; BUF_SIZE].into_boxed_slice(),
            start: 0,
            end: 0,
            eof: false,
            done: false,
        }
    }

    /// Moves bytes from `src` to `dst` until `src` ends (Ready(Ok)) or fails.
    fn poll_copy<R, W>(
        &mut self,
        cx: &mut Context<'_>,
        src: &mut R,
        dst: &mut W,
        tap: &mut Tap,
        sink: &SinkHandle,
    ) -> Poll<Result<(), HalfError>>
    where
        R: AsyncRead + Unpin,
        W: AsyncWrite + Unpin,
    {
        loop {
            if self.end > 0 {
                while self.start < self.end {
                    let n =
                        ready!(Pin::new(&mut *dst).poll_write(cx, &self.buf[self.start..self.end]))
                            .map_err(HalfError::Write)?;
                    if n == 0 {
                        return Poll::Ready(Err(HalfError::Write(io::ErrorKind::WriteZero.into())));
                    }
                    self.start += n;
                }
                ready!(Pin::new(&mut *dst).poll_flush(cx)).map_err(HalfError::Write)?;
                tap.feed(&self.buf[..self.end], sink);
                self.start = 0;
                self.end = 0;
            }
            if self.eof {
                // The peer may already be gone; its own read side reports that.
                let _ = ready!(Pin::new(&mut *dst).poll_shutdown(cx));
                return Poll::Ready(Ok(()));
            }
            ready!(sink.poll_ready(cx));
            let mut rb = ReadBuf::new(&mut self.buf);
            ready!(Pin::new(&mut *src).poll_read(cx, &mut rb)).map_err(HalfError::Read)?;
            match rb.filled().len() {
                0 => self.eof = true,
                n => self.end = n,
            }
        }
    }
}

enum Step {
    Failed(Side, io::Error),
    Ended(Side),
    BothEnded(Option<Side>),
}

/// Tunnels until both sides end, one fails, the grace period runs out, or shutdown.
pub async fn run<C, U>(
    client: &mut C,
    upstream: &mut U,
    c2s: &mut Tap,
    s2c: &mut Tap,
    sink: &SinkHandle,
    shutdown: &mut watch::Receiver<bool>,
) -> TunnelEnd
where
    C: AsyncRead + AsyncWrite + Unpin,
    U: AsyncRead + AsyncWrite + Unpin,
{
    let mut up = Half::new();
    let mut down = Half::new();
    let mut first_end: Option<Side> = None;
    let mut grace: Option<Pin<Box<tokio::time::Sleep>>> = None;
    loop {
        if *shutdown.borrow() {
            return end(EndHow::Stopped, Side::Recorder, None);
        }
        let step = tokio::select! {
            step = poll_fn(|cx| poll_both(cx, client, upstream, &mut up, &mut down, c2s, s2c, sink)) => step,
            _ = async { grace.as_mut().expect("guarded").await }, if grace.is_some() => {
                let by = first_end.unwrap_or(Side::Upstream);
                let how = closed_or_eof(c2s, s2c);
                let wait = grace_for(by, c2s, s2c);
                return end(how, by, Some(format!(
                    "the other side did not finish within {wait:?} after the {} ended",
                    by.as_str()
                )));
            }
            changed = shutdown.changed() => {
                if changed.is_err() {
                    return end(EndHow::Stopped, Side::Recorder, None);
                }
                continue;
            }
        };
        match step {
            Step::Failed(by, e) => return end(EndHow::Reset, by, Some(e.to_string())),
            Step::BothEnded(last) => {
                let by = match (c2s.close_at(), s2c.close_at()) {
                    (Some(c), Some(s)) if c <= s => Side::Client,
                    (Some(_), Some(_)) => Side::Upstream,
                    _ => first_end.or(last).unwrap_or(Side::Client),
                };
                return end(closed_or_eof(c2s, s2c), by, None);
            }
            Step::Ended(side) => {
                first_end = Some(side);
                grace = Some(Box::pin(tokio::time::sleep(grace_for(side, c2s, s2c))));
            }
        }
    }
}

fn end(how: EndHow, by: Side, error: Option<String>) -> TunnelEnd {
    TunnelEnd { how, by, error }
}

fn closed_or_eof(c2s: &Tap, s2c: &Tap) -> EndHow {
    if c2s.close_seen() && s2c.close_seen() {
        EndHow::Closed
    } else {
        EndHow::Eof
    }
}

fn grace_for(side: Side, c2s: &Tap, s2c: &Tap) -> Duration {
    let closing = match side {
        Side::Client => c2s.close_seen(),
        _ => s2c.close_seen(),
    };
    if closing {
        CLOSE_GRACE
    } else {
        EOF_GRACE
    }
}

#[allow(clippy::too_many_arguments)]
fn poll_both<C, U>(
    cx: &mut Context<'_>,
    client: &mut C,
    upstream: &mut U,
    up: &mut Half,
    down: &mut Half,
    c2s: &mut Tap,
    s2c: &mut Tap,
    sink: &SinkHandle,
) -> Poll<Step>
where
    C: AsyncRead + AsyncWrite + Unpin,
    U: AsyncRead + AsyncWrite + Unpin,
{
    let mut newly_ended = None;
    if !up.done {
        match up.poll_copy(cx, client, upstream, c2s, sink) {
            Poll::Ready(Ok(())) => {
                up.done = true;
                newly_ended = Some(Side::Client);
            }
            Poll::Ready(Err(HalfError::Read(e))) => {
                return Poll::Ready(Step::Failed(Side::Client, e))
            }
            Poll::Ready(Err(HalfError::Write(e))) => {
                return Poll::Ready(Step::Failed(Side::Upstream, e))
            }
            Poll::Pending => {}
        }
    }
    if !down.done {
        match down.poll_copy(cx, upstream, client, s2c, sink) {
            Poll::Ready(Ok(())) => {
                down.done = true;
                newly_ended = newly_ended.or(Some(Side::Upstream));
            }
            Poll::Ready(Err(HalfError::Read(e))) => {
                return Poll::Ready(Step::Failed(Side::Upstream, e))
            }
            Poll::Ready(Err(HalfError::Write(e))) => {
                return Poll::Ready(Step::Failed(Side::Client, e))
            }
            Poll::Pending => {}
        }
    }
    if up.done && down.done {
        Poll::Ready(Step::BothEnded(newly_ended))
    } else if let Some(side) = newly_ended {
        Poll::Ready(Step::Ended(side))
    } else {
        Poll::Pending
    }
}
