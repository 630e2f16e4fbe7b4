//! The structure normaliser: what a recording's messages look like, without their
//! volatile values.
//!
//! Every JSON message is reduced to key paths (`payload.tool_name`, `rows[].service`)
//! and, per path, its JSON types (integer and float apart), recognised string formats
//! (uuid, ISO-8601 timestamp, prefixed ids such as `run_<uuid>`, hex ids, URLs) and
//! epoch numbers. Values are kept literally only for discriminators (`type`, ...) and
//! for low-cardinality, enum-like fields, detected from the *baseline* recording
//! ([`Hints`]) so that the same fields are literal in every run compared with it.
//! Messages are grouped by route, direction and kind (discriminator value); a path
//! absent from some messages of its kind is marked optional (`?`). Arrays are the union
//! of their elements. Non-JSON text and binary get their kind and a size class.
//!
//! Besides the catalogue, each route gets its conversation sequences: messages grouped
//! by a correlation value (`message_id`, `response_to`, ... at any depth), so concurrent
//! conversations and out-of-order replies do not reorder anything; identical sequences
//! are counted, and the list is sorted.

use std::borrow::Cow;
pub mod diff;
pub mod sequence;
pub mod snapshot;
pub mod timing;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use rustc_hash::FxHashMap;

use crate::protocol::{self, DISCRIMINATORS};
use crate::recording::format::{Body, Dir, Opcode, Record, Recording};

/// Keys whose value groups messages into one conversation, most specific first.
pub const CORRELATION_KEYS: &[&str] = &[
    "message_id",
    "response_to",
    "request_id",
    "correlation_id",
    "run_id",
];
/// Most distinct values an auto-detected literal (enum-like) field may have.
pub const MAX_LITERALS: usize = 12;
/// Most distinct values a field configured as literal may have (and how many are kept).
pub const MAX_CONFIGURED_LITERALS: usize = 64;

/// `[structure]` in `wsreplay.toml`: overrides of the literal-field detection. Each
/// entry is a key path (`payload.status`) or a field name (`status`, any depth).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StructureConfig {
    /// Keep these fields' values literally even when the baseline has more than
    /// [`MAX_LITERALS`] of them (up to [`MAX_CONFIGURED_LITERALS`] identifier-like values).
    #[serde(default)]
    pub literal: Vec<String>,
    /// Never keep these fields' values, even when they look like an enum.
    #[serde(default)]
    pub volatile: Vec<String>,
}

impl StructureConfig {
    /// Whether `list` names `path`, by its key path or its field name.
    pub(crate) fn names(list: &[String], path: &str) -> bool {
        list.iter().any(|e| e == path || e == field_name(path))
    }
}

/// A message kind within a route: direction and label.
pub type KindKey = (Dir, String);

/// A JSON value that borrows its strings from the message text where it can: parsing
/// into it allocates far less than `serde_json::Value` (the normaliser's hot path).
#[derive(Debug)]
enum J<'a> {
    Null,
    Bool,
    Int(f64),
    Float(f64),
    Str(Cow<'a, str>),
    Arr(Vec<J<'a>>),
    Obj(Vec<(Cow<'a, str>, J<'a>)>),
}

impl<'a> J<'a> {
    fn parse(text: &'a str) -> Option<J<'a>> {
        serde_json::from_str(text).ok()
    }

    fn get(&self, key: &str) -> Option<&J<'a>> {
        match self {
            J::Obj(fields) => fields.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The message's label: its discriminator value or its JSON kind (as
    /// [`protocol::label_of_json`] names them).
    fn label(&self) -> Cow<'_, str> {
        let discriminator = DISCRIMINATORS.iter().find_map(|k| match self.get(k) {
            Some(J::Str(s)) => Some(s.as_ref()),
            _ => None,
        });
        match (discriminator, self) {
            (Some(d), _) => Cow::Borrowed(d),
            (None, J::Obj(_)) => "(json object)".into(),
            (None, J::Arr(_)) => "(json array)".into(),
            (None, _) => "(json value)".into(),
        }
    }
}

/// A string that borrows from the input when it has no escapes.
struct BorrowedStr<'a>(Cow<'a, str>);

impl<'de> serde::Deserialize<'de> for BorrowedStr<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(JVisitor).and_then(|j| match j {
            J::Str(s) => Ok(BorrowedStr(s)),
            _ => Err(serde::de::Error::custom("expected a string")),
        })
    }
}

