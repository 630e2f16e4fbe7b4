//! Observing a recording: every message's key paths, types, formats and literal
//! candidates per route, direction and kind, and the conversations; the [`Hints`] a
//! baseline gives (literal fields, integer/float paths, streams); and the rendering of
//! observations into a [`Structure`], conversations into sequence lines.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use rustc_hash::FxHashMap;

use super::formats::*;
use super::*;
use crate::protocol::{self, Json, Overrides, Payload, Reader, Shared};
use crate::recording::{Body, Dir, Opcode, Record, Recording};
use crate::redact::secrets;

/// What was seen at one path of one message kind.
#[derive(Clone, Debug, Default)]
pub(crate) struct PathStats {
    /// Values seen at this path.
    seen: u64,
    /// Times this path held a non-empty object (children's parent count).
    as_object: u64,
    /// Times this path held a non-empty array (elements' parent count).
    elements: u64,
    types: BTreeSet<TypeTag>,
    /// Distinct string values and how often each was seen, while few and enum-like.
    literals: BTreeMap<String, u64>,
    /// False once a non-enum-like or one-too-many string was seen.
    literal_ok: bool,
}

/// Statistics of one message kind.
#[derive(Clone, Debug, Default)]
pub(crate) struct KindStats {
    count: u64,
    paths: FxHashMap<String, PathStats>,
}

/// The raw statistics of a recording (or several), before rendering.
#[derive(Clone, Debug, Default)]
pub struct Observation {
    routes: BTreeMap<String, RouteStats>,
    /// Protocols configured per route; the other routes' are chosen per connection.
    overrides: Overrides,
}

#[derive(Clone, Debug, Default)]
pub(crate) struct RouteStats {
    /// The protocol its (first) connection was read with.
    protocol: Option<Shared>,
    /// Per direction, per label (nested so a label can be looked up as `&str`).
    kinds: BTreeMap<Dir, BTreeMap<String, KindStats>>,
    /// Conversation → how many times it occurred.
    conversations: BTreeMap<Conversation, u64>,
}

/// One conversation's messages in order, as runs of one kind: direction, label and how
/// many in a row.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Conversation {
    /// Grouped by connection (no correlation value), not by a correlation value.
    per_connection: bool,
    runs: Vec<(Dir, String, u64)>,
}

impl Conversation {
    /// The kind of its first message: conversations that open alike are compared with
    /// each other when streams are detected.
    fn opener(&self) -> Option<(Dir, &str)> {
        self.runs.first().map(|(d, l, _)| (*d, l.as_str()))
    }

    /// How many messages of each kind it holds.
    fn counts(&self) -> Counts<'_> {
        let mut out = BTreeMap::new();
        for (d, l, n) in &self.runs {
            *out.entry((*d, l.as_str())).or_default() += n;
        }
        out
    }
}

/// A message's place in its conversation: direction and (interned) label.
pub(crate) type Step = (Dir, u32);

/// Kinds taken as streams (direction, label) → the fewest a conversation had (0 or 1).
type Streams = BTreeMap<(Dir, String), u64>;

/// Kinds and how many of each a conversation holds.
type Counts<'a> = BTreeMap<(Dir, &'a str), u64>;

/// Baseline facts that make the structure of later runs comparable with it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Hints {
    /// (route, dir, kind, path) whose string values are shown literally.
    literal: HashSet<(String, Dir, String, String)>,
    /// Paths seen as both integer and float: shown as `number`.
    number: HashSet<(String, Dir, String, String)>,
    /// Every baseline path.
    known: HashSet<(String, Dir, String, String)>,
    /// (route, dir, kind, field name) of literal fields: a path new in a run whose
    /// field name is one of these (a field moved elsewhere) is shown literally too.
    literal_names: HashSet<(String, Dir, String, String)>,
    /// (route, dir, kind) taken as streams → the fewest a conversation had (0 or 1).
    streams: HashMap<(String, Dir, String), u64>,
    /// Per (route, opener's dir and kind): the streams of the conversations that open so
    /// → the fewest such a conversation had (0 or 1).
    stream_groups: HashMap<(String, Dir, String), Streams>,
}

impl Observation {
    /// Observes every message of a recording.
    pub fn of(recording: &Recording) -> Observation {
        let mut obs = Observation::default();
        obs.add(recording);
        obs
    }

