//! A mock peer: stands in for a recorded server, during a replay or on its own
//! (`wsreplay mock`).
//!
//! It listens where the client expects that server. Each live connection is matched to
//! the recorded connection it resembles ([`matcher`]), its upgrade is answered as that
//! one was ([`handshake`]: status, subprotocol, headers), and the greetings recorded on
//! it are sent. Each live message is matched to a recorded request of its
//! conversation, and the responses recorded for it are sent after their recorded
//! delays (divided by `--speed`), so answers that came out of order stay out of order
//! and pushes keep their moment; a closing handshake the recorded server began is begun
//! again the same way (a STOMP broker closes after `DISCONNECT`). A reply is the
//! recorded bytes, with only the ids carried over from the live request changed
//! ([`crate::replay::rewrite`]). Unmatched requests get no answer and are reported; a
//! matched request whose structure differs from the recorded one is answered and
//! reported.

pub mod handshake;
pub mod ids;
pub mod matcher;
pub mod table;

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::stream::FuturesUnordered;
use futures_util::{Future, SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::Message as WsMessage;

use super::capture::{header_pairs, to_ws, Capture};
use super::correlate::{shape_difference, Flat, IdPair};
use super::fault::{FaultRule, Injector, Out};
use super::{Problem, Problems};
use crate::recording::{Body, Dir, EndHow, Opcode, Open, Side};
use matcher::{Claims, Live, Upgrade};
use table::{MockTable, RecordedResponse};

/// Counters a mock keeps for the replay's summary.
#[derive(Debug, Default)]
pub struct MockStats {
    pub requests: AtomicU64,
    pub answered: AtomicU64,
    /// Responses a `--fault` drop rule kept from being sent.
    pub dropped: AtomicU64,
    pub unmatched: AtomicU64,
}

/// What all connections of one mock share.
pub struct MockCtx {
    pub route: String,
    pub table: MockTable,
    /// Which recorded connections and requests live ones have taken.
    pub claims: Mutex<Claims>,
    /// Live connections accepted so far.
    pub connections: AtomicU64,
    pub capture: Capture,
    pub speed: f64,
    pub problems: Problems,
    pub id_pairs: Vec<IdPair>,
    pub stats: MockStats,
    pub listen: SocketAddr,
    /// `--fault` rules (those of this route apply to the responses it sends).
    pub faults: Vec<FaultRule>,
}

/// A running mock.
pub struct MockServer {
    pub ctx: Arc<MockCtx>,
    pub addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl MockServer {
    /// Binds `ctx.listen` and starts answering.
    pub async fn start(mut ctx: MockCtx) -> std::io::Result<MockServer> {
        let listener = TcpListener::bind(ctx.listen).await?;
        let addr = listener.local_addr()?;
        ctx.listen = addr;
        let ctx = Arc::new(ctx);
        let (stop, stop_rx) = watch::channel(false);
        let shared = ctx.clone();
        let task = tokio::spawn(async move {
            let what = format!("mock {}", shared.route);
            crate::record::accept::accept_until(listener, stop_rx, &what, |socket, peer, stop| {
                serve(socket, peer, shared.clone(), stop)
            })
            .await
        });
        Ok(MockServer {
            ctx,
            addr,
            stop,
            task,
        })
    }

    /// Closes every connection (1001 going away) and waits for them.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// Something the connection does once its time has come.
enum Due {
    /// A recorded response: the fault rules apply to it.
    Recorded(WsMessage),
    /// A response a `delay` fault held back: sent as it is.
    Delayed(WsMessage),
    /// A `reorder` fault's hold time is over.
    Release,
}

type Pending = Pin<Box<dyn Future<Output = Due> + Send>>;

fn after(delay: Duration, due: Due) -> Pending {
    Box::pin(async move {
        tokio::time::sleep(delay).await;
        due
    })
}

fn delayed(delay_us: u64, speed: f64, msg: WsMessage) -> Pending {
    after(
        Duration::from_secs_f64(delay_us as f64 / 1e6 / speed),
        Due::Recorded(msg),
    )
}

/// What the upgrade callback decided.
struct Placed {
    live: Option<Live>,
    upgrade: Upgrade,
    answer: Option<handshake::Answer>,
}

/// Subprotocols a client offered, in its order.
fn offered(headers: &tokio_tungstenite::tungstenite::http::HeaderMap) -> Vec<String> {
    headers
        .get_all("sec-websocket-protocol")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect()
}

/// Answers the upgrade as the recorded connection it resembles was answered.
#[allow(clippy::result_large_err)] // the signature is tungstenite's
fn upgrade(
    ctx: &MockCtx,
    id: u64,
    req: &Request,
    mut resp: Response,
    placed: &mut Option<Placed>,
) -> Result<Response, tokio_tungstenite::tungstenite::handshake::server::ErrorResponse> {
    use tokio_tungstenite::tungstenite::http::{HeaderName, HeaderValue, StatusCode};
    let upgrade = Upgrade {
        target: req.uri().to_string(),
        headers: header_pairs(req.headers()),
        offered: offered(req.headers()),
    };
    let live = lock(&ctx.claims).connect(&ctx.table, id, &upgrade);
    let answer = live
        .as_ref()
        .map(|l| handshake::answer(&ctx.table.conns[l.primary].open, &upgrade, &ctx.table));
    let mut headers = Vec::new();
    if let Some(a) = &answer {
        headers.extend(a.headers.iter().cloned());
        if let Some(p) = &a.subprotocol {
            headers.push(("Sec-WebSocket-Protocol".to_string(), p.clone()));
        }
    }
    let status = answer.as_ref().map_or(101, |a| a.status);
    *placed = Some(Placed {
        live,
        upgrade,
        answer,
    });
    let set = |map: &mut tokio_tungstenite::tungstenite::http::HeaderMap| {
        for (name, value) in &headers {
            if let (Ok(n), Ok(v)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(value),
            ) {
                map.append(n, v);
            }
        }
    };
    if status == 101 {
        set(resp.headers_mut());
        return Ok(resp);
    }
    let mut refusal = tokio_tungstenite::tungstenite::handshake::server::ErrorResponse::new(None);
    *refusal.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::FORBIDDEN);
    set(refusal.headers_mut());
    Err(refusal)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

async fn serve(
    socket: TcpStream,
    peer: SocketAddr,
    ctx: Arc<MockCtx>,
    mut stop: watch::Receiver<bool>,
) {
    let id = ctx.connections.fetch_add(1, Ordering::Relaxed);
    let mut placed = None;
    #[allow(clippy::result_large_err)] // the callback's signature is tungstenite's
    let callback = |req: &Request, resp: Response| upgrade(&ctx, id, req, resp, &mut placed);
    let accepted = tokio_tungstenite::accept_hdr_async(socket, callback).await;
    let Some(Placed {
        mut live,
        upgrade,
        answer,
    }) = placed
    else {
        if let Err(e) = accepted {
            tracing::warn!(route = %ctx.route, %peer, "mock: WebSocket handshake failed: {e}");
        }
        return;
    };
    let status = answer.as_ref().map_or(101, |a| a.status);
    let mut response_headers = answer
        .as_ref()
        .map(|a| a.headers.clone())
        .unwrap_or_default();
    if let Some(p) = answer.as_ref().and_then(|a| a.subprotocol.clone()) {
        response_headers.push(("Sec-WebSocket-Protocol".into(), p));
    }
    let mut capture = ctx.capture.open(Open {
        continued: false,
        t_us: 0,
        route: ctx.route.clone(),
        conn: 0,
        client: peer.to_string(),
        upstream: format!("{}{}", super::capture::MOCK_UPSTREAM, ctx.listen),
        request: format!("GET {} HTTP/1.1", upgrade.target),
        headers: upgrade.headers.clone(),
        status,
        response_headers,
    });
    if let Some(problem) = answer.as_ref().and_then(|a| a.problem.clone()) {
        ctx.problems.push(Problem::MockHandshake {
            route: ctx.route.clone(),
            detail: problem,
        });
    }
    let mut ws = match accepted {
        Ok(ws) => ws,
        Err(e) => {
            if status == 101 {
                tracing::warn!(route = %ctx.route, %peer, "mock: WebSocket handshake failed: {e}");
            }
            capture.end(EndHow::Closed, Side::Recorder, None);
            if let Some(live) = live {
                lock(&ctx.claims).ended(live);
            }
            return;
        }
    };
    let recorded = live.as_ref().map(|l| ctx.table.conns[l.primary].open.conn);
    // `wsreplay mock` shows these; a replay's mocks keep quiet about them.
    tracing::debug!(route = %ctx.route, %peer, target = %upgrade.target, ?recorded, "connection accepted");
    let mut pending: FuturesUnordered<Pending> = FuturesUnordered::new();
    if let Some(l) = &live {
        let recorded = &ctx.table.conns[l.primary];
        for greeting in &recorded.greetings {
            pending.push(delayed(
                greeting.delay_us,
                ctx.speed,
                to_ws(greeting.message.op, &greeting.message.body),
            ));
        }
        pending.extend(closing(recorded, None, ctx.speed));
    }
    // Set once the mock has sent a close frame: the connection's end is then its doing.
    let mut closing_sent = false;
    let mut decoder = ctx.table.decoder();
    let mut received = 0u64;
    let mut faults = Injector::new(&ctx.faults, &ctx.route, Dir::ServerToClient)
        .reading_with(ctx.table.decoder());
    let mut at_once = faults.disconnect_at_once(&mut capture);
    let (how, by, error) = 'conn: loop {
        capture.flush();
        if let Some(Out::Disconnect(why)) = at_once.take() {
            break (EndHow::Eof, Side::Recorder, Some(why));
        }
        tokio::select! {
            _ = stop.changed() => {
                let _ = ws.close(None).await;
                break (EndHow::Stopped, Side::Recorder, None);
            }
            Some(due) = pending.next(), if !pending.is_empty() => {
                let outs = match due {
                    Due::Recorded(msg) if faults.active() => {
                        let outs = faults.outgoing(msg, &mut capture);
                        ctx.stats.dropped.fetch_add(faults.take_dropped(), Ordering::Relaxed);
                        outs
                    }
                    Due::Recorded(msg) | Due::Delayed(msg) => vec![Out::Send(msg)],
                    Due::Release => faults.release(&mut capture),
                };
                for out in outs {
                    match out {
                        Out::Send(msg) => {
                            closing_sent |= msg.is_close();
                            capture.message(Dir::ServerToClient, &msg);
                            if let Err(e) = ws.send(msg).await {
                                break 'conn (EndHow::Reset, Side::Client, Some(e.to_string()));
                            }
                        }
                        Out::Later(delay, msg) => pending.push(after(delay, Due::Delayed(msg))),
                        Out::Held(delay) => pending.push(after(delay, Due::Release)),
                        // Dropping the socket without a close frame.
                        Out::Disconnect(why) => break 'conn (EndHow::Eof, Side::Recorder, Some(why)),
                    }
                }
            }
            frame = ws.next() => match frame {
                Some(Ok(msg)) => {
                    capture.message(Dir::ClientToServer, &msg);
                    let (op, body) = match msg {
                        WsMessage::Text(t) => (Opcode::TEXT, Body::Text(t.to_string())),
                        WsMessage::Binary(b) => (Opcode::BINARY, Body::Bytes(b.to_vec())),
                        _ => continue,
                    };
                    received += 1;
                    faults.observe(Dir::ClientToServer, op, &body);
                    let message = table::decode(decoder.as_mut(), Dir::ClientToServer, op, body);
                    if let Some(live) = live.as_mut() {
                        answer_request(&ctx, live, message, &mut pending);
                    }
                }
                Some(Err(e)) => break (EndHow::Reset, Side::Client, Some(e.to_string())),
                None if closing_sent => break (EndHow::Closed, Side::Recorder, None),
                None => break (EndHow::Closed, Side::Client, None),
            },
        }
    };
    if let Some(live) = live {
        let recorded = &ctx.table.conns[live.primary];
        if received == 0 && by == Side::Client && !recorded.requests.is_empty() {
            ctx.problems.push(Problem::ClientLeft {
                route: ctx.route.clone(),
                detail: format!(
                    "a client closed its connection ({}) without sending anything, where the recorded client sent {} message(s); did it reject the upgrade answer?",
                    error.as_deref().unwrap_or("close"),
                    recorded.requests.len()
                ),
            });
        }
        lock(&ctx.claims).ended(live);
    }
    capture.end(how, by, error);
}

/// Finds the recorded request for a live one and schedules its responses.
fn answer_request(
    ctx: &MockCtx,
    live: &mut Live,
    message: table::RecordedMessage,
    pending: &mut FuturesUnordered<Pending>,
) {
    ctx.stats.requests.fetch_add(1, Ordering::Relaxed);
    let live_flat = message.json.as_ref().map(Flat::of);
    let found = lock(&ctx.claims).request(&ctx.table, live, &message, live_flat.as_ref());
    let Some((conn, index)) = found else {
        ctx.stats.unmatched.fetch_add(1, Ordering::Relaxed);
        ctx.problems.push(Problem::Unmatched {
            route: ctx.route.clone(),
            label: message.label.clone(),
            excerpt: excerpt(&message.body),
        });
        return;
    };
    ctx.stats.answered.fetch_add(1, Ordering::Relaxed);
    let recorded = &ctx.table.conns[conn].requests[index];
    if let (Some(rec), Some(live)) = (&recorded.flat, &live_flat) {
        if let Some(difference) = shape_difference(rec, live) {
            ctx.problems.push(Problem::RequestChanged {
                route: ctx.route.clone(),
                label: message.label.clone(),
                difference,
            });
        }
    }
    let pairs: Vec<&IdPair> = ctx
        .id_pairs
        .iter()
        .filter(|p| p.route == ctx.route)
        .collect();
    let edits = ids::edits(&recorded.message, &message, &recorded.responses, &pairs);
    for response in &recorded.responses {
        pending.push(delayed(
            response.delay_us,
            ctx.speed,
            reply(&ctx.table, response, &edits),
        ));
    }
    pending.extend(closing(&ctx.table.conns[conn], Some(index), ctx.speed));
}

/// The close frame the recorded server began closing with, when it followed `after`.
fn closing(recorded: &table::RecordedConn, after: Option<usize>, speed: f64) -> Option<Pending> {
    use tokio_tungstenite::tungstenite::protocol::{frame::coding::CloseCode, CloseFrame};
    let close = recorded.close.as_ref().filter(|c| c.after == after)?;
    let frame = close.code.map(|code| CloseFrame {
        code: CloseCode::from(code),
        reason: close.reason.clone().into(),
    });
    Some(delayed(close.delay_us, speed, WsMessage::Close(frame)))
}

/// A recorded response as sent again: its bytes, with the live request's ids.
fn reply(
    table: &MockTable,
    response: &RecordedResponse,
    edits: &super::rewrite::Edits,
) -> WsMessage {
    let message = &response.message;
    if let (Opcode::TEXT, Body::Text(text)) = (message.op, &message.body) {
        if let Some(changed) = edits.apply(text, table.framing_id(text)) {
            return WsMessage::text(changed);
        }
    }
    to_ws(message.op, &message.body)
}

fn excerpt(body: &Body) -> String {
    match body {
        Body::Text(t) => t.chars().take(120).collect(),
        Body::Bytes(b) => format!("<{} bytes>", b.len()),
    }
}