impl<'de> serde::Deserialize<'de> for J<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(JVisitor)
    }
}

struct JVisitor;

impl<'de> serde::de::Visitor<'de> for JVisitor {
    type Value = J<'de>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_unit<E>(self) -> Result<J<'de>, E> {
        Ok(J::Null)
    }
    fn visit_bool<E>(self, _: bool) -> Result<J<'de>, E> {
        Ok(J::Bool)
    }
    fn visit_i64<E>(self, v: i64) -> Result<J<'de>, E> {
        Ok(J::Int(v as f64))
    }
    fn visit_u64<E>(self, v: u64) -> Result<J<'de>, E> {
        Ok(J::Int(v as f64))
    }
    fn visit_f64<E>(self, v: f64) -> Result<J<'de>, E> {
        Ok(J::Float(v))
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<J<'de>, E> {
        Ok(J::Str(Cow::Borrowed(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<J<'de>, E> {
        Ok(J::Str(Cow::Owned(v.to_string())))
    }
    fn visit_string<E>(self, v: String) -> Result<J<'de>, E> {
        Ok(J::Str(Cow::Owned(v)))
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<J<'de>, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(J::Arr(items))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<J<'de>, A::Error> {
        let mut fields = Vec::with_capacity(map.size_hint().unwrap_or(8));
        while let Some((BorrowedStr(k), v)) = map.next_entry::<BorrowedStr<'de>, J<'de>>()? {
            fields.push((k, v));
        }
        Ok(J::Obj(fields))
    }
}

/// What a string looks like.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum StrFormat {
    Empty,
    Uuid,
    /// ISO-8601 date-time, with its style (`fraction, Z`, `±hh:mm`, ...).
    Timestamp(&'static str),
    /// `run_<uuid>`, `msg_<hex>`, `thread_<n>`: the prefix (`run_`) and the tail.
    PrefixedId(String, IdTail),
    HexId,
    Url,
    Digits,
    Plain,
}

/// The random or counting part of a prefixed id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum IdTail {
    Uuid,
    Hex,
    Counter,
}

impl IdTail {
    fn placeholder(self) -> &'static str {
        match self {
            IdTail::Uuid => "<uuid>",
            IdTail::Hex => "<hex>",
            IdTail::Counter => "<n>",
        }
    }
}

