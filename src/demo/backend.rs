//! Backend service of the demo system, mirroring `backend_server.py`: accepts frontend
//! connections (`/ws?user_id=...`), answers heartbeats, runs each chat as a pipeline of
//! agent events (agent_started, agent_thinking, 1-4 progress_update, tool_executing /
//! tool_completed for the data and chart tools, 0-2 agent_thinking, agent_completed), and
//! sends error envelopes for bad input or agent failures. Agents are reached through one
//! lazily (re)connected WebSocket per agent, shared by all chats, with replies matched to
//! requests by `message_id` / `response_to`.

use std::collections::{HashMap, HashSet};
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use futures_util::stream::FuturesUnordered;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Map, Value};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tracing::{debug, info, warn};

use super::agent::AgentKind;
use super::protocol::{
    agent_event, agent_request, error_message, fields, heartbeat_response, hex_id, is_truthy,
    py_repr, py_str, round_to, uuid4, EventContext, Fields, SeededRng, CHAT, ERROR, HEARTBEAT,
};
use super::{accept_loop, bind, close_ws, handshake, log_join, Server, ShutdownSignal};

/// How long connecting to an agent may take.
const AGENT_OPEN_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest agent reply quoted in a "bad response" error.
const QUOTE_LIMIT: usize = 200;

/// Where the agents are and how the backend behaves.
#[derive(Clone, Debug)]
pub struct BackendConfig {
    /// `ws://` URL of the nlp agent (or a proxy in front of it).
    pub nlp_url: String,
    /// `ws://` URL of the data agent.
    pub data_url: String,
    /// `ws://` URL of the viz agent.
    pub viz_url: String,
    /// Event types sent in the broken legacy shape; empty = clean build.
    pub regression_events: Vec<String>,
    /// How long to wait for an agent reply; a request left unanswered ends its chat
    /// with an error envelope.
    pub agent_timeout: Duration,
    /// Waited before every message to the frontend: a slow build, for timing checks.
    pub reply_delay: Duration,
    /// Changes every outgoing message (frontend events and agent requests) the way a
    /// new build might; tests use it to simulate structure changes. `None`: unchanged.
    pub mutate: Option<Mutator>,
    /// Streams a number of `progress_update` events per chat drawn at random for this
    /// run, as a backend whose stream lengths vary from run to run does. `None`: the
    /// chat's own count (1-4, the same on every run).
    pub progress: Option<VariedProgress>,
}

/// How many `progress_update` events each chat streams when they vary per run: drawn
/// from `min..=max` by a generator seeded with `seed` and the chat's message id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VariedProgress {
    pub seed: u64,
    pub min: u64,
    /// `None`: the chat's own count, so never more than a recording of this backend
    /// holds (a replay paced by counting messages is not disturbed).
    pub max: Option<u64>,
}

impl VariedProgress {
    /// The number of progress updates of the chat `message_id`, whose own count is `own`.
    fn steps(&self, message_id: &str, own: u64) -> u64 {
        let max = self.max.unwrap_or(own).max(self.min);
        SeededRng::from_parts(&[&self.seed.to_string(), message_id]).int_range(self.min, max)
    }
}

/// Where a mutated message is going.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outgoing {
    /// To the frontend.
    Frontend,
    /// To an agent (a request).
    Agent(AgentKind),
}

/// The function a [`Mutator`] wraps: the messages to send in place of one.
pub type MutateFn = dyn Fn(Outgoing, Value) -> Vec<Value> + Send + Sync;

/// Rewrites an outgoing JSON message the way a new build might.
#[derive(Clone)]
pub struct Mutator(pub Arc<MutateFn>);

impl Mutator {
    /// Rewrites each message in place; returning `false` drops it.
    pub fn new(f: impl Fn(Outgoing, &mut Value) -> bool + Send + Sync + 'static) -> Self {
        Mutator::expand(move |to, mut value| {
            if f(to, &mut value) {
                vec![value]
            } else {
                Vec::new()
            }
        })
    }

    /// Sends the messages `f` returns in place of each one: none drops it, several
    /// add to it, and holding one back to send it with a later one reorders them.
    pub fn expand(f: impl Fn(Outgoing, Value) -> Vec<Value> + Send + Sync + 'static) -> Self {
        Mutator(Arc::new(f))
    }

