//! Wire protocol of the demo system, shared by the backend, the agents and the frontend:
//! message type names, the error / heartbeat / agent envelopes, the agent event builders
//! (clean and legacy "regression" shape), ids, timestamps, and the seeded RNG that makes
//! the per-chat variation deterministic. Field names, JSON types and key order follow the
//! reference Python system (`common.py`, `backend_server.py`).

use std::time::{SystemTime, UNIX_EPOCH};

use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};
use serde_json::Value;
use time::format_description::well_known::Iso8601;
use time::macros::format_description;
use time::{Date, OffsetDateTime, PrimitiveDateTime};

/// Frontend -> backend chat request.
pub const CHAT: &str = "chat";
/// Heartbeat request (frontend -> backend, backend -> agent).
pub const HEARTBEAT: &str = "heartbeat";
/// Reply to [`HEARTBEAT`].
pub const HEARTBEAT_RESPONSE: &str = "heartbeat_response";
/// Error envelope type.
pub const ERROR: &str = "error";
/// The only `error.type` the system emits.
pub const SERVER_ERROR: &str = "server_error";
/// Event type that the regression build breaks by default (`REGRESSION_EVENTS` default).
pub const DEFAULT_REGRESSION_EVENT: &str = "tool_executing";

/// Agent events the backend streams to the frontend for each chat.
pub const AGENT_EVENTS: [&str; 6] = [
    "agent_started",
    "agent_thinking",
    "progress_update",
    "tool_executing",
    "tool_completed",
    "agent_completed",
];

/// Serializes an envelope built from plain strings, numbers and JSON values.
fn to_json<T: Serialize>(value: &T) -> String {
    // Only string-keyed maps and plain values are serialized here, which cannot fail.
    serde_json::to_string(value).expect("envelope serialization is infallible")
}

/// Current UTC time like Python's `datetime.now(timezone.utc).isoformat()`,
/// e.g. `2025-01-02T03:04:05.123456+00:00`.
pub fn iso_now() -> String {
    let fmt = format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]+00:00"
    );
    OffsetDateTime::now_utc()
        .format(&fmt)
        .unwrap_or_else(|_| OffsetDateTime::UNIX_EPOCH.to_string())
}

/// Whether `s` parses as an ISO-8601 date or date-time (what `datetime.fromisoformat` takes).
pub fn is_iso(s: &str) -> bool {
    OffsetDateTime::parse(s, &Iso8601::PARSING).is_ok()
        || PrimitiveDateTime::parse(s, &Iso8601::PARSING).is_ok()
        || Date::parse(s, &Iso8601::PARSING).is_ok()
}

/// Seconds since the Unix epoch as a float (Python `time.time()`).
pub fn epoch() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Random bytes from the OS.
fn random_bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    getrandom::fill(&mut buf).expect("the OS random number generator is unavailable");
    buf
}

/// A random `f64` in `[0, 1)` (not seeded; for jitter).
pub fn random_unit() -> f64 {
    unit_from_u64(u64::from_le_bytes(random_bytes()))
}

fn unit_from_u64(x: u64) -> f64 {
    (x >> 11) as f64 / (1u64 << 53) as f64
}

/// A random version-4 UUID in its hyphenated form (Python `str(uuid.uuid4())`).
pub fn uuid4() -> String {
    let h = uuid4_hex();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// The 32 hex digits of a random version-4 UUID (Python `uuid.uuid4().hex`).
fn uuid4_hex() -> String {
    let mut b: [u8; 16] = random_bytes();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    b.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// The first `len` (at most 32) hex digits of a fresh uuid4 (Python `uuid4().hex[:len]`).
pub fn hex_id(len: usize) -> String {
    let mut h = uuid4_hex();
    h.truncate(len);
    h
}

/// Rounds to `digits` decimal places (Python `round(x, digits)` for display values).
pub fn round_to(x: f64, digits: i32) -> f64 {
    let scale = 10f64.powi(digits);
    (x * scale).round() / scale
}

/// JSON object fields kept in insertion order (Python dict order), serialized as a map and
/// flattened into the envelopes.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Fields(Vec<(&'static str, Value)>);

impl Fields {
    /// The value of `key`, if present.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0.iter().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    /// These fields less `key`.
    fn without(&self, key: &str) -> Fields {
        Fields(self.0.iter().filter(|(k, _)| *k != key).cloned().collect())
    }
}

impl Serialize for Fields {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (key, value) in &self.0 {
            map.serialize_entry(key, value)?;
        }
        map.end()
    }
}

/// Builds [`Fields`] from `(key, value)` pairs, in that order.
pub fn fields<const N: usize>(pairs: [(&'static str, Value); N]) -> Fields {
    Fields(pairs.into())
}

/// Python's `str()` of a JSON value: strings bare, `None`/`True`/`False`, else JSON text.
pub fn py_str(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "None".to_owned(),
        Value::Bool(true) => "True".to_owned(),
        Value::Bool(false) => "False".to_owned(),
        other => other.to_string(),
    }
}

/// Python's `repr()` of a JSON value, close enough for messages: strings single-quoted.
pub fn py_repr(v: &Value) -> String {
    match v {
        Value::String(s) => format!("'{s}'"),
        other => py_str(other),
    }
}

/// Python truthiness of a JSON value.
pub fn is_truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|x| x != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

#[derive(Serialize)]
struct ErrorEnvelope<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    client_id: &'a str,
    timestamp: String,
    error: ErrorBody<'a>,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    message: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
}

/// The error envelope used by the backend and the agents.
pub fn error_message(client_id: &str, message: &str) -> String {
    to_json(&ErrorEnvelope {
        kind: ERROR,
        client_id,
        timestamp: iso_now(),
        error: ErrorBody {
            message,
            kind: SERVER_ERROR,
        },
    })
}

#[derive(Serialize)]
struct HeartbeatResponse<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    timestamp: String,
    server_time: f64,
    client_id: &'a str,
}

