//! Live values: values the server issues (a session id, a target id, a subscription
//! id) that the client sends back later. A replay learns the build's value and sends it
//! in place of the recorded one.
//!
//! **Detection** ([`Live::plan`], from the recording, when the replay starts). The
//! messages of the replayed (`--target`) routes are read in recorded order through each
//! connection's protocol. A string in the JSON body of a server event is a candidate
//! when it looks issued (at least 6 characters, no whitespace, and a digit, or at least
//! 12 characters mixing upper and lower case: `sess_4f9a2c`, a UUID, a CDP target id;
//! not a word like `connection_established` or `Page.navigate`), is no redaction
//! placeholder, and the client had not sent it before. A candidate is live when a later
//! client message of any replayed connection holds it: as a whole JSON string, or as a
//! token of a string (delimited by characters other than letters, digits, `_` and `-`,
//! as in `"/s/sess_4f9a2c/items"`), or in the path, query or headers of a connection
//! opened later. Its origin is where it first appeared: the recorded connection, the
//! event kind, the JSON path in the event's body (`session.id`, `result.targetId`,
//! `items.0.id`), and the occurrence: how many earlier events of that kind on that
//! connection had such a value (a string that looks issued) at that path.
//!
//! **Learning** ([`Watcher`]): the replayed connection that plays the origin's recorded
//! connection reads its server messages through the same protocol; the event of that
//! kind whose occurrence matches (the first `welcome`, the second
//! `Target.createTarget → result`) gives the build's value at that path.
//!
//! **Substitution** ([`Live::outgoing`], [`Live::request`]): every client message sent
//! afterwards, on any replayed connection, and the path, query and headers of every
//! connection opened afterwards, get the learned value in place of the recorded one
//! (whole values and substrings; the JSON-escaped text is replaced, the rest of the
//! message stays byte for byte). A message that holds a value not learned yet waits for
//! it (up to the step timeout, once per value); a value the build never sent is sent as
//! recorded and listed once in the summary ([`LiveSummary`]), not as a problem.
//!
//! **Configuration**: `[[live]]` entries in `wsreplay.toml` ([`LiveEntry`]):
//! `from = "s2c KIND PATH"` declares values (every string or number at that path of
//! that kind of server event, whether or not detection would take it; they count as
//! occurrences too), `ignore = "s2c
//! KIND PATH"` switches detected values of that origin off, `ignore = "auto"` switches
//! detection off (declared values stay).

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use serde::Deserialize;
use tokio::sync::Notify;

use crate::protocol::{self, Decoder, Event, Json, Payload, Reader};
use crate::recording::{Body, Dir, Opcode, Record, Recording};
use crate::redact::placeholder;

/// Where a live value comes from: a kind of server event and a JSON path in its body.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Origin {
    pub kind: String,
    pub path: String,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "s2c {} {}", self.kind, self.path)
    }
}

impl std::str::FromStr for Origin {
    type Err = String;

    /// `s2c KIND PATH`; KIND may hold spaces (`Target.createTarget → result`).
    fn from_str(s: &str) -> Result<Origin, String> {
        let words: Vec<&str> = s.split_whitespace().collect();
        match words.as_slice() {
            ["s2c", kind @ .., path] if !kind.is_empty() => Ok(Origin {
                kind: kind.join(" "),
                path: path.to_string(),
            }),
            _ => Err(format!(
                "{s:?} is not an origin: expected \"s2c KIND PATH\", e.g. \"s2c welcome session.id\" (a server event's kind and the JSON path of the value in its body)"
            )),
        }
    }
}

/// One `[[live]]` entry of `wsreplay.toml`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "RawEntry")]
pub enum LiveEntry {
    /// `from = "s2c KIND PATH"`: values at that origin are live.
    From(Origin),
    /// `ignore = "s2c KIND PATH"`: detected values of that origin are not.
    Ignore(Origin),
    /// `ignore = "auto"`: no detection, only declared values.
    NoDetection,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEntry {
    from: Option<String>,
    ignore: Option<String>,
}

impl TryFrom<RawEntry> for LiveEntry {
    type Error = String;