    /// Observes every message of a recording, reading the routes that `config` names in
    /// `[structure.route.NAME]` with the protocols declared there (a table that cannot be
    /// used, which loading the configuration reports, leaves its route to be chosen per
    /// connection).
    pub fn of_with(recording: &Recording, config: &StructureConfig) -> Observation {
        let overrides = config
            .route
            .iter()
            .filter_map(|(route, table)| Some((route.clone(), table.protocol(route).ok()?)))
            .collect();
        let mut obs = Observation::with_protocols(overrides);
        obs.add(recording);
        obs
    }

    /// An empty observation that reads the routes of `overrides` with the protocols
    /// named there.
    pub fn with_protocols(overrides: Overrides) -> Observation {
        Observation {
            routes: BTreeMap::new(),
            overrides,
        }
    }

    /// Adds a recording's messages.
    pub fn add(&mut self, recording: &Recording) {
        let mut routes: HashMap<u64, String> = HashMap::new();
        let mut labels: Vec<String> = Vec::new();
        let mut label_ids: HashMap<String, u32> = HashMap::new();
        // Per connection and conversation (None: per connection), the steps in order.
        let mut convs: FxHashMap<(u64, Option<String>), Vec<Step>> = FxHashMap::default();
        // The heartbeat kinds each connection sent, per direction: counted once.
        let mut heartbeats: HashSet<(u64, Dir, u32)> = HashSet::new();
        let mut path = String::new();
        let mut events = Vec::new();
        let mut reader = Reader::new(self.overrides.clone());
        for record in &recording.records {
            match record {
                Record::Open(o) => {
                    reader.open(o);
                    // A hand-edited route name may hold a line break: quoted, it cannot
                    // forge a line of the snapshot text.
                    routes.insert(o.conn, line_safe(&o.route, false).into_owned());
                }
                Record::Message(m) => {
                    let Some(route) = routes.get(&m.conn) else {
                        continue;
                    };
                    events.clear();
                    let choice = reader.decode(m, &mut events);
                    let stats = match self.routes.get_mut(route.as_str()) {
                        Some(s) => s,
                        None => self.routes.entry(route.clone()).or_default(),
                    };
                    stats
                        .protocol
                        .get_or_insert_with(|| choice.protocol.clone());
                    for event in events.drain(..) {
                        let label = match line_safe(&event.kind, false) {
                            Cow::Borrowed(_) => event.kind,
                            quoted => Cow::Owned(quoted.into_owned()),
                        };
                        let id = match label_ids.get(label.as_ref()) {
                            Some(id) => *id,
                            None => {
                                let id = labels.len() as u32;
                                label_ids.insert(label.to_string(), id);
                                labels.push(label.to_string());
                                id
                            }
                        };
                        let heartbeat = choice.protocol.is_heartbeat(&label);
                        if heartbeat && !heartbeats.insert((m.conn, m.dir, id)) {
                            continue;
                        }
                        let by_label = stats.kinds.entry(m.dir).or_default();
                        let kind = match by_label.get_mut(label.as_ref()) {
                            Some(k) => k,
                            None => by_label.entry(label.to_string()).or_default(),
                        };
                        kind.count += 1;
                        match &event.body {
                            Payload::Json(j) => {
                                path.clear();
                                observe(j, &mut path, &mut kind.paths);
                            }
                            Payload::Opaque => observe_opaque(m.op, &m.body, &mut kind.paths),
                        }
                        if !heartbeat {
                            convs
                                .entry((m.conn, event.correlation))
                                .or_default()
                                .push((m.dir, id));
                        }
                    }
                }
                _ => {}
            }
        }
        for ((conn, key), steps) in convs {
            let Some(route) = routes.get(&conn) else {
                continue;
            };
            let mut runs: Vec<(Dir, String, u64)> = Vec::new();
            for (dir, id) in steps {
                let label = &labels[id as usize];
                match runs.last_mut() {
                    Some((d, l, n)) if *d == dir && l == label => *n += 1,
                    _ => runs.push((dir, label.clone(), 1)),
                }
            }
            let conversation = Conversation {
                per_connection: key.is_none(),
                runs,
            };
            *self
                .routes
                .entry(route.clone())
                .or_default()
                .conversations
                .entry(conversation)
                .or_default() += 1;
        }
    }