/// [`StrFormat`] borrowing the id prefix from the value: classifying a string
/// allocates nothing (the normaliser classifies every string it sees).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum StrShape<'a> {
    Empty,
    Uuid,
    Timestamp(&'static str),
    PrefixedId(&'a str, IdTail),
    HexId,
    Url,
    Digits,
    Plain,
}

impl<'a> StrShape<'a> {
    fn of(s: &'a str) -> StrShape<'a> {
        if s.is_empty() {
            StrShape::Empty
        } else if is_uuid(s) {
            StrShape::Uuid
        } else if let Some(style) = timestamp_style(s) {
            StrShape::Timestamp(style)
        } else if let Some((prefix, tail)) = prefixed_id(s) {
            StrShape::PrefixedId(prefix, tail)
        } else if s.len() >= 8 && is_hex(s) {
            StrShape::HexId
        } else if s.bytes().all(|b| b.is_ascii_digit()) {
            StrShape::Digits
        } else if s.split_once("://").is_some_and(|(scheme, rest)| {
            !scheme.is_empty()
                && scheme.bytes().all(|b| b.is_ascii_alphabetic())
                && !rest.is_empty()
                && !s.contains(' ')
        }) {
            StrShape::Url
        } else {
            StrShape::Plain
        }
    }

    fn to_format(self) -> StrFormat {
        match self {
            StrShape::Empty => StrFormat::Empty,
            StrShape::Uuid => StrFormat::Uuid,
            StrShape::Timestamp(t) => StrFormat::Timestamp(t),
            StrShape::PrefixedId(p, t) => StrFormat::PrefixedId(p.to_string(), t),
            StrShape::HexId => StrFormat::HexId,
            StrShape::Url => StrFormat::Url,
            StrShape::Digits => StrFormat::Digits,
            StrShape::Plain => StrFormat::Plain,
        }
    }

    fn is(self, format: &StrFormat) -> bool {
        match (self, format) {
            (StrShape::PrefixedId(p, t), StrFormat::PrefixedId(q, u)) => p == q && t == *u,
            (StrShape::Timestamp(a), StrFormat::Timestamp(b)) => a == *b,
            (shape, format) => {
                !matches!(shape, StrShape::PrefixedId(..) | StrShape::Timestamp(_))
                    && shape.to_format() == *format
            }
        }
    }
}

impl StrFormat {
    pub fn of(s: &str) -> StrFormat {
        StrShape::of(s).to_format()
    }

    fn describe(&self) -> String {
        match self {
            StrFormat::Empty => "string (empty)".into(),
            StrFormat::Uuid => "string: uuid".into(),
            StrFormat::Timestamp(style) => format!("string: ISO-8601 timestamp ({style})"),
            StrFormat::PrefixedId(p, t) => format!("string: id {p}{}", t.placeholder()),
            StrFormat::HexId => "string: hex id".into(),
            StrFormat::Url => "string: url".into(),
            StrFormat::Digits => "string: digits".into(),
            StrFormat::Plain => "string".into(),
        }
    }
}

fn is_hex(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit())
}

fn is_uuid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// `2026-11-23T07:08:54.123+00:00` → `fraction, ±hh:mm`.
fn timestamp_style(s: &str) -> Option<&'static str> {
    let b = s.as_bytes();
    let digits =
        |r: std::ops::Range<usize>| b.get(r).is_some_and(|d| d.iter().all(u8::is_ascii_digit));
    let date = digits(0..4)
        && b.get(4) == Some(&b'-')
        && digits(5..7)
        && b.get(7) == Some(&b'-')
        && digits(8..10);
    if !date {
        return None;
    }
    if b.len() == 10 {
        return Some("date");
    }
    if !(matches!(b.get(10), Some(b'T' | b' '))
        && digits(11..13)
        && b.get(13) == Some(&b':')
        && digits(14..16))
    {
        return None;
    }
    let rest = &s[16..];
    let rest = rest
        .strip_prefix(':')
        .map_or(rest, |r| r.trim_start_matches(|c: char| c.is_ascii_digit()));
    let (fraction, zone) = match rest.strip_prefix('.') {
        Some(r) => (true, r.trim_start_matches(|c: char| c.is_ascii_digit())),
        None => (false, rest),
    };
    let signed = zone.starts_with(['+', '-']);
    Some(match (fraction, zone) {
        (false, "") => "no zone",
        (true, "") => "fraction, no zone",
        (false, "Z" | "z") => "Z",
        (true, "Z" | "z") => "fraction, Z",
        (false, z) if signed && z.len() == 6 && z.as_bytes()[3] == b':' => "±hh:mm",
        (true, z) if signed && z.len() == 6 && z.as_bytes()[3] == b':' => "fraction, ±hh:mm",
        (false, z) if signed && z.len() == 5 => "±hhmm",
        (true, z) if signed && z.len() == 5 => "fraction, ±hhmm",
        _ => return None,
    })
}

