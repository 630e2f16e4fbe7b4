//! `wsreplay schema`: the event contract inferred from recordings, as JSON Schema
//! (2020-12) and as an AsyncAPI 3.0 document.
//!
//! Every JSON message of every recording is observed per route, direction and kind
//! (its discriminator value, as [`crate::protocol`] names it). Per kind the inferred schema
//! has, at every key path: the JSON types seen (`integer` when only integers were seen,
//! `number` otherwise), `required` for the fields present in every message, string
//! formats in the structure normaliser's terms ([`StrFormat`]: uuid, date-time,
//! prefixed ids such as `run_<uuid>`, hex ids, URLs, digits) as `format` or `pattern`,
//! and `const`/`enum` for discriminators and enum-like fields (the normaliser's rule:
//! at most [`MAX_LITERALS`] identifier-like values, each seen at least twice in the
//! contract, none random-looking or credential-shaped; `[structure] literal`/`volatile`
//! in `wsreplay.toml` override it, but a credential never becomes a `const`). Objects are closed (`additionalProperties: false`), so
//! a renamed field (`payload` → `data`) is both a missing required property and an
//! unexpected one. Every recorded message validates against the schema inferred from it.
//!
//! [`Contract::json_schema`] writes one document with a definition per route,
//! direction and kind under `$defs` (each annotated with `x-wsreplay`: route,
//! direction, kind, count) and an `anyOf` over all of them at the root.
//! [`Contract::asyncapi`] describes each route's server (the upstream that was
//! recorded): a channel per route with its messages, a `receive` operation for what
//! clients sent it (c2s) and a `send` operation for what it sent (s2c). Non-JSON
//! messages (plain text, binary) have no JSON schema and are counted in
//! [`Contract::skipped`].

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Map, Value};

use crate::protocol::{self, Payload, Reader};
use crate::recording::{Dir, Message, Record, Recording};
use crate::redact::secrets;
use crate::structure::{
    formats::enum_like, IdTail, StrFormat, StructureConfig, MAX_CONFIGURED_LITERALS, MAX_LITERALS,
};

/// How often each literal candidate was seen, over a whole contract.
type Seen<'a> = std::collections::HashMap<&'a str, u64>;

/// The JSON Schema dialect of every document written here.
pub const DIALECT: &str = "https://json-schema.org/draft/2020-12/schema";

/// What was seen at one place of one message kind.
#[derive(Clone, Debug, Default)]
struct Shape {
    null: bool,
    boolean: bool,
    integer: bool,
    float: bool,
    strings: bool,
    formats: BTreeSet<StrFormat>,
    /// Distinct string values and how often each was seen, while all are enum-like
    /// and few.
    literals: BTreeMap<String, u64>,
    /// False once a string that cannot be an enum member (or one too many) was seen.
    literal_ok: bool,
    /// Times this place held an object (the bound of its properties' presence).
    objects: u64,
    /// Per property: the shape and how many of those objects had it.
    properties: BTreeMap<String, (Shape, u64)>,
    arrays: bool,
    items: Option<Box<Shape>>,
}

impl Shape {
    fn new() -> Shape {
        Shape {
            literal_ok: true,
            ..Shape::default()
        }
    }

    fn observe(&mut self, value: &Value) {
        match value {
            Value::Null => self.null = true,
            Value::Bool(_) => self.boolean = true,
            Value::Number(n) if n.is_f64() => self.float = true,
            Value::Number(_) => self.integer = true,
            Value::String(s) => {
                self.strings = true;
                let format = match StrFormat::of(s) {
                    // JSON Schema's date-time wants the `T`; a space-separated one
                    // gets no format keyword (as mixed formats get none).
                    StrFormat::Timestamp(style) if style != "date" && s.as_bytes()[10] != b'T' => {
                        StrFormat::Plain
                    }
                    f => f,
                };
                self.formats.insert(format);
                if self.literal_ok {
                    if let Some(n) = self.literals.get_mut(s) {
                        *n += 1;
                    } else if self.literals.len() < MAX_CONFIGURED_LITERALS
                        && enum_like(s)
                        && !secrets::is_suspicious(s)
                    {
                        self.literals.insert(s.clone(), 1);
                    } else {
                        self.literal_ok = false;
                        self.literals.clear();
                    }
                }
            }
            Value::Array(items) => {
                self.arrays = true;
                let shape = self.items.get_or_insert_with(|| Box::new(Shape::new()));
                items.iter().for_each(|v| shape.observe(v));
            }
            Value::Object(fields) => {
                self.objects += 1;
                for (k, v) in fields {
                    let (shape, present) = self
                        .properties
                        .entry(k.clone())
                        .or_insert_with(|| (Shape::new(), 0));
                    *present += 1;
                    shape.observe(v);
                }
            }
        }
    }

