//! Which recorded connection a live connection is, and which recorded request answers a
//! live request: conversations, not loose messages, so two users never get each
//! other's answers.
//!
//! At the upgrade, every recorded connection of the route not yet claimed by another
//! live connection is scored by how alike its upgrade is (path, query parameters,
//! headers, the subprotocol offered); those with the best score are the live
//! connection's candidates, and the one fewest other live connections lean on is its
//! primary: the greetings come from it. Each live request then narrows the candidates
//! to those whose best unused request of the same kind is most alike (same content
//! scores higher than same shape); when one candidate is left, the live connection
//! claims it and it is nobody else's. Two Socket.IO users who both open with `40` are
//! told apart by their first message that differs (`join` as alice or as bob).
//! A request no candidate can answer is matched across the whole route.
//!
//! When every recorded connection is claimed, a further live connection is served
//! from a private view of the recorded ones (each still gets whole conversations),
//! or, with `--loop`, the recording starts over once every claimed one has ended.

use std::collections::HashMap;

use super::table::{MockTable, RecordedMessage};
use crate::recording::Open;
use crate::replay::correlate::Flat;
use crate::replay::script::replayable_header;

/// What a live client asked for in its upgrade.
#[derive(Clone, Debug, Default)]
pub struct Upgrade {
    /// Path and query.
    pub target: String,
    pub headers: Vec<(String, String)>,
    /// The subprotocols it offered, in its order.
    pub offered: Vec<String>,
}

/// Which recorded connections are taken, and which of their requests answered.
#[derive(Debug)]
pub struct Claims {
    /// Per recorded connection: the live connection that claimed it.
    owner: Vec<Option<u64>>,
    /// Per recorded connection: how many live connections have it as their primary.
    holders: Vec<usize>,
    /// Per recorded connection and request: answered already.
    used: Vec<Vec<bool>>,
    /// Per recorded connection: claimed, and its live connection has ended.
    served: Vec<bool>,
    /// Start over when every recorded connection has been served (`--loop`).
    looping: bool,
}

/// One live connection's standing.
#[derive(Debug)]
pub struct Live {
    pub id: u64,
    /// Recorded connections it may still be.
    candidates: Vec<usize>,
    /// The candidate it is answered from.
    pub primary: usize,
    /// Requests answered from a candidate it has not claimed (yet).
    local: HashMap<usize, Vec<bool>>,
    /// Served from a private view: every recorded connection was claimed already.
    private: bool,
}

impl Claims {
    pub fn new(table: &MockTable, looping: bool) -> Claims {
        let n = table.conns.len();
        Claims {
            owner: vec![None; n],
            holders: vec![0; n],
            used: table
                .conns
                .iter()
                .map(|c| vec![false; c.requests.len()])
                .collect(),
            served: vec![false; n],
            looping,
        }
    }

    /// Places a new live connection; `None` when the route has no recorded connection.
    pub fn connect(&mut self, table: &MockTable, id: u64, upgrade: &Upgrade) -> Option<Live> {
        if self.looping && !self.served.is_empty() && self.served.iter().all(|s| *s) {
            *self = Claims::new(table, true);
        }
        let unclaimed: Vec<usize> = (0..table.conns.len())
            .filter(|&c| self.owner[c].is_none())
            .collect();
        let private = unclaimed.is_empty();
        let pool = if private {
            (0..table.conns.len()).collect()
        } else {
            unclaimed
        };
        let scored: Vec<(usize, i64)> = pool
            .into_iter()
            .map(|c| (c, upgrade_score(&table.conns[c].open, upgrade)))
            .collect();
        let best = scored.iter().map(|(_, s)| *s).max()?;
        let candidates: Vec<usize> = scored
            .into_iter()
            .filter(|(_, s)| *s == best)
            .map(|(c, _)| c)
            .collect();
        let primary = self.least_held(&candidates);
        if !private {
            self.holders[primary] += 1;
        }
        let mut live = Live {
            id,
            primary,
            candidates,
            local: HashMap::new(),
            private,
        };
        self.lean(&mut live);
        Some(live)
    }

    /// The candidate fewest live connections lean on (the earliest among equals).
    fn least_held(&self, candidates: &[usize]) -> usize {
        let least = candidates.iter().min_by_key(|&&c| (self.holders[c], c));
        *least.unwrap_or(&0)
    }

    /// Keeps `live`'s primary while it is a candidate, else moves it to the candidate
    /// fewest others lean on; claims the only candidate left.
    fn lean(&mut self, live: &mut Live) {
        if !live.candidates.contains(&live.primary) {
            let chosen = self.least_held(&live.candidates);
            if !live.private {
                self.holders[live.primary] = self.holders[live.primary].saturating_sub(1);
                self.holders[chosen] += 1;
            }
            live.primary = chosen;
        }
        if let [only] = live.candidates[..] {
            if !live.private && self.owner[only].is_none() {
                self.owner[only] = Some(live.id);
                if let Some(local) = live.local.remove(&only) {
                    for (u, l) in self.used[only].iter_mut().zip(local) {
                        *u |= l;
                    }
                }
            }
        }
    }

    fn is_used(&self, live: &Live, conn: usize, request: usize) -> bool {
        let local = live.local.get(&conn).is_some_and(|l| l[request]);
        local || (!live.private && self.used[conn][request])
    }

