//! Fault injection during a replay (`--fault ROUTE:ACTION[:KIND]`).
//!
//! A rule applies to the messages wsreplay itself sends on a route: on a `--mock`
//! route the mock's recorded responses (the mock side), on a `--target` route the
//! replayed client's messages (the client side). `KIND` is the message's label (its
//! `type` or other discriminator); without it the rule hits every data message.
//!
//! | action | effect |
//! |---|---|
//! | `drop` | the message is not sent |
//! | `delay=DURATION` | the message is sent `DURATION` later (`2s`, `250ms`, `1.5s`) |
//! | `duplicate` | the message is sent twice |
//! | `reorder` | the message is held back and sent right after the next one (at the latest [`REORDER_HOLD`] later) |
//! | `corrupt` | the message is sent with its last byte cut off: invalid JSON |
//! | `disconnect-after=N` | after the N-th (matching) message the connection is dropped, without a close handshake |
//!
//! The first `drop`/`delay`/`duplicate`/`reorder`/`corrupt` rule matching a message
//! applies; `disconnect-after` rules count alongside. Every injection is written to the
//! captured run as a `fault` record next to the message it hit, so the run says what
//! was done to it.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use tokio_tungstenite::tungstenite::Message as WsMessage;

use super::capture::ConnCapture;
use crate::protocol;
use crate::recording::{Body, Dir, Opcode};

/// Longest time a `reorder` holds a message back when nothing follows it.
pub const REORDER_HOLD: Duration = Duration::from_secs(1);

/// What a rule does to a matching message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    Drop,
    Delay(Duration),
    Duplicate,
    Reorder,
    Corrupt,
    DisconnectAfter(u64),
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::Drop => f.write_str("drop"),
            Action::Delay(d) => write!(f, "delay={}", humanize(*d)),
            Action::Duplicate => f.write_str("duplicate"),
            Action::Reorder => f.write_str("reorder"),
            Action::Corrupt => f.write_str("corrupt"),
            Action::DisconnectAfter(n) => write!(f, "disconnect-after={n}"),
        }
    }
}

/// One `--fault` rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FaultRule {
    /// The rule as the user wrote it.
    pub spec: String,
    pub route: String,
    pub action: Action,
    /// Message label the rule is limited to; `None`: every data message.
    pub kind: Option<String>,
}

impl FaultRule {
    fn matches(&self, label: &str) -> bool {
        self.kind.as_deref().is_none_or(|k| k == label)
    }
}

const SYNTAX: &str = "expected ROUTE:ACTION[:KIND], ACTION one of drop, delay=DURATION, duplicate, reorder, corrupt, disconnect-after=N (e.g. data:drop:sql_query_response, nlp:delay=2s, frontend:disconnect-after=3)";

/// Why a `--fault` rule cannot be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("--fault {spec:?}: {problem}")]
pub struct FaultSpecError {
    /// The rule as the user wrote it.
    pub spec: String,
    #[source]
    pub problem: FaultSpecProblem,
}

/// What is wrong with a `--fault` rule.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FaultSpecProblem {
    #[error("{SYNTAX}")]
    Syntax,
    #[error("the route is missing; {SYNTAX}")]
    NoRoute,
    #[error("unknown action {0:?}; {SYNTAX}")]
    UnknownAction(String),
    #[error("delay needs a duration, e.g. delay=2s or delay=250ms, not {0:?}")]
    Duration(String),
    #[error("disconnect-after needs a number of messages, e.g. disconnect-after=3, not {0:?}")]
    Count(String),
}

impl FromStr for FaultRule {
    type Err = FaultSpecError;

    fn from_str(spec: &str) -> Result<Self, FaultSpecError> {
        let bad = |problem: FaultSpecProblem| FaultSpecError {
            spec: spec.to_string(),
            problem,
        };
        let mut parts = spec.splitn(3, ':');
        let (Some(route), Some(action)) = (parts.next(), parts.next()) else {
            return Err(bad(FaultSpecProblem::Syntax));
        };
        let kind = parts.next().filter(|k| !k.is_empty()).map(str::to_string);
        if route.is_empty() {
            return Err(bad(FaultSpecProblem::NoRoute));
        }
        let (name, value) = match action.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (action, None),
        };
        let action = match (name, value) {
            ("drop", None) => Action::Drop,
            ("duplicate", None) => Action::Duplicate,
            ("reorder", None) => Action::Reorder,
            ("corrupt", None) => Action::Corrupt,
            ("delay", Some(v)) => Action::Delay(parse_duration(v).map_err(bad)?),
            ("disconnect-after", Some(v)) => Action::DisconnectAfter(
                v.parse()
                    .map_err(|_| bad(FaultSpecProblem::Count(v.to_string())))?,
            ),
            _ => return Err(bad(FaultSpecProblem::UnknownAction(action.to_string()))),
        };
        Ok(FaultRule {
            spec: spec.to_string(),
            route: route.to_string(),
            action,
            kind,
        })
    }
}