    /// The fewest and most messages of a kind the conversations of `route` had, among
    /// those that open like one that holds it (as streams are told); `None` when no
    /// conversation holds it.
    pub(crate) fn per_conversation(
        &self,
        route: &str,
        dir: Dir,
        label: &str,
    ) -> Option<(u64, u64)> {
        let conversations = self.routes.get(route)?.conversations.keys();
        let holds = |c: &&Conversation| c.counts().contains_key(&(dir, label));
        let openers: BTreeSet<(Dir, &str)> = (conversations.clone())
            .filter(holds)
            .filter_map(Conversation::opener)
            .collect();
        let alike = conversations.filter(|c| c.opener().is_some_and(|o| openers.contains(&o)));
        let counts = alike.map(|c| c.counts().get(&(dir, label)).copied().unwrap_or(0));
        let (lo, hi) = counts.fold((u64::MAX, 0), |(lo, hi), n| (lo.min(n), hi.max(n)));
        (hi > 0).then_some((lo, hi))
    }

    /// The hints a baseline gives: literal fields and integer/float paths.
    pub fn hints(&self) -> Hints {
        self.hints_with(&StructureConfig::default())
    }

    /// The hints a baseline gives, with the literal-field overrides of `config`.
    pub fn hints_with(&self, config: &StructureConfig) -> Hints {
        let mut hints = Hints::default();
        // How often each candidate value was seen anywhere in the baseline.
        let mut seen: HashMap<&str, u64> = HashMap::new();
        for k in self
            .routes
            .values()
            .flat_map(|r| r.kinds.values().flat_map(|m| m.values()))
        {
            for p in k
                .paths
                .values()
                .filter(|p| p.literal_ok && !p.types.is_empty())
            {
                for (value, n) in &p.literals {
                    *seen.entry(value.as_str()).or_default() += n;
                }
            }
        }
        for (route, r) in &self.routes {
            for (dir, label, k) in r
                .kinds
                .iter()
                .flat_map(|(d, m)| m.iter().map(move |(l, k)| (d, l, k)))
            {
                for (path, p) in &k.paths {
                    let key = (route.clone(), *dir, label.clone(), path.clone());
                    let discriminator = match &r.protocol {
                        Some(p) => p.is_discriminator(path),
                        None => protocol::default().is_discriminator(path),
                    };
                    let only_strings = p
                        .types
                        .iter()
                        .all(|t| matches!(t, TypeTag::Str(_) | TypeTag::Null));
                    let values = only_strings && p.literal_ok && !p.literals.is_empty();
                    let auto = values
                        && p.literals.len() <= MAX_LITERALS
                        && p.literals
                            .keys()
                            .all(|v| seen.get(v.as_str()).is_some_and(|n| *n >= 2));
                    let configured = values && StructureConfig::names(&config.literal, path);
                    let volatile = StructureConfig::names(&config.volatile, path);
                    if !volatile && (discriminator || auto || configured) {
                        hints.literal.insert(key.clone());
                        let name = field_name(path).to_string();
                        hints
                            .literal_names
                            .insert((route.clone(), *dir, label.clone(), name));
                    }
                    hints.known.insert(key.clone());
                    if p.types.contains(&TypeTag::Int) && p.types.contains(&TypeTag::Float) {
                        hints.number.insert(key);
                    }
                }
            }
            hints.add_streams(route, r, config);
        }
        hints
    }

    /// Renders the structure, using a baseline's hints.
    pub fn render(&self, hints: &Hints) -> Structure {
        let mut out = Structure::default();
        for (route, r) in &self.routes {
            let section = out.routes.entry(route.clone()).or_default();
            for (dir, label, k) in r
                .kinds
                .iter()
                .flat_map(|(d, m)| m.iter().map(move |(l, k)| (d, l, k)))
            {
                let mut fields = BTreeMap::new();
                for (path, p) in &k.paths {
                    let key = (route.clone(), *dir, label.clone(), path.clone());
                    // Elements are bounded by their array's length, fields by how often
                    // their parent was an object; top-level fields by the message count.
                    let parent_count = match parent_of(path).and_then(|parent| k.paths.get(parent))
                    {
                        Some(ps) if path.ends_with("[]") => ps.elements,
                        Some(ps) => ps.as_object,
                        None => k.count,
                    };
                    let optional = p.seen < parent_count;
                    let name = if optional {
                        format!("{path}?")
                    } else {
                        path.clone()
                    };
                    let literal = hints.literal.contains(&key)
                        || (!hints.known.contains(&key)
                            && hints.literal_names.contains(&(
                                route.clone(),
                                *dir,
                                label.clone(),
                                field_name(path).to_string(),
                            )));
                    // A password field's value is never a literal (STOMP's `passcode`).
                    let literal = literal && !secrets::is_password_field(field_name(path));
                    fields.insert(name, describe(p, literal, hints.number.contains(&key)));
                }
                let stream = hints.streams.get(&(route.clone(), *dir, label.clone()));
                section.kinds.insert(
                    (*dir, label.clone()),
                    KindSection {
                        count: stream.copied().unwrap_or(k.count),
                        stream: stream.is_some(),
                        fields,
                        learned: None,
                    },
                );
            }
            for (conversation, n) in &r.conversations {
                *section
                    .sequences
                    .entry(hints.sequence(route, conversation))
                    .or_default() += n;
            }
        }
        out
    }
}

