//! Playing one recorded client connection against the build under test.
//!
//! The client opens a connection with the recorded path, query and headers, then works
//! through its [`ClientScript`]. Causal pacing (the default): a step that was recorded
//! after N server messages is taken once the build has sent N messages on this
//! connection, or after the step timeout, which is reported with what was awaited.
//! With `--speed`, steps are taken at their recorded offsets instead. Everything sent
//! and received is captured.

use std::sync::Arc;
use std::time::Duration;

use futures_util::{FutureExt, SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::time::{sleep_until, Instant};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::WebSocketStream;

use super::capture::{header_pairs, to_ws, Capture, ConnCapture};
use super::script::{Action, ClientScript, Ending};
use super::{Problem, Problems};
use crate::config::Upstream;
use crate::format::{Dir, EndHow, Open, Side};
use crate::tls::{self, UpstreamStream};

/// What every replayed client shares.
pub struct ClientCtx {
    pub capture: Capture,
    pub step_timeout: Duration,
    pub connect_timeout: Duration,
    pub speed: Option<f64>,
    pub problems: Problems,
    pub progress: indicatif::ProgressBar,
    pub tls: Option<tokio_rustls::TlsConnector>,
}

/// What one replayed connection achieved.
#[derive(Debug, Default, Clone, Copy)]
pub struct Played {
    pub connected: bool,
    pub sent: u64,
    pub received: u64,
}

type Ws = WebSocketStream<UpstreamStream>;

/// Connects and plays `script` against `target`.
pub async fn play(script: ClientScript, target: Upstream, ctx: Arc<ClientCtx>) -> Played {
    let url = format!(
        "{}://{}{}{}",
        if target.tls { "wss" } else { "ws" },
        target.authority(),
        target.path,
        script.target
    );
    let (ws, capture) = match connect(&script, &target, &url, &ctx).await {
        Ok(c) => c,
        Err(error) => {
            ctx.problems.push(Problem::ConnectFailed {
                route: script.route.clone(),
                conn: script.conn,
                url,
                error,
            });
            return Played::default();
        }
    };
    let mut player = Player {
        ws,
        capture,
        ctx: &ctx,
        script: &script,
        received: 0,
        sent: 0,
        server_closed: false,
        unflushed: false,
        since_look: 0,
    };
    player.run().await;
    Played {
        connected: true,
        sent: player.sent,
        received: player.received,
    }
}

async fn connect(
    script: &ClientScript,
    target: &Upstream,
    url: &str,
    ctx: &ClientCtx,
) -> Result<(Ws, ConnCapture), String> {
    let mut request = url
        .into_client_request()
        .map_err(|e| format!("invalid URL {url}: {e}"))?;
    for (name, value) in &script.headers {
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
    .map_err(|_| format!("no answer within {:?}", ctx.connect_timeout))?
    .map_err(|e| e.to_string())?;
    let _ = tcp.set_nodelay(true);
    let stream = match &ctx.tls {
        Some(connector) if target.tls => UpstreamStream::Tls(Box::new(
            tls::connect(connector, &target.host, tcp)
                .await
                .map_err(|e| format!("TLS handshake failed: {e}"))?,
        )),
        _ => UpstreamStream::Plain(tcp),
    };
    let (ws, response) = tokio_tungstenite::client_async(request, stream)
        .await
        .map_err(|e| format!("WebSocket handshake failed: {e}"))?;
    let capture = ctx.capture.open(Open {
        t_us: 0,
        route: script.route.clone(),
        conn: 0,
        client: "wsreplay replay".into(),
        upstream: url.to_string(),
        request: format!("GET {}{} HTTP/1.1", target.path, script.target),
        headers,
        status: response.status().as_u16(),
        response_headers: header_pairs(response.headers()),
    });
    Ok((ws, capture))
}

struct Player<'a> {
    ws: Ws,
    capture: ConnCapture,
    ctx: &'a ClientCtx,
    script: &'a ClientScript,
    received: u64,
    sent: u64,
    server_closed: bool,
    /// Messages fed but not yet flushed.
    unflushed: bool,
    /// Due steps taken since the socket was last looked at.
    since_look: u32,
}

enum Wait {
    /// A server message (or control frame) arrived.
    Progress,
    /// The connection is gone.
    Ended(Option<String>),
    /// The deadline passed.
    Deadline,
}

impl Player<'_> {
    async fn run(&mut self) {
        let opened = Instant::now();
        let mut waiting_since = Instant::now();
        let mut step = 0;
        while step < self.script.steps.len() {
            let s = &self.script.steps[step];
            // A close always waits for the server messages recorded before it, or the
            // replay would cut the conversation short under wall-clock pacing.
            let speed = self
                .ctx
                .speed
                .filter(|_| !matches!(s.action, Action::Close(..)));
            let deadline = match speed {
                Some(speed) => opened + Duration::from_secs_f64(s.at_us as f64 / 1e6 / speed),
                None if self.received as usize >= s.after_server => Instant::now(),
                None => waiting_since + self.ctx.step_timeout,
            };
            match self.wait(deadline).await {
                Wait::Progress => continue,
                Wait::Ended(error) => {
                    self.report_early_end(step, error);
                    return;
                }
                Wait::Deadline => {}
            }
            if speed.is_none() && (self.received as usize) < s.after_server {
                self.timed_out(self.awaited(&format!("before sending `{}`", s.label())));
            }
            if let Err(e) = self.take(&s.action).await {
                self.report_early_end(step, Some(e));
                return;
            }
            waiting_since = Instant::now();
            step += 1;
        }
        self.finish().await;
    }

    /// Waits for the next server message or the deadline, capturing what arrives.
    ///
    /// What already arrived is taken first, without blocking, so a burst of ready steps
    /// never stops reading (a server that cannot write would stop reading too). Sent
    /// messages are fed back to back and written out, with the capture, only before
    /// actually blocking: one syscall and one hand-over to the writer per burst.
    async fn wait(&mut self, deadline: Instant) -> Wait {
        let due = deadline <= Instant::now();
        // While steps are due, look at the socket every 32nd step only: each look can
        // cost a read syscall.
        if !due || self.since_look >= 32 {
            self.since_look = 0;
            if let Some(frame) = self.ws.next().now_or_never() {
                return self.arrived(frame);
            }
        }
        if due {
            self.since_look += 1;
            return Wait::Deadline;
        }
        self.capture.flush();
        if self.unflushed {
            self.unflushed = false;
            if let Err(e) = self.ws.flush().await {
                return Wait::Ended(Some(e.to_string()));
            }
        }
        tokio::select! {
            _ = sleep_until(deadline) => Wait::Deadline,
            frame = self.ws.next() => self.arrived(frame),
        }
    }

    fn arrived(
        &mut self,
        frame: Option<Result<WsMessage, tokio_tungstenite::tungstenite::Error>>,
    ) -> Wait {
        match frame {
            Some(Ok(msg)) => {
                self.capture.message(Dir::ServerToClient, &msg);
                match msg {
                    WsMessage::Text(_) | WsMessage::Binary(_) => {
                        self.received += 1;
                        self.ctx.progress.inc(1);
                    }
                    WsMessage::Close(_) => self.server_closed = true,
                    _ => {}
                }
                Wait::Progress
            }
            Some(Err(e)) => Wait::Ended(Some(e.to_string())),
            None => Wait::Ended(None),
        }
    }

    async fn take(&mut self, action: &Action) -> Result<(), String> {
        let msg = match action {
            Action::Send(op, body) => to_ws(*op, body),
            Action::Ping(data) => WsMessage::Ping(data.clone().into()),
            Action::Close(code, reason) => WsMessage::Close(Some(CloseFrame {
                code: code.map_or(CloseCode::Normal, CloseCode::from),
                reason: reason.clone().into(),
            })),
        };
        self.capture.message(Dir::ClientToServer, &msg);
        let counts = matches!(msg, WsMessage::Text(_) | WsMessage::Binary(_));
        self.ws.feed(msg).await.map_err(|e| e.to_string())?;
        self.unflushed = true;
        if counts {
            self.sent += 1;
            self.ctx.progress.inc(1);
        }
        Ok(())
    }

    /// After the last step: collect the remaining server messages and close as recorded.
    async fn finish(&mut self) {
        let expected = self.script.server.len();
        let mut deadline = Instant::now() + self.ctx.step_timeout;
        while (self.received as usize) < expected {
            match self.wait(deadline).await {
                Wait::Progress => deadline = Instant::now() + self.ctx.step_timeout,
                Wait::Ended(error) => {
                    self.missing_at_end(expected);
                    return self.ended(error);
                }
                Wait::Deadline => {
                    self.timed_out(self.awaited("after the last client message"));
                    break;
                }
            }
        }
        if self.script.ending == Ending::Dropped {
            let _ = self.ws.close(None).await;
        }
        let deadline = Instant::now() + self.ctx.step_timeout;
        loop {
            match self.wait(deadline).await {
                Wait::Progress => continue,
                Wait::Ended(error) => return self.ended(error),
                Wait::Deadline => {
                    if self.script.ending == Ending::ServerClosed && !self.server_closed {
                        self.timed_out(
                            "for the server to close the connection, as recorded".into(),
                        );
                    }
                    let _ = self.ws.close(None).await;
                    return self.capture.end(EndHow::Eof, Side::Client, None);
                }
            }
        }
    }

    fn ended(&mut self, error: Option<String>) {
        let how = match (&error, self.server_closed) {
            (Some(_), _) => EndHow::Reset,
            (None, true) => EndHow::Closed,
            (None, false) => EndHow::Eof,
        };
        let by = match self.script.ending {
            Ending::ClientClosed | Ending::Dropped => Side::Client,
            Ending::ServerClosed => Side::Upstream,
        };
        self.capture.end(how, by, error);
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

    fn missing_at_end(&self, expected: usize) {
        if (self.received as usize) < expected {
            self.ctx.problems.push(Problem::ClosedEarly {
                route: self.script.route.clone(),
                conn: self.capture.conn,
                target: self.script.target.clone(),
                detail: format!(
                    "the connection ended after {} of {} recorded server messages; the next one never came: {}",
                    self.received,
                    expected,
                    self.script.server_label(self.received as usize)
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
                self.received
            ),
        });
        self.capture.end(
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
    fn awaited(&self, context: &str) -> String {
        let next = self.received as usize;
        let label = self.script.server_label(next);
        format!(
            "server message {} (recorded: {label}) {context}; {} of {} recorded server messages arrived",
            next + 1,
            self.received,
            self.script.server.len()
        )
    }
}
