//! Agent services of the demo system (nlp / data / viz), mirroring `agent_server.py`:
//! each answers its one request type with `{"type": <response type>, "response_to",
//! "client_id", "timestamp", "data"}` after a jittered delay (delay +-50 %), concurrently,
//! so replies on one connection can come back out of order. Heartbeats get a
//! `heartbeat_response`; anything else gets the error envelope.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use futures_util::stream::FuturesUnordered;
use futures_util::{SinkExt, StreamExt};
use serde::Serialize;
use serde_json::{json, Map, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;
use tracing::{debug, info};

use super::protocol::{
    agent_response, error_message, heartbeat_response, hex_id, is_truthy, py_repr, py_str,
    random_unit, round_to, SeededRng, HEARTBEAT,
};
use super::{accept_loop, bind, close_ws, handshake, Server, ShutdownSignal};

/// Keyword -> intent, first match wins.
const INTENTS: [(&str, &str); 8] = [
    ("cost", "cost_analysis"),
    ("spend", "cost_analysis"),
    ("bill", "cost_analysis"),
    ("usage", "usage_trend"),
    ("trend", "usage_trend"),
    ("cpu", "usage_trend"),
    ("anomal", "anomaly_detection"),
    ("spike", "anomaly_detection"),
];
const SERVICES: [&str; 7] = [
    "EC2",
    "S3",
    "RDS",
    "Lambda",
    "CloudFront",
    "DynamoDB",
    "EKS",
];

/// Which agent a server is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AgentKind {
    /// Intent and entity extraction.
    Nlp,
    /// SQL over billing data.
    Data,
    /// Chart generation.
    Viz,
}

impl AgentKind {
    /// `nlp`, `data` or `viz`.
    pub const fn name(self) -> &'static str {
        match self {
            AgentKind::Nlp => "nlp",
            AgentKind::Data => "data",
            AgentKind::Viz => "viz",
        }
    }

    /// The request type this agent handles.
    pub const fn request_type(self) -> &'static str {
        match self {
            AgentKind::Nlp => "nlp_query",
            AgentKind::Data => "sql_query",
            AgentKind::Viz => "generate_chart",
        }
    }

    /// The type of this agent's replies.
    pub const fn response_type(self) -> &'static str {
        match self {
            AgentKind::Nlp => "nlp_query_response",
            AgentKind::Data => "sql_query_response",
            AgentKind::Viz => "chart_generation_response",
        }
    }

    /// Every agent kind.
    pub const fn all() -> [AgentKind; 3] {
        [AgentKind::Nlp, AgentKind::Data, AgentKind::Viz]
    }

    /// The full reply to `req`, sent from the connection `client_id`.
    fn reply(self, client_id: &str, req: &Map<String, Value>) -> String {
        let response_to = req.get("message_id").unwrap_or(&Value::Null);
        let kind = self.response_type();
        match self {
            AgentKind::Nlp => agent_response(kind, response_to, client_id, &nlp_data(req)),
            AgentKind::Data => agent_response(kind, response_to, client_id, &sql_data(req)),
            AgentKind::Viz => agent_response(kind, response_to, client_id, &chart_data(req)),
        }
    }
}

/// Starts an agent of `kind` on `bind`, answering after `delay` (+-50 % jitter).
pub async fn spawn(kind: AgentKind, bind_addr: SocketAddr, delay: Duration) -> io::Result<Server> {
    let (listener, addr) = bind(bind_addr).await?;
    info!(
        "{} agent listening on ws://{addr} (handles {})",
        kind.name(),
        kind.request_type()
    );
    Ok(Server::start(addr, move |stop| {
        accept_loop(listener, stop, move |stream, peer, stop| {
            serve_connection(kind, delay, stream, peer, stop)
        })
    }))
}

/// What to do with one incoming frame.
enum Inbound {
    /// Send this text now.
    Reply(String),
    /// Answer this request after the simulated delay.
    Request(Map<String, Value>),
    /// Control frame: nothing to do.
    Ignore,
}

