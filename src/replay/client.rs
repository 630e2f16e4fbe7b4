//! Playing one recorded client connection against the build under test.
//!
//! The client opens a connection with the recorded path, query and headers (live
//! credentials in place of their placeholders, see [`super::credentials`]), then works
//! through its [`ClientScript`]. Causal pacing (the default): a step (and the opening)
//! waits for the build's counterparts of the server events it depended on when recorded,
//! on this connection and on the replay's others ([`super::causal`]), or for the step
//! timeout, which is reported with what was awaited. With `--speed`, steps are taken at
//! their recorded offsets instead (a close still waits for its events). Everything sent
//! and received is captured. Values the server issues are learned from the messages
//! read and put in place of the recorded ones in what is sent, request included
//! ([`super::live`]). Connecting is bounded: TCP by the connect timeout, then
//! the TLS and WebSocket handshakes together by the handshake timeout, so a target
//! that accepts connections but never answers is reported, not waited on forever.

use std::sync::Arc;
use std::time::Duration;

use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{FutureExt, SinkExt, StreamExt};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use tokio::net::TcpStream;
use tokio::sync::Notify;

use super::progress::ProgressTask;
use tokio::time::{sleep_until, Instant};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Error as WsError;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::WebSocketStream;

use super::capture::{data_of, header_pairs, to_ws, Capture, ConnCapture};
use super::causal::{Board, Milestone, Waited};
use super::credentials::{live_request, Credentials, LiveRequest};
use super::fault::{FaultRule, Injector, Out};
use super::live::{Live, Watcher};
use super::script::{Action, ClientScript, Ending};
use super::{Problem, Problems};
use crate::config::Upstream;
use crate::record::tls::{self, Stream};
use crate::recording::{Body, Dir, EndHow, Opcode, Open, Side};

/// What every replayed client shares.
pub struct ClientCtx {
    pub capture: Capture,
    pub step_timeout: Duration,
    pub connect_timeout: Duration,
    /// Longest wait for the TLS and WebSocket handshakes once TCP is connected.
    pub handshake_timeout: Duration,
    pub speed: Option<f64>,
    pub problems: Problems,
    pub progress: Arc<dyn ProgressTask>,
    pub tls: Option<tokio_rustls::TlsConnector>,
    /// `--fault` rules (those of a target route apply to what its clients send).
    pub faults: Vec<FaultRule>,
    /// Live values for placeholders in the recorded query and headers.
    pub credentials: Credentials,
    /// Values the server issues: learned from the build, sent back in place of the
    /// recorded ones.
    pub live: Arc<Live>,
    /// What each step waits for, and what every connection has received.
    pub causal: Arc<Board>,
}

/// What one replayed connection achieved.
#[derive(Debug, Default, Clone, Copy)]
pub struct Played {
    pub connected: bool,
    pub sent: u64,
    pub received: u64,
}

type Ws = WebSocketStream<Stream>;