    /// Adds how often each literal candidate was seen here and below to `seen`.
    fn count_literals<'a>(&'a self, seen: &mut Seen<'a>) {
        if self.literal_ok {
            for (value, n) in &self.literals {
                *seen.entry(value.as_str()).or_default() += n;
            }
        }
        for (shape, _) in self.properties.values() {
            shape.count_literals(seen);
        }
        if let Some(items) = &self.items {
            items.count_literals(seen);
        }
    }

    /// The JSON Schema of this place; `path` is its key path (`payload.tool_name`,
    /// `rows[].service`) for the literal-field overrides, `seen` how often each literal
    /// candidate was seen in the whole contract.
    fn schema(&self, path: &str, config: &StructureConfig, seen: &Seen<'_>) -> Value {
        let mut out = Map::new();
        let mut types = Vec::new();
        if self.null {
            types.push("null");
        }
        if self.boolean {
            types.push("boolean");
        }
        match (self.integer, self.float) {
            (true, false) => types.push("integer"),
            (_, true) => types.push("number"),
            _ => {}
        }
        if self.strings {
            types.push("string");
        }
        if self.objects > 0 {
            types.push("object");
        }
        if self.arrays {
            types.push("array");
        }
        match types.as_slice() {
            [] => {}
            [one] => {
                out.insert("type".into(), json!(one));
            }
            many => {
                out.insert("type".into(), json!(many));
            }
        }
        if self.strings {
            self.string_keywords(path, config, seen, &mut out);
        }
        if self.objects > 0 {
            let mut properties = Map::new();
            let mut required = Vec::new();
            for (name, (shape, present)) in &self.properties {
                let child = if path.is_empty() {
                    name.clone()
                } else {
                    format!("{path}.{name}")
                };
                properties.insert(name.clone(), shape.schema(&child, config, seen));
                if *present == self.objects {
                    required.push(name.clone());
                }
            }
            out.insert("properties".into(), Value::Object(properties));
            if !required.is_empty() {
                out.insert("required".into(), json!(required));
            }
            out.insert("additionalProperties".into(), Value::Bool(false));
        }
        if let Some(items) = &self.items {
            out.insert(
                "items".into(),
                items.schema(&format!("{path}[]"), config, seen),
            );
        }
        Value::Object(out)
    }

    fn string_keywords(
        &self,
        path: &str,
        config: &StructureConfig,
        seen: &Seen<'_>,
        out: &mut Map<String, Value>,
    ) {
        let discriminator = protocol::default().is_discriminator(path);
        // The last guard before a value is written into a schema: nothing
        // credential-shaped or random becomes a `const` or an `enum` member.
        let values = self.literal_ok
            && !self.literals.is_empty()
            && !self.literals.keys().any(|s| secrets::is_suspicious(s));
        // Like the snapshots' rule: a value seen once is no evidence of an enum.
        let repeated = self
            .literals
            .keys()
            .all(|v| seen.get(v.as_str()).is_some_and(|n| *n >= 2));
        let literal = values
            && !StructureConfig::names(&config.volatile, path)
            && (discriminator
                || (self.literals.len() <= MAX_LITERALS && repeated)
                || StructureConfig::names(&config.literal, path));
        let only_strings =
            !(self.boolean || self.integer || self.float || self.objects > 0 || self.arrays);
        if literal && only_strings {
            let mut values: Vec<Value> = self.literals.keys().map(|s| json!(s)).collect();
            if self.null {
                values.push(Value::Null);
            }
            match values.as_slice() {
                [one] => out.insert("const".into(), one.clone()),
                _ => out.insert("enum".into(), Value::Array(values)),
            };
            return;
        }
        // One keyword for every string seen (two timestamp styles can both be
        // date-times): say it; mixed formats say nothing.
        let keywords: BTreeSet<Option<(&str, String)>> =
            self.formats.iter().map(format_keyword).collect();
        if let [Some((keyword, value))] = keywords.into_iter().collect::<Vec<_>>().as_slice() {
            let value = match *keyword {
                "maxLength" => json!(0),
                _ => json!(value),
            };
            out.insert(keyword.to_string(), value);
        }
    }
}