    fn try_from(raw: RawEntry) -> Result<LiveEntry, String> {
        match (raw.from, raw.ignore) {
            (Some(from), None) => Ok(LiveEntry::From(from.parse()?)),
            (None, Some(ignore)) if ignore == "auto" => Ok(LiveEntry::NoDetection),
            (None, Some(ignore)) => Ok(LiveEntry::Ignore(ignore.parse()?)),
            _ => Err(
                "a [[live]] entry needs exactly one of from = \"s2c KIND PATH\" or ignore = \"s2c KIND PATH\" (or ignore = \"auto\")"
                    .into(),
            ),
        }
    }
}

/// A value to learn and substitute.
#[derive(Debug)]
struct Planned {
    /// As recorded, JSON-escaped (without quotes): what is replaced.
    recorded: String,
    origin: Origin,
    /// The recorded connection whose replay learns it.
    conn: u64,
    /// Events of the origin's kind with such a value at its path ([`issued_text`]) on
    /// that connection before it.
    occurrence: usize,
    /// Declared by a `from` entry: any scalar at the origin counts.
    declared: bool,
    /// The build's value, JSON-escaped.
    learned: OnceLock<String>,
    substituted: AtomicU64,
    /// Needed before it was learned (after waiting): sent as recorded.
    missed: AtomicBool,
    /// Waited for once already.
    waited: AtomicBool,
}

impl Planned {
    /// Its name in the summary: the last key of its path (`targetId`), with its parent
    /// when that key is a bare `id` (`session.id`).
    fn name(&self) -> String {
        let keys: Vec<&str> = (self.origin.path.split('.'))
            .filter(|k| !k.is_empty() && !k.bytes().all(|b| b.is_ascii_digit()))
            .collect();
        match keys.as_slice() {
            [.., parent, last] if last.eq_ignore_ascii_case("id") => format!("{parent}.{last}"),
            [.., last] => last.to_string(),
            [] => self.origin.path.clone(),
        }
    }
}

/// The live values of a replay: planned from the recording, learned and substituted
/// while it runs.
#[derive(Debug, Default)]
pub struct Live {
    values: Vec<Planned>,
    /// Finds which recorded values a text holds in one pass (`None` with no values).
    finder: Option<aho_corasick::AhoCorasick>,
    /// Per recorded connection: its protocol and the values its replay learns.
    learners: HashMap<u64, (protocol::Shared, Vec<usize>)>,
    learned: Notify,
}

/// What one connection learns: the values whose origin is on its recorded connection.
pub struct Watcher {
    live: Arc<Live>,
    decoder: Box<dyn Decoder>,
    /// Per event kind: its origins, each with the values still to learn there, in plan
    /// order (an event is matched against its own kind's only, not every value).
    wants: HashMap<String, Vec<(Origin, Vec<usize>)>>,
    /// How many values are still to learn.
    remaining: usize,
    /// Per origin: events seen with a string at its path.
    seen: HashMap<Origin, usize>,
}

impl Live {
    /// Finds the live values of a recording's `routes` (the replayed ones), see the
    /// module docs.
    pub fn plan(recording: &Recording, routes: &[String], entries: &[LiveEntry]) -> Live {
        let found = find(recording, routes, entries);
        let conns: HashSet<u64> = found.iter().map(|(_, c)| c.conn).collect();
        let mut live = Live::default();
        if conns.is_empty() {
            return live;
        }
        // A second reading, of the connections the values came from: each one's
        // occurrence at its origin, and the connection's protocol.
        let mut occurrences: Vec<Option<usize>> = vec![None; found.len()];
        // The values found, by their connection and kind, and by where they were found
        // (looked up per event: a scan of every value per event would make planning a
        // recording with many live values quadratic).
        let mut by_kind: HashMap<(u64, &str), Vec<usize>> = HashMap::new();
        let mut by_position: HashMap<usize, Vec<usize>> = HashMap::new();
        for (i, (_, c)) in found.iter().enumerate() {
            (by_kind.entry((c.conn, c.origin.kind.as_str())))
                .or_default()
                .push(i);
            by_position.entry(c.position).or_default().push(i);
        }
        let mut seen: HashMap<(u64, &Origin), usize> = HashMap::new();
        let mut protocols: HashMap<u64, protocol::Shared> = HashMap::new();
        let mut reader = Reader::default();
        let mut events = Vec::new();
        for (position, record) in recording.records.iter().enumerate() {
            match record {
                Record::Open(o) if conns.contains(&o.conn) => reader.open(o),
                Record::Message(m) if conns.contains(&m.conn) => {
                    if m.dir == Dir::ClientToServer && reader.skippable(m) {
                        continue;
                    }
                    events.clear();
                    let choice = reader.decode(m, &mut events);
                    (protocols.entry(m.conn)).or_insert_with(|| choice.protocol.clone());
                    if m.dir == Dir::ClientToServer {
                        continue;
                    }
                    for event in &events {
                        let Payload::Json(json) = &event.body else {
                            continue;
                        };
                        let mut origins: Vec<(&Origin, bool)> = Vec::new();
                        let of_kind = by_kind.get(&(m.conn, event.kind.as_ref()));
                        for &i in of_kind.into_iter().flatten() {
                            let c = &found[i].1;
                            if !origins.iter().any(|(o, _)| *o == &c.origin) {
                                origins.push((&c.origin, c.declared));
                            }
                        }
                        for (origin, declared) in origins {
                            let at_path = at(json, &origin.path);
                            let Some(text) = at_path.and_then(|v| issued_text(v, declared)) else {
                                continue;
                            };
                            let count = seen.entry((m.conn, origin)).or_default();
                            for &i in by_position.get(&position).into_iter().flatten() {
                                let (value, c) = &found[i];
                                if c.origin == *origin && *value == text {
                                    occurrences[i].get_or_insert(*count);
                                }
                            }
                            *count += 1;
                        }
                    }
                }
                _ => {}
            }
        }
        for ((text, c), occurrence) in found.iter().zip(occurrences) {
            let (Some(occurrence), Some(protocol)) = (occurrence, protocols.get(&c.conn)) else {
                continue;
            };
            let (_, wants) = (live.learners)
                .entry(c.conn)
                .or_insert_with(|| (protocol.clone(), Vec::new()));
            wants.push(live.values.len());
            live.values.push(Planned {
                recorded: escaped(text),
                origin: c.origin.clone(),
                conn: c.conn,
                occurrence,
                declared: c.declared,
                learned: OnceLock::new(),
                substituted: AtomicU64::new(0),
                missed: AtomicBool::new(false),
                waited: AtomicBool::new(false),
            });
        }
        live.finder = aho_corasick::AhoCorasick::new(live.values.iter().map(|v| &v.recorded)).ok();
        live
    }