/// `run_3f2a…` → (`run_`, uuid); `thread_12` → (`thread_`, counter);
/// `nlp_client_ab12cd34` → (`nlp_client_`, hex).
fn prefixed_id(s: &str) -> Option<(&str, IdTail)> {
    let cut = s.rfind(['_', '-', ':'])?;
    let (prefix, tail) = (&s[..=cut], &s[cut + 1..]);
    if prefix.len() < 2 || !prefix.as_bytes()[0].is_ascii_alphabetic() {
        return None;
    }
    // A uuid tail contains '-': look for it before the last separator.
    if let Some(i) = s.find(['_', ':']).filter(|&i| is_uuid(&s[i + 1..])) {
        return Some((&s[..=i], IdTail::Uuid));
    }
    // Random hex of 8+ characters can come out all digits or all letters: call any
    // such tail hex, so the description does not flip between runs. Shorter all-digit
    // tails are counters (`thread_12`).
    let kind = if is_hex(tail) && tail.len() >= 8 {
        IdTail::Hex
    } else if !tail.is_empty() && tail.bytes().all(|b| b.is_ascii_digit()) {
        IdTail::Counter
    } else if is_hex(tail) && tail.len() >= 4 && tail.bytes().any(|b| b.is_ascii_digit()) {
        IdTail::Hex
    } else {
        return None;
    };
    Some((prefix, kind))
}

/// Whether a string has the shape of an enum member: a short identifier-like token
/// (callers also check that it is no recognised format such as an id).
fn enum_token(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 40
        && b[0].is_ascii_alphabetic()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.' | b':'))
}

/// Whether a string value could be an enum member.
pub(crate) fn enum_like(s: &str) -> bool {
    enum_token(s) && StrFormat::of(s) == StrFormat::Plain
}

/// One observed JSON type of a path.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum TypeTag {
    Null,
    Bool,
    Int,
    Float,
    EpochSeconds,
    EpochMillis,
    Str(StrFormat),
    Object,
    EmptyObject,
    Array,
    EmptyArray,
}

fn number_tag(v: f64, float: bool) -> TypeTag {
    if (946_684_800.0..4_102_444_800.0).contains(&v) {
        TypeTag::EpochSeconds
    } else if (946_684_800_000.0..4_102_444_800_000.0).contains(&v) {
        TypeTag::EpochMillis
    } else if float {
        TypeTag::Float
    } else {
        TypeTag::Int
    }
}

/// What was seen at one path of one message kind.
#[derive(Clone, Debug, Default)]
struct PathStats {
    /// Values seen at this path.
    seen: u64,
    /// Times this path held a non-empty object (children's parent count).
    as_object: u64,
    /// Times this path held a non-empty array (elements' parent count).
    elements: u64,
    types: BTreeSet<TypeTag>,
    /// Distinct string values, while few and enum-like.
    literals: BTreeSet<String>,
    /// False once a non-enum-like or one-too-many string was seen.
    literal_ok: bool,
}

/// Statistics of one message kind.
#[derive(Clone, Debug, Default)]
struct KindStats {
    count: u64,
    paths: FxHashMap<String, PathStats>,
}

/// The raw statistics of a recording (or several), before rendering.
#[derive(Clone, Debug, Default)]
pub struct Observation {
    routes: BTreeMap<String, RouteStats>,
}

#[derive(Clone, Debug, Default)]
struct RouteStats {
    /// Per direction, per label (nested so a label can be looked up as `&str`).
    kinds: BTreeMap<Dir, BTreeMap<String, KindStats>>,
    /// Rendered conversation sequence → how many times it occurred.
    sequences: BTreeMap<String, u64>,
}

/// A message's place in its conversation: direction and (interned) label.
type Step = (Dir, u32);

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

fn field_name(path: &str) -> &str {
    let p = path.trim_end_matches("[]");
    p.rsplit('.').next().unwrap_or(p)
}

impl Observation {
    /// Observes every message of a recording.
    pub fn of(recording: &Recording) -> Observation {
        let mut obs = Observation::default();
        obs.add(recording);
        obs
    }