/// The reply to a heartbeat.
pub fn heartbeat_response(client_id: &str) -> String {
    to_json(&HeartbeatResponse {
        kind: HEARTBEAT_RESPONSE,
        timestamp: iso_now(),
        server_time: epoch(),
        client_id,
    })
}

#[derive(Serialize)]
struct AgentRequest<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    message_id: &'a str,
    #[serde(flatten)]
    fields: &'a Fields,
}

/// Backend -> agent request: `{"type", "message_id", ...fields}`.
pub fn agent_request(kind: &str, message_id: &str, fields: &Fields) -> String {
    to_json(&AgentRequest {
        kind,
        message_id,
        fields,
    })
}

#[derive(Serialize)]
struct AgentResponse<'a, T> {
    #[serde(rename = "type")]
    kind: &'a str,
    response_to: &'a Value,
    client_id: &'a str,
    timestamp: String,
    data: &'a T,
}

/// Agent -> backend response: `{"type", "response_to", "client_id", "timestamp", "data"}`.
pub fn agent_response<T: Serialize>(
    kind: &str,
    response_to: &Value,
    client_id: &str,
    data: &T,
) -> String {
    to_json(&AgentResponse {
        kind,
        response_to,
        client_id,
        timestamp: iso_now(),
        data,
    })
}

/// Per-chat identifiers that every agent event carries.
#[derive(Clone, Debug)]
pub struct EventContext {
    /// `run_<uuid4>`, new per chat.
    pub run_id: String,
    /// The chat's `thread_id`, or `thread_<n>` counted per connection.
    pub thread_id: Value,
    /// The connection's user id.
    pub user_id: String,
    /// The chat's `message_id` as the frontend sent it.
    pub message_id: Value,
    /// `corr_<12 hex>`, only visible in the legacy shape.
    pub correlation_id: String,
}

#[derive(Serialize)]
struct Event<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    payload: Payload<'a>,
}

#[derive(Serialize)]
struct Payload<'a> {
    agent_name: &'a str,
    run_id: &'a str,
    thread_id: &'a Value,
    timestamp: f64,
    user_id: &'a str,
    message_id: &'a Value,
    #[serde(flatten)]
    extra: &'a Fields,
}

#[derive(Serialize)]
struct LegacyEvent<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    data: LegacyData<'a>,
    user_id: &'a str,
    run_id: &'a str,
    correlation_id: &'a str,
}

#[derive(Serialize)]
struct LegacyData<'a> {
    tool_name: Option<&'a Value>,
    metadata: LegacyMetadata<'a>,
    status: &'a str,
    timestamp: f64,
}

#[derive(Serialize)]
struct LegacyMetadata<'a> {
    agent_name: &'a str,
    thread_id: &'a Value,
    message_id: &'a Value,
    #[serde(flatten)]
    extra: Fields,
}

/// An agent event `{"type", "payload": {agent_name, run_id, thread_id, timestamp, user_id,
/// message_id, ...extra}}`, or with `legacy` the broken regression shape
/// `{"type", "data": {tool_name, metadata, status, timestamp}, "user_id", "run_id",
/// "correlation_id"}`.
pub fn agent_event(
    kind: &str,
    ctx: &EventContext,
    agent_name: &str,
    extra: &Fields,
    legacy: bool,
) -> String {
    let timestamp = epoch();
    if legacy {
        return legacy_event(kind, ctx, agent_name, extra, timestamp);
    }
    to_json(&Event {
        kind,
        payload: Payload {
            agent_name,
            run_id: &ctx.run_id,
            thread_id: &ctx.thread_id,
            timestamp,
            user_id: &ctx.user_id,
            message_id: &ctx.message_id,
            extra,
        },
    })
}

fn legacy_event(
    kind: &str,
    ctx: &EventContext,
    agent_name: &str,
    extra: &Fields,
    timestamp: f64,
) -> String {
    let metadata = LegacyMetadata {
        agent_name,
        thread_id: &ctx.thread_id,
        message_id: &ctx.message_id,
        extra: extra.without("tool_name"),
    };
    to_json(&LegacyEvent {
        kind,
        data: LegacyData {
            tool_name: extra.get("tool_name"),
            metadata,
            status: kind.split_once('_').map_or(kind, |(_, rest)| rest),
            timestamp,
        },
        user_id: &ctx.user_id,
        run_id: &ctx.run_id,
        correlation_id: &ctx.correlation_id,
    })
}