    /// Applies the mutation to a JSON text: the texts to send instead.
    fn apply(&self, to: Outgoing, text: String) -> Vec<String> {
        let Ok(value) = serde_json::from_str::<Value>(&text) else {
            return vec![text];
        };
        (self.0)(to, value).iter().map(Value::to_string).collect()
    }
}

impl std::fmt::Debug for Mutator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Mutator(..)")
    }
}

fn mutated(mutate: &Option<Mutator>, to: Outgoing, text: String) -> Vec<String> {
    match mutate {
        Some(m) => m.apply(to, text),
        None => vec![text],
    }
}

/// Starts a backend on `bind`; agents are connected on first use.
pub async fn spawn(cfg: BackendConfig, bind_addr: SocketAddr) -> io::Result<Server> {
    let (listener, _) = bind(bind_addr).await?;
    spawn_on(cfg, listener)
}

/// Starts a backend on a listener bound beforehand (so a proxy can be put in front of
/// it before it runs).
pub fn spawn_on(cfg: BackendConfig, listener: tokio::net::TcpListener) -> io::Result<Server> {
    let addr = listener.local_addr()?;
    info!(
        "backend listening on ws://{addr} agents nlp={} data={} viz={} regression={:?}",
        cfg.nlp_url, cfg.data_url, cfg.viz_url, cfg.regression_events
    );
    Ok(Server::start(addr, move |stop| async move {
        let backend = Arc::new(Backend::new(cfg, stop.clone()));
        let shared = Arc::clone(&backend);
        accept_loop(listener, stop, move |stream, peer, stop| {
            serve_connection(Arc::clone(&shared), stream, peer, stop)
        })
        .await;
        backend.close_links().await;
    }))
}

/// Why an agent request failed.
#[derive(Debug, thiserror::Error)]
enum AgentError {
    #[error("{kind} agent unreachable at {url}: {reason}")]
    Unreachable {
        kind: &'static str,
        url: String,
        reason: String,
    },
    #[error("{kind} agent timed out after {timeout:?}")]
    Timeout {
        kind: &'static str,
        timeout: Duration,
    },
    #[error("{kind} agent connection closed")]
    Closed { kind: &'static str },
    #[error("bad {kind} agent response: {quote}")]
    BadResponse { kind: &'static str, quote: String },
}

type AgentWs = WebSocketStream<MaybeTlsStream<TcpStream>>;
type Reply = Result<Value, AgentError>;
/// Requests in flight on one agent connection, by `message_id`.
type Pending = Mutex<HashMap<String, oneshot::Sender<Reply>>>;

/// Locks a std mutex, ignoring poisoning (the maps stay consistent on panic).
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// One live agent connection: its outgoing queue and its requests in flight.
#[derive(Clone)]
struct LinkConn {
    out: mpsc::UnboundedSender<String>,
    pending: Arc<Pending>,
}

/// Shared connection to one agent, (re)connected on demand like `AgentLink._ensure`.
struct AgentLink {
    kind: AgentKind,
    url: String,
    timeout: Duration,
    stop: ShutdownSignal,
    conn: tokio::sync::Mutex<Option<LinkConn>>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    mutate: Option<Mutator>,
}

/// Removes a request from the pending map however the request ends.
struct PendingGuard<'a> {
    pending: &'a Pending,
    message_id: &'a str,
}

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        lock(self.pending).remove(self.message_id);
    }
}

impl AgentLink {
    fn new(
        kind: AgentKind,
        url: String,
        timeout: Duration,
        stop: ShutdownSignal,
        mutate: Option<Mutator>,
    ) -> Self {
        AgentLink {
            kind,
            url,
            timeout,
            stop,
            conn: tokio::sync::Mutex::new(None),
            tasks: Mutex::new(Vec::new()),
            mutate,
        }
    }