/// A recorded message with what schemas need to know about it.
pub struct Observed<'a> {
    pub route: &'a str,
    /// The path of its connection's request, without the query (`/ws`).
    pub path: &'a str,
    pub message: &'a Message,
    /// Position on its connection (1-based, both directions counted).
    pub index: usize,
    /// The kind of the event, as its connection's protocol names it.
    pub kind: String,
    /// The event's body as JSON, when it has one.
    pub value: Option<Value>,
}

/// Every event of every message of a recording whose connection was opened, in order,
/// each read with its connection's protocol.
pub fn messages(recording: &Recording) -> Vec<Observed<'_>> {
    let mut routes: BTreeMap<u64, (&str, &str, usize)> = BTreeMap::new();
    let mut out = Vec::new();
    let mut reader = Reader::default();
    let mut events = Vec::new();
    for record in &recording.records {
        match record {
            Record::Open(o) => {
                reader.open(o);
                let path = o.path().split('?').next().unwrap_or_default();
                routes.insert(o.conn, (o.route.as_str(), path, 0));
            }
            Record::Message(m) => {
                let Some((route, path, count)) = routes.get_mut(&m.conn) else {
                    continue;
                };
                *count += 1;
                events.clear();
                reader.decode(m, &mut events);
                for event in events.drain(..) {
                    let value = match &event.body {
                        Payload::Json(json) => Some(json.to_value()),
                        Payload::Opaque => None,
                    };
                    out.push(Observed {
                        route,
                        path,
                        message: m,
                        index: *count,
                        kind: event.kind.into_owned(),
                        value,
                    });
                }
            }
            _ => {}
        }
    }
    out
}

/// The JSON Schema keyword (and value) for a recognised string format.
fn format_keyword(format: &StrFormat) -> Option<(&'static str, String)> {
    const UUID: &str =
        "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}";
    Some(match format {
        StrFormat::Empty => ("maxLength", String::new()),
        StrFormat::Uuid => ("format", "uuid".into()),
        StrFormat::Timestamp("date") => ("format", "date".into()),
        // RFC 3339 `date-time` needs a zone written as Z or ±hh:mm.
        StrFormat::Timestamp(style) if style.ends_with('Z') || style.ends_with("±hh:mm") => {
            ("format", "date-time".into())
        }
        StrFormat::Timestamp(_) => (
            "pattern",
            r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?([+-]\d{2}:?\d{2}|[Zz])?$".into(),
        ),
        StrFormat::PrefixedId(prefix, tail) => {
            let tail = match tail {
                IdTail::Uuid => UUID,
                IdTail::Hex => "[0-9a-fA-F]+",
                IdTail::Counter => "[0-9]+",
            };
            ("pattern", format!("^{}{tail}$", regex_escape(prefix)))
        }
        StrFormat::HexId => ("pattern", "^[0-9a-fA-F]+$".into()),
        StrFormat::Url => ("format", "uri".into()),
        StrFormat::Digits => ("pattern", "^[0-9]+$".into()),
        StrFormat::Plain => return None,
    })
}

fn regex_escape(s: &str) -> String {
    s.chars()
        .flat_map(|c| {
            let special = "\\.+*?()|[]{}^$-".contains(c);
            special
                .then_some('\\')
                .into_iter()
                .chain(std::iter::once(c))
        })
        .collect()
}

/// One route of the contract.
#[derive(Clone, Debug, Default)]
struct RouteContract {
    /// The recorded upstream (`ws://127.0.0.1:18000`) and path (`/ws`) of its first
    /// connection.
    upstream: String,
    address: String,
    kinds: BTreeMap<(Dir, String), (Shape, u64)>,
}