impl Hints {
    /// Takes as streams the kinds of `route` whose number per conversation varied among
    /// the conversations that open alike (and was above one at least once), or that
    /// `[structure] streams` names; never those `[structure] exact` names.
    fn add_streams(&mut self, route: &str, r: &RouteStats, config: &StructureConfig) {
        // Per opener: each distinct conversation's counts per kind.
        let mut groups: BTreeMap<(Dir, &str), Vec<Counts>> = BTreeMap::new();
        for conversation in r.conversations.keys() {
            if let Some(opener) = conversation.opener() {
                groups
                    .entry(opener)
                    .or_default()
                    .push(conversation.counts());
            }
        }
        for ((opener_dir, opener), members) in groups {
            let kinds: BTreeSet<(Dir, &str)> = members
                .iter()
                .flat_map(|counts| counts.keys().copied())
                .collect();
            for (dir, label) in kinds {
                let counts = members
                    .iter()
                    .map(|counts| counts.get(&(dir, label)).copied().unwrap_or(0));
                let (min, max) = (counts.clone().min(), counts.max());
                let (Some(min), Some(max)) = (min, max) else {
                    continue;
                };
                let named = |list: &[String]| list.iter().any(|e| e == label);
                let varied = min != max && max >= 2;
                let learned =
                    (config.learned_streams).get(&(route.to_string(), dir, label.to_string()));
                if named(&config.exact) || !(varied || learned.is_some() || named(&config.streams))
                {
                    continue;
                }
                let fewest = min.min(1).min(learned.copied().unwrap_or(1));
                self.stream_groups
                    .entry((route.to_string(), opener_dir, opener.to_string()))
                    .or_default()
                    .insert((dir, label.to_string()), fewest);
                let overall = self
                    .streams
                    .entry((route.to_string(), dir, label.to_string()))
                    .or_insert(fewest);
                *overall = (*overall).min(fewest);
            }
        }
    }

    /// A conversation as a line of the snapshot's sequences: `c2s chat → s2c
    /// progress_update ×1+ → s2c agent_completed`. A stream's runs read `×1+`; a stream
    /// that some conversations of its kind lacked (`×0+`) is named once at the end, as
    /// where it falls cannot be compared.
    fn sequence(&self, route: &str, conversation: &Conversation) -> String {
        let empty = BTreeMap::new();
        let streams = conversation
            .opener()
            .and_then(|(d, l)| {
                self.stream_groups
                    .get(&(route.to_string(), d, l.to_string()))
            })
            .unwrap_or(&empty);
        // Step text, whether a stream, how many in a row.
        let mut steps: Vec<(String, bool, u64)> = Vec::new();
        for (dir, label, n) in &conversation.runs {
            let fewest = streams.get(&(*dir, label.clone()));
            if fewest == Some(&0) {
                continue;
            }
            let step = format!("{dir} {label}");
            match steps.last_mut() {
                Some((last, _, count)) if *last == step => *count += n,
                _ => steps.push((step, fewest.is_some(), *n)),
            }
        }
        let line: Vec<String> = steps
            .into_iter()
            .map(|(step, stream, n)| match (stream, n) {
                (true, _) => format!("{step} ×1+"),
                (false, 1) => step,
                (false, n) => format!("{step} ×{n}"),
            })
            .collect();
        let anywhere: Vec<String> = streams
            .iter()
            .filter(|(_, fewest)| **fewest == 0)
            .map(|((dir, label), _)| format!("{dir} {label} ×0+"))
            .collect();
        let prefix = if conversation.per_connection {
            "per connection: "
        } else {
            ""
        };
        let mut text = format!("{prefix}{}", line.join(" → "));
        if !anywhere.is_empty() {
            text += &format!(" (and {} anywhere)", anywhere.join(", "));
        }
        text
    }
}

