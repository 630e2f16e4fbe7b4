//! A mock peer: stands in for a recorded server (an agent) during a replay.
//!
//! It listens where the build under test expects that peer. Each incoming message is
//! matched to the best unused recorded request of the route (same label, i.e. the same
//! discriminator such as `type`; then the closest structure and content), and the
//! responses recorded for that request are sent back after their recorded delays
//! (divided by `--speed`), so answers that came out of order stay out of order.
//! Ids the recorded responses echoed are rewritten to the live request's
//! ([`Substitution`]). Unmatched requests get no answer and are reported; a matched
//! request whose structure differs from the recorded one is answered and reported.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::stream::FuturesUnordered;
use futures_util::{Future, SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::Message as WsMessage;

use super::capture::{header_pairs, to_ws, Capture};
use super::correlate::{shape_difference, Flat, IdPair, Substitution};
use super::fault::{FaultRule, Injector, Out};
use super::script::{MockTable, RecordedResponse};
use super::{Problem, Problems};
use crate::recording::{Body, Dir, EndHow, Opcode, Open, Side};

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
    pub used: Mutex<Vec<bool>>,
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

async fn serve(
    socket: TcpStream,
    peer: SocketAddr,
    ctx: Arc<MockCtx>,
    mut stop: watch::Receiver<bool>,
) {
    let mut seen: Option<(String, Vec<(String, String)>)> = None;
    #[allow(clippy::result_large_err)] // the callback's signature is tungstenite's
    let record_request = |req: &Request, resp: Response| {
        let headers = header_pairs(req.headers());
        seen = Some((req.uri().to_string(), headers));
        Ok(resp)
    };
    let mut ws = match tokio_tungstenite::accept_hdr_async(socket, record_request).await {
        Ok(ws) => ws,
        Err(e) => {
            tracing::warn!(route = %ctx.route, %peer, "mock: WebSocket handshake failed: {e}");
            return;
        }
    };
    let (target, headers) = seen.unwrap_or_default();
    let mut capture = ctx.capture.open(Open {
        t_us: 0,
        route: ctx.route.clone(),
        conn: 0,
        client: peer.to_string(),
        upstream: format!("{}{}", super::capture::MOCK_UPSTREAM, ctx.listen),
        request: format!("GET {target} HTTP/1.1"),
        headers,
        status: 101,
        response_headers: Vec::new(),
    });
    let mut pending: FuturesUnordered<Pending> = FuturesUnordered::new();
    let index = ctx.connections.fetch_add(1, Ordering::Relaxed) as usize;
    for greeting in ctx.table.greetings.get(index).into_iter().flatten() {
        pending.push(delayed(
            greeting.delay_us,
            ctx.speed,
            to_ws(greeting.message.op, &greeting.message.body),
        ));
    }
    let mut faults = Injector::new(&ctx.faults, &ctx.route, Dir::ServerToClient);
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
                    match &msg {
                        WsMessage::Text(t) => answer(&ctx, Opcode::TEXT, Body::Text(t.to_string()), &mut pending),
                        WsMessage::Binary(b) => answer(&ctx, Opcode::BINARY, Body::Bytes(b.to_vec()), &mut pending),
                        _ => {}
                    }
                }
                Some(Err(e)) => break (EndHow::Reset, Side::Client, Some(e.to_string())),
                None => break (EndHow::Closed, Side::Client, None),
            },
        }
    };
    capture.end(how, by, error);
}

/// Finds the recorded request for a live one and schedules its responses.
fn answer(ctx: &MockCtx, op: Opcode, body: Body, pending: &mut FuturesUnordered<Pending>) {
    ctx.stats.requests.fetch_add(1, Ordering::Relaxed);
    let label = ctx.table.label(op, &body);
    let live_json: Option<Value> = body.as_text().and_then(|t| serde_json::from_str(t).ok());
    let live_flat = live_json.as_ref().map(Flat::of);
    let Some(index) = best_match(ctx, &label, &body, live_flat.as_ref()) else {
        ctx.stats.unmatched.fetch_add(1, Ordering::Relaxed);
        ctx.problems.push(Problem::Unmatched {
            route: ctx.route.clone(),
            label,
            excerpt: excerpt(&body),
        });
        return;
    };
    ctx.stats.answered.fetch_add(1, Ordering::Relaxed);
    let recorded = &ctx.table.requests[index];
    if let (Some(rec), Some(live)) = (&recorded.flat, &live_flat) {
        if let Some(difference) = shape_difference(rec, live) {
            ctx.problems.push(Problem::RequestChanged {
                route: ctx.route.clone(),
                label: label.clone(),
                difference,
            });
        }
    }
    let substitution = match (&recorded.message.json, &live_json) {
        (Some(rec), Some(live)) => {
            let responses: Vec<Value> = recorded
                .responses
                .iter()
                .filter_map(|r| r.message.json.clone())
                .collect();
            let pairs: Vec<IdPair> = ctx
                .id_pairs
                .iter()
                .filter(|p| p.route == ctx.route)
                .cloned()
                .collect();
            Some(Substitution::new(rec, live, &responses, &pairs))
        }
        _ => None,
    };
    for response in &recorded.responses {
        pending.push(delayed(
            response.delay_us,
            ctx.speed,
            rewrite(response, substitution.as_ref()),
        ));
    }
}

fn rewrite(response: &RecordedResponse, substitution: Option<&Substitution>) -> WsMessage {
    match (&response.message.json, substitution) {
        (Some(json), Some(sub)) => {
            let mut json = json.clone();
            sub.apply(&mut json);
            WsMessage::text(json.to_string())
        }
        _ => to_ws(response.message.op, &response.message.body),
    }
}

/// The unused recorded request most like the live one, among those with its label.
fn best_match(ctx: &MockCtx, label: &str, body: &Body, live: Option<&Flat>) -> Option<usize> {
    let mut used = ctx.used.lock().unwrap_or_else(|p| p.into_inner());
    let best = ctx
        .table
        .requests
        .iter()
        .enumerate()
        .filter(|(i, r)| !used[*i] && r.message.label == label)
        .max_by_key(|(i, r)| {
            let score = match (live, &r.flat) {
                (Some(live), Some(rec)) => live.similarity(rec),
                _ => i64::from(r.message.body == *body) * 1000,
            };
            // Among equals, the earliest recorded request wins.
            (score, std::cmp::Reverse(*i))
        })
        .map(|(i, _)| i)?;
    used[best] = true;
    Some(best)
}

fn excerpt(body: &Body) -> String {
    match body {
        Body::Text(t) => t.chars().take(120).collect(),
        Body::Bytes(b) => format!("<{} bytes>", b.len()),
    }
}