/// How much a [`Contract`] describes, for a summary line.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ContractCounts {
    pub routes: usize,
    /// Message kinds, over all routes and both directions.
    pub kinds: usize,
}

/// The message structures of one or more recordings, ready to be written as JSON
/// Schema or AsyncAPI.
#[derive(Clone, Debug, Default)]
pub struct Contract {
    routes: BTreeMap<String, RouteContract>,
    sources: Vec<String>,
    /// Messages that are not JSON (plain text, binary): no schema describes them.
    pub skipped: u64,
    config: StructureConfig,
}

impl Contract {
    /// An empty contract that will use `config`'s literal-field overrides.
    pub fn new(config: StructureConfig) -> Contract {
        Contract {
            config,
            ..Contract::default()
        }
    }

    /// Observes every message of a recording.
    pub fn add(&mut self, recording: &Recording) {
        self.sources.push(recording.path.display().to_string());
        for o in recording.opens() {
            let route = self.routes.entry(o.route.clone()).or_default();
            if route.upstream.is_empty() {
                route.upstream = o.upstream.clone();
                route.address = o.path().split('?').next().unwrap_or_default().to_string();
            }
        }
        for m in messages(recording) {
            let Some(value) = m.value else {
                self.skipped += 1;
                continue;
            };
            let label = m.kind;
            let route = self.routes.entry(m.route.to_string()).or_default();
            let (shape, count) = route
                .kinds
                .entry((m.message.dir, label))
                .or_insert_with(|| (Shape::new(), 0));
            *count += 1;
            shape.observe(&value);
        }
    }

    /// Routes and message kinds, for a summary line.
    pub fn counts(&self) -> ContractCounts {
        ContractCounts {
            routes: self.routes.len(),
            kinds: self.routes.values().map(|r| r.kinds.len()).sum(),
        }
    }