/// The parent path whose occurrences bound a path's: `a.b` → `a`, `a[]` → `a`,
/// `a[].b` → `a[]`; top-level paths have none.
pub(crate) fn parent_of(path: &str) -> Option<&str> {
    if let Some(p) = path.strip_suffix("[]") {
        return Some(p);
    }
    path.rfind('.').map(|i| &path[..i])
}

/// Records `value` at `path` (the path buffer is restored before returning).
pub(crate) fn observe(
    value: &Json<'_>,
    path: &mut String,
    paths: &mut FxHashMap<String, PathStats>,
) {
    if !path.is_empty() {
        let stats = match paths.get_mut(path.as_str()) {
            Some(stats) => stats,
            None => paths.entry(path.clone()).or_insert_with(|| PathStats {
                literal_ok: true,
                ..PathStats::default()
            }),
        };
        stats.seen += 1;
        let tag = match value {
            Json::Null => TypeTag::Null,
            Json::Bool(_) => TypeTag::Bool,
            Json::Int(v) => number_tag(*v, false),
            Json::Float(v) => number_tag(*v, true),
            Json::Str(s) => {
                let shape = StrShape::of(s);
                if stats.literal_ok {
                    if let Some(n) = stats.literals.get_mut(s.as_ref()) {
                        *n += 1;
                    } else if shape == StrShape::Plain
                        && stats.literals.len() < MAX_CONFIGURED_LITERALS
                        && enum_token(s)
                        && !secrets::is_suspicious(s)
                    {
                        stats.literals.insert(s.to_string(), 1);
                    } else {
                        stats.literal_ok = false;
                        stats.literals.clear();
                    }
                }
                // Strings have no children: done once the format is known.
                if stats
                    .types
                    .iter()
                    .any(|t| matches!(t, TypeTag::Str(f) if shape.is(f)))
                {
                    return;
                }
                TypeTag::Str(shape.to_format())
            }
            Json::Obj(fields) if fields.is_empty() => TypeTag::EmptyObject,
            Json::Obj(_) => {
                stats.as_object += 1;
                TypeTag::Object
            }
            Json::Arr(items) if items.is_empty() => TypeTag::EmptyArray,
            Json::Arr(items) => {
                stats.elements += items.len() as u64;
                TypeTag::Array
            }
        };
        if !stats.types.contains(&tag) {
            stats.types.insert(tag);
        }
    }
    observe_children(value, path, paths);
}

/// A key or label as it can stand in the line-based snapshot text: as it is, unless it
/// holds a control character (a newline would start a new line) or, for a key (`strict`),
/// any whitespace or a leading `#` or `"` (which the parser would take for a heading or
/// a separator); then JSON-quoted, with spaces escaped too.
pub(crate) fn line_safe(s: &str, strict: bool) -> Cow<'_, str> {
    let awkward = s.chars().any(char::is_control)
        || (strict && (s.chars().any(char::is_whitespace) || s.starts_with(['#', '"'])));
    if !awkward {
        return Cow::Borrowed(s);
    }
    Cow::Owned(
        serde_json::Value::String(s.to_string())
            .to_string()
            .replace(' ', "\\u0020"),
    )
}

pub(crate) fn observe_children(
    value: &Json<'_>,
    path: &mut String,
    paths: &mut FxHashMap<String, PathStats>,
) {
    let len = path.len();
    match value {
        Json::Obj(fields) => {
            for (k, v) in fields {
                if len > 0 {
                    path.push('.');
                }
                path.push_str(&line_safe(k, true));
                observe(v, path, paths);
                path.truncate(len);
            }
        }
        Json::Arr(items) => {
            path.push_str("[]");
            for item in items {
                observe(item, path, paths);
            }
            path.truncate(len);
        }
        _ => {}
    }
}