    /// The learner of the replay of recorded connection `conn`, if it has values to
    /// learn. Offer it every message of the connection, both directions, in order.
    pub fn watcher(self: &Arc<Self>, conn: u64) -> Option<Arc<Mutex<Watcher>>> {
        let (protocol, wants) = self.learners.get(&conn)?;
        let mut by_kind: HashMap<String, Vec<(Origin, Vec<usize>)>> = HashMap::new();
        for &i in wants {
            let origin = &self.values[i].origin;
            let origins = by_kind.entry(origin.kind.clone()).or_default();
            match origins.iter_mut().find(|(o, _)| o == origin) {
                Some((_, values)) => values.push(i),
                None => origins.push((origin.clone(), vec![i])),
            }
        }
        Some(Arc::new(Mutex::new(Watcher {
            live: self.clone(),
            decoder: protocol.decoder(),
            wants: by_kind,
            remaining: wants.len(),
            seen: HashMap::new(),
        })))
    }

    /// `body` with every learned value in place of its recorded one; a body holding a
    /// value not learned yet first waits for it (at most `timeout`, once per value).
    pub async fn outgoing<'b>(&self, body: &'b Body, timeout: Duration) -> Cow<'b, Body> {
        let Some(text) = body.as_text().filter(|_| !self.values.is_empty()) else {
            return Cow::Borrowed(body);
        };
        match self.substitute(text, timeout).await {
            Cow::Borrowed(_) => Cow::Borrowed(body),
            Cow::Owned(text) => Cow::Owned(Body::Text(text)),
        }
    }

    /// A connection's request target and header values with learned values in place of
    /// recorded ones (waiting as [`Live::outgoing`] does).
    pub async fn request(
        &self,
        target: &mut String,
        headers: &mut [(String, String)],
        timeout: Duration,
    ) {
        if self.values.is_empty() {
            return;
        }
        for text in std::iter::once(target).chain(headers.iter_mut().map(|(_, v)| v)) {
            if let Cow::Owned(new) = self.substitute(text, timeout).await {
                *text = new;
            }
        }
    }

    /// The values `text` holds as recorded, in plan order: one pass over the text for
    /// all of them (a replay asks for every message it sends).
    fn held(&self, text: &str) -> Vec<&Planned> {
        let mut held: Vec<usize> = match &self.finder {
            Some(finder) => (finder.find_overlapping_iter(text))
                .map(|m| m.pattern().as_usize())
                .collect(),
            None => (0..self.values.len())
                .filter(|&i| text.contains(&self.values[i].recorded))
                .collect(),
        };
        held.sort_unstable();
        held.dedup();
        held.into_iter().map(|i| &self.values[i]).collect()
    }

    async fn substitute<'t>(&self, text: &'t str, timeout: Duration) -> Cow<'t, str> {
        let held = self.held(text);
        let mut waits = false;
        for v in &held {
            // Every value waited for now is not waited for again.
            waits |= v.learned.get().is_none() && !v.waited.swap(true, Ordering::SeqCst);
        }
        if waits {
            let _ = tokio::time::timeout(timeout, async {
                loop {
                    let notified = self.learned.notified();
                    let pending = held.iter().any(|v| v.learned.get().is_none());
                    if !pending {
                        break;
                    }
                    notified.await;
                }
            })
            .await;
        }
        let mut out = Cow::Borrowed(text);
        for v in held {
            let Some(learned) = v.learned.get() else {
                v.missed.store(true, Ordering::Relaxed);
                continue;
            };
            if *learned == v.recorded {
                continue;
            }
            let n = out.matches(v.recorded.as_str()).count() as u64;
            v.substituted.fetch_add(n, Ordering::Relaxed);
            out = Cow::Owned(out.replace(v.recorded.as_str(), learned));
        }
        out
    }

    /// What was substituted, and what could not be.
    pub fn summary(&self) -> LiveSummary {
        let mut substituted: Vec<(String, u64)> = Vec::new();
        let mut values = 0;
        let mut missed: Vec<String> = Vec::new();
        for v in &self.values {
            let n = v.substituted.load(Ordering::Relaxed);
            if n > 0 {
                values += 1;
                match substituted.iter_mut().find(|(name, _)| *name == v.name()) {
                    Some((_, total)) => *total += n,
                    None => substituted.push((v.name(), n)),
                }
            }
            if v.missed.load(Ordering::Relaxed) {
                let counterpart = format!(
                    "{} occurrence of `{}` with {} on recorded connection {}",
                    ordinal(v.occurrence + 1),
                    v.origin.kind,
                    v.origin.path,
                    v.conn
                );
                let line = match v.learned.get() {
                    None => format!(
                        "{}: the build sent no {counterpart}, so the recorded value was sent",
                        v.name()
                    ),
                    Some(_) => format!(
                        "{}: the build sent the {counterpart} only after a client message needed it (waited up to the step timeout), so that message had the recorded value",
                        v.name()
                    ),
                };
                if !missed.contains(&line) {
                    missed.push(line);
                }
            }
        }
        LiveSummary {
            values,
            substituted,
            missed,
        }
    }
}

