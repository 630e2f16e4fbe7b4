//! Which frontend connection the agent hops' messages belong to: the correlation
//! behind `wsreplay split --by session`.
//!
//! Every route other than the frontend is an agent hop. Its messages are paired into
//! exchanges (a request and the responses that answered it) exactly as a mock pairs
//! them ([`crate::replay::mock::table`]: protocol correlation ids, id values echoed as
//! `message_id` → `response_to`, `[[correlate]]` pairs, else the latest request). Each
//! exchange then belongs to one frontend connection opened before its request (one
//! still open, when there is one):
//!
//! 1. the one that shares the most distinctive values with it in the turn the exchange
//!    happened in: every string, every fractional number and every integer of four or
//!    more digits of the exchange's messages, and their protocol correlation ids,
//!    counted against the values (strings of four or more characters) of the frontend
//!    connection's messages from its latest client message before the request to its
//!    next one (what the user asked and what came back for it) and its upgrade's query
//!    parameters, however short (a `user_id=u7` the agent request carries on); a value
//!    several frontend connections share counts for each as one over how many. Ten users
//!    asking the same three questions all hold the first answer's values somewhere in
//!    their history; only those still on the first question hold them in this turn;
//! 2. among equals, the one that has had fewest exchanges on this agent route since
//!    its latest client message (each chat asks each agent once), then the one sharing
//!    the most of the request's values in the part of its turn before the request
//!    (what the service said just before it asked: of ten users on the same question,
//!    one that has not got there yet is an unlikely cause; the hops are recorded by
//!    separate connections, so this is a hint, not an order), then the one the
//!    exchange's values reached first after the request (the answer goes back to
//!    whoever asked), then the one sharing the most anywhere in its connection (an
//!    answer that surfaces in a later turn), then the one whose latest message came
//!    last (the one the service was busy with).
//!
//! Exchanges that look alike are interchangeable for a replay, so two users asking the
//! same thing at the same time each get one, whichever was whose. An exchange whose
//! request came before any frontend connection opened belongs to no session (counted
//! in [`Attribution::unattributed`]). The records of an agent connection that are not
//! part of an exchange (its `open`, greetings, pings, close and end) go with every
//! session that has one of its exchanges.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde_json::Value;

use crate::recording::{Open, Record, Recording};
use crate::replay::correlate::IdPair;
use crate::replay::mock::table::{mock_table, MockTable, RecordedMessage};

/// Agent-hop records per frontend connection.
#[derive(Debug, Default)]
pub struct Attribution {
    /// Frontend connection id → positions (indices in the recording's records) of the
    /// agent-hop records that belong to its session.
    pub hops: BTreeMap<u64, BTreeSet<usize>>,
    /// Exchanges that belong to no frontend connection.
    pub unattributed: usize,
}

/// One frontend connection as the attribution sees it.
struct Frontend {
    conn: u64,
    opened: usize,
    /// Position of its `end`, if it ended.
    ended: Option<usize>,
    /// Positions of its client's messages, and of all its messages, in order.
    requests: Vec<usize>,
    messages: Vec<usize>,
}