    /// Sends `{"type": <request type>, "message_id", ...fields}` and returns the reply's `data`.
    async fn request(&self, fields: Fields) -> Result<Map<String, Value>, AgentError> {
        let conn = self.ensure().await?;
        let message_id = format!("msg_{}", hex_id(16));
        let (tx, rx) = oneshot::channel();
        lock(&conn.pending).insert(message_id.clone(), tx);
        let _guard = PendingGuard {
            pending: &conn.pending,
            message_id: &message_id,
        };
        let kind = self.kind.name();
        let text = agent_request(self.kind.request_type(), &message_id, &fields);
        let texts = mutated(&self.mutate, Outgoing::Agent(self.kind), text);
        if texts.is_empty() {
            return Err(AgentError::Closed { kind });
        }
        for text in texts {
            conn.out
                .send(text)
                .map_err(|_| AgentError::Closed { kind })?;
        }
        let reply = match tokio::time::timeout(self.timeout, rx).await {
            Err(_) => Err(AgentError::Timeout {
                kind,
                timeout: self.timeout,
            }),
            Ok(Err(_)) => Err(AgentError::Closed { kind }),
            Ok(Ok(reply)) => reply,
        }?;
        self.check_reply(reply)
    }

    /// Accepts a reply of the right type with an object `data`.
    fn check_reply(&self, reply: Value) -> Result<Map<String, Value>, AgentError> {
        let right_type =
            reply.get("type").and_then(Value::as_str) == Some(self.kind.response_type());
        match reply.get("data") {
            Some(Value::Object(data)) if right_type => Ok(data.clone()),
            _ => Err(AgentError::BadResponse {
                kind: self.kind.name(),
                quote: reply.to_string().chars().take(QUOTE_LIMIT).collect(),
            }),
        }
    }

    /// The open connection, connecting first if there is none.
    async fn ensure(&self) -> Result<LinkConn, AgentError> {
        let mut slot = self.conn.lock().await;
        if let Some(conn) = slot.as_ref().filter(|c| !c.out.is_closed()) {
            return Ok(conn.clone());
        }
        info!("connecting to {} agent at {}", self.kind.name(), self.url);
        let ws = self.connect().await?;
        let (out, rx) = mpsc::unbounded_channel();
        let conn = LinkConn {
            out,
            pending: Arc::default(),
        };
        let io = link_io(
            self.kind,
            ws,
            rx,
            Arc::clone(&conn.pending),
            self.stop.clone(),
        );
        let mut tasks = lock(&self.tasks);
        tasks.retain(|t| !t.is_finished());
        tasks.push(tokio::spawn(io));
        *slot = Some(conn.clone());
        Ok(conn)
    }

    async fn connect(&self) -> Result<AgentWs, AgentError> {
        let unreachable = |reason: String| AgentError::Unreachable {
            kind: self.kind.name(),
            url: self.url.clone(),
            reason,
        };
        let connecting =
            tokio_tungstenite::connect_async_with_config(self.url.as_str(), None, true);
        match tokio::time::timeout(AGENT_OPEN_TIMEOUT, connecting).await {
            Err(_) => Err(unreachable(format!(
                "no handshake within {AGENT_OPEN_TIMEOUT:?}"
            ))),
            Ok(Err(e)) => Err(unreachable(e.to_string())),
            Ok(Ok((ws, _response))) => Ok(ws),
        }
    }

    /// Waits for this link's connection tasks (they end on shutdown).
    async fn close(&self) {
        let tasks = std::mem::take(&mut *lock(&self.tasks));
        for task in tasks {
            log_join(task.await);
        }
    }
}

/// Drives one agent connection: writes queued requests, routes replies to their waiters,
/// and fails whatever is still pending when the connection ends.
async fn link_io(
    kind: AgentKind,
    mut ws: AgentWs,
    mut out: mpsc::UnboundedReceiver<String>,
    pending: Arc<Pending>,
    mut stop: ShutdownSignal,
) {
    loop {
        tokio::select! {
            () = stop.wait() => {
                close_ws(&mut ws, CloseCode::Normal).await;
                break;
            }
            Some(text) = out.recv() => {
                if let Err(e) = ws.send(Message::text(text)).await {
                    warn!("{} agent send failed: {e}", kind.name());
                    break;
                }
            }
            frame = ws.next() => match frame {
                Some(Ok(msg)) => route_reply(kind, &msg, &pending),
                Some(Err(e)) => {
                    debug!("{} agent connection: {e}", kind.name());
                    break;
                }
                None => break,
            },
        }
    }
    out.close();
    let kind = kind.name();
    for (_, waiter) in lock(&pending).drain() {
        let _ = waiter.send(Err(AgentError::Closed { kind }));
    }
    info!("{kind} agent connection closed");
}

