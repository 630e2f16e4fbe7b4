//! Observing a recording: every message's key paths, types, formats and literal
//! candidates per route, direction and kind, and the conversation sequences; the
//! [`Hints`] a baseline gives; and the rendering of observations into a [`Structure`].

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
    /// Rendered conversation sequence → how many times it occurred.
    sequences: BTreeMap<String, u64>,
}

/// A message's place in its conversation: direction and (interned) label.
pub(crate) type Step = (Dir, u32);

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
            let steps: Vec<String> = steps
                .iter()
                .map(|(dir, id)| format!("{dir} {}", labels[*id as usize]))
                .collect();
            let prefix = if key.is_none() {
                "per connection: "
            } else {
                ""
            };
            let line = format!("{prefix}{}", collapse(&steps));
            *self
                .routes
                .entry(route.clone())
                .or_default()
                .sequences
                .entry(line)
                .or_default() += 1;
        }
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
                section.kinds.insert(
                    (*dir, label.clone()),
                    KindSection {
                        count: k.count,
                        fields,
                    },
                );
            }
            section.sequences = r.sequences.iter().map(|(s, n)| (s.clone(), *n)).collect();
        }
        out
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

/// `a, b, b, b, c` → `a → b ×3 → c`.
pub(crate) fn collapse(steps: &[String]) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < steps.len() {
        let run = steps[i..].iter().take_while(|s| **s == steps[i]).count();
        out.push(if run > 1 {
            format!("{} ×{run}", steps[i])
        } else {
            steps[i].clone()
        });
        i += run;
    }
    out.join(" → ")
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
}