    /// Adds a recording's messages.
    pub fn add(&mut self, recording: &Recording) {
        let mut routes: HashMap<u64, String> = HashMap::new();
        let mut labels: Vec<String> = Vec::new();
        let mut label_ids: HashMap<String, u32> = HashMap::new();
        // Per connection and conversation (None: per connection), the steps in order.
        let mut convs: FxHashMap<(u64, Option<String>), Vec<Step>> = FxHashMap::default();
        let mut path = String::new();
        for record in &recording.records {
            match record {
                Record::Open(o) => {
                    routes.insert(o.conn, o.route.clone());
                }
                Record::Message(m) => {
                    let Some(route) = routes.get(&m.conn) else {
                        continue;
                    };
                    let json = m
                        .body
                        .as_text()
                        .filter(|_| m.op == Opcode::TEXT)
                        .and_then(J::parse);
                    let label = match &json {
                        Some(j) => j.label(),
                        None => Cow::Owned(protocol::label(m.op, &m.body)),
                    };
                    let label = match line_safe(&label, false) {
                        Cow::Borrowed(_) => label,
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
                    let conv = json.as_ref().and_then(correlation_value);
                    let stats = match self.routes.get_mut(route.as_str()) {
                        Some(s) => s,
                        None => self.routes.entry(route.clone()).or_default(),
                    };
                    let by_label = stats.kinds.entry(m.dir).or_default();
                    let kind = match by_label.get_mut(label.as_ref()) {
                        Some(k) => k,
                        None => by_label.entry(label.to_string()).or_default(),
                    };
                    kind.count += 1;
                    match &json {
                        Some(j) => {
                            path.clear();
                            observe(j, &mut path, &mut kind.paths);
                        }
                        None => observe_opaque(m.op, &m.body, &mut kind.paths),
                    }
                    convs.entry((m.conn, conv)).or_default().push((m.dir, id));
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
        for (route, r) in &self.routes {
            for (dir, label, k) in r
                .kinds
                .iter()
                .flat_map(|(d, m)| m.iter().map(move |(l, k)| (d, l, k)))
            {
                for (path, p) in &k.paths {
                    let key = (route.clone(), *dir, label.clone(), path.clone());
                    let discriminator = DISCRIMINATORS.contains(&path.as_str());
                    let only_strings = p
                        .types
                        .iter()
                        .all(|t| matches!(t, TypeTag::Str(_) | TypeTag::Null));
                    let values = only_strings && p.literal_ok && !p.literals.is_empty();
                    let auto = values && p.literals.len() <= MAX_LITERALS;
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
fn parent_of(path: &str) -> Option<&str> {
    if let Some(p) = path.strip_suffix("[]") {
        return Some(p);
    }
    path.rfind('.').map(|i| &path[..i])
}

/// Records `value` at `path` (the path buffer is restored before returning).
fn observe(value: &J<'_>, path: &mut String, paths: &mut FxHashMap<String, PathStats>) {
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
            J::Null => TypeTag::Null,
            J::Bool => TypeTag::Bool,
            J::Int(v) => number_tag(*v, false),
            J::Float(v) => number_tag(*v, true),
            J::Str(s) => {
                let shape = StrShape::of(s);
                if stats.literal_ok {
                    let known = stats.literals.contains(s.as_ref());
                    let fits = known || stats.literals.len() < MAX_CONFIGURED_LITERALS;
                    if shape == StrShape::Plain && enum_token(s) && fits {
                        if !known {
                            stats.literals.insert(s.to_string());
                        }
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
            J::Obj(fields) if fields.is_empty() => TypeTag::EmptyObject,
            J::Obj(_) => {
                stats.as_object += 1;
                TypeTag::Object
            }
            J::Arr(items) if items.is_empty() => TypeTag::EmptyArray,
            J::Arr(items) => {
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
fn line_safe(s: &str, strict: bool) -> Cow<'_, str> {
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

fn observe_children(value: &J<'_>, path: &mut String, paths: &mut FxHashMap<String, PathStats>) {
    let len = path.len();
    match value {
        J::Obj(fields) => {
            for (k, v) in fields {
                if len > 0 {
                    path.push('.');
                }
                path.push_str(&line_safe(k, true));
                observe(v, path, paths);
                path.truncate(len);
            }
        }
        J::Arr(items) => {
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
fn observe_opaque(op: Opcode, body: &Body, paths: &mut FxHashMap<String, PathStats>) {
    let stats = paths.entry("(body)".into()).or_default();
    stats.seen += 1;
    let kind = match (op, body) {
        (Opcode::TEXT, Body::Text(_)) => "text",
        (Opcode::TEXT, Body::Bytes(_)) => "invalid UTF-8 text",
        (Opcode::BINARY, _) => "binary",
        _ => "frame",
    };
    stats
        .literals
        .insert(format!("{kind}, {}", size_class(body.len())));
}

fn size_class(n: usize) -> &'static str {
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

fn describe(p: &PathStats, literal: bool, number: bool) -> String {
    if p.types.is_empty() {
        // Opaque bodies keep their descriptions in `literals`.
        return p.literals.iter().cloned().collect::<Vec<_>>().join(" | ");
    }
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
            TypeTag::Str(_) if literal && p.literal_ok => continue,
            TypeTag::Str(f) => f.describe(),
            TypeTag::Object => "object".into(),
            TypeTag::EmptyObject => "object (empty)".into(),
            TypeTag::Array => "array".into(),
            TypeTag::EmptyArray => "array (empty)".into(),
        };
        parts.insert(d);
    }
    if literal && p.literal_ok {
        parts.extend(
            p.literals
                .iter()
                .map(|s| serde_json::Value::String(s.clone()).to_string()),
        );
    }
    parts.into_iter().collect::<Vec<_>>().join(" | ")
}

/// The correlation value of a message: the first of [`CORRELATION_KEYS`] found at any
/// depth (shallowest first).
fn correlation_value(value: &J<'_>) -> Option<String> {
    CORRELATION_KEYS.iter().find_map(|key| find_key(value, key))
}

fn find_key(value: &J<'_>, key: &str) -> Option<String> {
    let mut level = vec![value];
    while !level.is_empty() {
        let mut next = Vec::new();
        for v in level {
            match v {
                J::Obj(fields) => {
                    for (k, v) in fields {
                        if k == key {
                            match v {
                                J::Str(s) if !s.is_empty() => return Some(s.to_string()),
                                J::Int(n) | J::Float(n) => return Some(n.to_string()),
                                _ => {}
                            }
                        }
                        next.push(v);
                    }
                }
                J::Arr(items) => next.extend(items),
                _ => {}
            }
        }
        level = next;
    }
    None
}

/// `a, b, b, b, c` → `a → b ×3 → c`.
fn collapse(steps: &[String]) -> String {
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

/// The rendered structure: what a snapshot holds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Structure {
    pub routes: BTreeMap<String, RouteSection>,
}

/// One route of a [`Structure`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RouteSection {
    pub kinds: BTreeMap<KindKey, KindSection>,
    /// Conversation sequence → count, sorted.
    pub sequences: BTreeMap<String, u64>,
}

/// One message kind: how many, and each path's description.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KindSection {
    pub count: u64,
    /// Path (with `?` when optional) → description.
    pub fields: BTreeMap<String, String>,
}

impl Structure {
    /// Normalises a recording against its own hints (what `wsreplay snapshot` does).
    pub fn of(recording: &Recording) -> Structure {
        Self::of_with(recording, &StructureConfig::default())
    }

    /// Like [`Structure::of`], with literal-field overrides.
    pub fn of_with(recording: &Recording, config: &StructureConfig) -> Structure {
        let obs = Observation::of(recording);
        obs.render(&obs.hints_with(config))
    }

    /// The text of one route's section.
    pub fn render_route(&self, route: &str) -> String {
        let Some(section) = self.routes.get(route) else {
            return String::new();
        };
        let mut out = format!("## route {route}\n");
        for ((dir, label), kind) in &section.kinds {
            out += &format!("\n### {dir} {label} ×{}\n", kind.count);
            let width = kind
                .fields
                .keys()
                .map(|k| k.chars().count())
                .max()
                .unwrap_or(0);
            for (path, desc) in &kind.fields {
                out += &format!("{path:<width$}  {desc}\n");
            }
        }
        out += "\n### sequences\n";
        for (seq, n) in &section.sequences {
            out += &format!("×{n} {seq}\n");
        }
        out
    }

    /// The whole text (a snapshot's body).
    pub fn render(&self) -> String {
        let sections: Vec<String> = self.routes.keys().map(|r| self.render_route(r)).collect();
        sections.join("\n")
    }

    /// Parses text written by [`Structure::render`].
    pub fn parse(text: &str) -> Result<Structure, String> {
        let mut out = Structure::default();
        let mut route: Option<String> = None;
        let mut kind: Option<KindKey> = None;
        let mut in_sequences = false;
        for (i, line) in text.lines().enumerate() {
            let err = |m: &str| format!("line {}: {m}: {line:?}", i + 1);
            if line.trim().is_empty() {
                continue;
            }
            if let Some(name) = line.strip_prefix("## route ") {
                route = Some(name.to_string());
                out.routes.entry(name.to_string()).or_default();
                kind = None;
                in_sequences = false;
                continue;
            }
            let section = out
                .routes
                .get_mut(
                    route
                        .as_deref()
                        .ok_or_else(|| err("text before the first `## route`"))?,
                )
                .expect("inserted above");
            if line == "### sequences" {
                in_sequences = true;
                kind = None;
            } else if let Some(head) = line.strip_prefix("### ") {
                let (dir, rest) = head
                    .split_once(' ')
                    .ok_or_else(|| err("expected `### DIR KIND ×N`"))?;
                let dir = match dir {
                    "c2s" => Dir::ClientToServer,
                    "s2c" => Dir::ServerToClient,
                    _ => return Err(err("direction must be c2s or s2c")),
                };
                let (label, count) = rest
                    .rsplit_once(" ×")
                    .ok_or_else(|| err("expected `×N` after the kind"))?;
                let count = count.parse().map_err(|_| err("bad count"))?;
                section.kinds.insert(
                    (dir, label.to_string()),
                    KindSection {
                        count,
                        fields: BTreeMap::new(),
                    },
                );
                kind = Some((dir, label.to_string()));
                in_sequences = false;
            } else if in_sequences {
                let (n, seq) = line
                    .split_once(' ')
                    .ok_or_else(|| err("expected `×N SEQUENCE`"))?;
                let n = n
                    .strip_prefix('×')
                    .and_then(|n| n.parse().ok())
                    .ok_or_else(|| err("bad count"))?;
                section.sequences.insert(seq.to_string(), n);
            } else if let Some(k) = &kind {
                let (path, desc) = line
                    .split_once("  ")
                    .ok_or_else(|| err("expected `PATH  DESCRIPTION`"))?;
                // Rendered paths never start so (awkward keys are quoted); one that did
                // would render as a heading or lose its leading space.
                if path.starts_with(|c: char| c.is_whitespace() || c == '#') {
                    return Err(err("a field path cannot start with whitespace or `#`"));
                }
                section
                    .kinds
                    .get_mut(k)
                    .expect("inserted above")
                    .fields
                    .insert(path.trim_end().to_string(), desc.trim().to_string());
            } else {
                return Err(err("field line outside a `### DIR KIND ×N` section"));
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_formats() {
        let f = |s| StrFormat::of(s);
        assert_eq!(f("3f2a6c1e-8b7d-4e2f-9a1b-0c3d5e7f9a2b"), StrFormat::Uuid);
        assert_eq!(
            f("run_3f2a6c1e-8b7d-4e2f-9a1b-0c3d5e7f9a2b"),
            StrFormat::PrefixedId("run_".into(), IdTail::Uuid)
        );
        assert_eq!(
            f("msg_4f3a9c2b1d0e8f7a"),
            StrFormat::PrefixedId("msg_".into(), IdTail::Hex)
        );
        assert_eq!(
            f("nlp_client_abcdefab"),
            StrFormat::PrefixedId("nlp_client_".into(), IdTail::Hex)
        );
        assert_eq!(
            f("thread_12"),
            StrFormat::PrefixedId("thread_".into(), IdTail::Counter)
        );
        // Random hex that happens to be all digits is still hex.
        assert_eq!(
            f("msg_4093718260519427"),
            StrFormat::PrefixedId("msg_".into(), IdTail::Hex)
        );
        assert_eq!(
            f("2026-11-23T07:08:54.123456+00:00"),
            StrFormat::Timestamp("fraction, ±hh:mm")
        );
        assert_eq!(f("2026-11-23T07:08:54Z"), StrFormat::Timestamp("Z"));
        assert_eq!(f("deadbeef01"), StrFormat::HexId);
        assert_eq!(f("https://x.example/a"), StrFormat::Url);
        for plain in [
            "data_helper",
            "cost_analysis",
            "last_30_days",
            "bar",
            "EC2",
            "Cost by service",
            "face",
        ] {
            assert_eq!(f(plain), StrFormat::Plain, "{plain}");
        }
        assert!(
            enum_like("data_helper")
                && enum_like("EC2")
                && !enum_like("Cost by service")
                && !enum_like("msg_4f3a9c2b")
        );
    }

    /// Found by the normaliser fuzz target: keys and labels that would break the
    /// line-based text (a `### ` prefix, newlines, double spaces) must round-trip.
    #[test]
    fn awkward_keys_and_labels_render_and_parse_back() {
        let texts = [
            r####"{"type":"t","### age_id":"m","a  b":1," lead":2,"new\nline":3,"\"q":4}"####,
            r#"{"type":"two\nlines","x":1}"#,
        ];
        let rec = Recording::single_connection(
            "r",
            texts
                .iter()
                .map(|t| (Dir::ServerToClient, Body::Text(t.to_string()))),
        );
        let structure = Structure::of(&rec);
        let rendered = structure.render();
        assert!(
            rendered.contains(r####""###\u0020age_id""####),
            "{rendered}"
        );
        assert!(
            rendered.contains(r#"### s2c "two\nlines" ×1"#),
            "{rendered}"
        );
        let parsed = Structure::parse(&rendered).unwrap();
        assert_eq!(parsed, structure);
        // Found by the snapshot-reader fuzz target: a field line that starts with a
        // vertical tab would have been trimmed into a heading.
        let hostile = "## route r\n\n### s2c t ×1\n\u{b}### s2c x  string\n";
        let err = Structure::parse(hostile).unwrap_err();
        assert!(
            err.starts_with("line 4: a field path cannot start"),
            "{err}"
        );
    }

    #[test]
    fn literal_detection_can_be_configured() {
        let rec = Recording::single_connection(
            "r",
            (0..20).map(|i| {
                let text = format!(r#"{{"type":"t","status":"s{i}","mode":"fast"}}"#);
                (Dir::ServerToClient, Body::Text(text))
            }),
        );
        let field = |s: &Structure, f: &str| {
            s.routes["r"].kinds[&(Dir::ServerToClient, "t".to_string())].fields[f].clone()
        };
        let auto = Structure::of(&rec);
        assert_eq!(
            (field(&auto, "status"), field(&auto, "mode")),
            ("string".into(), "\"fast\"".into())
        );
        let config = StructureConfig {
            literal: vec!["status".into()],
            volatile: vec!["mode".into()],
        };
        let configured = Structure::of_with(&rec, &config);
        assert!(field(&configured, "status").starts_with("\"s0\" | \"s1\" | \"s10\""));
        assert_eq!(field(&configured, "mode"), "string");
    }

    #[test]
    fn parse_inverts_render() {
        let text = "## route frontend\n\n### s2c agent_started ×3\npayload     object\npayload.x?  integer\ntype        \"agent_started\"\n\n### sequences\n×3 c2s chat → s2c agent_started\n×1 per connection: c2s heartbeat → s2c heartbeat_response\n";
        let s = Structure::parse(text).unwrap();
        assert_eq!(s.render(), text);
    }
}