/// Hands an agent frame to the request it answers (by `response_to`).
fn route_reply(kind: AgentKind, msg: &Message, pending: &Pending) {
    let raw: &[u8] = match msg {
        Message::Text(text) => text.as_bytes(),
        Message::Binary(bytes) => bytes,
        _ => return,
    };
    let Ok(reply) = serde_json::from_slice::<Value>(raw) else {
        let shown = String::from_utf8_lossy(&raw[..raw.len().min(QUOTE_LIMIT)]);
        warn!("{} agent sent non-JSON: {shown:?}", kind.name());
        return;
    };
    let waiter = reply
        .get("response_to")
        .and_then(Value::as_str)
        .and_then(|id| lock(pending).remove(id));
    match waiter {
        Some(waiter) => {
            let _ = waiter.send(Ok(reply));
        }
        None if reply.get("type").and_then(Value::as_str) == Some(ERROR) => {
            warn!("{} agent error: {reply}", kind.name());
        }
        None => debug!("{} agent reply nobody waits for: {reply}", kind.name()),
    }
}

/// The three agent links.
struct Links {
    nlp: AgentLink,
    data: AgentLink,
    viz: AgentLink,
}

struct Backend {
    links: Links,
    user_seq: AtomicU64,
    regression_events: HashSet<String>,
    mutate: Option<Mutator>,
    reply_delay: Duration,
    progress: Option<VariedProgress>,
}

impl Backend {
    fn new(cfg: BackendConfig, stop: ShutdownSignal) -> Self {
        let link = |kind, url| {
            AgentLink::new(
                kind,
                url,
                cfg.agent_timeout,
                stop.clone(),
                cfg.mutate.clone(),
            )
        };
        Backend {
            links: Links {
                nlp: link(AgentKind::Nlp, cfg.nlp_url.clone()),
                data: link(AgentKind::Data, cfg.data_url.clone()),
                viz: link(AgentKind::Viz, cfg.viz_url.clone()),
            },
            user_seq: AtomicU64::new(1),
            regression_events: cfg.regression_events.into_iter().collect(),
            mutate: cfg.mutate,
            reply_delay: cfg.reply_delay,
            progress: cfg.progress,
        }
    }

    async fn close_links(&self) {
        tokio::join!(
            self.links.nlp.close(),
            self.links.data.close(),
            self.links.viz.close()
        );
    }
}

/// Per-connection state.
struct Conn {
    client_id: String,
    user_id: String,
    threads: u64,
}

/// A validated chat request.
struct Chat {
    ctx: EventContext,
    text: String,
}

/// What to do with one frontend frame.
enum Inbound {
    Reply(String),
    Chat(Chat),
    Ignore,
}

async fn serve_connection(
    backend: Arc<Backend>,
    stream: TcpStream,
    peer: SocketAddr,
    mut stop: ShutdownSignal,
) {
    let Some((mut ws, uri)) = handshake(stream, peer, &mut stop).await else {
        return;
    };
    let user_id = query_param(uri.query(), "user_id")
        .unwrap_or_else(|| format!("user_{}", backend.user_seq.fetch_add(1, Ordering::Relaxed)));
    let mut conn = Conn {
        client_id: format!("client_{}", hex_id(12)),
        user_id,
        threads: 0,
    };
    info!(
        "client {} (user {}) connected from {peer}",
        conn.client_id, conn.user_id
    );
    let (events_tx, mut events_rx) = mpsc::unbounded_channel::<String>();
    let mut chats = FuturesUnordered::new();
    'serve: loop {
        let outgoing = tokio::select! {
            () = stop.wait() => {
                close_ws(&mut ws, CloseCode::Away).await;
                break;
            }
            frame = ws.next() => match frame {
                Some(Ok(msg)) => match conn.classify(&msg) {
                    Inbound::Reply(text) => text,
                    Inbound::Chat(chat) => {
                        let run = run_chat(&backend, chat, conn.client_id.clone(), events_tx.clone());
                        chats.push(run);
                        continue;
                    }
                    Inbound::Ignore => continue,
                },
                Some(Err(e)) => {
                    debug!("client {}: {e}", conn.client_id);
                    break;
                }
                None => break,
            },
            Some(text) = events_rx.recv() => text,
            Some(()) = chats.next(), if !chats.is_empty() => continue,
        };
        for outgoing in mutated(&backend.mutate, Outgoing::Frontend, outgoing) {
            if !backend.reply_delay.is_zero() {
                tokio::time::sleep(backend.reply_delay).await;
            }
            if ws.send(Message::text(outgoing)).await.is_err() {
                break 'serve;
            }
        }
    }
    info!("client {} disconnected", conn.client_id);
}

