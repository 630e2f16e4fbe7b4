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
//! 1. the one that shares the most distinctive values with it: every string of four or
//!    more characters, every fractional number and every integer of four or more digits
//!    of the exchange's messages, and their protocol correlation ids, counted against
//!    the values of the frontend connection's messages and its upgrade's query
//!    parameters (a `user_id=alice` the agent request carries on); a value several
//!    frontend connections share counts for each as one over how many;
//! 2. among equals, the one that has had fewest exchanges on this agent route since
//!    its latest client message (each chat asks each agent once), then the one whose
//!    latest message came last (the one the service was busy with).
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
    let mut index: HashMap<String, BTreeSet<usize>> = HashMap::new();
    let mut fronts = Vec::new();
    for (i, conn) in table.conns.iter().enumerate() {
        for value in query_values(&conn.open) {
            index.entry(value).or_default().insert(i);
        }
        let responses = conn.requests.iter().flat_map(|r| &r.responses);
        let answers = conn.greetings.iter().chain(responses);
        let mut messages: Vec<(usize, &RecordedMessage)> = answers
            .map(|r| (r.position, &r.message))
            .chain(conn.requests.iter().map(|r| (r.position, &r.message)))
            .collect();
        messages.sort_by_key(|(p, _)| *p);
        for (_, message) in &messages {
            for value in values(message) {
                index.entry(value).or_default().insert(i);
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
    index: &HashMap<String, BTreeSet<usize>>,
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
            let mut seen = values(&request.message);
            for r in &request.responses {
                seen.extend(values(&r.message));
            }
            let Some(f) = choose(request.position, &seen, fronts, index, &given) else {
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

/// Weight of one shared value, split between the connections holding it (divisible by
/// every count up to 16).
const SHARE: u64 = 720_720;

/// The frontend connection (index in `fronts`) an exchange whose request is at
/// `position` and whose messages hold `seen` belongs to.
fn choose(
    position: usize,
    seen: &BTreeSet<String>,
    fronts: &[Frontend],
    index: &HashMap<String, BTreeSet<usize>>,
    given: &[Vec<usize>],
) -> Option<usize> {
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
    let mut score: BTreeMap<usize, u64> = candidates.iter().map(|f| (*f, 0)).collect();
    for value in seen {
        let Some(holders) = index.get(value) else {
            continue;
        };
        let holders: Vec<usize> = holders.intersection(&candidates).copied().collect();
        for f in &holders {
            *score.entry(*f).or_default() += SHARE / holders.len() as u64;
        }
    }
    let before = |list: &[usize]| {
        list[..list.partition_point(|p| *p < position)]
            .last()
            .copied()
    };
    candidates.into_iter().max_by_key(|f| {
        let front = &fronts[*f];
        let since = before(&front.requests).unwrap_or(front.opened);
        let asked_since = given[*f].iter().filter(|p| **p > since).count();
        (
            score[f],
            std::cmp::Reverse(asked_since),
            before(&front.messages).unwrap_or(front.opened),
            std::cmp::Reverse(*f),
        )
    })
}

/// The distinctive values of a message: long strings, fractional and long numbers (at
/// any depth of its JSON), and its protocol correlation ids.
fn values(message: &RecordedMessage) -> BTreeSet<String> {
    let mut out: BTreeSet<String> = message.correlations.iter().cloned().collect();
    if let Some(json) = &message.json {
        leaves(json, &mut out);
    }
    out
}

fn leaves(value: &Value, out: &mut BTreeSet<String>) {
    match value {
        Value::String(s) if s.chars().count() >= 4 => {
            out.insert(s.clone());
        }
        Value::Number(n) => {
            let long = n.as_i64().is_some_and(|i| i.unsigned_abs() >= 1000);
            if long || n.is_f64() {
                out.insert(n.to_string());
            }
        }
        Value::Array(items) => items.iter().for_each(|v| leaves(v, out)),
        Value::Object(map) => map.values().for_each(|v| leaves(v, out)),
        _ => {}
    }
}

/// The values of an upgrade's query parameters (four characters or more).
fn query_values(open: &Open) -> Vec<String> {
    let query = open.path().split_once('?').map_or("", |(_, q)| q);
    url::form_urlencoded::parse(query.as_bytes())
        .map(|(_, v)| v.into_owned())
        .filter(|v| v.chars().count() >= 4)
        .collect()
}
