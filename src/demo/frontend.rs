//! Validating frontend client of the demo system, mirroring `frontend_client.py`: sends a
//! heartbeat, a few chats and a non-JSON error probe, checks every reply against the
//! protocol (heartbeat_response fields, agent event payloads, per-chat ordering, one
//! run_id, tools completed, error envelope) and returns a [`FrontendReport`]. Validation
//! problems go in the report; connection failures, timeouts and server error events are
//! a [`FrontendError`].

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Map, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::close_ws;
use super::protocol::{
    epoch, hex_id, is_iso, py_repr, py_str, AGENT_EVENTS, CHAT, ERROR, HEARTBEAT,
    HEARTBEAT_RESPONSE, SERVER_ERROR,
};

/// How long the WebSocket handshake may take.
const OPEN_TIMEOUT: Duration = Duration::from_secs(5);
/// The chat texts, used in turn.
pub const CHATS: [&str; 4] = [
    "What did we spend on EC2 and S3 last month?",
    "Show me the usage trend for Lambda",
    "Any cost spike in RDS this week?",
    "Summarise our CloudFront bill",
];
/// The frame the error probe sends.
const ERROR_PROBE: &str = "this is not json";

/// What the frontend does.
#[derive(Clone, Debug)]
pub struct FrontendOptions {
    /// Backend URL, e.g. `ws://127.0.0.1:18000/ws?user_id=alice`.
    pub url: String,
    /// How many chats to run, one after another.
    pub chats: usize,
    /// Whether to end with a non-JSON frame that must get an error envelope.
    pub error_probe: bool,
    /// Per-frame receive timeout.
    pub timeout: Duration,
}

impl FrontendOptions {
    /// The defaults of `frontend_client.py`: 3 chats, error probe, 10 s per frame.
    pub fn new(url: impl Into<String>) -> Self {
        FrontendOptions {
            url: url.into(),
            chats: 3,
            error_probe: true,
            timeout: Duration::from_secs(10),
        }
    }
}

/// What the frontend saw.
#[derive(Debug, Default)]
pub struct FrontendReport {
    /// Chat events received, by type.
    pub events: BTreeMap<String, usize>,
    /// Validation problems, each `"<where>: <what>"`.
    pub problems: Vec<String>,
    /// Frames sent.
    pub sent: usize,
    /// Data frames received.
    pub received: usize,
}

impl FrontendReport {
    /// True when nothing was wrong.
    pub fn passed(&self) -> bool {
        self.problems.is_empty()
    }

    fn problem(&mut self, place: &str, what: impl std::fmt::Display) {
        self.problems.push(format!("{place}: {what}"));
    }
}

/// Why the frontend could not finish (`frontend_client.py` exit status 2).
#[derive(Debug, thiserror::Error)]
pub enum FrontendError {
    /// The WebSocket connection could not be opened.
    #[error("could not connect to {url}: {source}")]
    Connect {
        /// The URL tried.
        url: String,
        /// The underlying error.
        #[source]
        source: Box<tungstenite::Error>,
    },
    /// Nothing arrived in time.
    #[error("timed out after {timeout:?} waiting for {waiting_for}")]
    Timeout {
        /// What was awaited.
        waiting_for: String,
        /// The timeout that expired.
        timeout: Duration,
    },
    /// The server closed the connection.
    #[error("connection closed while waiting for {waiting_for}")]
    Closed {
        /// What was awaited.
        waiting_for: String,
    },
    /// A WebSocket error after connecting.
    #[error("websocket error during {during}: {source}")]
    WebSocket {
        /// What the client was doing.
        during: String,
        /// The underlying error.
        #[source]
        source: Box<tungstenite::Error>,
    },
    /// The backend answered a chat with an error envelope.
    #[error("{place}: server error event {event}")]
    ServerError {
        /// Which chat.
        place: String,
        /// The error event, as JSON.
        event: String,
    },
}

/// Runs heartbeat, `opts.chats` chats and the error probe against `opts.url`.
pub async fn run(opts: &FrontendOptions) -> Result<FrontendReport, FrontendError> {
    let mut session = Session::connect(opts).await?;
    session.heartbeat().await?;
    for i in 0..opts.chats {
        session.chat(i).await?;
    }
    if opts.error_probe {
        session.error_probe().await?;
    }
    close_ws(&mut session.ws, CloseCode::Normal).await;
    Ok(session.report)
}

type ClientWs = WebSocketStream<MaybeTlsStream<TcpStream>>;

struct Session {
    ws: ClientWs,
    timeout: Duration,
    report: FrontendReport,
}

/// What one chat looked like, for the end-of-chat checks.
#[derive(Default)]
struct ChatSeen {
    first: Option<String>,
    run_ids: BTreeSet<String>,
    open_tools: Vec<Value>,
}