    /// Every (route, direction, kind) with its count and schema.
    /// How often each literal candidate was seen in the whole contract.
    fn seen(&self) -> Seen<'_> {
        let mut seen = Seen::new();
        for r in self.routes.values() {
            for (shape, _) in r.kinds.values() {
                shape.count_literals(&mut seen);
            }
        }
        seen
    }

    fn each(&self) -> Vec<(&str, Dir, &str, u64, Value)> {
        let seen = self.seen();
        let mut out = Vec::new();
        for (route, r) in &self.routes {
            for ((dir, label), (shape, count)) in &r.kinds {
                let schema = shape.schema("", &self.config, &seen);
                out.push((route.as_str(), *dir, label.as_str(), *count, schema));
            }
        }
        out
    }

    fn described(&self) -> String {
        format!(
            "Inferred by wsreplay {} from {}.",
            env!("CARGO_PKG_VERSION"),
            self.sources.join(", ")
        )
    }

    /// One JSON Schema 2020-12 document: a definition per route, direction and kind
    /// (`$defs/ROUTE.DIR.KIND`) and, at the root, any of them.
    pub fn json_schema(&self) -> Value {
        let mut defs = Map::new();
        let mut any = Vec::new();
        for (route, dir, label, count, schema) in self.each() {
            let name = format!("{route}.{dir}.{label}");
            let Value::Object(mut schema) = schema else {
                continue;
            };
            schema.insert("title".into(), json!(format!("{route} {dir} {label}")));
            schema.insert(
                "x-wsreplay".into(),
                json!({"route": route, "direction": dir.as_str(), "kind": label, "count": count}),
            );
            let pointer = format!("/$defs/{}", pointer_token(&name));
            any.push(json!({ "$ref": format!("#{}", fragment(&pointer)) }));
            defs.insert(name, Value::Object(schema));
        }
        json!({
            "$schema": DIALECT,
            "title": "WebSocket messages",
            "description": format!(
                "{} One definition per route, direction (c2s: client to server, s2c: server to client) and message kind, under $defs; a message is valid when it matches any of them.",
                self.described()
            ),
            "$defs": defs,
            "anyOf": any,
        })
    }

    /// An AsyncAPI 3.0 document describing each route's server.
    pub fn asyncapi(&self) -> Value {
        let seen = self.seen();
        let mut servers = Map::new();
        let mut channels = Map::new();
        let mut operations = Map::new();
        let mut messages = Map::new();
        for (route, r) in &self.routes {
            let id = component_id(route);
            let (scheme, host) = r.upstream.split_once("://").unwrap_or(("ws", &r.upstream));
            if !host.is_empty() {
                servers.insert(
                    id.clone(),
                    json!({
                        "host": host,
                        "protocol": scheme,
                        "description": format!("The recorded upstream of route {route}."),
                    }),
                );
            }
            let mut channel_messages = Map::new();
            let mut by_dir: BTreeMap<Dir, Vec<Value>> = BTreeMap::new();
            for ((dir, label), (shape, count)) in &r.kinds {
                let key = component_id(&format!("{dir}_{label}"));
                let component = component_id(&format!("{route}_{dir}_{label}"));
                messages.insert(
                    component.clone(),
                    json!({
                        "name": label,
                        "title": format!("{label} ({})", direction_words(*dir)),
                        "contentType": "application/json",
                        "payload": shape.schema("", &self.config, &seen),
                        "x-wsreplay": {"route": route, "direction": dir.as_str(), "kind": label, "count": count},
                    }),
                );
                channel_messages.insert(
                    key.clone(),
                    json!({ "$ref": format!("#/components/messages/{component}") }),
                );
                by_dir
                    .entry(*dir)
                    .or_default()
                    .push(json!({ "$ref": format!("#/channels/{id}/messages/{key}") }));
            }
            let mut channel = json!({
                "address": r.address,
                "title": format!("route {route}"),
                "messages": channel_messages,
            });
            if servers.contains_key(&id) {
                channel["servers"] = json!([{ "$ref": format!("#/servers/{id}") }]);
            }
            channels.insert(id.clone(), channel);
            for (dir, refs) in by_dir {
                let (action, summary) = match dir {
                    Dir::ClientToServer => (
                        "receive",
                        "What the server of route {route} receives from its clients (c2s).",
                    ),
                    Dir::ServerToClient => (
                        "send",
                        "What the server of route {route} sends to its clients (s2c).",
                    ),
                };
                operations.insert(
                    format!("{id}_{action}"),
                    json!({
                        "action": action,
                        "channel": { "$ref": format!("#/channels/{id}") },
                        "summary": summary.replace("{route}", route),
                        "messages": refs,
                    }),
                );
            }
        }
        let mut doc = json!({
            "asyncapi": "3.0.0",
            "info": {
                "title": "WebSocket messages",
                "version": "1.0.0",
                "description": format!(
                    "{} Each channel is a recorded route, seen from its server: `receive` is what clients sent (c2s), `send` what the server sent (s2c).",
                    self.described()
                ),
            },
            "defaultContentType": "application/json",
            "channels": channels,
            "operations": operations,
            "components": { "messages": messages },
        });
        if !servers.is_empty() {
            doc["servers"] = Value::Object(servers);
        }
        doc
    }
}

fn direction_words(dir: Dir) -> &'static str {
    match dir {
        Dir::ClientToServer => "client to server",
        Dir::ServerToClient => "server to client",
    }
}

/// AsyncAPI component keys are `[A-Za-z0-9_.-]+`.
fn component_id(s: &str) -> String {
    let id: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    id.trim_matches('_').to_string()
}

