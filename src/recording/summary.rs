//! `wsreplay show`: what a recording holds, per route and connection.
//!
//! [`summarize`] computes the figures (usable from tests); [`render`] and
//! [`render_timeline`] turn a recording into the text the command prints.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::protocol::{self, Overrides, Reader};
use crate::recording::{Body, Dir, EndHow, Record, Recording, Side};

/// One connection as `show` sees it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConnSummary {
    pub conn: u64,
    pub route: String,
    pub client: String,
    pub upstream: String,
    pub path: String,
    pub status: u16,
    pub start_us: u64,
    pub last_us: u64,
    /// Per direction: message label → count.
    pub messages: BTreeMap<Dir, BTreeMap<String, u64>>,
    /// Per direction: pings and pongs.
    pub pings: BTreeMap<Dir, PingCounts>,
    /// Close frames, in order.
    pub closes: Vec<CloseSeen>,
    /// How the connection ended (`None`: still open when the recording stopped).
    pub end: Option<Ending>,
    /// The protocol its messages were read with, and why (`None`: no message).
    pub protocol: Option<(&'static str, &'static str)>,
}

/// Pings and pongs sent in one direction.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PingCounts {
    pub pings: u64,
    pub pongs: u64,
}

/// A close frame of a connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CloseSeen {
    pub dir: Dir,
    /// `None`: the frame carried no code (1005).
    pub code: Option<u16>,
    pub reason: String,
}

/// How a connection ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ending {
    pub how: EndHow,
    pub by: Side,
    pub error: Option<String>,
}

impl ConnSummary {
    /// Messages in a direction.
    pub fn count(&self, dir: Dir) -> u64 {
        self.messages.get(&dir).map_or(0, |m| m.values().sum())
    }

    /// Messages in a direction with a given label.
    pub fn count_of(&self, dir: Dir, label: &str) -> u64 {
        self.messages
            .get(&dir)
            .and_then(|m| m.get(label))
            .copied()
            .unwrap_or(0)
    }
}

/// All connections, grouped by route in order of first appearance.
pub fn summarize(recording: &Recording) -> Vec<ConnSummary> {
    summarize_with(recording, &Overrides::default())
}

/// Like [`summarize`], reading the routes of `overrides` with the protocols named there.
pub fn summarize_with(recording: &Recording, overrides: &Overrides) -> Vec<ConnSummary> {
    let mut conns: Vec<ConnSummary> = Vec::new();
    let mut index: BTreeMap<u64, usize> = BTreeMap::new();
    let mut reader = Reader::new(overrides.clone());
    for record in &recording.records {
        if let Record::Open(o) = record {
            reader.open(o);
            index.insert(o.conn, conns.len());
            conns.push(ConnSummary {
                conn: o.conn,
                route: o.route.clone(),
                client: o.client.clone(),
                upstream: o.upstream.clone(),
                path: o.path().to_string(),
                status: o.status,
                start_us: o.t_us,
                last_us: o.t_us,
                ..ConnSummary::default()
            });
            continue;
        }
        let Some(c) = record
            .conn()
            .and_then(|id| index.get(&id))
            .map(|&i| &mut conns[i])
        else {
            continue;
        };
        c.last_us = record.t_us();
        match record {
            Record::Message(m) => {
                let mut events = Vec::with_capacity(1);
                let choice = reader.decode(m, &mut events);
                c.protocol
                    .get_or_insert((choice.protocol.name(), choice.why));
                *c.messages
                    .entry(m.dir)
                    .or_default()
                    .entry(protocol::label_of_events(&events, m.op, &m.body))
                    .or_default() += 1;
            }
            Record::Ping(p) => c.pings.entry(p.dir).or_default().pings += 1,
            Record::Pong(p) => c.pings.entry(p.dir).or_default().pongs += 1,
            Record::Close(cl) => c.closes.push(CloseSeen {
                dir: cl.dir,
                code: cl.code,
                reason: cl.reason.clone(),
            }),
            Record::End(e) => {
                c.end = Some(Ending {
                    how: e.how,
                    by: e.by,
                    error: e.error.clone(),
                })
            }
            _ => {}
        }
    }
    let mut routes: Vec<String> = Vec::new();
    for c in &conns {
        if !routes.contains(&c.route) {
            routes.push(c.route.clone());
        }
    }
    conns.sort_by_key(|c| (routes.iter().position(|r| *r == c.route), c.conn));
    conns
}

/// The text `wsreplay show FILE` prints.
pub fn render(recording: &Recording) -> String {
    render_with(recording, &Overrides::default())
}

/// Like [`render`], reading the routes of `overrides` with the protocols named there.
pub fn render_with(recording: &Recording, overrides: &Overrides) -> String {
    let conns = summarize_with(recording, overrides);
    let total: u64 = conns
        .iter()
        .map(|c| c.count(Dir::ClientToServer) + c.count(Dir::ServerToClient))
        .sum();
    let routes = conns
        .iter()
        .map(|c| &c.route)
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}: {} {} ({}), {} connection(s) on {} route(s), {} message(s)",
        recording.path.display(),
        recording.header.format,
        recording.header.version,
        recording.header.tool,
        conns.len(),
        routes,
        total
    );
    for w in &recording.warnings {
        let _ = writeln!(out, "warning: {}", w.at(&recording.path));
    }
    let mut current_route = None;
    for c in &conns {
        if current_route != Some(&c.route) {
            let _ = writeln!(out, "\nroute {} → {}", c.route, c.upstream);
            current_route = Some(&c.route);
        }
        render_conn(&mut out, c);
    }
    out
}