impl Watcher {
    /// Reads a message of the connection; learns the values it carries.
    pub fn offer(&mut self, dir: Dir, op: Opcode, body: &Body) {
        if dir == Dir::ClientToServer && !self.decoder.remembers() {
            return;
        }
        let mut events = Vec::with_capacity(1);
        self.decoder.decode(dir, op, body, &mut events);
        if dir == Dir::ClientToServer || self.remaining == 0 {
            return;
        }
        for event in &events {
            self.learn(event);
        }
    }

    fn learn(&mut self, event: &Event<'_>) {
        let Payload::Json(json) = &event.body else {
            return;
        };
        let Some(origins) = self.wants.get_mut(event.kind.as_ref()) else {
            return;
        };
        let live = &self.live;
        let mut learned = false;
        for (origin, wants) in origins.iter_mut() {
            // An origin whose values are all learned is no longer looked at.
            let Some(&first) = wants.first() else {
                continue;
            };
            let declared = live.values[first].declared;
            let Some(value) = at(json, &origin.path).and_then(|v| issued_text(v, declared)) else {
                continue;
            };
            let seen = self.seen.entry(origin.clone()).or_default();
            let occurrence = *seen;
            *seen += 1;
            for &i in wants.iter() {
                let v = &live.values[i];
                if v.occurrence == occurrence {
                    learned |= v.learned.set(escaped(&value)).is_ok();
                }
            }
        }
        if learned {
            for (_, wants) in origins.iter_mut() {
                let before = wants.len();
                wants.retain(|&i| live.values[i].learned.get().is_none());
                self.remaining -= before - wants.len();
            }
            live.learned.notify_waiters();
        }
    }
}