/// Non-JSON messages: a `(body)` pseudo-path with the kind and a size class.
pub(crate) fn observe_opaque(op: Opcode, body: &Body, paths: &mut FxHashMap<String, PathStats>) {
    let stats = paths.entry("(body)".into()).or_default();
    stats.seen += 1;
    let kind = match (op, body) {
        (Opcode::TEXT, Body::Text(_)) => "text",
        (Opcode::TEXT, Body::Bytes(_)) => "invalid UTF-8 text",
        (Opcode::BINARY, _) => "binary",
        _ => "frame",
    };
    *stats
        .literals
        .entry(format!("{kind}, {}", size_class(body.len())))
        .or_default() += 1;
}

pub(crate) fn size_class(n: usize) -> &'static str {
    match n {
        0 => "empty",
        1..=15 => "1-15 B",
        16..=255 => "16-255 B",
        256..=4095 => "256 B-4 KiB",
        4096..=65535 => "4-64 KiB",
        65536..=1048575 => "64 KiB-1 MiB",
        _ => "1 MiB or more",
    }
}

pub(crate) fn describe(p: &PathStats, literal: bool, number: bool) -> String {
    if p.types.is_empty() {
        // Opaque bodies keep their descriptions in `literals`.
        return p.literals.keys().cloned().collect::<Vec<_>>().join(" | ");
    }
    // The last guard before a value is written into a snapshot (and so into git, JUnit,
    // HTML and the terminal): a field holding anything credential-shaped or random is
    // described by its type, whatever the hints say.
    let literal = literal && p.literal_ok && !p.literals.keys().any(|s| secrets::is_suspicious(s));
    let mut parts: BTreeSet<String> = BTreeSet::new();
    for t in &p.types {
        let d = match t {
            TypeTag::Null => "null".to_string(),
            TypeTag::Bool => "boolean".into(),
            TypeTag::Int if number => "number".into(),
            TypeTag::Float if number => "number".into(),
            TypeTag::Int => "integer".into(),
            TypeTag::Float => "float".into(),
            TypeTag::EpochSeconds => "number: epoch seconds".into(),
            TypeTag::EpochMillis => "number: epoch milliseconds".into(),
            TypeTag::Str(_) if literal => continue,
            TypeTag::Str(f) => f.describe(),
            TypeTag::Object => "object".into(),
            TypeTag::EmptyObject => "object (empty)".into(),
            TypeTag::Array => "array".into(),
            TypeTag::EmptyArray => "array (empty)".into(),
        };
        parts.insert(d);
    }
    if literal {
        parts.extend(
            p.literals
                .keys()
                .map(|s| serde_json::Value::String(s.clone()).to_string()),
        );
    }
    parts.into_iter().collect::<Vec<_>>().join(" | ")
}

#[cfg(test)]
mod tests {
    use crate::recording::{Body, Dir, Recording};
    use crate::structure::{Structure, StructureConfig};

    fn fields(
        rec: &Recording,
        config: &StructureConfig,
    ) -> std::collections::BTreeMap<String, String> {
        let s = Structure::of_with(rec, config);
        s.routes["r"].kinds[&(Dir::ServerToClient, "login".to_string())]
            .fields
            .clone()
    }

    #[test]
    fn a_stomp_passcode_is_not_a_snapshot_literal() {
        // RabbitMQ's default user: `login` and `passcode` are both `guest`.
        let rec = Recording::single_connection(
            "r",
            [(
                Dir::ClientToServer,
                Body::Text("CONNECT\nlogin:guest\npasscode:guest\naccept-version:1.2\n\n\0".into()),
            )],
        );
        let rendered = Structure::of(&rec).render();
        let value = |field: &str| {
            let line = rendered.lines().find(|l| l.starts_with(field));
            line.map(|l| l[field.len()..].trim().to_string())
        };
        assert_eq!(value("login ").as_deref(), Some("\"guest\""), "{rendered}");
        assert_eq!(value("passcode ").as_deref(), Some("string"), "{rendered}");
    }