async fn serve_connection(
    kind: AgentKind,
    delay: Duration,
    stream: TcpStream,
    peer: SocketAddr,
    mut stop: ShutdownSignal,
) {
    let Some((mut ws, uri)) = handshake(stream, peer, &mut stop).await else {
        return;
    };
    let client_id = format!("{}_client_{}", kind.name(), hex_id(8));
    info!("connection {client_id} from {peer} path={uri}");
    let mut answers = FuturesUnordered::new();
    loop {
        let outgoing = tokio::select! {
            () = stop.wait() => {
                close_ws(&mut ws, CloseCode::Away).await;
                break;
            }
            frame = ws.next() => match frame {
                Some(Ok(msg)) => match classify(kind, &client_id, &msg) {
                    Inbound::Reply(text) => text,
                    Inbound::Request(req) => {
                        answers.push(answer(kind, &client_id, req, jitter(delay)));
                        continue;
                    }
                    Inbound::Ignore => continue,
                },
                Some(Err(e)) => {
                    debug!("connection {client_id}: {e}");
                    break;
                }
                None => break,
            },
            Some(text) = answers.next(), if !answers.is_empty() => text,
        };
        if ws.send(Message::text(outgoing)).await.is_err() {
            break;
        }
    }
    info!("connection {client_id} closed");
}

/// `delay` scaled by a random factor in `[0.5, 1.5)`.
fn jitter(delay: Duration) -> Duration {
    delay.mul_f64(0.5 + random_unit())
}

/// Builds the reply to `req` once `delay` has passed.
async fn answer(
    kind: AgentKind,
    client_id: &str,
    req: Map<String, Value>,
    delay: Duration,
) -> String {
    tokio::time::sleep(delay).await;
    kind.reply(client_id, &req)
}

fn classify(kind: AgentKind, client_id: &str, msg: &Message) -> Inbound {
    let raw: &[u8] = match msg {
        Message::Text(text) => text.as_bytes(),
        Message::Binary(bytes) => bytes,
        _ => return Inbound::Ignore,
    };
    let req = match serde_json::from_slice::<Value>(raw) {
        Ok(Value::Object(req)) => req,
        Ok(_) => return Inbound::Reply(error_message(client_id, "invalid JSON: not an object")),
        Err(e) => return Inbound::Reply(error_message(client_id, &format!("invalid JSON: {e}"))),
    };
    let kind_field = req.get("type").cloned().unwrap_or(Value::Null);
    match kind_field.as_str() {
        Some(HEARTBEAT) => Inbound::Reply(heartbeat_response(client_id)),
        Some(t) if t == kind.request_type() => {
            if req.get("message_id").is_some_and(is_truthy) {
                Inbound::Request(req)
            } else {
                Inbound::Reply(error_message(client_id, "missing message_id"))
            }
        }
        _ => Inbound::Reply(error_message(
            client_id,
            &format!(
                "unsupported message type {} for {} agent (expected '{}')",
                py_repr(&kind_field),
                kind.name(),
                kind.request_type()
            ),
        )),
    }
}

/// `str(req.get(key, ""))`.
fn str_field(req: &Map<String, Value>, key: &str) -> String {
    req.get(key).map(py_str).unwrap_or_default()
}

/// `data` of an `nlp_query_response`.
#[derive(Debug, Serialize)]
struct NlpData {
    intent: &'static str,
    confidence: f64,
    entities: Entities,
    language: &'static str,
    tokens: usize,
}

#[derive(Debug, Serialize)]
struct Entities {
    services: Vec<&'static str>,
    time_range: &'static str,
    currency: &'static str,
}

fn nlp_data(req: &Map<String, Value>) -> NlpData {
    let text = str_field(req, "text");
    let low = text.to_lowercase();
    let intent = INTENTS
        .iter()
        .find(|(keyword, _)| low.contains(keyword))
        .map_or("general_question", |(_, intent)| intent);
    let mut rng = SeededRng::from_parts(&["nlp", &text]);
    let mut services: Vec<&str> = SERVICES
        .into_iter()
        .filter(|s| low.contains(&s.to_lowercase()))
        .collect();
    if services.is_empty() {
        services = rng.sample(&SERVICES, 2);
    }
    NlpData {
        intent,
        confidence: round_to(rng.uniform(0.71, 0.99), 3),
        entities: Entities {
            services,
            time_range: "last_30_days",
            currency: "USD",
        },
        language: "en",
        tokens: text.split_whitespace().count(),
    }
}