/// What a replay did with live values, for its summary.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LiveSummary {
    /// Distinct recorded values substituted at least once.
    pub values: usize,
    /// Per name (`sessionId`, `session.id`): substitutions made.
    pub substituted: Vec<(String, u64)>,
    /// Values a client message needed before they were learned, one line each.
    pub missed: Vec<String>,
}

impl LiveSummary {
    /// `3 live values substituted: sessionId ×41, targetId ×2`, then a line per value
    /// that was not learned; nothing when there were no live values.
    pub fn lines(&self) -> Vec<String> {
        let mut lines = Vec::new();
        if self.values > 0 {
            let names: Vec<String> = (self.substituted.iter())
                .map(|(name, n)| format!("{name} ×{n}"))
                .collect();
            lines.push(format!(
                "{} live value{} substituted: {}",
                self.values,
                if self.values == 1 { "" } else { "s" },
                names.join(", ")
            ));
        }
        for m in &self.missed {
            lines.push(format!("live value not substituted: {m}"));
        }
        lines
    }
}

/// Where a value was first seen, during detection.
struct Candidate {
    origin: Origin,
    conn: u64,
    /// Index of its message in the recording.
    position: usize,
    declared: bool,
    /// A later client message (or connection request) holds it.
    used: bool,
}

/// The recorded values that are live, in the order they first appeared: values of
/// declared origins, and (unless switched off) detected ones (see the module docs).
fn find(
    recording: &Recording,
    routes: &[String],
    entries: &[LiveEntry],
) -> Vec<(String, Candidate)> {
    let detect = !entries.contains(&LiveEntry::NoDetection);
    let origins = |want: fn(&LiveEntry) -> Option<&Origin>| -> Vec<&Origin> {
        entries.iter().filter_map(want).collect()
    };
    let declared = origins(|e| match e {
        LiveEntry::From(o) => Some(o),
        _ => None,
    });
    let ignored = origins(|e| match e {
        LiveEntry::Ignore(o) => Some(o),
        _ => None,
    });
    let named = |list: &[&Origin], kind: &str, path: &str| {
        list.iter().any(|o| o.kind == kind && o.path == path)
    };
    let mut reader = Reader::default();
    let mut replayed = HashSet::new();
    let mut sent_by_client: HashSet<String> = HashSet::new();
    let mut candidates: HashMap<String, Candidate> = HashMap::new();
    let mut order: Vec<String> = Vec::new();
    let mut events = Vec::new();
    // Every walk leaves it empty again: one buffer for the whole recording.
    let mut path = String::new();
    for (position, record) in recording.records.iter().enumerate() {
        match record {
            Record::Open(o) if routes.contains(&o.route) => {
                reader.open(o);
                replayed.insert(o.conn);
                let header_values = o.headers.iter().map(|(_, v)| v.as_str());
                for text in std::iter::once(o.path()).chain(header_values) {
                    client_uses(text, &mut candidates, &mut sent_by_client);
                }
            }
            Record::Message(m) if replayed.contains(&m.conn) => {
                events.clear();
                reader.decode(m, &mut events);
                for event in &events {
                    let Payload::Json(json) = &event.body else {
                        if let Some(text) =
                            m.body.as_text().filter(|_| m.dir == Dir::ClientToServer)
                        {
                            client_uses(text, &mut candidates, &mut sent_by_client);
                        }
                        continue;
                    };
                    if m.dir == Dir::ClientToServer {
                        walk(json, &mut path, &mut |_, value| {
                            if let Json::Str(text) = value {
                                client_uses(text, &mut candidates, &mut sent_by_client);
                            }
                        });
                        continue;
                    }
                    walk(json, &mut path, &mut |path, value| {
                        let is_declared = named(&declared, &event.kind, path);
                        if !detect && !is_declared {
                            return;
                        }
                        let Some(text) = issued_text(value, is_declared) else {
                            return;
                        };
                        let taken = is_declared
                            || !(named(&ignored, &event.kind, path)
                                || sent_by_client.contains(&*text));
                        if !taken || placeholder::contains(&text) || candidates.contains_key(&*text)
                        {
                            return;
                        }
                        order.push(text.to_string());
                        let origin = Origin {
                            kind: event.kind.to_string(),
                            path: path.to_string(),
                        };
                        let candidate = Candidate {
                            origin,
                            conn: m.conn,
                            position,
                            declared: is_declared,
                            used: is_declared,
                        };
                        candidates.insert(text.into_owned(), candidate);
                    });
                }
            }
            _ => {}
        }
    }
    order
        .into_iter()
        .filter_map(|text| {
            let c = candidates.remove(&text)?;
            c.used.then_some((text, c))
        })
        .collect()
}