    fn mark(&mut self, table: &MockTable, live: &mut Live, conn: usize, request: usize) {
        if !live.private && self.owner[conn] == Some(live.id) {
            self.used[conn][request] = true;
        } else {
            let n = table.conns[conn].requests.len();
            live.local.entry(conn).or_insert_with(|| vec![false; n])[request] = true;
        }
    }

    /// The recorded request (connection, index) that answers a live one, if any.
    pub fn request(
        &mut self,
        table: &MockTable,
        live: &mut Live,
        message: &RecordedMessage,
        flat: Option<&Flat>,
    ) -> Option<(usize, usize)> {
        let mine = |c: &usize| live.private || self.owner[*c].is_none_or(|o| o == live.id);
        let candidates = live.candidates.iter().copied().filter(mine);
        let found = self.best_of(table, live, candidates, message, flat);
        let Some(best) = found.iter().map(|f| f.2).max() else {
            return self.anywhere(table, live, message, flat);
        };
        let kept: Vec<(usize, usize)> = found
            .into_iter()
            .filter(|f| f.2 == best)
            .map(|(c, r, _)| (c, r))
            .collect();
        live.candidates = kept.iter().map(|(c, _)| *c).collect();
        self.lean(live);
        for &(c, r) in &kept {
            self.mark(table, live, c, r);
        }
        kept.into_iter().find(|(c, _)| *c == live.primary)
    }

    /// For each of `conns` with an unused request of the live message's kind: the
    /// connection, its best such request and that request's score.
    fn best_of(
        &self,
        table: &MockTable,
        live: &Live,
        conns: impl Iterator<Item = usize>,
        message: &RecordedMessage,
        flat: Option<&Flat>,
    ) -> Vec<(usize, usize, i64)> {
        conns
            .filter_map(|c| {
                let (r, score) = self.best_in(table, live, c, message, flat)?;
                Some((c, r, score))
            })
            .collect()
    }

    /// The best unused request of recorded connection `conn` for a live message.
    fn best_in(
        &self,
        table: &MockTable,
        live: &Live,
        conn: usize,
        message: &RecordedMessage,
        flat: Option<&Flat>,
    ) -> Option<(usize, i64)> {
        table.conns[conn]
            .requests
            .iter()
            .enumerate()
            .filter(|(r, req)| !self.is_used(live, conn, *r) && req.message.label == message.label)
            .map(|(r, req)| {
                let score = match (flat, &req.flat) {
                    (Some(live), Some(rec)) => live.similarity(rec),
                    _ => i64::from(req.message.body == message.body) * 1000,
                };
                (r, score)
            })
            // Among equals, the earliest recorded request wins.
            .max_by_key(|&(r, score)| (score, std::cmp::Reverse(r)))
    }

    /// A request no candidate answers, matched across the route's connections.
    fn anywhere(
        &mut self,
        table: &MockTable,
        live: &mut Live,
        message: &RecordedMessage,
        flat: Option<&Flat>,
    ) -> Option<(usize, usize)> {
        let (c, r, _) = self
            .best_of(table, live, 0..table.conns.len(), message, flat)
            .into_iter()
            .max_by_key(|&(c, _, score)| (score, std::cmp::Reverse(c)))?;
        if live.private {
            self.mark(table, live, c, r);
        } else {
            self.used[c][r] = true;
        }
        Some((c, r))
    }

    /// A live connection ended: it is its primary if it never told candidates apart.
    pub fn ended(&mut self, mut live: Live) {
        if live.private {
            return;
        }
        if self.owner[live.primary].is_none() {
            live.candidates = vec![live.primary];
            self.lean(&mut live);
        }
        self.holders[live.primary] = self.holders[live.primary].saturating_sub(1);
        for (c, owner) in self.owner.iter().enumerate() {
            if *owner == Some(live.id) {
                self.served[c] = true;
            }
        }
    }

    /// Whether every recorded connection has been served.
    pub fn all_served(&self) -> bool {
        self.served.iter().all(|s| *s)
    }
}

/// How alike a recorded upgrade is to a live one.
fn upgrade_score(open: &Open, live: &Upgrade) -> i64 {
    let split = |t: &str| -> (String, Vec<(String, String)>) {
        let (path, query) = t.split_once('?').unwrap_or((t, ""));
        let pairs = url::form_urlencoded::parse(query.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        (path.to_string(), pairs)
    };
    let (rpath, rquery) = split(open.path());
    let (lpath, lquery) = split(&live.target);
    let mut score = if rpath == lpath { 16 } else { 0 };
    for (k, v) in &rquery {
        if let Some((_, lv)) = lquery.iter().find(|(lk, _)| lk == k) {
            score += if lv == v { 3 } else { 1 };
        }
    }
    for (name, value) in open.headers.iter().filter(|(n, _)| replayable_header(n)) {
        let same = live
            .headers
            .iter()
            .any(|(n, v)| n.eq_ignore_ascii_case(name) && v == value);
        score += i64::from(same);
    }
    match open.response_header("sec-websocket-protocol") {
        Some(chosen) if live.offered.iter().any(|p| p == chosen) => score += 8,
        None if live.offered.is_empty() => score += 1,
        _ => {}
    }
    score
}