/// Connects and plays `script` against `target`.
pub async fn play(script: ClientScript, target: Upstream, ctx: Arc<ClientCtx>) -> Played {
    let live = live_request(&script.target, &script.headers, &ctx.credentials);
    let base = format!(
        "{}://{}",
        if target.tls { "wss" } else { "ws" },
        target.authority(),
    );
    let mut live = live;
    live.target = target.replay_target(&live.target);
    let timeout = ctx.step_timeout;
    (ctx.live
        .request(&mut live.target, &mut live.headers, timeout))
    .await;
    let watcher = ctx.live.watcher(script.conn);
    // Reports name the recorded target (placeholders, never a live value).
    let url = format!("{base}{}", target.replay_target(&script.target));
    let board = &ctx.causal;
    let Some(index) = board.index(&script.route, script.conn) else {
        return Played::default();
    };
    if ctx.speed.is_none() {
        let deadline = Instant::now() + ctx.step_timeout;
        if let Waited::Deadline(m) = board.wait(index, board.before_open(index), deadline).await {
            if board.give_up(m) {
                ctx.problems.push(Problem::StepTimeout {
                    route: script.route.clone(),
                    conn: script.conn,
                    target: script.target.clone(),
                    waited: ctx.step_timeout,
                    waiting_for: format!(
                        "{} before opening the connection (recorded connection {}); it never came",
                        board.describe(m),
                        script.conn
                    ),
                });
            }
        }
    }
    let connected = connect(&script, &target, &base, &live, &ctx).await;
    if connected.is_err() {
        board.ended(index);
    }
    let Connected { ws, capture } = match connected {
        Ok(c) => c,
        Err(ConnectError::HandshakeTimeout { waited, stage }) => {
            ctx.problems.push(Problem::HandshakeTimeout {
                route: script.route.clone(),
                conn: script.conn,
                url,
                waited,
                stage,
            });
            return Played::default();
        }
        Err(error) => {
            ctx.problems.push(Problem::ConnectFailed {
                route: script.route.clone(),
                conn: script.conn,
                url,
                refused: matches!(error, ConnectError::Handshake(WsError::Http(_))),
                error: error.to_string(),
            });
            return Played::default();
        }
    };
    let (tx, rx) = ws.split();
    let inbox = Arc::new(Inbox::default());
    let reader = tokio::spawn(read_loop(
        rx,
        capture.fork(),
        inbox.clone(),
        ctx.progress.clone(),
        watcher.clone(),
        (ctx.causal.clone(), index),
    ));
    let mut player = Player {
        tx,
        capture,
        ctx: &ctx,
        script: &script,
        inbox,
        index,
        sent: 0,
        unflushed: false,
        unreported: 0,
        end: None,
        faults: Injector::new(&ctx.faults, &script.route, Dir::ClientToServer)
            .reading_with(ctx.causal.protocol(index).decoder()),
        disconnected: false,
        watcher,
    };
    player.run().await;
    // The reader ends with the connection; one that never closes is stopped here (it
    // only ever blocks with nothing left to capture). Then the end is recorded, after
    // everything the reader captured.
    let mut reader = reader;
    if player.disconnected {
        // A fault cut the connection: no more reading.
        reader.abort();
        let _ = (&mut reader).await;
    } else if tokio::time::timeout(ctx.step_timeout, &mut reader)
        .await
        .is_err()
    {
        reader.abort();
    }
    let (how, by, error) = player
        .end
        .take()
        .unwrap_or((EndHow::Eof, Side::Client, None));
    player.capture.end(how, by, error);
    ctx.causal.ended(index);
    Played {
        connected: true,
        sent: player.sent,
        received: player.received(),
    }
}

/// What the reader task tells the step runner.
#[derive(Default)]
struct Inbox {
    /// Data messages received.
    received: AtomicU64,
    server_closed: AtomicBool,
    /// Set when the connection is gone (with the error, if any).
    ended: Mutex<Option<Option<String>>>,
    notify: Notify,
}