impl Conn {
    fn error(&self, message: &str) -> Inbound {
        Inbound::Reply(error_message(&self.client_id, message))
    }

    fn classify(&mut self, msg: &Message) -> Inbound {
        let text = match msg {
            Message::Text(text) => text.as_str(),
            Message::Binary(_) => return self.error("binary frames not supported"),
            _ => return Inbound::Ignore,
        };
        let msg = match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(msg)) => msg,
            Ok(_) => return self.error("invalid JSON: message must be a JSON object"),
            Err(e) => return self.error(&format!("invalid JSON: {e}")),
        };
        let kind = msg.get("type").cloned().unwrap_or(Value::Null);
        match kind.as_str() {
            Some(HEARTBEAT) => Inbound::Reply(heartbeat_response(&self.client_id)),
            Some(CHAT) => self.chat(msg),
            _ => self.error(&format!("unknown message type {}", py_repr(&kind))),
        }
    }

    fn chat(&mut self, mut msg: Map<String, Value>) -> Inbound {
        let message_id = msg.remove("message_id").filter(is_truthy);
        let (Some(message_id), Some(Value::String(text))) = (message_id, msg.remove("text")) else {
            return self.error("chat needs message_id and text");
        };
        let thread_id = match msg.remove("thread_id").filter(is_truthy) {
            Some(thread_id) => thread_id,
            None => {
                self.threads += 1;
                json!(format!("thread_{}", self.threads))
            }
        };
        Inbound::Chat(Chat {
            ctx: EventContext {
                run_id: format!("run_{}", uuid4()),
                thread_id,
                user_id: self.user_id.clone(),
                message_id,
                correlation_id: format!("corr_{}", hex_id(12)),
            },
            text,
        })
    }
}

/// Runs one chat; an agent failure ends it with an error envelope.
async fn run_chat(
    backend: &Backend,
    chat: Chat,
    client_id: String,
    events: mpsc::UnboundedSender<String>,
) {
    let pipeline = ChatRun {
        backend,
        ctx: &chat.ctx,
        events: &events,
    };
    if let Err(e) = pipeline.run(&chat.text).await {
        let message_id = py_str(&chat.ctx.message_id);
        warn!("chat {message_id} failed: {e}");
        let envelope = error_message(&client_id, &format!("chat {message_id} failed: {e}"));
        // A closed channel means the client is gone; nothing left to tell it.
        let _ = events.send(envelope);
    }
}

/// The event pipeline of one chat.
struct ChatRun<'a> {
    backend: &'a Backend,
    ctx: &'a EventContext,
    events: &'a mpsc::UnboundedSender<String>,
}

/// Tool name and agent name of the data step, by intent.
fn data_tool(intent: &Value) -> (&'static str, &'static str) {
    let tool = match intent.as_str() {
        Some("cost_analysis") => "aws_cost_analyzer",
        Some("usage_trend") => "usage_trend_analyzer",
        Some("anomaly_detection") => "anomaly_detector",
        _ => "knowledge_lookup",
    };
    (tool, "data_helper")
}

fn elapsed_ms(since: Instant) -> f64 {
    round_to(since.elapsed().as_secs_f64() * 1000.0, 2)
}