/// `2s`, `250ms`, `1.5s`.
fn parse_duration(v: &str) -> Result<Duration, FaultSpecProblem> {
    let (number, scale) = if let Some(n) = v.strip_suffix("ms") {
        (n, 1e-3)
    } else if let Some(n) = v.strip_suffix('s') {
        (n, 1.0)
    } else {
        (v, 0.0)
    };
    number
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|_| scale > 0.0)
        .and_then(|n| Duration::try_from_secs_f64(n * scale).ok())
        .ok_or_else(|| FaultSpecProblem::Duration(v.to_string()))
}

fn humanize(d: Duration) -> String {
    if d.subsec_millis() == 0 && d.as_secs() > 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

/// What to do with a message after the rules saw it.
#[derive(Debug)]
pub enum Out {
    /// Send it now.
    Send(WsMessage),
    /// Send it after this long (without applying the rules again).
    Later(Duration, WsMessage),
    /// A message is held back (`reorder`): call [`Injector::release`] after this long.
    Held(Duration),
    /// Drop the connection now, without a close handshake.
    Disconnect(String),
}

/// The rules of one route applied to one connection.
pub struct Injector {
    rules: Vec<FaultRule>,
    /// Per rule: matching messages sent so far (for `disconnect-after`).
    counts: Vec<u64>,
    /// A message `reorder` holds back, with its label.
    held: Option<(WsMessage, String)>,
    /// Messages dropped since [`Injector::take_dropped`] was last called.
    dropped: u64,
    dir: Dir,
    /// How the route's protocol reads what is sent (plain JSON when not set).
    decoder: Option<Box<dyn protocol::Decoder>>,
}

impl Injector {
    /// The rules of `route`, for messages wsreplay sends in `dir`.
    pub fn new(rules: &[FaultRule], route: &str, dir: Dir) -> Injector {
        let rules: Vec<FaultRule> = rules.iter().filter(|r| r.route == route).cloned().collect();
        Injector {
            counts: vec![0; rules.len()],
            rules,
            held: None,
            dropped: 0,
            dir,
            decoder: None,
        }
    }

    /// Names messages as `decoder` (the route's protocol) does, so a rule's KIND is a
    /// Socket.IO event or a JSON-RPC method as `show` names it.
    pub fn reading_with(mut self, decoder: Box<dyn protocol::Decoder>) -> Injector {
        self.decoder = Some(decoder);
        self
    }

    /// Lets the protocol see a message of the other direction (a JSON-RPC response is
    /// named after the request it answers).
    pub fn observe(&mut self, dir: Dir, op: Opcode, body: &Body) {
        let active = self.active();
        if let (Some(decoder), true) = (&mut self.decoder, active) {
            decoder.decode(dir, op, body, &mut Vec::new());
        }
    }

    /// Whether any rule applies (if not, messages can skip [`Injector::outgoing`]).
    pub fn active(&self) -> bool {
        !self.rules.is_empty()
    }

    /// A `disconnect-after=0` rule: drop the connection before sending anything.
    pub fn disconnect_at_once(&self, capture: &mut ConnCapture) -> Option<Out> {
        let rule = self
            .rules
            .iter()
            .find(|r| r.action == Action::DisconnectAfter(0))?;
        Some(self.disconnect(rule, "(connection)", capture))
    }

    /// Applies the rules to a message about to be sent; returns what to send and do,
    /// in order, and records every injection in `capture`.
    pub fn outgoing(&mut self, msg: WsMessage, capture: &mut ConnCapture) -> Vec<Out> {
        let (op, body) = match &msg {
            WsMessage::Text(t) => (Opcode::TEXT, Body::Text(t.to_string())),
            WsMessage::Binary(b) => (Opcode::BINARY, Body::Bytes(b.to_vec())),
            WsMessage::Close(_) => {
                let mut out = self.release(capture);
                if !matches!(out.last(), Some(Out::Disconnect(_))) {
                    out.push(Out::Send(msg));
                }
                return out;
            }
            _ => return vec![Out::Send(msg)],
        };
        let label = match &mut self.decoder {
            Some(decoder) => {
                let mut events = Vec::with_capacity(1);
                decoder.decode(self.dir, op, &body, &mut events);
                protocol::label_of_events(&events, op, &body)
            }
            None => protocol::label(op, &body),
        };
        let mut planned = Vec::new();
        let rule = self
            .rules
            .iter()
            .find(|r| !matches!(r.action, Action::DisconnectAfter(_)) && r.matches(&label));
        match rule.map(|r| (r.clone(), r.action.clone())) {
            None => planned.push((Out::Send(msg), label)),
            Some((rule, action)) => {
                self.record(&rule, &label, capture);
                match action {
                    Action::Drop => self.dropped += 1,
                    Action::Delay(d) => planned.push((Out::Later(d, msg), label)),
                    Action::Duplicate => planned.extend([
                        (Out::Send(msg.clone()), label.clone()),
                        (Out::Send(msg), label),
                    ]),
                    Action::Corrupt => planned.push((Out::Send(corrupt(msg)), label)),
                    Action::Reorder if self.held.is_none() => {
                        self.held = Some((msg, label));
                        return vec![Out::Held(REORDER_HOLD)];
                    }
                    // A second reordered message while one is held: the held one goes
                    // after it, like after any other message.
                    Action::Reorder => planned.push((Out::Send(msg), label)),
                    Action::DisconnectAfter(_) => unreachable!("filtered above"),
                }
            }
        }
        planned.extend(self.held.take().map(|(m, l)| (Out::Send(m), l)));
        self.counted(planned, capture)
    }

    /// Messages dropped by a `drop` rule since the last call.
    pub fn take_dropped(&mut self) -> u64 {
        std::mem::take(&mut self.dropped)
    }

    /// The message a `reorder` held back, if it is still held.
    pub fn release(&mut self, capture: &mut ConnCapture) -> Vec<Out> {
        let planned = self.held.take().map(|(m, l)| (Out::Send(m), l));
        self.counted(planned.into_iter().collect(), capture)
    }

    /// Counts the messages about to be sent for `disconnect-after` rules; the
    /// connection is cut right after the N-th.
    fn counted(&mut self, planned: Vec<(Out, String)>, capture: &mut ConnCapture) -> Vec<Out> {
        let mut out = Vec::with_capacity(planned.len());
        for (o, label) in planned {
            out.push(o);
            for i in 0..self.rules.len() {
                let rule = &self.rules[i];
                if let Action::DisconnectAfter(n) = rule.action {
                    if rule.matches(&label) {
                        self.counts[i] += 1;
                        if self.counts[i] == n {
                            let rule = rule.clone();
                            out.push(self.disconnect(&rule, &label, capture));
                            return out;
                        }
                    }
                }
            }
        }
        out
    }

    fn disconnect(&self, rule: &FaultRule, label: &str, capture: &mut ConnCapture) -> Out {
        self.record(rule, label, capture);
        Out::Disconnect(format!("fault injected: {}", rule.spec))
    }

    fn record(&self, rule: &FaultRule, label: &str, capture: &mut ConnCapture) {
        capture.fault(self.dir, &rule.spec, &rule.action.to_string(), label);
    }
}

/// The message with its last byte (character, for text) cut off.
fn corrupt(msg: WsMessage) -> WsMessage {
    match msg {
        WsMessage::Text(t) => {
            let mut s = t.to_string();
            s.pop();
            WsMessage::text(s)
        }
        WsMessage::Binary(b) => WsMessage::binary(b[..b.len().saturating_sub(1)].to_vec()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_parse_as_documented() {
        let r: FaultRule = "data:drop:sql_query_response".parse().unwrap();
        assert_eq!(
            (r.route.as_str(), &r.action, r.kind.as_deref()),
            ("data", &Action::Drop, Some("sql_query_response"))
        );
        let parse = |s: &str| s.parse::<FaultRule>().map(|r| r.action);
        assert_eq!(
            parse("nlp:delay=2s"),
            Ok(Action::Delay(Duration::from_secs(2)))
        );
        assert_eq!(
            parse("nlp:delay=250ms:x"),
            Ok(Action::Delay(Duration::from_millis(250)))
        );
        assert_eq!(
            parse("frontend:disconnect-after=3"),
            Ok(Action::DisconnectAfter(3))
        );
        for action in ["duplicate", "reorder", "corrupt"] {
            assert!(parse(&format!("viz:{action}")).is_ok(), "{action}");
        }
        for bad in [
            "data",
            ":drop",
            "data:explode",
            "data:delay=2",
            "data:disconnect-after=x",
        ] {
            let e = parse(bad).unwrap_err().to_string();
            assert!(e.contains(bad) && e.contains("e.g."), "{e}");
        }
        assert_eq!(
            Action::Delay(Duration::from_millis(1500)).to_string(),
            "delay=1500ms"
        );
    }

    #[test]
    fn corrupted_json_no_longer_parses() {
        let WsMessage::Text(t) = corrupt(WsMessage::text(r#"{"type":"x"}"#)) else {
            panic!()
        };
        assert!(serde_json::from_str::<serde_json::Value>(&t).is_err());
    }
}