impl Session {
    async fn connect(opts: &FrontendOptions) -> Result<Session, FrontendError> {
        let connecting =
            tokio_tungstenite::connect_async_with_config(opts.url.as_str(), None, true);
        let ws = match tokio::time::timeout(OPEN_TIMEOUT, connecting).await {
            Err(_) => {
                return Err(FrontendError::Timeout {
                    waiting_for: format!("the connection to {}", opts.url),
                    timeout: OPEN_TIMEOUT,
                })
            }
            Ok(Err(e)) => {
                return Err(FrontendError::Connect {
                    url: opts.url.clone(),
                    source: Box::new(e),
                })
            }
            Ok(Ok((ws, _response))) => ws,
        };
        Ok(Session {
            ws,
            timeout: opts.timeout,
            report: FrontendReport::default(),
        })
    }

    async fn send(&mut self, text: String) -> Result<(), FrontendError> {
        self.report.sent += 1;
        self.ws
            .send(Message::text(text))
            .await
            .map_err(|e| FrontendError::WebSocket {
                during: "send".to_owned(),
                source: Box::new(e),
            })
    }

    /// The next data frame as JSON; `None` (and a problem) if it is not JSON.
    async fn recv_json(&mut self, place: &str) -> Result<Option<Value>, FrontendError> {
        loop {
            let frame = tokio::time::timeout(self.timeout, self.ws.next()).await;
            let msg = match frame {
                Err(_) => {
                    return Err(FrontendError::Timeout {
                        waiting_for: place.to_owned(),
                        timeout: self.timeout,
                    })
                }
                Ok(None) | Ok(Some(Ok(Message::Close(_)))) => {
                    return Err(FrontendError::Closed {
                        waiting_for: place.to_owned(),
                    })
                }
                Ok(Some(Err(e))) => {
                    return Err(FrontendError::WebSocket {
                        during: place.to_owned(),
                        source: Box::new(e),
                    })
                }
                Ok(Some(Ok(msg))) => msg,
            };
            let raw: &[u8] = match &msg {
                Message::Text(text) => text.as_bytes(),
                Message::Binary(bytes) => bytes,
                _ => continue,
            };
            self.report.received += 1;
            return Ok(match serde_json::from_slice(raw) {
                Ok(value) => Some(value),
                Err(_) => {
                    let shown: String = String::from_utf8_lossy(raw).chars().take(100).collect();
                    self.report
                        .problem(place, format!("non-JSON frame: {shown:?}"));
                    None
                }
            });
        }
    }

    async fn heartbeat(&mut self) -> Result<(), FrontendError> {
        self.send(json!({"type": HEARTBEAT, "timestamp": epoch()}).to_string())
            .await?;
        let hb = self.recv_json("heartbeat").await?;
        if !hb.as_ref().is_some_and(valid_heartbeat) {
            let shown = hb.map_or_else(|| "None".to_owned(), |v| v.to_string());
            self.report
                .problem("heartbeat", format!("bad heartbeat_response: {shown}"));
        }
        Ok(())
    }

    async fn chat(&mut self, index: usize) -> Result<(), FrontendError> {
        let message_id = format!("msg_{}", hex_id(12));
        let text = CHATS[index % CHATS.len()];
        let place = format!("chat#{} {message_id}", index + 1);
        self.send(json!({"type": CHAT, "message_id": message_id, "text": text}).to_string())
            .await?;
        let mut seen = ChatSeen::default();
        loop {
            let Some(ev) = self.recv_json(&place).await? else {
                continue;
            };
            let kind = ev.get("type").map_or_else(|| "None".to_owned(), py_str);
            seen.first.get_or_insert_with(|| kind.clone());
            *self.report.events.entry(kind.clone()).or_default() += 1;
            if kind == ERROR {
                validate_error(&ev, &mut self.report, &place);
                return Err(FrontendError::ServerError {
                    place,
                    event: ev.to_string(),
                });
            }
            if !AGENT_EVENTS.contains(&kind.as_str()) {
                let shown = ev.get("type").map_or_else(|| "None".to_owned(), py_repr);
                self.report
                    .problem(&place, format!("unexpected event type {shown}"));
                continue;
            }
            self.track_event(&ev, &kind, &place, &mut seen);
            if kind == "agent_completed" {
                break;
            }
        }
        self.finish_chat(&place, seen);
        Ok(())
    }

    /// Validates one agent event and follows its run_id and tool.
    fn track_event(&mut self, ev: &Value, kind: &str, place: &str, seen: &mut ChatSeen) {
        let payload = validate_payload_event(ev, kind, &mut self.report, place);
        if let Some(p) = payload {
            seen.run_ids
                .insert(p.get("run_id").unwrap_or(&Value::Null).to_string());
        }
        let source = payload
            .filter(|p| !p.is_empty())
            .or_else(|| ev.get("data").and_then(Value::as_object));
        let tool = source
            .and_then(|s| s.get("tool_name"))
            .cloned()
            .unwrap_or(Value::Null);
        match kind {
            "tool_executing" => seen.open_tools.push(tool),
            "tool_completed" => match seen.open_tools.iter().position(|t| *t == tool) {
                Some(i) => {
                    seen.open_tools.remove(i);
                }
                None => self.report.problem(
                    place,
                    format!(
                        "tool_completed for {} without tool_executing",
                        py_str(&tool)
                    ),
                ),
            },
            _ => {}
        }
    }

