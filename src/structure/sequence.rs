//! A recording as a sequence diagram: who sent what to whom, across every hop.
//!
//! [`Sequence::of`] reads a recording into participants (each route's client and
//! server, in order of first appearance; in a replay's capture the build under test is
//! one participant, as it is both the server of the replayed clients and the client
//! of the mocks) and arrows (messages labelled by their
//! discriminator, close frames, injected faults), collapsing runs of the same message
//! between the same participants into one arrow (`progress_update ×3`).
//! [`Sequence::mermaid`] renders it for `wsreplay show --mermaid`; the HTML report
//! ([`crate::gate::export::html`]) draws the same model as inline SVG.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::protocol::{Overrides, Reader};
use crate::recording::{Dir, Record, Recording};
use crate::replay::capture::{MOCK_UPSTREAM, REPLAY_CLIENT};

/// One lifeline: a route's client or its server, or the build under test.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Participant {
    /// A route's clients (`server: false`) or its server (`server: true`).
    Route { route: String, server: bool },
    /// In a replay's capture: the build, behind every target and in front of every mock.
    Build,
}

impl Participant {
    /// `frontend client`, `nlp server`, `build under test`.
    pub fn name(&self) -> String {
        match self {
            Participant::Route { route, server } => {
                format!("{route} {}", if *server { "server" } else { "client" })
            }
            Participant::Build => "build under test".into(),
        }
    }
}

/// What an arrow stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArrowKind {
    Message,
    Close,
    /// A fault injected by the replay (drawn as a note on the sender).
    Fault,
}

/// One arrow, standing for `count` consecutive identical messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Arrow {
    pub from: usize,
    pub to: usize,
    pub label: String,
    pub count: usize,
    pub kind: ArrowKind,
    /// Route and direction of the message (to match it against a structure difference).
    pub route: String,
    pub dir: Dir,
    /// Time of the first message of the run, in microseconds.
    pub t_us: u64,
}

impl Arrow {
    /// The label with its run length: `progress_update ×3`.
    pub fn text(&self) -> String {
        if self.count > 1 {
            format!("{} ×{}", self.label, self.count)
        } else {
            self.label.clone()
        }
    }
}

/// A recording as participants and arrows.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Sequence {
    pub participants: Vec<Participant>,
    pub arrows: Vec<Arrow>,
}

impl Sequence {
    /// Reads the sequence off a recording.
    pub fn of(recording: &Recording) -> Sequence {
        Sequence::of_with(recording, &Overrides::default())
    }

    /// Like [`Sequence::of`], reading the routes of `overrides` with the protocols named
    /// there.
    pub fn of_with(recording: &Recording, overrides: &Overrides) -> Sequence {
        let mut seq = Sequence::default();
        // Per connection: route, client and server participant.
        let mut conns: BTreeMap<u64, (String, usize, usize)> = BTreeMap::new();
        let mut reader = Reader::new(overrides.clone());
        for record in &recording.records {
            let (conn, dir, label, kind) = match record {
                Record::Open(o) => {
                    reader.open(o);
                    let side = |server: bool| Participant::Route {
                        route: o.route.clone(),
                        server,
                    };
                    let (client, server) = if o.client == REPLAY_CLIENT {
                        (side(false), Participant::Build)
                    } else if o.upstream.starts_with(MOCK_UPSTREAM) {
                        (Participant::Build, side(true))
                    } else {
                        (side(false), side(true))
                    };
                    let ids = (
                        o.route.clone(),
                        seq.participant(client),
                        seq.participant(server),
                    );
                    conns.insert(o.conn, ids);
                    continue;
                }
                Record::Message(m) => (m.conn, m.dir, reader.label(m), ArrowKind::Message),
                Record::Close(c) => (
                    c.conn,
                    c.dir,
                    format!(
                        "close {}",
                        c.code.map_or("(no code)".into(), |c| c.to_string())
                    ),
                    ArrowKind::Close,
                ),
                Record::Fault(f) => (
                    f.conn,
                    f.dir,
                    format!("fault: {} {}", f.action, f.label),
                    ArrowKind::Fault,
                ),
                _ => continue,
            };
            let Some((route, client, server)) = conns.get(&conn) else {
                continue;
            };
            let (client, server) = (*client, *server);
            let (from, to) = match dir {
                Dir::ClientToServer => (client, server),
                Dir::ServerToClient => (server, client),
            };
            if let Some(last) = seq.arrows.last_mut() {
                if (last.from, last.to, &last.label, last.kind) == (from, to, &label, kind) {
                    last.count += 1;
                    continue;
                }
            }
            seq.arrows.push(Arrow {
                from,
                to,
                label,
                count: 1,
                kind,
                route: route.clone(),
                dir,
                t_us: record.t_us(),
            });
        }
        seq
    }