impl ChatRun<'_> {
    fn emit(&self, kind: &str, agent_name: &str, extra: Fields) {
        let legacy = self.backend.regression_events.contains(kind);
        let event = agent_event(kind, self.ctx, agent_name, &extra, legacy);
        // A closed channel means the client is gone; the chat is dropped with it.
        let _ = self.events.send(event);
    }

    async fn run(&self, text: &str) -> Result<(), AgentError> {
        let t0 = Instant::now();
        let mut rng = SeededRng::from_parts(&[&py_str(&self.ctx.message_id), text]);
        self.emit(
            "agent_started",
            "supervisor",
            fields([
                ("status", json!("started")),
                ("input", json!({"text": text})),
            ]),
        );
        let links = &self.backend.links;
        let nlp_req = fields([("text", json!(text)), ("user_id", json!(self.ctx.user_id))]);
        let nlp = links.nlp.request(nlp_req).await?;
        let intent = nlp
            .get("intent")
            .cloned()
            .unwrap_or(json!("general_question"));
        let confidence = nlp.get("confidence").unwrap_or(&Value::Null);
        let thought = format!(
            "User intent is {} (confidence {}); planning tools.",
            py_str(&intent),
            py_str(confidence)
        );
        self.emit(
            "agent_thinking",
            "supervisor",
            fields([("step", json!(1)), ("thought", json!(thought))]),
        );
        let steps = rng.int_range(1, 4);
        let message_id = py_str(&self.ctx.message_id);
        self.progress(match &self.backend.progress {
            Some(varied) => varied.steps(&message_id, steps),
            None => steps,
        });
        let services = services_of(&nlp);
        let data = self.data_step(&intent, &services).await?;
        for i in 0..rng.int_range(0, 2) {
            self.emit(
                "agent_thinking",
                "data_helper",
                fields([
                    ("step", json!(2 + i)),
                    ("thought", json!("Summarising cost rows for the chart.")),
                ]),
            );
        }
        let chart = self.chart_step(&intent, &data).await?;
        self.complete(t0, &services, &data, &chart);
        Ok(())
    }

    fn progress(&self, steps: u64) {
        for i in 1..=steps {
            self.emit(
                "progress_update",
                "supervisor",
                fields([
                    (
                        "progress",
                        json!(round_to(i as f64 / (steps + 2) as f64, 3)),
                    ),
                    (
                        "message",
                        json!(format!("Preparing analysis step {i}/{steps}")),
                    ),
                ]),
            );
        }
    }

    async fn data_step(
        &self,
        intent: &Value,
        services: &[Value],
    ) -> Result<Map<String, Value>, AgentError> {
        let (tool_name, agent_name) = data_tool(intent);
        let quoted: Vec<String> = services.iter().map(py_repr).collect();
        let sql = format!(
            "SELECT service, SUM(cost) AS cost_usd, SUM(hours) AS usage_hours \
             FROM billing WHERE day > now() - interval '30 days' \
             AND service IN ({}) GROUP BY service",
            quoted.join(", ")
        );
        let params = json!({"intent": intent, "services": services, "time_range": "last_30_days"});
        self.emit(
            "tool_executing",
            agent_name,
            fields([("tool_name", json!(tool_name)), ("parameters", params)]),
        );
        let started = Instant::now();
        let request = fields([
            ("sql", json!(sql)),
            ("intent", intent.clone()),
            ("services", json!(services)),
        ]);
        let data = self.backend.links.data.request(request).await?;
        let result = json!({"row_count": data.get("row_count"), "rows": data.get("rows")});
        self.emit(
            "tool_completed",
            agent_name,
            fields([
                ("tool_name", json!(tool_name)),
                ("status", json!("success")),
                ("duration_ms", json!(elapsed_ms(started))),
                ("result", result),
            ]),
        );
        Ok(data)
    }

    async fn chart_step(
        &self,
        intent: &Value,
        data: &Map<String, Value>,
    ) -> Result<Map<String, Value>, AgentError> {
        let params = json!({"chart_type": "bar", "rows": data.get("row_count")});
        self.emit(
            "tool_executing",
            "viz_helper",
            fields([
                ("tool_name", json!("chart_generator")),
                ("parameters", params),
            ]),
        );
        let started = Instant::now();
        let request = fields([
            (
                "rows",
                data.get("rows").cloned().unwrap_or_else(|| json!([])),
            ),
            ("chart_type", json!("bar")),
            (
                "title",
                json!(format!("{}: cost by service", py_str(intent))),
            ),
        ]);
        let chart = self.backend.links.viz.request(request).await?;
        let result =
            json!({"chart_id": chart.get("chart_id"), "chart_type": chart.get("chart_type")});
        self.emit(
            "tool_completed",
            "viz_helper",
            fields([
                ("tool_name", json!("chart_generator")),
                ("status", json!("success")),
                ("duration_ms", json!(elapsed_ms(started))),
                ("result", result),
            ]),
        );
        Ok(chart)
    }

    fn complete(
        &self,
        t0: Instant,
        services: &[Value],
        data: &Map<String, Value>,
        chart: &Map<String, Value>,
    ) {
        let names: Vec<String> = services.iter().map(py_str).collect();
        let answer = format!(
            "Total cost over the last 30 days for {}: ${}",
            names.join(", "),
            money(total_cost(data))
        );
        self.emit(
            "agent_completed",
            "supervisor",
            fields([
                ("status", json!("completed")),
                ("duration_ms", json!(elapsed_ms(t0))),
                (
                    "result",
                    json!({"answer": answer, "chart_id": chart.get("chart_id")}),
                ),
            ]),
        );
    }
}