/// `data` of a `sql_query_response`.
#[derive(Debug, Serialize)]
struct SqlData {
    sql: String,
    columns: [&'static str; 3],
    rows: Vec<CostRow>,
    row_count: usize,
    execution_ms: f64,
}

#[derive(Debug, Serialize)]
struct CostRow {
    service: Value,
    cost_usd: f64,
    usage_hours: u64,
}

fn sql_data(req: &Map<String, Value>) -> SqlData {
    let sql = str_field(req, "sql");
    let mut rng = SeededRng::from_parts(&["sql", &sql, &str_field(req, "intent")]);
    let services = match req.get("services") {
        Some(Value::Array(list)) if !list.is_empty() => list.clone(),
        _ => SERVICES[..3].iter().map(|s| json!(s)).collect(),
    };
    let rows: Vec<CostRow> = services
        .into_iter()
        .map(|service| CostRow {
            service,
            cost_usd: round_to(rng.uniform(10.0, 5000.0), 2),
            usage_hours: rng.int_range(1, 720),
        })
        .collect();
    SqlData {
        sql,
        columns: ["service", "cost_usd", "usage_hours"],
        row_count: rows.len(),
        rows,
        execution_ms: round_to(rng.uniform(3.0, 80.0), 2),
    }
}

/// `data` of a `chart_generation_response`.
#[derive(Debug, Serialize)]
struct ChartData<'a> {
    chart_id: String,
    chart_type: Value,
    format: &'static str,
    title: Value,
    series: Vec<Point<'a>>,
    width: u32,
    height: u32,
}

#[derive(Debug, Serialize)]
struct Point<'a> {
    x: Option<&'a Value>,
    y: Option<&'a Value>,
}

fn chart_data(req: &Map<String, Value>) -> ChartData<'_> {
    let series = match req.get("rows") {
        Some(Value::Array(rows)) => rows
            .iter()
            .map(|row| Point {
                x: row.get("service"),
                y: row.get("cost_usd"),
            })
            .collect(),
        _ => Vec::new(),
    };
    ChartData {
        chart_id: format!("chart_{}", hex_id(12)),
        chart_type: req
            .get("chart_type")
            .cloned()
            .unwrap_or_else(|| json!("bar")),
        format: "vega-lite",
        title: req
            .get("title")
            .cloned()
            .unwrap_or_else(|| json!("Cost by service")),
        series,
        width: 640,
        height: 360,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn as_json<T: Serialize>(data: &T) -> Value {
        serde_json::to_value(data).expect("json")
    }

    fn req(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    #[test]
    fn nlp_finds_intent_and_services() {
        let text = "What did we spend on EC2 and S3 last month?";
        let d = as_json(&nlp_data(&req(json!({ "text": text }))));
        assert_eq!(d["intent"], "cost_analysis");
        assert_eq!(d["entities"]["services"], json!(["EC2", "S3"]));
        assert_eq!(d["tokens"], 10);
        let c = d["confidence"].as_f64().unwrap_or_default();
        assert!((0.71..=0.99).contains(&c));
    }

    #[test]
    fn nlp_samples_two_services_deterministically() {
        let a = as_json(&nlp_data(&req(json!({"text": "hello there"}))));
        let b = as_json(&nlp_data(&req(json!({"text": "hello there"}))));
        assert_eq!(a, b);
        assert_eq!(a["intent"], "general_question");
        assert_eq!(a["entities"]["services"].as_array().map(Vec::len), Some(2));
    }

    #[test]
    fn sql_rows_follow_services() {
        let r = req(json!({"sql": "x", "intent": "i", "services": ["EC2"]}));
        let d = as_json(&sql_data(&r));
        assert_eq!(d["row_count"], 1);
        assert_eq!(d["rows"][0]["service"], "EC2");
        assert!(d["rows"][0]["usage_hours"].is_u64());
        let default = as_json(&sql_data(&req(json!({}))));
        assert_eq!(default["row_count"], 3);
    }

    #[test]
    fn chart_series_from_rows() {
        let r = req(json!({"rows": [{"service": "S3", "cost_usd": 1.5}]}));
        let d = as_json(&chart_data(&r));
        assert_eq!(d["series"], json!([{"x": "S3", "y": 1.5}]));
        assert_eq!(d["chart_type"], "bar");
        assert!(d["chart_id"]
            .as_str()
            .is_some_and(|id| id.starts_with("chart_")));
    }
}