fn render_conn(out: &mut String, c: &ConnSummary) {
    let secs = (c.last_us.saturating_sub(c.start_us)) as f64 / 1e6;
    let _ = writeln!(
        out,
        "  conn {}  {}  from {}  status {}  {:.3} s",
        c.conn, c.path, c.client, c.status, secs
    );
    match c.protocol {
        Some((name, why)) if why != "the default" => {
            let _ = writeln!(out, "    read as {name}: {why}");
        }
        _ => {}
    }
    for dir in Dir::BOTH {
        let n = c.count(dir);
        let mut line = format!("    {dir} {n:>4} message(s)");
        if let Some(kinds) = c.messages.get(&dir) {
            let list: Vec<String> = kinds.iter().map(|(k, n)| format!("{k} ×{n}")).collect();
            let _ = write!(line, ": {}", list.join(", "));
        }
        if let Some(p) = c.pings.get(&dir) {
            let _ = write!(line, "; pings ×{}, pongs ×{}", p.pings, p.pongs);
        }
        let _ = writeln!(out, "{line}");
    }
    let closes: Vec<String> = c
        .closes
        .iter()
        .map(|CloseSeen { dir, code, reason }| {
            let code = code.map_or("no code (1005)".to_string(), |c| c.to_string());
            if reason.is_empty() {
                format!("{dir} {code}")
            } else {
                format!("{dir} {code} {reason:?}")
            }
        })
        .collect();
    let end = match &c.end {
        Some(Ending { how, by, error }) => {
            let mut s = ended(*how, *by);
            if let Some(e) = error {
                let _ = write!(s, ": {e}");
            }
            if how.is_abnormal() {
                s = format!("ABNORMAL {s}");
            }
            s
        }
        None => "still open when the recording stopped".into(),
    };
    let close = if closes.is_empty() {
        "none".to_string()
    } else {
        closes.join(", ")
    };
    let _ = writeln!(out, "    close: {close}; ended: {end}");
}

fn how_name(how: EndHow) -> &'static str {
    match how {
        EndHow::Closed => "closed",
        EndHow::Eof => "eof without close handshake",
        EndHow::Reset => "reset",
        EndHow::Unreachable => "upstream unreachable",
        EndHow::Rejected => "upgrade rejected",
        EndHow::Stopped => "recorder stopped",
    }
}

/// How a connection ended and by which side, without naming the side twice
/// ("recorder stopped", not "recorder stopped by recorder").
fn ended(how: EndHow, by: Side) -> String {
    let how = how_name(how);
    if how.starts_with(by.as_str()) {
        how.to_string()
    } else {
        format!("{how} by {}", by.as_str())
    }
}

/// Longest body excerpt shown per timeline line.
const EXCERPT: usize = 100;

/// The text `wsreplay show --timeline` prints: every record, one line each, messages
/// labelled as their connections' protocols (or those of `overrides`) name them.
pub fn render_timeline(recording: &Recording, overrides: &Overrides) -> String {
    let routes: BTreeMap<u64, &str> = recording
        .opens()
        .map(|o| (o.conn, o.route.as_str()))
        .collect();
    let mut reader = Reader::new(overrides.clone());
    let mut out = String::new();
    for record in &recording.records {
        if let Record::Open(o) = record {
            reader.open(o);
        }
        let who = record
            .conn()
            .map(|c| format!("{}#{c}", routes.get(&c).copied().unwrap_or("?")))
            .unwrap_or_default();
        let what = match record {
            Record::Open(o) => format!(
                "open   {} from {} → {} status {}",
                o.path(),
                o.client,
                o.upstream,
                o.status
            ),
            Record::Message(m) => {
                format!("{}    {} {}", m.dir, reader.label(m), excerpt(&m.body))
            }
            Record::Ping(p) => format!("{}    ping {}", p.dir, excerpt(&p.body)),
            Record::Pong(p) => format!("{}    pong {}", p.dir, excerpt(&p.body)),
            Record::Control(c) => format!("{}    control {}", c.dir, excerpt(&c.body)),
            Record::Close(c) => format!(
                "{}    close {} {}",
                c.dir,
                c.code.map_or("(no code)".to_string(), |c| c.to_string()),
                c.reason
            ),
            Record::End(e) => format!(
                "end    {}{}",
                ended(e.how, e.by),
                e.error
                    .as_deref()
                    .map(|e| format!(": {e}"))
                    .unwrap_or_default()
            ),
            Record::Fault(f) => format!(
                "{}    FAULT {} on {} (--fault {})",
                f.dir, f.action, f.label, f.rule
            ),
            Record::Finish(f) => format!("finish complete={} lost={}", f.complete, f.lost),
        };
        let _ = writeln!(
            out,
            "{:>12.6}  {who:<14} {what}",
            record.t_us() as f64 / 1e6
        );
    }
    out
}

fn excerpt(body: &Body) -> String {
    match body {
        Body::Text(t) => {
            let mut s: String = t.chars().take(EXCERPT).collect();
            if s.len() < t.len() {
                s.push('…');
            }
            s
        }
        Body::Bytes(b) => format!("<{} bytes>", b.len()),
    }
}