    fn finish_chat(&mut self, place: &str, seen: ChatSeen) {
        if let Some(first) = seen.first.filter(|f| f != "agent_started") {
            self.report
                .problem(place, format!("first event is {first}, not agent_started"));
        }
        if !seen.open_tools.is_empty() {
            let tools: Vec<String> = seen.open_tools.iter().map(py_repr).collect();
            self.report.problem(
                place,
                format!("tools never completed: [{}]", tools.join(", ")),
            );
        }
        if seen.run_ids.len() > 1 {
            let ids: Vec<&str> = seen.run_ids.iter().map(String::as_str).collect();
            self.report.problem(
                place,
                format!("several run_ids in one chat: {{{}}}", ids.join(", ")),
            );
        }
    }

    async fn error_probe(&mut self) -> Result<(), FrontendError> {
        let place = "error-probe";
        self.send(ERROR_PROBE.to_owned()).await?;
        match self.recv_json(place).await? {
            Some(ev) if ev.get("type").and_then(Value::as_str) == Some(ERROR) => {
                validate_error(&ev, &mut self.report, place);
            }
            other => {
                let shown = other.map_or_else(|| "None".to_owned(), |v| v.to_string());
                self.report
                    .problem(place, format!("expected an error event, got {shown}"));
            }
        }
        Ok(())
    }
}

fn valid_heartbeat(hb: &Value) -> bool {
    hb.get("type").and_then(Value::as_str) == Some(HEARTBEAT_RESPONSE)
        && hb
            .get("timestamp")
            .and_then(Value::as_str)
            .is_some_and(is_iso)
        && hb.get("server_time").is_some_and(Value::is_number)
        && hb.get("client_id").is_some_and(Value::is_string)
}

fn validate_error(ev: &Value, report: &mut FrontendReport, place: &str) {
    let err = ev.get("error").and_then(Value::as_object);
    let ok = ev.get("client_id").is_some_and(Value::is_string)
        && ev.get("timestamp").is_some()
        && err.is_some_and(|e| {
            e.get("message").is_some_and(Value::is_string)
                && e.get("type").and_then(Value::as_str) == Some(SERVER_ERROR)
        });
    if !ok {
        report.problem(place, format!("bad error envelope: {ev}"));
    }
}

/// A non-empty string field.
fn non_empty_str(p: &Map<String, Value>, key: &str) -> bool {
    p.get(key)
        .and_then(Value::as_str)
        .is_some_and(|s| !s.is_empty())
}

fn has_prefix(p: &Map<String, Value>, key: &str, prefix: &str) -> bool {
    p.get(key)
        .and_then(Value::as_str)
        .is_some_and(|s| s.starts_with(prefix))
}

/// Checks an agent event's payload; returns it when it is an object.
fn validate_payload_event<'a>(
    ev: &'a Value,
    kind: &str,
    report: &mut FrontendReport,
    place: &str,
) -> Option<&'a Map<String, Value>> {
    let Some(p) = ev.get("payload").and_then(Value::as_object) else {
        let keys: Vec<String> = ev
            .as_object()
            .map(|o| o.keys().map(|k| format!("'{k}'")).collect())
            .unwrap_or_default();
        report.problem(
            place,
            format!(
                "{kind} has no object 'payload' (top-level keys: [{}])",
                keys.join(", ")
            ),
        );
        return None;
    };
    for key in ["agent_name", "user_id"] {
        if !non_empty_str(p, key) {
            report.problem(place, format!("{kind}.payload.{key} missing/not a string"));
        }
    }
    for (key, prefix) in [("run_id", "run_"), ("thread_id", "thread_")] {
        if !has_prefix(p, key, prefix) {
            let shown = p.get(key).map_or_else(|| "None".to_owned(), py_repr);
            report.problem(place, format!("{kind}.payload.{key} bad: {shown}"));
        }
    }
    if !p.get("timestamp").is_some_and(Value::is_number) {
        let shown = p
            .get("timestamp")
            .map_or_else(|| "None".to_owned(), py_repr);
        report.problem(
            place,
            format!("{kind}.payload.timestamp not a number: {shown}"),
        );
    }
    if kind.starts_with("tool_") && !p.get("tool_name").is_some_and(super::protocol::is_truthy) {
        report.problem(place, format!("{kind}.payload.tool_name missing"));
    }
    Some(p)
}