/// Attributes the agent hops of `recording` to the connections of `frontend`.
pub fn attribute(recording: &Recording, frontend: &str, pairs: &[IdPair]) -> Attribution {
    let table = mock_table(recording, frontend, pairs);
    let mut by_conn: HashMap<u64, Vec<usize>> = HashMap::new();
    for (position, record) in recording.records.iter().enumerate() {
        if let Some(conn) = record.conn() {
            by_conn.entry(conn).or_default().push(position);
        }
    }
    let mut index = Index::new();
    let mut fronts = Vec::new();
    for (i, conn) in table.conns.iter().enumerate() {
        for value in query_values(&conn.open) {
            index.entry(value).or_default().push((i, None));
        }
        let responses = conn.requests.iter().flat_map(|r| &r.responses);
        let answers = conn.greetings.iter().chain(responses);
        let mut messages: Vec<(usize, &RecordedMessage)> = answers
            .map(|r| (r.position, &r.message))
            .chain(conn.requests.iter().map(|r| (r.position, &r.message)))
            .collect();
        messages.sort_by_key(|(p, _)| *p);
        for (position, message) in &messages {
            for value in values(message, LONG) {
                index.entry(value).or_default().push((i, Some(*position)));
            }
        }
        fronts.push(Frontend {
            conn: conn.open.conn,
            opened: by_conn[&conn.open.conn][0],
            ended: by_conn[&conn.open.conn]
                .last()
                .copied()
                .filter(|p| matches!(recording.records[*p], Record::End(_))),
            requests: conn.requests.iter().map(|r| r.position).collect(),
            messages: messages.iter().map(|(p, _)| *p).collect(),
        });
    }
    let mut out = Attribution::default();
    for route in recording.routes() {
        if route == frontend {
            continue;
        }
        let table = mock_table(recording, route, pairs);
        attribute_route(&table, &by_conn, &fronts, &index, &mut out);
    }
    out
}

/// Attributes the exchanges of one agent route.
fn attribute_route(
    table: &MockTable,
    by_conn: &HashMap<u64, Vec<usize>>,
    fronts: &[Frontend],
    index: &Index,
    out: &mut Attribution,
) {
    // Request positions on this route attributed to each frontend connection.
    let mut given: Vec<Vec<usize>> = vec![Vec::new(); fronts.len()];
    for conn in &table.conns {
        let mut in_exchanges = BTreeSet::new();
        let mut sessions = BTreeSet::new();
        for request in &conn.requests {
            let mut positions = vec![request.position];
            positions.extend(request.responses.iter().map(|r| r.position));
            in_exchanges.extend(positions.iter().copied());
            let asked = values(&request.message, 1);
            let mut seen = asked.clone();
            for r in &request.responses {
                seen.extend(values(&r.message, 1));
            }
            let exchange = Exchange {
                position: request.position,
                asked: &asked,
                seen: &seen,
            };
            let Some(f) = choose(&exchange, fronts, index, &given) else {
                out.unattributed += 1;
                continue;
            };
            given[f].push(request.position);
            sessions.insert(f);
            out.hops
                .entry(fronts[f].conn)
                .or_default()
                .extend(positions);
        }
        let own: Vec<usize> = by_conn[&conn.open.conn]
            .iter()
            .copied()
            .filter(|p| !in_exchanges.contains(p))
            .collect();
        for f in sessions {
            out.hops
                .entry(fronts[f].conn)
                .or_default()
                .extend(own.iter().copied());
        }
    }
}

/// Where each distinctive value occurs in the frontend connections: (index in the
/// fronts, position of the message; none for the upgrade's query parameters).
type Index = HashMap<String, Vec<(usize, Option<usize>)>>;

/// Weight of one shared value, split between the connections holding it (divisible by
/// every count up to 16).
const SHARE: u64 = 720_720;

/// How much of `seen` each of `candidates` holds, a value split between its holders;
/// `holds` says whether a front holds a value at a position (none: in its upgrade).
fn scores(
    seen: &BTreeSet<String>,
    candidates: &BTreeSet<usize>,
    index: &Index,
    holds: impl Fn(usize, Option<usize>) -> bool,
) -> BTreeMap<usize, u64> {
    let mut score: BTreeMap<usize, u64> = candidates.iter().map(|f| (*f, 0)).collect();
    for value in seen {
        let Some(places) = index.get(value) else {
            continue;
        };
        let holders: BTreeSet<usize> = places
            .iter()
            .filter(|(f, at)| candidates.contains(f) && holds(*f, *at))
            .map(|(f, _)| *f)
            .collect();
        for f in &holders {
            *score.entry(*f).or_default() += SHARE / holders.len() as u64;
        }
    }
    score
}

/// One exchange of an agent route, as [`choose`] weighs it.
struct Exchange<'a> {
    /// Position of its request.
    position: usize,
    /// The values of its request, and of its request and responses.
    asked: &'a BTreeSet<String>,
    seen: &'a BTreeSet<String>,
}