    /// Issue 15: a value seen once, a random token or a vendor key was written into
    /// the snapshot as an "enum" member.
    #[test]
    fn secrets_and_values_seen_once_are_not_snapshot_literals() {
        // Fake credentials, put together here so that no scanner flags this file.
        let stripe = format!("sk_live_{}", "4eC39HqLyjWDarjtT1zdp7dc");
        let google = format!("AIza{}", "SyD8x7Kq2Lm9Np4Rt6Vw1Yz3Bc5Df0Gh2Jk");
        let random = "Xk9Lm2Qp8Rt5Vw3Yz7Bn4Cd6Fg1Hj0Ks";
        let texts = [
            format!(
                r#"{{"type":"login","k":"{stripe}","g":"{google}","r":"{random}","status":"ok","pin":"hunter2x","once":"alpha"}}"#
            ),
            format!(
                r#"{{"type":"login","k":"{stripe}","g":"{google}","r":"{random}","status":"ok","pin":"swordfish7","once":"beta"}}"#
            ),
        ];
        let rec = Recording::single_connection(
            "r",
            texts
                .iter()
                .map(|t| (Dir::ServerToClient, Body::Text(t.clone()))),
        );
        let f = fields(&rec, &StructureConfig::default());
        for field in ["k", "g", "r", "pin", "once"] {
            assert_eq!(f[field], "string", "{field}: {f:?}");
        }
        assert_eq!(f["status"], "\"ok\"");
        assert_eq!(f["type"], "\"login\"");
        let rendered = Structure::of(&rec).render();
        for secret in [
            stripe.as_str(),
            google.as_str(),
            random,
            "hunter2x",
            "swordfish7",
        ] {
            assert!(!rendered.contains(secret), "{secret} in\n{rendered}");
        }
        // Declared literal: values seen once are kept, credentials still are not.
        let config = StructureConfig {
            literal: vec!["pin".into(), "k".into()],
            ..StructureConfig::default()
        };
        let f = fields(&rec, &config);
        assert_eq!(f["pin"], "\"hunter2x\" | \"swordfish7\"");
        assert_eq!(f["k"], "string");
    }

    /// A value seen once in the baseline and once in the run is described the same way
    /// on both sides: the hints come from the baseline.
    #[test]
    fn a_value_seen_once_is_treated_alike_in_baseline_and_run() {
        let rec = |code: &str| {
            let texts = [
                r#"{"type":"error","error":{"type":"CODE"}}"#.replace("CODE", code),
                r#"{"type":"ok"}"#.to_string(),
            ];
            Recording::single_connection(
                "r",
                texts
                    .into_iter()
                    .map(|t| (Dir::ServerToClient, Body::Text(t))),
            )
        };
        let (base, run) = (rec("server_error"), rec("server_error"));
        let obs = crate::structure::Observation::of(&base);
        let hints = obs.hints();
        let old = obs.render(&hints);
        let new = crate::structure::Observation::of(&run).render(&hints);
        assert_eq!(old, new);
        let error = &old.routes["r"].kinds[&(Dir::ServerToClient, "error".to_string())];
        assert_eq!(error.fields["error.type"], "string");
    }