/// Whether a server's string looks like a value it issued (see the module docs).
fn looks_issued(s: &str) -> bool {
    if s.len() < 6 || s.len() > 512 || s.chars().any(char::is_whitespace) {
        return false;
    }
    let digit = s.bytes().any(|b| b.is_ascii_digit());
    let mixed = s.len() >= 12
        && s.bytes().skip(1).any(|b| b.is_ascii_uppercase())
        && s.bytes().any(|b| b.is_ascii_lowercase());
    digit || mixed
}

/// The text of a value that counts at its origin: any string or number when the origin
/// is declared, else a string that [looks issued](looks_issued).
fn issued_text<'j>(value: &'j Json<'_>, declared: bool) -> Option<Cow<'j, str>> {
    match value {
        Json::Str(s) if declared || looks_issued(s) => Some(Cow::Borrowed(s)),
        _ if declared => value.id_text().map(Cow::Owned),
        _ => None,
    }
}

/// Takes note of a client's use of `text`: a candidate it holds (whole, or as a token)
/// is live; `text` itself was sent by the client.
fn client_uses(
    text: &str,
    candidates: &mut HashMap<String, Candidate>,
    sent_by_client: &mut HashSet<String>,
) {
    if !candidates.is_empty() {
        let tokens = text.split(|c: char| !(c.is_alphanumeric() || c == '_' || c == '-'));
        for t in std::iter::once(text).chain(tokens) {
            if let Some(c) = candidates.get_mut(t) {
                c.used = true;
            }
        }
    }
    if looks_issued(text) && !candidates.contains_key(text) {
        sent_by_client.insert(text.to_string());
    }
}

/// Calls `f` with the path (`a.b.0.c`) and value of every scalar in `json`.
fn walk<'j>(json: &'j Json<'_>, path: &mut String, f: &mut impl FnMut(&str, &'j Json<'_>)) {
    let mut child = |path: &mut String, key: &str, value: &'j Json<'_>| {
        let len = path.len();
        if len > 0 {
            path.push('.');
        }
        path.push_str(key);
        walk(value, path, f);
        path.truncate(len);
    };
    match json {
        Json::Obj(fields) => {
            for (k, v) in fields {
                child(path, k, v);
            }
        }
        Json::Arr(items) => {
            for (i, v) in items.iter().enumerate() {
                child(path, &i.to_string(), v);
            }
        }
        scalar => f(path, scalar),
    }
}