impl Inbox {
    fn ended(&self) -> Option<Option<String>> {
        self.ended.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// Reads everything the target sends, capturing it (in batches: responses always come
/// after the requests the step runner already handed to the writer).
async fn read_loop(
    mut rx: SplitStream<Ws>,
    mut capture: ConnCapture,
    inbox: Arc<Inbox>,
    progress: Arc<dyn ProgressTask>,
    watcher: Option<Arc<Mutex<Watcher>>>,
    (board, index): (Arc<Board>, usize),
) {
    let mut unreported = 0;
    // Data messages captured but not yet flushed: the board learns of them only once
    // they are written, so a step they release is always captured after them.
    let mut arrived = Vec::new();
    let error = loop {
        let frame = match rx.next().now_or_never() {
            Some(frame) => frame,
            None => {
                capture.flush();
                board.received(index, arrived.drain(..));
                progress.advance(std::mem::take(&mut unreported));
                rx.next().await
            }
        };
        match frame {
            Some(Ok(msg)) => {
                // A data message's body is copied out once: the capture gets a copy,
                // the board the original.
                if let Some((op, body)) = data_of(&msg) {
                    capture.data(Dir::ServerToClient, op, body.clone());
                    offer(&watcher, Dir::ServerToClient, op, &body);
                    inbox.received.fetch_add(1, Ordering::SeqCst);
                    unreported += 1;
                    arrived.push((op, body));
                    continue;
                }
                capture.message(Dir::ServerToClient, &msg);
                if let WsMessage::Close(_) = msg {
                    inbox.server_closed.store(true, Ordering::SeqCst);
                    inbox.notify.notify_one();
                }
            }
            Some(Err(e)) => break Some(e.to_string()),
            None => break None,
        }
    };
    capture.flush();
    board.received(index, arrived.drain(..));
    progress.advance(unreported);
    *inbox.ended.lock().unwrap_or_else(|p| p.into_inner()) = Some(error);
    inbox.notify.notify_one();
    board.ended(index);
}

/// Offers a data message to the connection's live-value learner, if it has one.
fn offer(watcher: &Option<Arc<Mutex<Watcher>>>, dir: Dir, op: Opcode, body: &Body) {
    let Some(watcher) = watcher else { return };
    (watcher.lock().unwrap_or_else(|p| p.into_inner())).offer(dir, op, body);
}

/// Why a recorded connection could not be opened ([`Problem::ConnectFailed`]).
#[derive(Debug, thiserror::Error)]
enum ConnectError {
    /// `url` is the recorded one, with placeholders rather than live values.
    #[error("invalid URL {url}: {source}")]
    Url {
        url: String,
        #[source]
        source: WsError,
    },
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// TCP connected, but the TLS or WebSocket handshake did not finish in time.
    #[error("the {stage} handshake did not finish within {waited:?}")]
    HandshakeTimeout {
        waited: Duration,
        stage: super::Handshake,
    },
    #[error("{0}")]
    Tcp(#[source] std::io::Error),
    #[error("TLS handshake failed: {0}")]
    Tls(#[source] std::io::Error),
    #[error("WebSocket handshake failed: {0}")]
    Handshake(#[source] WsError),
}

/// An open connection and its capture.
struct Connected {
    ws: Ws,
    capture: ConnCapture,
}

/// Opens the connection: `base` (scheme and authority) with the live target.
async fn connect(
    script: &ClientScript,
    target: &Upstream,
    base: &str,
    live: &LiveRequest,
    ctx: &ClientCtx,
) -> Result<Connected, ConnectError> {
    let mut request = format!("{base}{}", live.target)
        .into_client_request()
        .map_err(|source| ConnectError::Url {
            url: format!("{base}{}", target.replay_target(&script.target)),
            source,
        })?;
    for (name, value) in &live.headers {
        if let (Ok(name), Ok(value)) = (
            name.parse::<tokio_tungstenite::tungstenite::http::HeaderName>(),
            HeaderValue::from_str(value),
        ) {
            request.headers_mut().append(name, value);
        }
    }
    let headers = header_pairs(request.headers());
    let tcp = tokio::time::timeout(
        ctx.connect_timeout,
        TcpStream::connect((target.host.as_str(), target.port)),
    )
    .await
    .map_err(|_| ConnectError::Timeout(ctx.connect_timeout))?
    .map_err(ConnectError::Tcp)?;
    let _ = tcp.set_nodelay(true);
    // A target that accepts TCP but never answers must not hang the replay: both
    // handshakes together get `handshake_timeout`.
    let deadline = Instant::now() + ctx.handshake_timeout;
    let timed_out = |stage| ConnectError::HandshakeTimeout {
        waited: ctx.handshake_timeout,
        stage,
    };
    let stream = match &ctx.tls {
        Some(connector) if target.tls => Stream::client(
            tokio::time::timeout_at(deadline, tls::connect(connector, &target.host, tcp))
                .await
                .map_err(|_| timed_out(super::Handshake::Tls))?
                .map_err(ConnectError::Tls)?,
        ),
        _ => Stream::Plain(tcp),
    };
    let (ws, response) =
        tokio::time::timeout_at(deadline, tokio_tungstenite::client_async(request, stream))
            .await
            .map_err(|_| timed_out(super::Handshake::WebSocket))?
            .map_err(ConnectError::Handshake)?;
    // What was sent, live values included: the capture's redactor and scrubber replace
    // them before anything is written.
    let capture = ctx.capture.open(Open {
        continued: false,
        t_us: 0,
        route: script.route.clone(),
        conn: 0,
        client: super::capture::REPLAY_CLIENT.into(),
        upstream: format!("{base}{}", target.replay_target(&script.target)),
        request: format!("GET {} HTTP/1.1", live.target),
        headers,
        status: response.status().as_u16(),
        response_headers: header_pairs(response.headers()),
    });
    Ok(Connected { ws, capture })
}

/// Takes the script's steps; a reader task ([`read_loop`]) receives meanwhile.
struct Player<'a> {
    tx: SplitSink<Ws, WsMessage>,
    capture: ConnCapture,
    ctx: &'a ClientCtx,
    script: &'a ClientScript,
    inbox: Arc<Inbox>,
    /// This connection's number on the [`Board`].
    index: usize,
    sent: u64,
    /// Messages fed but not yet flushed.
    unflushed: bool,
    /// Messages sent but not yet counted on the progress bar.
    unreported: u64,
    /// How the connection ended, recorded once the reader is done.
    end: Option<(EndHow, Side, Option<String>)>,
    faults: Injector,
    /// A `disconnect-after` fault dropped the connection.
    disconnected: bool,
    /// Learns the live values this connection's server messages carry.
    watcher: Option<Arc<Mutex<Watcher>>>,
}

impl Player<'_> {
    async fn run(&mut self) {
        let opened = Instant::now();
        let mut waiting_since = Instant::now();
        let mut step = 0;
        if let Some(Out::Disconnect(why)) = self.faults.disconnect_at_once(&mut self.capture) {
            return self.disconnect(why);
        }
        let ctx = self.ctx;
        while step < self.script.steps.len() {
            let s = &self.script.steps[step];
            // A close always waits for the events recorded before it, or the replay
            // would cut the conversation short under wall-clock pacing.
            let speed = self
                .ctx
                .speed
                .filter(|_| !matches!(s.action, Action::Close(..)));
            let waited = match speed {
                Some(speed) => {
                    let at = Duration::from_secs_f64(s.at_us as f64 / 1e6 / speed);
                    self.wait(opened + at).await.map_or(Ok(None), Err)
                }
                None => {
                    let waits = ctx.causal.before_step(self.index, step);
                    self.wait_for(waits, waiting_since + self.ctx.step_timeout)
                        .await
                }
            };
            match waited {
                Err(error) => return self.report_early_end(step, error),
                Ok(Some(m)) => self.report_wait(m, &format!("before sending `{}`", s.label())),
                Ok(None) => {}
            }
            match self.take(&s.action).await {
                Err(e) => return self.report_early_end(step, Some(e.to_string())),
                Ok(Some(why)) => return self.disconnect(why),
                Ok(None) => {}
            }
            waiting_since = Instant::now();
            step += 1;
        }
        self.finish().await;
    }

    fn end_as(&mut self, how: EndHow, by: Side, error: Option<String>) {
        self.end = Some((how, by, error));
    }

    fn received(&self) -> u64 {
        self.inbox.received.load(Ordering::SeqCst)
    }

    fn server_closed(&self) -> bool {
        self.inbox.server_closed.load(Ordering::SeqCst)
    }

    /// Waits until the connection ends (`Some`, with the error if any) or the deadline
    /// passes (`None`).
    async fn wait(&mut self, deadline: Instant) -> Option<Option<String>> {
        let inbox = self.inbox.clone();
        loop {
            let notified = inbox.notify.notified();
            if let Some(error) = self.inbox.ended() {
                return Some(error);
            }
            if deadline <= Instant::now() {
                return None;
            }
            if let Err(e) = self.flush().await {
                return Some(Some(e.to_string()));
            }
            tokio::select! {
                _ = notified => {}
                _ = sleep_until(deadline) => {}
            }
        }
    }

    /// Waits until the milestones `waits` are reached: `Ok(None)`; or the deadline
    /// passed waiting for `Ok(Some(milestone))`; or the connection ended: `Err` with the
    /// error, if any.
    async fn wait_for(
        &mut self,
        waits: &[Milestone],
        deadline: Instant,
    ) -> Result<Option<Milestone>, Option<String>> {
        if let Some(error) = self.inbox.ended() {
            return Err(error);
        }
        let board = &self.ctx.causal;
        if board.pending(self.index, waits).is_none() {
            return Ok(None);
        }
        // Sent messages are fed back to back and written out only before blocking.
        self.flush().await.map_err(|e| Some(e.to_string()))?;
        match board.wait(self.index, waits, deadline).await {
            Waited::Reached => Ok(None),
            Waited::Deadline(m) => Ok(Some(m)),
            Waited::Ended => Err(self.inbox.ended().flatten()),
        }
    }

    /// Writes out the messages fed since the last flush (one syscall per burst).
    async fn flush(&mut self) -> Result<(), WsError> {
        if self.unflushed {
            self.unflushed = false;
            self.ctx
                .progress
                .advance(std::mem::take(&mut self.unreported));
            self.tx.flush().await?;
        }
        Ok(())
    }

    /// Takes a step; `Ok(Some(why))` when a fault disconnected instead.
    async fn take(&mut self, action: &Action) -> Result<Option<String>, WsError> {
        let msg = match action {
            Action::Send(op, body) => {
                let timeout = self.ctx.step_timeout;
                to_ws(*op, &*self.ctx.live.outgoing(body, timeout).await)
            }
            Action::Ping(data) => WsMessage::Ping(data.clone().into()),
            Action::Close(code, reason) => WsMessage::Close(Some(CloseFrame {
                code: code.map_or(CloseCode::Normal, CloseCode::from),
                reason: reason.clone().into(),
            })),
        };
        if !self.faults.active() {
            self.send(msg).await?;
            return Ok(None);
        }
        for out in self.faults.outgoing(msg, &mut self.capture) {
            match out {
                Out::Send(msg) => self.send(msg).await?,
                Out::Later(delay, msg) => {
                    self.tx.flush().await?;
                    tokio::time::sleep(delay).await;
                    self.send(msg).await?;
                }
                // Released with the next message, or before the connection ends.
                Out::Held(_) => {}
                Out::Disconnect(why) => return Ok(Some(why)),
            }
        }
        Ok(None)
    }

    /// Ends the connection the way a `disconnect-after` fault asks: no close frame.
    fn disconnect(&mut self, why: String) {
        self.capture.flush();
        self.disconnected = true;
        self.end_as(EndHow::Eof, Side::Recorder, Some(why));
    }

    async fn send(&mut self, msg: WsMessage) -> Result<(), WsError> {
        // Handed to the writer at once, so a request always precedes its responses;
        // a data message's body is copied out once, for the capture.
        let counts = match data_of(&msg) {
            Some((op, body)) => {
                offer(&self.watcher, Dir::ClientToServer, op, &body);
                self.ctx.causal.sent(self.index, op, &body);
                self.capture.data(Dir::ClientToServer, op, body);
                true
            }
            None => {
                self.capture.message(Dir::ClientToServer, &msg);
                false
            }
        };
        self.capture.flush();
        self.tx.feed(msg).await?;
        self.unflushed = true;
        if counts {
            self.sent += 1;
            self.unreported += 1;
        }
        Ok(())
    }

    /// After the last step: collect the remaining server messages and close as recorded.
    async fn finish(&mut self) {
        for out in self.faults.release(&mut self.capture) {
            match out {
                Out::Send(held) => {
                    if let Err(e) = self.send(held).await {
                        return self.ended(Some(e.to_string()));
                    }
                }
                Out::Disconnect(why) => return self.disconnect(why),
                Out::Later(..) | Out::Held(_) => {}
            }
        }
        let ctx = self.ctx;
        let waits = ctx.causal.before_end(self.index);
        let mut deadline = Instant::now() + self.ctx.step_timeout;
        let mut seen = self.received();
        loop {
            match self.wait_for(waits, deadline).await {
                Ok(None) => break,
                Err(error) => {
                    self.missing_at_end(waits);
                    return self.ended(error);
                }
                // Messages still arriving: the step timeout counts from the last check
                // that saw one (so silence is cut off after one to two timeouts).
                Ok(Some(_)) if self.received() > seen => {
                    seen = self.received();
                    deadline = Instant::now() + self.ctx.step_timeout;
                }
                Ok(Some(m)) => {
                    self.report_wait(m, "after the last client message");
                    break;
                }
            }
        }
        if self.script.ending == Ending::Dropped {
            let _ = self.tx.close().await;
        }
        let deadline = Instant::now() + self.ctx.step_timeout;
        if let Some(error) = self.wait(deadline).await {
            return self.ended(error);
        }
        if self.script.ending == Ending::ServerClosed && !self.server_closed() {
            self.timed_out("for the server to close the connection, as recorded".into());
        }
        let _ = self.tx.close().await;
        self.end_as(EndHow::Eof, Side::Client, None)
    }

    fn ended(&mut self, error: Option<String>) {
        let how = match (&error, self.server_closed()) {
            (Some(_), _) => EndHow::Reset,
            (None, true) => EndHow::Closed,
            (None, false) => EndHow::Eof,
        };
        let by = match self.script.ending {
            Ending::ClientClosed | Ending::Dropped => Side::Client,
            Ending::ServerClosed => Side::Upstream,
        };
        self.end_as(how, by, error);
    }

    fn timed_out(&self, waiting_for: String) {
        self.ctx.problems.push(Problem::StepTimeout {
            route: self.script.route.clone(),
            conn: self.capture.conn,
            target: self.script.target.clone(),
            waited: self.ctx.step_timeout,
            waiting_for,
        });
    }

    /// A wait that timed out, reported by the first waiter that gave up on it.
    fn report_wait(&self, m: Milestone, context: &str) {
        let board = &self.ctx.causal;
        if !board.give_up(m) {
            return;
        }
        if board.is_on(m, self.index) {
            self.timed_out(self.awaited(board.server_index(m), context));
        } else {
            self.timed_out(format!("{} {context}; it never came", board.describe(m)));
        }
    }

    /// The connection ended with recorded final events still to come.
    fn missing_at_end(&self, waits: &[Milestone]) {
        let board = &self.ctx.causal;
        if let Some(m) = board.pending(self.index, waits) {
            let next = board.server_index(m);
            self.ctx.problems.push(Problem::ClosedEarly {
                route: self.script.route.clone(),
                conn: self.capture.conn,
                target: self.script.target.clone(),
                detail: format!(
                    "the connection ended after {} of {} recorded server messages; server message {} never came: {}",
                    self.received(),
                    self.script.server.len(),
                    next + 1,
                    self.script.server_label(next)
                ),
            });
        }
    }

    fn report_early_end(&mut self, step: usize, error: Option<String>) {
        let unsent = &self.script.steps[step..];
        self.ctx.problems.push(Problem::ClosedEarly {
            route: self.script.route.clone(),
            conn: self.capture.conn,
            target: self.script.target.clone(),
            detail: format!(
                "the target ended the connection{} with {} client message(s) unsent (next: `{}`), after {} server message(s)",
                error.as_deref().map(|e| format!(" ({e})")).unwrap_or_default(),
                unsent.len(),
                unsent[0].label(),
                self.received()
            ),
        });
        self.end_as(
            if error.is_some() {
                EndHow::Reset
            } else {
                EndHow::Eof
            },
            Side::Upstream,
            error,
        );
    }

    /// "server message 5 (recorded: agent_started) before sending `chat`; 4 of 33 arrived".
    fn awaited(&self, next: usize, context: &str) -> String {
        let label = self.script.server_label(next);
        format!(
            "server message {} (recorded: {label}) {context}; {} of {} recorded server messages arrived",
            next + 1,
            self.received(),
            self.script.server.len()
        )
    }
}
