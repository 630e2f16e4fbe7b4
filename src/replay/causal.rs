//! Causal pacing: what a replayed client waits for before it opens, sends or closes.
//!
//! The recording is one timeline. Every server message of a replayed connection is read
//! through its connection's protocol into events, each with a kind and a conversation:
//! conversations are numbered per connection in the order their correlation ids first
//! appear in server events (events without one belong to the connection, conversation 0),
//! so the values a build issues anew still line up with the recorded ones. A recorded
//! server event is a [`Milestone`]: "the k-th `kind` of conversation c on connection X".
//!
//! A client action waits for the counterparts of these milestones (bounded by the step
//! timeout):
//! - on its own connection, the latest server event recorded before it; a close waits for
//!   the latest event of every conversation recorded before it, and the end of a
//!   connection for the final event of every conversation;
//! - on every other replayed connection, the latest server event recorded after this
//!   client was last released (its previous action, or its latest own server event,
//!   whichever came later) and before the action. Another user's event from before that
//!   release is taken as not what this client waited for (it was still busy with its
//!   own), so independent users stay concurrent; an event already waited for needs no
//!   second edge (later events of a connection imply the earlier ones). A connection's
//!   opening waits likewise for the latest event of every other connection recorded
//!   since the previous connection opened.
//!
//! A milestone is reached in the replay by meaning, not by count: a kind that occurred
//! once in its conversation is reached by its first occurrence; the k-th repetition of a
//! streamed kind (one that occurred several times in its conversation) is reached by the
//! k-th occurrence, or as soon as any kind that first came after it in that conversation
//! arrives (the stream is over, however short it was). A build that streams more never
//! makes a client act early on a milestone that follows the stream, and one that streams
//! fewer never leaves it hanging. A stream that ends with no other event after it is
//! counted, the only reading left. A wait that times out is reported once, by the first
//! waiter, with the edge it waited on; a milestone given up on, or one of a connection
//! that ended, holds no other connection up afterwards (its own connection's later steps
//! still give the build up to a step timeout each, as count pacing did).
//!
//! A connection a rotated recording continued from its previous file (`continued`
//! open) is opened afresh and plays from where its file starts: the server messages
//! before its client's first message there answer requests made in the previous file,
//! which the replay never sends, so nothing waits for them.
//!
//! Limits: conversations that start concurrently on one connection are matched in the
//! order the build first answers them; a server event sent on a timer (a heartbeat ping)
//! that a client step was recorded after is waited for like any other.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;
use tokio::time::{sleep_until, Instant};

use super::script::{Action, ClientScript};
use crate::protocol::{self, Decoder, Event, Reader, Shared};
use crate::recording::{Body, Dir, Opcode, Record, Recording};

/// Conversations of one connection, numbered by the first appearance of their
/// correlation ids in server events (0: events without one).
#[derive(Default)]
struct Conversations(HashMap<String, usize>);

impl Conversations {
    fn of(&mut self, correlation: Option<&str>) -> usize {
        let Some(id) = correlation else { return 0 };
        if let Some(&conv) = self.0.get(id) {
            return conv;
        }
        let next = self.0.len() + 1;
        self.0.insert(id.to_string(), next);
        next
    }
}

/// A recorded server event of a replayed connection.
#[derive(Debug)]
struct Recorded {
    /// Index of its message among the recording's records.
    position: usize,
    /// Index of its message among the connection's server messages.
    server_index: usize,
    conv: usize,
    kind: usize,
    /// Its occurrence (1-based) of `kind` in `conv`.
    nth: usize,
    /// `kind` occurred more than once in `conv`.
    streamed: bool,
}

/// One replayed connection, as recorded.
struct RecordedConn {
    route: String,
    conn: u64,
    target: String,
    protocol: Shared,
    kinds: HashMap<String, usize>,
    kind_names: Vec<String>,
    events: Vec<Recorded>,
    /// Index in `events` of the first occurrence of each (conversation, kind).
    first: HashMap<(usize, usize), usize>,
    open: Vec<Milestone>,
    steps: Vec<Vec<Milestone>>,
    end: Vec<Milestone>,
}