    fn participant(&mut self, p: Participant) -> usize {
        match self.participants.iter().position(|q| *q == p) {
            Some(i) => i,
            None => {
                self.participants.push(p);
                self.participants.len() - 1
            }
        }
    }

    /// The Mermaid `sequenceDiagram` text (`wsreplay show --mermaid`).
    pub fn mermaid(&self) -> String {
        let mut out = String::from("sequenceDiagram\n");
        for (i, p) in self.participants.iter().enumerate() {
            let _ = writeln!(out, "    participant p{i} as {}", mermaid_text(&p.name()));
        }
        for a in &self.arrows {
            let text = mermaid_text(&a.text());
            let _ = match a.kind {
                ArrowKind::Message => writeln!(out, "    p{}->>p{}: {text}", a.from, a.to),
                ArrowKind::Close => writeln!(out, "    p{}--)p{}: {text}", a.from, a.to),
                ArrowKind::Fault => writeln!(out, "    Note over p{}: {text}", a.from),
            };
        }
        out
    }
}

/// Text safe in a Mermaid label: `;`, `#` and line breaks would end or break it, so
/// they become Mermaid's entity codes (`#59;`) or spaces.
fn mermaid_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '#' => out.push_str("#35;"),
            ';' => out.push_str("#59;"),
            ':' => out.push_str("#58;"),
            '%' => out.push_str("#37;"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recording::{Body, Close, Message, Opcode, Open};

    fn open(conn: u64, route: &str) -> Record {
        Record::Open(Open::accepted(route, conn, "/"))
    }

    fn msg(conn: u64, dir: Dir, text: &str) -> Record {
        Record::Message(Message::whole(
            conn,
            dir,
            Opcode::TEXT,
            Body::Text(text.into()),
        ))
    }

    #[test]
    fn runs_collapse_across_hops() {
        use Dir::*;
        let rec = Recording {
            records: vec![
                open(1, "frontend"),
                msg(1, ClientToServer, r#"{"type":"chat"}"#),
                open(2, "nlp"),
                msg(2, ClientToServer, r#"{"type":"nlp_request"}"#),
                msg(2, ServerToClient, r#"{"type":"nlp_response"}"#),
                msg(1, ServerToClient, r#"{"type":"progress_update"}"#),
                msg(1, ServerToClient, r#"{"type":"progress_update"}"#),
                msg(1, ServerToClient, r#"{"type":"progress_update"}"#),
                msg(1, ServerToClient, "not json; #1"),
                Record::Close(Close {
                    t_us: 0,
                    conn: 1,
                    dir: ClientToServer,
                    code: Some(1000),
                    reason: String::new(),
                    base64: None,
                }),
            ],
            path: "t.jsonl".into(),
            header: crate::recording::Header::current(0),
            warnings: Vec::new(),
        };
        insta::assert_snapshot!(Sequence::of(&rec).mermaid(), @r"
        sequenceDiagram
            participant p0 as frontend client
            participant p1 as frontend server
            participant p2 as nlp client
            participant p3 as nlp server
            p0->>p1: chat
            p2->>p3: nlp_request
            p3->>p2: nlp_response
            p1->>p0: progress_update ×3
            p1->>p0: (text)
            p0--)p1: close 1000
        ");
    }

    #[test]
    fn labels_cannot_break_the_diagram() {
        assert_eq!(mermaid_text("a;b#c:d%\ne"), "a#59;b#35;c#58;d#37; e");
    }
}