/// `nlp["entities"]["services"]`, or no services.
fn services_of(nlp: &Map<String, Value>) -> Vec<Value> {
    nlp.get("entities")
        .and_then(|e| e.get("services"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

/// Sum of `cost_usd` over the data agent's rows.
fn total_cost(data: &Map<String, Value>) -> f64 {
    data.get("rows")
        .and_then(Value::as_array)
        .map_or(0.0, |rows| {
            rows.iter()
                .filter_map(|r| r.get("cost_usd").and_then(Value::as_f64))
                .sum()
        })
}

/// Python `f"{x:,.2f}"`: two decimals, thousands separated by commas.
fn money(x: f64) -> String {
    let fixed = format!("{:.2}", x.abs());
    let (int, frac) = fixed.split_once('.').unwrap_or((&fixed, "00"));
    let mut grouped = String::new();
    for (i, digit) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    let sign = if x < 0.0 { "-" } else { "" };
    format!("{sign}{grouped}.{frac}")
}

/// First non-empty value of `key` in a query string, decoded like Python's `parse_qs`.
fn query_param(query: Option<&str>, key: &str) -> Option<String> {
    query?
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (percent_decode(k), percent_decode(v)))
        .find(|(k, v)| k == key && !v.is_empty())
        .map(|(_, v)| v)
}

/// `+` to space and `%XX` to bytes, then UTF-8 (lossy).
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (b'+', _) => {
                out.push(b' ');
                i += 1;
            }
            (other, _) => {
                out.push(other);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_groups_thousands() {
        assert_eq!(money(0.0), "0.00");
        assert_eq!(money(999.999), "1,000.00");
        assert_eq!(money(1234567.891), "1,234,567.89");
        assert_eq!(money(-1234.5), "-1,234.50");
    }

    #[test]
    fn query_param_decodes_like_parse_qs() {
        assert_eq!(
            query_param(Some("user_id=alice"), "user_id").as_deref(),
            Some("alice")
        );
        assert_eq!(
            query_param(Some("a=1&user_id=bob%20b+c&user_id=x"), "user_id").as_deref(),
            Some("bob b c")
        );
        assert_eq!(
            query_param(Some("user_id=&user_id=z"), "user_id").as_deref(),
            Some("z")
        );
        assert_eq!(query_param(Some("user_id"), "user_id"), None);
        assert_eq!(query_param(None, "user_id"), None);
        assert_eq!(percent_decode("100%"), "100%");
    }

    #[test]
    fn data_tool_by_intent() {
        assert_eq!(data_tool(&json!("usage_trend")).0, "usage_trend_analyzer");
        assert_eq!(data_tool(&json!("whatever")).0, "knowledge_lookup");
    }
}