/// A recorded server event to wait for: event `event` of replayed connection `conn`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Milestone {
    conn: usize,
    event: usize,
}

/// What the replay has received so far on one connection.
struct Live {
    state: Mutex<State>,
    changed: Notify,
}

struct State {
    decoder: Box<dyn Decoder>,
    convs: Conversations,
    counts: HashMap<(usize, usize), usize>,
    /// Per conversation, the kinds received in it (those counted in `counts`), so a
    /// streamed milestone is checked against its own conversation only, not against
    /// every conversation the connection has had.
    kinds_in: HashMap<usize, Vec<usize>>,
    /// The connection is gone (or never opened): its milestones hold nobody up.
    ended: bool,
    /// Events whose wait timed out: reported once, then waited for by nobody.
    given_up: Vec<bool>,
}

/// How a wait ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Waited {
    /// Every milestone was reached (or holds nobody up any more).
    Reached,
    /// The waiting client's own connection ended.
    Ended,
    /// This milestone's counterpart had not come by the deadline ([`Board::give_up`]).
    Deadline(Milestone),
}

/// The milestones of every replayed connection, and what the replay received.
pub struct Board {
    conns: Vec<RecordedConn>,
    index: HashMap<(String, u64), usize>,
    live: Vec<Live>,
}

impl Board {
    /// Reads the milestones of `scripts` (every replayed connection) off `recording`.
    pub fn new<'s>(
        recording: &Recording,
        scripts: impl IntoIterator<Item = &'s ClientScript>,
    ) -> Board {
        let scripts: Vec<&ClientScript> = scripts.into_iter().collect();
        let index: HashMap<(String, u64), usize> = scripts
            .iter()
            .enumerate()
            .map(|(i, s)| ((s.route.clone(), s.conn), i))
            .collect();
        let mut conns = read_events(recording, &scripts, &index);
        link(&mut conns, &scripts);
        let live = conns
            .iter()
            .map(|c| Live {
                state: Mutex::new(State {
                    decoder: c.protocol.decoder(),
                    convs: Conversations::default(),
                    counts: HashMap::new(),
                    kinds_in: HashMap::new(),
                    ended: false,
                    given_up: vec![false; c.events.len()],
                }),
                changed: Notify::new(),
            })
            .collect();
        Board { conns, index, live }
    }

    /// The board's number for the replayed connection `conn` of `route`.
    pub fn index(&self, route: &str, conn: u64) -> Option<usize> {
        self.index.get(&(route.to_string(), conn)).copied()
    }

    /// The protocol connection `i` was read with when recorded.
    pub fn protocol(&self, i: usize) -> Shared {
        self.conns[i].protocol.clone()
    }

    /// What connection `i` waits for before it opens.
    pub fn before_open(&self, i: usize) -> &[Milestone] {
        &self.conns[i].open
    }

    /// What connection `i` waits for before its step `step`.
    pub fn before_step(&self, i: usize, step: usize) -> &[Milestone] {
        self.conns[i].steps.get(step).map_or(&[], Vec::as_slice)
    }

    /// What connection `i` waits for once its steps are done: the final event of every
    /// conversation.
    pub fn before_end(&self, i: usize) -> &[Milestone] {
        &self.conns[i].end
    }

    /// The client of connection `i` sent a data message (read so that decoders which
    /// name responses after requests keep up).
    pub fn sent(&self, i: usize, op: Opcode, body: &Body) {
        let mut state = self.lock(i);
        if !state.decoder.remembers() {
            return;
        }
        let mut events = Vec::new();
        state
            .decoder
            .decode(Dir::ClientToServer, op, body, &mut events);
    }

    /// Connection `i` received these data messages (and captured them).
    pub fn received(&self, i: usize, messages: impl IntoIterator<Item = (Opcode, Body)>) {
        let conn = &self.conns[i];
        let mut changed = false;
        {
            let mut guard = self.lock(i);
            let state = &mut *guard;
            for (op, body) in messages {
                let mut events = Vec::with_capacity(1);
                state
                    .decoder
                    .decode(Dir::ServerToClient, op, &body, &mut events);
                if events.is_empty() {
                    events.push(protocol::opaque(op, &body));
                }
                for Event {
                    kind, correlation, ..
                } in &events
                {
                    let conv = state.convs.of(correlation.as_deref());
                    if let Some(&kind) = conn.kinds.get(kind.as_ref()) {
                        let n = state.counts.entry((conv, kind)).or_default();
                        if *n == 0 {
                            state.kinds_in.entry(conv).or_default().push(kind);
                        }
                        *n += 1;
                        changed = true;
                    }
                }
            }
        }
        if changed {
            self.live[i].changed.notify_waiters();
        }
    }

    /// Connection `i` is gone, or could not be opened: nobody waits for it any more.
    pub fn ended(&self, i: usize) {
        self.lock(i).ended = true;
        self.live[i].changed.notify_waiters();
    }

    /// Waits, for the client of connection `me`, until no milestone of `waits` holds it
    /// up ([`Board::pending`]), its own connection ends, or the deadline passes.
    pub async fn wait(&self, me: usize, waits: &[Milestone], deadline: Instant) -> Waited {
        for &m in waits {
            loop {
                let theirs = self.live[m.conn].changed.notified();
                let mine = self.live[me].changed.notified();
                tokio::pin!(theirs, mine);
                theirs.as_mut().enable();
                mine.as_mut().enable();
                if self.lock(me).ended {
                    return Waited::Ended;
                }
                if !self.holds_up(me, m) {
                    break;
                }
                if deadline <= Instant::now() {
                    return Waited::Deadline(m);
                }
                tokio::select! {
                    _ = theirs => {}
                    _ = mine => {}
                    _ = sleep_until(deadline) => {}
                }
            }
        }
        Waited::Reached
    }

    /// Gives up on `m`: no other connection waits for it any more. `true` for the first
    /// to give up, who reports it (so a wait that timed out is listed once).
    pub fn give_up(&self, m: Milestone) -> bool {
        let first = !std::mem::replace(&mut self.lock(m.conn).given_up[m.event], true);
        self.live[m.conn].changed.notify_waiters();
        first
    }

    /// The first milestone of `waits` that holds the client of connection `me` up: one
    /// not reached, unless another connection's that ended or was given up on. (Its own
    /// connection's events it waits for every time, as long as the step timeout, like
    /// the build would be given time by a real client.)
    pub fn pending(&self, me: usize, waits: &[Milestone]) -> Option<Milestone> {
        waits.iter().copied().find(|&m| self.holds_up(me, m))
    }

    /// Whether `m` is on connection `i`.
    pub fn is_on(&self, m: Milestone, i: usize) -> bool {
        m.conn == i
    }

    /// Index of the server message of `m` among its connection's server messages.
    pub fn server_index(&self, m: Milestone) -> usize {
        self.conns[m.conn].events[m.event].server_index
    }

    /// "`joined` on recorded connection 2 (/ws?user=bob; its recorded server message 3)".
    pub fn describe(&self, m: Milestone) -> String {
        let c = &self.conns[m.conn];
        let e = &c.events[m.event];
        format!(
            "`{}` on {}#{} {} (its recorded server message {})",
            c.kind_names[e.kind],
            c.route,
            c.conn,
            c.target,
            e.server_index + 1
        )
    }

    fn lock(&self, i: usize) -> std::sync::MutexGuard<'_, State> {
        self.live[i].state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn holds_up(&self, me: usize, m: Milestone) -> bool {
        let state = self.lock(m.conn);
        !self.reached(m, &state) && (m.conn == me || !state.ended && !state.given_up[m.event])
    }

    fn reached(&self, m: Milestone, state: &State) -> bool {
        let c = &self.conns[m.conn];
        let e = &c.events[m.event];
        let count = |kind| state.counts.get(&(e.conv, kind)).copied().unwrap_or(0);
        count(e.kind) >= e.nth
            || e.streamed
                && state.kinds_in.get(&e.conv).is_some_and(|kinds| {
                    kinds.iter().any(|&kind| {
                        kind != e.kind
                            && c.first
                                .get(&(e.conv, kind))
                                .is_some_and(|&first| first > m.event)
                    })
                })
    }
}