    /// Engine.IO's ping comes on the server's clock: where it and its pong fall among
    /// a Socket.IO conversation's events changes no sequence, and how many there were
    /// (how long the connection was open) changes no count.
    #[test]
    fn socketio_heartbeats_are_counted_once_and_are_no_step_of_a_sequence() {
        use crate::recording::Record;
        let rec = |heartbeats: &[usize]| {
            let mut texts = vec![
                (Dir::ClientToServer, "40"),
                (Dir::ServerToClient, r#"40{"sid":"b"}"#),
                (Dir::ClientToServer, r#"42["chat",{"text":"hi"}]"#),
            ];
            for at in heartbeats.iter().rev() {
                texts.insert(*at, (Dir::ClientToServer, "3"));
                texts.insert(*at, (Dir::ServerToClient, "2"));
            }
            let mut rec = Recording::single_connection(
                "r",
                texts
                    .into_iter()
                    .map(|(dir, t)| (dir, Body::Text(t.into()))),
            );
            if let Some(Record::Open(open)) = rec.records.first_mut() {
                open.request = "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1".into();
            }
            Structure::of(&rec).render()
        };
        let (early, late, twice) = (rec(&[0]), rec(&[2]), rec(&[0, 3]));
        assert_eq!(early, late);
        assert_eq!(early, twice);
        assert!(early.contains("### s2c engine.io ping ×1"), "{early}");
        assert!(
            early.contains("×1 per connection: c2s connect → s2c connect → c2s chat\n"),
            "{early}"
        );
    }

    /// Chats, each `(progress updates, done events)`: a user message, its progress
    /// updates and its done events, correlated by `message_id`.
    fn chats(chats: &[(u64, u64)]) -> Recording {
        let mut messages = Vec::new();
        for (i, (progress, done)) in chats.iter().enumerate() {
            let msg = |kind: &str| {
                format!(
                    r#"{{"type":"{kind}","message_id":"msg_{:08x}"}}"#,
                    0xabc000 + i
                )
            };
            messages.push((Dir::ClientToServer, Body::Text(msg("chat"))));
            for _ in 0..*progress {
                messages.push((Dir::ServerToClient, Body::Text(msg("progress"))));
            }
            for _ in 0..*done {
                messages.push((Dir::ServerToClient, Body::Text(msg("done"))));
            }
        }
        Recording::single_connection("r", messages)
    }

    /// The run's structure, normalised with the baseline's hints as `check` does.
    fn against(
        baseline: &Recording,
        run: &Recording,
        config: &StructureConfig,
    ) -> (Structure, Structure) {
        let obs = crate::structure::Observation::of(baseline);
        let hints = obs.hints_with(config);
        (
            obs.render(&hints),
            crate::structure::Observation::of(run).render(&hints),
        )
    }

    fn route(s: &Structure) -> String {
        s.render_route("r")
    }

    fn assert_has(s: &Structure, needle: &str) {
        assert!(route(s).contains(needle), "{needle:?} in\n{}", route(s));
    }

    /// Issue 17, item 3: 1, 3 and 2 progress updates in three chats are a stream; one
    /// `done` per chat stays exact.
    #[test]
    fn a_kind_whose_number_varies_per_conversation_is_a_stream() {
        let baseline = chats(&[(1, 1), (3, 1), (2, 1)]);
        let config = StructureConfig::default();
        let (old, new) = against(&baseline, &chats(&[(4, 1), (1, 1), (7, 1)]), &config);
        assert_has(&old, "### s2c progress ×1+\n");
        assert_has(&old, "### s2c done ×3\n");
        assert_has(&old, "×3 c2s chat → s2c progress ×1+ → s2c done\n");
        assert_eq!(route(&new), route(&old), "more or fewer progress updates");
        assert_eq!(Structure::parse(&old.render()).unwrap(), old);
        // Once per chat is exact: twice, or not at all, is a difference.
        for (changed, what) in [
            (chats(&[(1, 1), (1, 2), (1, 1)]), "### s2c done ×4"),
            (chats(&[(1, 1), (1, 0), (1, 1)]), "### s2c done ×2"),
            (chats(&[(1, 1), (0, 1), (1, 1)]), "×1 c2s chat → s2c done"),
        ] {
            let (_, new) = against(&baseline, &changed, &config);
            assert_has(&new, what);
        }
    }

    /// A stream that some conversations lacked is `×0+`, named once at the end of
    /// the sequence, since where it falls cannot be compared.
    #[test]
    fn a_stream_some_conversations_lacked_is_zero_or_more() {
        let baseline = chats(&[(0, 1), (2, 1), (1, 1)]);
        let config = StructureConfig::default();
        let (old, new) = against(&baseline, &chats(&[(3, 1), (0, 1), (0, 1)]), &config);
        assert_has(&old, "### s2c progress ×0+\n");
        assert_has(
            &old,
            "×3 c2s chat → s2c done (and s2c progress ×0+ anywhere)\n",
        );
        assert_eq!(route(&new), route(&old));
        // Seen at most once per chat: not repeated, so not a stream.
        let (old, _) = against(&chats(&[(0, 1), (1, 1)]), &chats(&[]), &config);
        assert_has(&old, "### s2c progress ×1\n");
    }

    /// `[structure] streams` declares a stream the recording cannot show (a single
    /// conversation); `exact` forbids one.
    #[test]
    fn streams_can_be_declared_and_forbidden() {
        let single = chats(&[(3, 1)]);
        let (old, new) = against(&single, &chats(&[(5, 1)]), &StructureConfig::default());
        assert_has(&old, "### s2c progress ×3\n");
        assert_ne!(route(&new), route(&old));
        let declared = StructureConfig {
            streams: vec!["progress".into()],
            ..StructureConfig::default()
        };
        let (old, new) = against(&single, &chats(&[(5, 1)]), &declared);
        assert_has(&old, "### s2c progress ×1+\n");
        assert_eq!(route(&new), route(&old));
        let exact = StructureConfig {
            exact: vec!["progress".into()],
            ..StructureConfig::default()
        };
        let varied = chats(&[(1, 1), (3, 1)]);
        let (old, _) = against(&varied, &varied, &exact);
        assert_has(&old, "### s2c progress ×4\n");
        assert_has(&old, "→ s2c progress ×3 →");
    }
}