/// The value at `path` (`a.b.0.c`) in `json`.
fn at<'j, 'a>(json: &'j Json<'a>, path: &str) -> Option<&'j Json<'a>> {
    path.split('.').try_fold(json, |j, key| match j {
        Json::Obj(_) => j.get(key),
        Json::Arr(items) => items.get(key.parse::<usize>().ok()?),
        _ => None,
    })
}

/// A string as it appears inside a JSON string literal.
fn escaped(s: &str) -> String {
    let quoted = serde_json::to_string(s).unwrap_or_default();
    quoted[1..quoted.len() - 1].to_string()
}

/// `1st`, `2nd`, `3rd`, `4th`, ….
fn ordinal(n: usize) -> String {
    let suffix = match (n % 10, n % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("{n}{suffix}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recording::{Header, Message, Open};

    fn open(conn: u64, target: &str) -> Record {
        open_on("r", conn, target)
    }

    fn open_on(route: &str, conn: u64, target: &str) -> Record {
        Record::Open(Open::accepted(route, conn, target))
    }

    fn msg(conn: u64, dir: Dir, text: &str) -> Record {
        let body = Body::Text(text.into());
        Record::Message(Message::whole(conn, dir, Opcode::TEXT, body))
    }

    fn plan(records: Vec<Record>, entries: &[LiveEntry]) -> Live {
        plan_routes(records, &["r"], entries)
    }

    fn plan_routes(records: Vec<Record>, routes: &[&str], entries: &[LiveEntry]) -> Live {
        let recording = Recording {
            path: "r.jsonl".into(),
            header: Header::current(0),
            records,
            warnings: vec![],
        };
        let routes: Vec<String> = routes.iter().map(|r| r.to_string()).collect();
        Live::plan(&recording, &routes, entries)
    }

    #[test]
    fn a_value_issued_on_one_hop_is_live_when_a_replayed_client_of_another_sends_it() {
        use Dir::*;
        let hops = || {
            vec![
                open_on("auth", 1, "/login"),
                msg(
                    1,
                    ServerToClient,
                    r#"{"type":"ticket","ticket":"tkt_77aa88"}"#,
                ),
                open_on("api", 2, "/ws"),
                msg(2, ClientToServer, r#"{"type":"use","ticket":"tkt_77aa88"}"#),
            ]
        };
        let live = plan_routes(hops(), &["auth", "api"], &[]);
        assert_eq!(origins(&live), ["s2c ticket ticket #0 of conn 1"]);
        // Only replayed clients send values back: a mocked route's are the recording's.
        assert!(plan_routes(hops(), &["auth"], &[]).values.is_empty());
    }

    /// A session: the server issues ids and words; the client sends some back.
    fn session() -> Vec<Record> {
        use Dir::*;
        vec![
            open(1, "/ws"),
            msg(
                1,
                ClientToServer,
                r#"{"type":"hello","client":"cli_123456"}"#,
            ),
            msg(
                1,
                ServerToClient,
                r#"{"type":"welcome","session":{"id":"sess_9f8e7d"},"state":"connection_established","echo":"cli_123456","token":"redacted-0123456789ab","short":"ab1"}"#,
            ),
            msg(
                1,
                ClientToServer,
                r#"{"type":"add","session_id":"sess_9f8e7d","href":"/s/sess_9f8e7d/items","state":"connection_established","c":"cli_123456","t":"redacted-0123456789ab","s":"ab1"}"#,
            ),
            open(2, "/ws?session=sess_9f8e7d"),
        ]
    }

    fn origins(live: &Live) -> Vec<String> {
        (live.values.iter())
            .map(|v| format!("{} #{} of conn {}", v.origin, v.occurrence, v.conn))
            .collect()
    }

    #[test]
    fn issued_values_the_client_sends_back_are_live_and_words_echoes_and_placeholders_not() {
        let live = plan(session(), &[]);
        assert_eq!(origins(&live), ["s2c welcome session.id #0 of conn 1"]);
        assert_eq!(live.values[0].name(), "session.id");
    }

    #[test]
    fn entries_declare_ignore_or_switch_detection_off() {
        let from: LiveEntry = toml::from_str::<toml::Table>("from = \"s2c welcome short\"")
            .unwrap()
            .try_into()
            .unwrap();
        let live = plan(session(), &[from]);
        assert_eq!(
            origins(&live),
            [
                "s2c welcome session.id #0 of conn 1",
                "s2c welcome short #0 of conn 1"
            ]
        );
        let ignore = LiveEntry::Ignore("s2c welcome session.id".parse().unwrap());
        assert!(plan(session(), &[ignore]).values.is_empty());
        assert!(plan(session(), &[LiveEntry::NoDetection]).values.is_empty());
        let bad = toml::from_str::<LiveEntry>("from = \"welcome session.id\"").unwrap_err();
        assert!(bad.to_string().contains("s2c KIND PATH"), "{bad}");
        let both = toml::from_str::<LiveEntry>("from = \"s2c a b\"\nignore = \"auto\"");
        assert!(both.unwrap_err().to_string().contains("exactly one"));
    }

    #[tokio::test]
    async fn the_counterpart_occurrence_is_learned_and_substituted_everywhere_byte_for_byte() {
        use Dir::*;
        let live = Arc::new(plan(
            vec![
                open(1, "/ws"),
                msg(1, ServerToClient, r#"{"type":"made","id":"room_111111"}"#),
                msg(1, ServerToClient, r#"{"type":"made","id":"room_222222"}"#),
                msg(1, ClientToServer, r#"{"join": "room_222222",  "x":1}"#),
            ],
            &[],
        ));
        assert_eq!(origins(&live), ["s2c made id #1 of conn 1"]);
        let watcher = live.watcher(1).unwrap();
        {
            let mut w = watcher.lock().unwrap();
            w.offer(
                ServerToClient,
                Opcode::TEXT,
                &Body::Text(r#"{"type":"made","id":"room_a1a1a1"}"#.into()),
            );
            w.offer(
                ServerToClient,
                Opcode::TEXT,
                &Body::Text(r#"{"type":"other","id":"room_c3c3c3"}"#.into()),
            );
            w.offer(
                ServerToClient,
                Opcode::TEXT,
                &Body::Text(r#"{"type":"made","id":"room_b2b2b2"}"#.into()),
            );
        }
        let sent = Body::Text(r#"{"join": "room_222222",  "x":1, "u":"/r/room_222222"}"#.into());
        let out = live.outgoing(&sent, Duration::ZERO).await;
        assert_eq!(
            out.as_text(),
            Some(r#"{"join": "room_b2b2b2",  "x":1, "u":"/r/room_b2b2b2"}"#)
        );
        let (mut target, mut headers) = ("/ws?room=room_222222".to_string(), vec![]);
        live.request(&mut target, &mut headers, Duration::ZERO)
            .await;
        assert_eq!(target, "/ws?room=room_b2b2b2");
        assert_eq!(live.summary().lines(), ["1 live value substituted: id ×3"]);
    }

    #[tokio::test]
    async fn a_value_the_build_never_sent_goes_out_as_recorded_and_is_reported_once() {
        let live = plan(session(), &[]);
        let sent = Body::Text(r#"{"session_id":"sess_9f8e7d"}"#.into());
        for _ in 0..2 {
            let out = live.outgoing(&sent, Duration::from_millis(1)).await;
            assert_eq!(out.as_text(), sent.as_text());
        }
        assert_eq!(
            live.summary().lines(),
            ["live value not substituted: session.id: the build sent no 1st occurrence of `welcome` with session.id on recorded connection 1, so the recorded value was sent"]
        );
        // It came after all: later messages get it, the line says it came late.
        let live = Arc::new(live);
        let welcome = r#"{"type":"welcome","session":{"id":"sess_1a2b3c"}}"#;
        let w = live.watcher(1).unwrap();
        (w.lock().unwrap()).offer(
            Dir::ServerToClient,
            Opcode::TEXT,
            &Body::Text(welcome.into()),
        );
        let out = live.outgoing(&sent, Duration::ZERO).await;
        assert_eq!(out.as_text(), Some(r#"{"session_id":"sess_1a2b3c"}"#));
        let lines = live.summary().lines();
        assert_eq!(lines[0], "1 live value substituted: session.id ×1");
        assert!(
            lines[1].contains("only after a client message needed it"),
            "{lines:?}"
        );
    }
}