/// The frontend connection (index in `fronts`) `exchange` belongs to.
fn choose(
    exchange: &Exchange,
    fronts: &[Frontend],
    index: &Index,
    given: &[Vec<usize>],
) -> Option<usize> {
    let (position, seen) = (exchange.position, exchange.seen);
    let opened: Vec<usize> = (0..fronts.len())
        .filter(|f| fronts[*f].opened < position)
        .collect();
    let live: Vec<usize> = opened
        .iter()
        .copied()
        .filter(|f| fronts[*f].ended.is_none_or(|e| e > position))
        .collect();
    let candidates: BTreeSet<usize> = if live.is_empty() { opened } else { live }
        .into_iter()
        .collect();
    let before = |list: &[usize]| {
        list[..list.partition_point(|p| *p < position)]
            .last()
            .copied()
    };
    // Each candidate's turn around the request: from its latest client message before
    // it to its next one.
    let turns: BTreeMap<usize, (usize, usize)> = candidates
        .iter()
        .map(|&f| {
            let front = &fronts[f];
            let next = front.requests.partition_point(|p| *p < position);
            let from = before(&front.requests).unwrap_or(front.opened);
            let to = front.requests.get(next).copied().unwrap_or(usize::MAX);
            (f, (from, to))
        })
        .collect();
    let in_turn = scores(seen, &candidates, index, |f, at| {
        let (from, to) = turns[&f];
        at.is_none_or(|p| from <= p && p < to)
    });
    let led_to_it = scores(exchange.asked, &candidates, index, |f, at| {
        at.is_none_or(|p| turns[&f].0 <= p && p < position)
    });
    let anywhere = scores(seen, &candidates, index, |_, _| true);
    // When the exchange's values first reached each front after the request, in its
    // turn (the answer goes back to whoever asked).
    let mut reached: BTreeMap<usize, usize> = BTreeMap::new();
    for (f, at) in seen.iter().filter_map(|v| index.get(v)).flatten() {
        if let (Some(p), Some((_, to))) = (*at, turns.get(f)) {
            if position < p && p < *to {
                let first = reached.entry(*f).or_insert(p);
                *first = (*first).min(p);
            }
        }
    }
    candidates.into_iter().max_by_key(|f| {
        let front = &fronts[*f];
        let since = turns[f].0;
        let asked_since = given[*f].iter().filter(|p| **p > since).count();
        (
            in_turn[f],
            std::cmp::Reverse(asked_since),
            led_to_it[f],
            std::cmp::Reverse(reached.get(f).copied().unwrap_or(usize::MAX)),
            anywhere[f],
            before(&front.messages).unwrap_or(front.opened),
            std::cmp::Reverse(*f),
        )
    })
}

/// The shortest string of a frontend message that counts as distinctive.
const LONG: usize = 4;

/// The values of a message: strings of `min_chars` or more characters, fractional and
/// long numbers (at any depth of its JSON), and its protocol correlation ids. An
/// exchange's values are taken whatever their length and matched against the fronts'
/// long ones and their upgrades' query parameters, however short (`user_id=u7`).
fn values(message: &RecordedMessage, min_chars: usize) -> BTreeSet<String> {
    let mut out: BTreeSet<String> = message.correlations.iter().cloned().collect();
    if let Some(json) = &message.json {
        leaves(json, min_chars, &mut out);
    }
    out
}

fn leaves(value: &Value, min_chars: usize, out: &mut BTreeSet<String>) {
    match value {
        Value::String(s) if s.chars().count() >= min_chars => {
            out.insert(s.clone());
        }
        Value::Number(n) => {
            let long = n.as_i64().is_some_and(|i| i.unsigned_abs() >= 1000);
            if long || n.is_f64() {
                out.insert(n.to_string());
            }
        }
        Value::Array(items) => items.iter().for_each(|v| leaves(v, min_chars, out)),
        Value::Object(map) => map.values().for_each(|v| leaves(v, min_chars, out)),
        _ => {}
    }
}