/// Every replayed connection's recorded server events, in order.
fn read_events(
    recording: &Recording,
    scripts: &[&ClientScript],
    index: &HashMap<(String, u64), usize>,
) -> Vec<RecordedConn> {
    let mut conns: Vec<RecordedConn> = scripts
        .iter()
        .map(|s| RecordedConn {
            route: s.route.clone(),
            conn: s.conn,
            target: s.target.clone(),
            protocol: Arc::new(protocol::PlainJson),
            kinds: HashMap::new(),
            kind_names: Vec::new(),
            events: Vec::new(),
            first: HashMap::new(),
            open: Vec::new(),
            steps: Vec::new(),
            end: Vec::new(),
        })
        .collect();
    let mut by_conn: HashMap<u64, usize> = HashMap::new();
    let mut convs: Vec<Conversations> = conns.iter().map(|_| Conversations::default()).collect();
    let mut counts: Vec<HashMap<(usize, usize), usize>> = vec![HashMap::new(); conns.len()];
    let mut server_seen = vec![0; conns.len()];
    // A connection continued from an earlier file of a rotated recording: until its
    // client's first message here, its server messages answer what was asked there.
    let mut answering_earlier_file = vec![false; conns.len()];
    let mut reader = Reader::default();
    let mut events = Vec::new();
    for (position, record) in recording.records.iter().enumerate() {
        match record {
            Record::Open(o) => {
                if let Some(&i) = index.get(&(o.route.clone(), o.conn)) {
                    reader.open(o);
                    by_conn.insert(o.conn, i);
                    answering_earlier_file[i] = o.continued;
                }
            }
            Record::Message(m) => {
                let Some(&i) = by_conn.get(&m.conn) else {
                    continue;
                };
                // A client message's events are not needed: it is read only when that
                // chooses the protocol or a stateful decoder must keep up.
                if m.dir == Dir::ClientToServer && reader.skippable(m) {
                    answering_earlier_file[i] = false;
                    continue;
                }
                events.clear();
                let choice = reader.decode(m, &mut events);
                let c = &mut conns[i];
                c.protocol = choice.protocol.clone();
                if m.dir == Dir::ClientToServer {
                    answering_earlier_file[i] = false;
                    continue;
                }
                if answering_earlier_file[i] {
                    server_seen[i] += 1;
                    continue;
                }
                if events.is_empty() {
                    events.push(protocol::opaque(m.op, &m.body));
                }
                // A heartbeat comes on the server's clock: no step depends on it.
                for e in events
                    .iter()
                    .filter(|e| !choice.protocol.is_heartbeat(&e.kind))
                {
                    let conv = convs[i].of(e.correlation.as_deref());
                    let kind = match c.kinds.get(e.kind.as_ref()) {
                        Some(&kind) => kind,
                        None => {
                            let kind = c.kind_names.len();
                            c.kinds.insert(e.kind.to_string(), kind);
                            c.kind_names.push(e.kind.to_string());
                            kind
                        }
                    };
                    let n = counts[i].entry((conv, kind)).or_default();
                    *n += 1;
                    c.first.entry((conv, kind)).or_insert(c.events.len());
                    c.events.push(Recorded {
                        position,
                        server_index: server_seen[i],
                        conv,
                        kind,
                        nth: *n,
                        streamed: false,
                    });
                }
                server_seen[i] += 1;
            }
            _ => {}
        }
    }
    for (c, counts) in conns.iter_mut().zip(&counts) {
        for e in &mut c.events {
            e.streamed = counts[&(e.conv, e.kind)] > 1;
        }
    }
    conns
}