/// Deterministic RNG: blake3 of the `|`-joined seed parts, then splitmix64.
#[derive(Clone, Debug)]
pub struct SeededRng(u64);

impl SeededRng {
    /// Seeds from `parts.join("|")`, like the Python `rng_for(*parts)`.
    pub fn from_parts(parts: &[&str]) -> Self {
        let hash = blake3::hash(parts.join("|").as_bytes());
        let mut seed = [0u8; 8];
        seed.copy_from_slice(&hash.as_bytes()[..8]);
        Self(u64::from_le_bytes(seed))
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// An integer in `lo..=hi` (Python `randint`).
    pub fn int_range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo + 1)
    }

    /// A float in `[lo, hi)` (Python `uniform`).
    pub fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * unit_from_u64(self.next_u64())
    }

    /// `n` distinct items in random order (Python `sample`); all of them if `n >= len`.
    pub fn sample<T: Clone>(&mut self, items: &[T], n: usize) -> Vec<T> {
        let mut pool = items.to_vec();
        let n = n.min(pool.len());
        for i in 0..n {
            let j = i + (self.next_u64() % (pool.len() - i) as u64) as usize;
            pool.swap(i, j);
        }
        pool.truncate(n);
        pool
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ctx() -> EventContext {
        EventContext {
            run_id: "run_1".into(),
            thread_id: json!("thread_1"),
            user_id: "alice".into(),
            message_id: json!("m1"),
            correlation_id: "corr_1".into(),
        }
    }

    #[test]
    fn iso_now_is_python_isoformat() {
        let now = iso_now();
        assert!(now.ends_with("+00:00"), "{now}");
        assert_eq!(now.len(), "2025-01-02T03:04:05.123456+00:00".len());
        assert!(is_iso(&now));
        assert!(!is_iso("yesterday"));
    }

    #[test]
    fn ids_have_python_shapes() {
        let u = uuid4();
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
        assert_eq!(hex_id(12).len(), 12);
        assert_ne!(hex_id(16), hex_id(16));
    }

    #[test]
    fn seeded_rng_is_deterministic_and_in_range() {
        let mut a = SeededRng::from_parts(&["m1", "hello"]);
        let mut b = SeededRng::from_parts(&["m1", "hello"]);
        for _ in 0..100 {
            let x = a.int_range(1, 4);
            assert_eq!(x, b.int_range(1, 4));
            assert!((1..=4).contains(&x));
            let f = a.uniform(0.71, 0.99);
            assert_eq!(f, b.uniform(0.71, 0.99));
            assert!((0.71..0.99).contains(&f));
        }
        let picked = a.sample(&["a", "b", "c", "d"], 2);
        assert_eq!(picked.len(), 2);
        assert_ne!(picked[0], picked[1]);
    }

    #[test]
    fn clean_event_has_payload_in_python_order() {
        let ev = agent_event(
            "tool_executing",
            &ctx(),
            "data_helper",
            &fields([("tool_name", json!("t"))]),
            false,
        );
        assert!(
            ev.starts_with(
                r#"{"type":"tool_executing","payload":{"agent_name":"data_helper","run_id":"run_1""#
            ),
            "{ev}"
        );
        let v: Value = serde_json::from_str(&ev).expect("json");
        assert_eq!(v["payload"]["tool_name"], "t");
        assert!(v["payload"]["timestamp"].is_f64());
    }

    #[test]
    fn legacy_event_has_the_broken_shape() {
        let ev = agent_event(
            "tool_executing",
            &ctx(),
            "data_helper",
            &fields([("tool_name", json!("t")), ("parameters", json!({}))]),
            true,
        );
        let v: Value = serde_json::from_str(&ev).expect("json");
        assert!(v.get("payload").is_none());
        assert_eq!(v["data"]["tool_name"], "t");
        assert_eq!(v["data"]["status"], "executing");
        assert_eq!(v["data"]["metadata"]["agent_name"], "data_helper");
        assert!(v["data"]["metadata"].get("tool_name").is_none());
        assert_eq!(v["correlation_id"], "corr_1");
        assert_eq!(v["user_id"], "alice");
        assert_eq!(v["run_id"], "run_1");
    }

    #[test]
    fn envelopes_have_python_fields() {
        let e: Value = serde_json::from_str(&error_message("c1", "boom")).expect("json");
        assert_eq!(e["type"], "error");
        assert_eq!(e["error"]["type"], "server_error");
        assert_eq!(e["error"]["message"], "boom");
        let h: Value = serde_json::from_str(&heartbeat_response("c1")).expect("json");
        assert_eq!(h["type"], "heartbeat_response");
        assert!(h["server_time"].is_f64());
        assert_eq!(h["client_id"], "c1");
    }
}