/// The values of an upgrade's query parameters (`user_id=u7`: an identity, however
/// short).
fn query_values(open: &Open) -> Vec<String> {
    open.query_pairs()
        .map(|(_, v)| v)
        .filter(|v| !v.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recording::{Body, Dir, Header, Message, Opcode};

    /// A recording built from `(conn, dir, text)` steps on connections 1 and 2 of
    /// `frontend` (users u1, u2) and 3 of `data` (one shared agent connection).
    fn recording(steps: &[(u64, Dir, &str)]) -> Recording {
        let opens = [
            Open::accepted("frontend", 1, "/ws?user_id=u1"),
            Open::accepted("frontend", 2, "/ws?user_id=u2"),
            Open::accepted("data", 3, "/"),
        ];
        let messages = steps.iter().map(|(conn, dir, text)| {
            let body = Body::Text((*text).to_string());
            Record::Message(Message::whole(*conn, *dir, Opcode::TEXT, body))
        });
        Recording {
            path: "r.jsonl".into(),
            header: Header::current(0),
            records: opens
                .into_iter()
                .map(Record::Open)
                .chain(messages)
                .collect(),
            warnings: vec![],
        }
    }

    fn chat(q: &str) -> String {
        format!(r#"{{"type":"chat","text":"{q}"}}"#)
    }
    fn ask(id: &str, q: &str) -> String {
        format!(r#"{{"type":"sql_query","message_id":"{id}","sql":"{q}"}}"#)
    }
    fn answer(id: &str, rows: &str) -> String {
        format!(r#"{{"type":"sql_query_response","response_to":"{id}","rows":"{rows}"}}"#)
    }
    fn result(rows: &str) -> String {
        format!(r#"{{"type":"tool_completed","rows":"{rows}"}}"#)
    }

    /// Two users ask the same two questions, one behind the other; the agent's
    /// requests carry no user, and the same question gets the same answer. While u1
    /// is on its second question and u2 still on its first, the second question's
    /// exchange is u1's: both hold its answer somewhere in their history (u2 asks it
    /// later), only u1 in the turn it was asked in. (The rule before turns gave it to
    /// u2, the more recently active, and u1 none.)
    #[test]
    fn an_exchange_belongs_to_the_user_whose_turn_holds_its_values() {
        use Dir::{ClientToServer as C, ServerToClient as S};
        let steps = [
            (1, C, chat("question one")),
            (2, C, chat("question one")),
            (3, C, ask("m1", "select one")),
            (3, S, answer("m1", "rows of one")),
            (1, S, result("rows of one")),
            (1, C, chat("question two")),
            (3, C, ask("m2", "select two")),
            (3, S, answer("m2", "rows of two")),
            (1, S, result("rows of two")),
            (2, S, r#"{"type":"progress_update"}"#.to_string()),
            (3, C, ask("m3", "select one")),
            (3, S, answer("m3", "rows of one")),
            (2, S, result("rows of one")),
            (2, C, chat("question two")),
            (3, C, ask("m4", "select two")),
            (3, S, answer("m4", "rows of two")),
            (2, S, result("rows of two")),
        ];
        let steps: Vec<(u64, Dir, &str)> =
            steps.iter().map(|(c, d, t)| (*c, *d, t.as_str())).collect();
        let rec = recording(&steps);
        let attribution = attribute(&rec, "frontend", &[]);
        assert_eq!(attribution.unattributed, 0);
        let asked = |conn: u64| -> Vec<String> {
            attribution.hops[&conn]
                .iter()
                .filter_map(|p| match &rec.records[*p] {
                    Record::Message(Message {
                        dir: Dir::ClientToServer,
                        body: Body::Text(t),
                        ..
                    }) => {
                        let v: Value = serde_json::from_str(t).unwrap();
                        Some(v["sql"].as_str().unwrap().to_string())
                    }
                    _ => None,
                })
                .collect()
        };
        // m1 and m3 look alike: either is each user's first.
        assert_eq!(asked(1), ["select one", "select two"]);
        assert_eq!(asked(2), ["select one", "select two"]);
    }
}