/// The latest event of `events` recorded after `from` and before `to`.
fn latest_between(events: &[Recorded], from: usize, to: usize) -> Option<usize> {
    let before = events.partition_point(|e| e.position < to);
    (before > 0 && events[before - 1].position > from).then(|| before - 1)
}

/// The final event of every conversation among `events` recorded before `before`.
fn finals(i: usize, events: &[Recorded], before: usize) -> Vec<Milestone> {
    let mut last: HashMap<usize, usize> = HashMap::new();
    for (k, e) in events.iter().enumerate() {
        if e.position >= before {
            break;
        }
        last.insert(e.conv, k);
    }
    let mut finals: Vec<usize> = last.into_values().collect();
    finals.sort_unstable();
    finals
        .into_iter()
        .map(|event| Milestone { conn: i, event })
        .collect()
}

/// Sets every connection's waits from the recorded events (see the module docs).
fn link(conns: &mut [RecordedConn], scripts: &[&ClientScript]) {
    // Every replayed connection's events in recorded order: (position, connection, event).
    let mut timeline: Vec<(usize, usize, usize)> = conns
        .iter()
        .enumerate()
        .flat_map(|(j, c)| {
            c.events
                .iter()
                .enumerate()
                .map(move |(k, e)| (e.position, j, k))
        })
        .collect();
    timeline.sort_unstable();
    let mut openings: Vec<usize> = scripts.iter().map(|s| s.opened).collect();
    openings.sort_unstable();
    let mut waits = Vec::with_capacity(conns.len());
    for (i, script) in scripts.iter().enumerate() {
        // The latest event of every other connection recorded between `from` and `to`
        // that no earlier action of this connection waited for already (read off the
        // window of the timeline only, so a large replay stays cheap to plan).
        let mut covered: HashMap<usize, usize> = HashMap::new();
        let mut others = |from: usize, to: usize, out: &mut Vec<Milestone>| {
            let start = timeline.partition_point(|&(p, ..)| p <= from);
            let end = timeline.partition_point(|&(p, ..)| p < to);
            let mut seen = std::collections::HashSet::new();
            for &(_, j, event) in timeline[start..end.max(start)].iter().rev() {
                if j != i && seen.insert(j) && covered.get(&j).is_none_or(|&c| c < event) {
                    covered.insert(j, event);
                    out.push(Milestone { conn: j, event });
                }
            }
        };
        let previous_opening = openings[..openings.partition_point(|&o| o < script.opened)]
            .last()
            .copied()
            .unwrap_or(0);
        let mut open = Vec::new();
        others(previous_opening, script.opened, &mut open);
        let own = &conns[i].events;
        let mut steps = Vec::with_capacity(script.steps.len());
        let mut released = script.opened;
        for step in &script.steps {
            let latest_own = latest_between(own, script.opened, step.position);
            let mut wait = match step.action {
                Action::Close(..) => finals(i, own, step.position),
                _ => latest_own
                    .map(|event| Milestone { conn: i, event })
                    .into_iter()
                    .collect(),
            };
            let own_release = latest_own.map_or(0, |k| own[k].position);
            others(released.max(own_release), step.position, &mut wait);
            released = step.position;
            steps.push(wait);
        }
        waits.push((open, steps, finals(i, own, usize::MAX)));
    }
    for (c, (open, steps, end)) in conns.iter_mut().zip(waits) {
        c.open = open;
        c.steps = steps;
        c.end = end;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::replay::script::client_scripts;
    use crate::replay::script::tests::{msg as at, open as opened, recording};
    use Dir::*;

    fn open(conn: u64) -> Record {
        opened(conn, "r", 0)
    }

    fn msg(conn: u64, dir: Dir, text: &str) -> Record {
        at(conn, dir, 0, text)
    }

    fn board(records: Vec<Record>) -> Board {
        let rec = Arc::new(recording(records));
        Board::new(&rec, &client_scripts(&rec, "r"))
    }

    fn described(b: &Board, waits: &[Milestone]) -> Vec<String> {
        waits.iter().map(|&m| b.describe(m)).collect()
    }

    fn receive(b: &Board, i: usize, text: &str) {
        b.received(i, [(Opcode::TEXT, Body::Text(text.into()))]);
    }

    #[test]
    fn a_client_waits_for_another_users_event_recorded_since_it_was_released() {
        let b = board(vec![
            open(1),
            msg(1, ClientToServer, r#"{"type":"join"}"#),
            open(2),
            msg(2, ServerToClient, r#"{"type":"hello"}"#),
            msg(1, ServerToClient, r#"{"type":"joined"}"#),
            msg(2, ClientToServer, r#"{"type":"join"}"#),
            msg(2, ServerToClient, r#"{"type":"joined"}"#),
            msg(1, ClientToServer, r#"{"type":"chat"}"#),
            open(3),
        ]);
        // Bob's `hello` came before alice was released by her `joined`: no edge to it.
        assert_eq!(
            described(&b, b.before_step(0, 1)),
            [
                "`joined` on r#1 /ws?x=1 (its recorded server message 1)",
                "`joined` on r#2 /ws?x=1 (its recorded server message 2)"
            ]
        );
        assert_eq!(described(&b, b.before_open(1)), Vec::<String>::new());
        // Carol opens once both have joined, as recorded.
        assert_eq!(
            described(&b, b.before_open(2)),
            [
                "`joined` on r#2 /ws?x=1 (its recorded server message 2)",
                "`joined` on r#1 /ws?x=1 (its recorded server message 1)"
            ]
        );
        let chat = b.before_step(0, 1);
        receive(&b, 0, r#"{"type":"joined"}"#);
        receive(&b, 1, r#"{"type":"hello"}"#);
        assert!(b.pending(0, chat).is_some());
        receive(&b, 1, r#"{"type":"joined"}"#);
        assert_eq!(b.pending(0, chat), None);
    }

    #[test]
    fn streams_are_waited_for_by_meaning_not_by_count() {
        let id = |kind: &str, id: &str| format!(r#"{{"type":"{kind}","message_id":"{id}"}}"#);
        let mut records = vec![open(1), msg(1, ServerToClient, r#"{"type":"hello"}"#)];
        for (c, cancel) in [("m1", false), ("m2", true)] {
            records.push(msg(1, ClientToServer, &id("chat", c)));
            records.push(msg(1, ServerToClient, &id("agent_started", c)));
            for n in 0..3 {
                records.push(msg(1, ServerToClient, &id("progress", c)));
                if cancel && n == 1 {
                    records.push(msg(1, ClientToServer, &id("cancel", c)));
                }
            }
            records.push(msg(1, ServerToClient, &id("agent_completed", c)));
        }
        records.push(msg(1, ClientToServer, r#"{"type":"bye"}"#));
        let b = board(records);
        let (second_chat, cancel, bye) = (
            b.before_step(0, 1),
            b.before_step(0, 2),
            b.before_step(0, 3),
        );
        // The first chat streams more than recorded: the next chat still waits for its end.
        receive(&b, 0, r#"{"type":"hello"}"#);
        receive(&b, 0, &id("agent_started", "x1"));
        for _ in 0..10 {
            receive(&b, 0, &id("progress", "x1"));
        }
        assert!(b.pending(0, second_chat).is_some());
        receive(&b, 0, &id("agent_completed", "x1"));
        assert_eq!(b.pending(0, second_chat), None);
        // The second streams fewer than the cancel was recorded after: its end releases it
        // (an event of a kind this conversation never had when recorded changes nothing).
        receive(&b, 0, &id("agent_started", "x2"));
        receive(&b, 0, &id("hello", "x2"));
        receive(&b, 0, &id("progress", "x2"));
        assert!(b.pending(0, cancel).is_some());
        receive(&b, 0, &id("agent_completed", "x2"));
        assert_eq!(b.pending(0, cancel), None);
        assert_eq!(b.pending(0, bye), None);
        assert_eq!(b.pending(0, b.before_end(0)), None);
    }

    /// socketioxide pings at once and then on its timer: a step recorded after a ping
    /// waits for the CONNECT answer before it, not for a ping.
    #[test]
    fn no_step_waits_for_a_heartbeat() {
        let mut socketio = open(1);
        if let Record::Open(o) = &mut socketio {
            o.request = "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1".into();
        }
        let b = board(vec![
            socketio,
            msg(1, ServerToClient, r#"0{"sid":"a"}"#),
            msg(1, ClientToServer, "40"),
            msg(1, ServerToClient, r#"40{"sid":"b"}"#),
            msg(1, ServerToClient, "2"),
            msg(1, ClientToServer, r#"42["join",{}]"#),
        ]);
        assert_eq!(
            described(&b, b.before_step(0, 1)),
            ["`connect` on r#1 /socket.io/?EIO=4&transport=websocket (its recorded server message 2)"]
        );
    }
}