/// A JSON Pointer token (RFC 6901) for `token`: `~` and `/` escaped.
pub fn pointer_token(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

/// A JSON Pointer written as a URI fragment (for `$ref`): characters a fragment
/// cannot hold are percent-encoded.
pub fn fragment(pointer: &str) -> String {
    let mut out = String::with_capacity(pointer.len());
    for b in pointer.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~$/!&'()*+,;=:@".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema_of(values: &[Value]) -> Value {
        let mut shape = Shape::new();
        values.iter().for_each(|v| shape.observe(v));
        let mut seen = Seen::new();
        shape.count_literals(&mut seen);
        shape.schema("", &StructureConfig::default(), &seen)
    }

    #[test]
    fn required_optional_types_formats_and_enums() {
        let a = json!({"type": "t", "id": "run_3f2a1b4c-1d2e-4f5a-8b9c-0d1e2f3a4b5c", "n": 1, "x": 1.5, "status": "ok", "at": "2026-11-23T09:05:51.123Z"});
        let b = json!({"type": "t", "id": "run_00000000-1d2e-4f5a-8b9c-0d1e2f3a4b5c", "n": 2, "x": 2, "status": "failed", "at": "2026-11-23T09:05:52Z", "extra": null});
        // Each status twice: a value seen once is no evidence of an enum (see below).
        let s = schema_of(&[a.clone(), b.clone(), a, b]);
        assert_eq!(
            s["required"],
            json!(["at", "id", "n", "status", "type", "x"])
        );
        assert_eq!(
            s["properties"]["type"],
            json!({"type": "string", "const": "t"})
        );
        assert_eq!(s["properties"]["n"]["type"], "integer");
        assert_eq!(s["properties"]["x"]["type"], "number");
        assert_eq!(s["properties"]["status"]["enum"], json!(["failed", "ok"]));
        assert_eq!(s["properties"]["at"]["format"], "date-time");
        assert_eq!(s["properties"]["extra"]["type"], "null");
        let pattern = s["properties"]["id"]["pattern"].as_str().unwrap();
        assert!(pattern.starts_with("^run_[0-9a-fA-F]{8}-"), "{pattern}");
        assert_eq!(s["additionalProperties"], false);
    }

    /// Issue 15: a token seen in one message became a `const` of the published schema.
    #[test]
    fn secrets_and_values_seen_once_are_no_const_or_enum() {
        // Fake credentials, put together here so that no scanner flags this file.
        let github = format!("ghp_{}", "R8vT2kLmQ9xZ4wN7pB3cJ6hD1fG5sY0aE8uK");
        let random = "Xk9Lm2Qp8Rt5Vw3Yz7Bn4Cd6Fg1Hj0Ks";
        let message = |status: &str, pin: &str| json!({"type": "login", "gh": github, "r": random, "status": status, "pin": pin, "mode": "m1"});
        let s = schema_of(&[message("ok", "hunter2x"), message("ok", "swordfish7")]);
        let text = s.to_string();
        assert!(!text.contains(&github) && !text.contains(random), "{text}");
        assert!(
            !text.contains("hunter2x") && !text.contains("swordfish7"),
            "{text}"
        );
        let p = &s["properties"];
        assert_eq!(p["gh"], json!({"type": "string"}));
        assert_eq!(p["r"], json!({"type": "string"}));
        assert_eq!(p["pin"], json!({"type": "string"}));
        assert_eq!(p["status"]["const"], "ok");
        assert_eq!(p["mode"]["const"], "m1");
        // Seen once, yet kept: the discriminator, and a field declared literal.
        let one = [json!({"type": "t", "pin": "hunter2x"})];
        let mut shape = Shape::new();
        one.iter().for_each(|v| shape.observe(v));
        let mut seen = Seen::new();
        shape.count_literals(&mut seen);
        let config = StructureConfig {
            literal: vec!["pin".into()],
            ..StructureConfig::default()
        };
        let s = shape.schema("", &config, &seen);
        assert_eq!(s["properties"]["type"]["const"], "t");
        assert_eq!(s["properties"]["pin"]["const"], "hunter2x");
        // Declared literal or not, a credential is never a `const`.
        let config = StructureConfig {
            literal: vec!["gh".into()],
            ..StructureConfig::default()
        };
        let mut shape = Shape::new();
        shape.observe(&json!({"gh": github}));
        let mut seen = Seen::new();
        shape.count_literals(&mut seen);
        assert_eq!(
            shape.schema("", &config, &seen)["properties"]["gh"],
            json!({"type": "string"})
        );
    }

    #[test]
    fn pointers_are_escaped_for_uris() {
        let pointer = format!("/$defs/{}", pointer_token("a.c2s.(text) x/y"));
        assert_eq!(fragment(&pointer), "/$defs/a.c2s.(text)%20x~1y");
    }
}
