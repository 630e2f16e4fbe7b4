//! `wsreplay validate`: recorded (or replayed) messages checked against a schema.
//!
//! The schema file is one of:
//!
//! - a document written by `wsreplay schema --format json-schema`: each message is
//!   checked against the definition of its route, direction and kind (the `$defs`
//!   entries annotated with `x-wsreplay`);
//! - an AsyncAPI 3.x document (`wsreplay schema --format asyncapi`, or one a team
//!   maintains): each channel is a route (by its key, or by its `address` matching the
//!   path connections were opened with), a `receive` operation's messages
//!   are what clients send (c2s), a `send` operation's what the server sends (s2c); a
//!   message is checked against the payload whose discriminator (`type`, ...) has its
//!   kind as `const` (or single `enum`) value, else against every payload of its
//!   channel and direction until one fits;
//! - any other JSON Schema (for instance one a frontend's types are generated from):
//!   every JSON message is checked against the whole schema (`--route`, `--dir` narrow
//!   which messages).
//!
//! A message whose kind the schema does not know, on a route it describes, is a
//! violation too (a new event type is a contract change). Routes the schema does not
//! describe are counted as not covered. `format` is asserted, not just annotated.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::interop::schema::{fragment, pointer_token};
use crate::protocol::DISCRIMINATORS;
use crate::recording::{Dir, Recording};

/// The base URI the schema document is registered under, for `$ref`s into it.
const BASE: &str = "urn:wsreplay:validate:schema";

/// Which messages a part of the document applies to (`None`: any), and where it is.
struct Part {
    /// The route (a `wsreplay schema` route, an AsyncAPI channel key).
    route: Option<String>,
    /// An AsyncAPI channel's `address`: it also covers connections to this path.
    address: Option<String>,
    dir: Option<Dir>,
    kind: Option<String>,
    /// Where in the document the schema is, as a JSON pointer.
    pointer: String,
}

impl Part {
    fn any(pointer: String) -> Part {
        Part {
            route: None,
            address: None,
            dir: None,
            kind: None,
            pointer,
        }
    }

    /// Whether this part describes the messages of `route` whose requests go to `path`.
    fn covers(&self, route: &str, path: &str) -> bool {
        match &self.route {
            None => true,
            Some(r) => r == route || self.address.as_deref() == Some(path),
        }
    }
}

/// A part of the document with its compiled validator.
struct Target {
    part: Part,
    validator: jsonschema::Validator,
}

/// Why a schema file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    #[error("{path}: cannot read: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not JSON: {source}. Give a JSON Schema or an AsyncAPI document in JSON (convert YAML first)")]
    NotJson {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("{path}: {source}")]
    Document {
        path: PathBuf,
        #[source]
        source: DocumentError,
    },
}

/// Why a parsed document cannot check messages.
#[derive(Debug, thiserror::Error)]
pub enum DocumentError {
    #[error("AsyncAPI version {0:?}: wsreplay validate reads AsyncAPI 3.x documents")]
    AsyncApiVersion(String),
    #[error("operation {operation}: action {action:?} is neither send nor receive")]
    Action {
        operation: String,
        action: Option<String>,
    },
    #[error("operation {operation}: no channel $ref")]
    NoChannel { operation: String },
    #[error("operation {operation}: channel {channel:?} is not #/channels/NAME")]
    Channel { operation: String, channel: String },
    #[error("operation {operation}: cannot resolve {reference:?}")]
    Unresolved {
        operation: String,
        reference: String,
    },
    #[error("cannot resolve the schema's references: {0}")]
    References(#[source] Box<jsonschema::ReferencingError>),
    #[error("the schema at #{pointer} is not a valid JSON Schema: {source}")]
    InvalidSchema {
        pointer: String,
        #[source]
        source: Box<jsonschema::ValidationError<'static>>,
    },
    #[error("the document describes no message")]
    NoMessage,
}

/// A schema file ready to check messages.
pub struct Schema {
    /// What kind of document it is, for the report.
    pub kind: &'static str,
    targets: Vec<Target>,
}

/// One message that does not fit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    pub conn: u64,
    pub route: String,
    pub dir: Dir,
    pub kind: String,
    /// Position of the message on its connection (1-based, both directions).
    pub index: usize,
    pub t_us: u64,
    /// What was checked against (a JSON pointer into the schema file), if anything.
    pub schema: Option<String>,
    pub errors: Vec<FieldError>,
}

/// One way a message does not fit its schema.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    /// Where in the message, as a JSON pointer ("" for the message as a whole).
    pub path: String,
    pub message: String,
}

/// What a validation found.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// What kind of document the schema was ([`Schema::kind`]).
    pub schema_kind: &'static str,
    pub checked: u64,
    pub violations: Vec<Violation>,
    /// Messages on routes (or directions) the schema does not describe.
    pub not_covered: BTreeMap<String, u64>,
    /// Messages that are not JSON (plain text, binary).
    pub not_json: u64,
}

impl Report {
    pub fn passed(&self) -> bool {
        self.violations.is_empty()
    }

    /// The text `wsreplay validate` prints.
    pub fn render(&self, recording: &Path, schema: &Path) -> String {
        let mut out = String::new();
        for v in &self.violations {
            let _ = writeln!(
                out,
                "{}: route {} conn {} message {} ({} {}) at {:.3} s{}:",
                recording.display(),
                v.route,
                v.conn,
                v.index,
                v.dir,
                v.kind,
                v.t_us as f64 / 1e6,
                v.schema.as_ref().map_or(String::new(), |p| format!(
                    ", against {}#{p}",
                    schema.display()
                ))
            );
            for e in &v.errors {
                let path = if e.path.is_empty() { "/" } else { &e.path };
                let _ = writeln!(out, "  at {path}: {}", e.message);
            }
        }
        let _ = write!(
            out,
            "{}: {} message(s) checked against {} ({}), {} violation(s)",
            recording.display(),
            self.checked,
            schema.display(),
            self.schema_kind,
            self.violations.len()
        );
        if self.not_json > 0 {
            let _ = write!(out, "; {} non-JSON message(s) not checked", self.not_json);
        }
        for (what, n) in &self.not_covered {
            let _ = write!(
                out,
                "; {n} message(s) of {what} not described by the schema"
            );
        }
        out.push('\n');
        out
    }
}

impl Schema {
    /// Reads a schema file: a `wsreplay schema` document, an AsyncAPI 3.x document or
    /// any JSON Schema.
    pub fn read(path: &Path) -> Result<Schema, SchemaError> {
        let text = std::fs::read_to_string(path).map_err(|source| SchemaError::Io {
            path: path.to_owned(),
            source,
        })?;
        let doc: Value = serde_json::from_str(&text).map_err(|source| SchemaError::NotJson {
            path: path.to_owned(),
            source,
        })?;
        Schema::from_value(doc).map_err(|source| SchemaError::Document {
            path: path.to_owned(),
            source,
        })
    }

    /// A schema from a parsed document.
    pub fn from_value(doc: Value) -> Result<Schema, DocumentError> {
        let (kind, parts) = if let Some(version) = doc.get("asyncapi") {
            let version = version.as_str().unwrap_or_default();
            if !version.starts_with("3.") {
                return Err(DocumentError::AsyncApiVersion(version.to_string()));
            }
            ("AsyncAPI document", asyncapi_parts(&doc)?)
        } else if let Some(parts) = wsreplay_parts(&doc) {
            ("wsreplay schema", parts)
        } else {
            ("JSON Schema", vec![Part::any(String::new())])
        };
        let registry = jsonschema::Registry::new()
            .add(BASE, doc.clone())
            .and_then(|r| r.prepare())
            .map_err(|e| DocumentError::References(Box::new(e)))?;
        let mut targets = Vec::new();
        for part in parts {
            let pointer = &part.pointer;
            let wrapper = json!({ "$ref": format!("{BASE}#{}", fragment(pointer)) });
            let validator = jsonschema::options()
                .with_registry(&registry)
                .should_validate_formats(true)
                .build(&wrapper)
                .map_err(|source| DocumentError::InvalidSchema {
                    pointer: pointer.clone(),
                    source: Box::new(source),
                })?;
            targets.push(Target { part, validator });
        }
        if targets.is_empty() {
            return Err(DocumentError::NoMessage);
        }
        Ok(Schema { kind, targets })
    }

    /// The routes (and channel addresses) the document describes; empty when it
    /// applies to every route.
    pub fn routes(&self) -> Vec<String> {
        let mut routes: Vec<String> = self
            .targets
            .iter()
            .filter_map(|t| {
                let route = t.part.route.as_deref()?;
                Some(match &t.part.address {
                    Some(a) => format!("{route} (address {a})"),
                    None => route.to_string(),
                })
            })
            .collect();
        routes.sort();
        routes.dedup();
        routes
    }

    /// Checks every JSON message of `recording` (of `route` and `dir`, when given).
    pub fn check(&self, recording: &Recording, route: Option<&str>, dir: Option<Dir>) -> Report {
        let mut report = Report {
            schema_kind: self.kind,
            ..Report::default()
        };
        for observed in crate::interop::schema::messages(recording) {
            let (r, m) = (observed.route, observed.message);
            if route.is_some_and(|want| want != r) || dir.is_some_and(|want| want != m.dir) {
                continue;
            }
            let Some(value) = observed.value else {
                report.not_json += 1;
                continue;
            };
            let label = observed.kind.clone();
            let mut violation = Violation {
                conn: m.conn,
                route: r.to_string(),
                dir: m.dir,
                kind: label.clone(),
                index: observed.index,
                t_us: m.t_us,
                schema: None,
                errors: Vec::new(),
            };
            let on_route: Vec<&Target> = self
                .targets
                .iter()
                .filter(|t| t.part.covers(r, observed.path))
                .collect();
            if on_route.is_empty() {
                *report.not_covered.entry(format!("route {r}")).or_default() += 1;
                continue;
            }
            report.checked += 1;
            let candidates: Vec<&Target> = on_route
                .into_iter()
                .filter(|t| t.part.dir.is_none_or(|x| x == m.dir))
                .collect();
            let specific: Vec<&Target> = candidates
                .iter()
                .copied()
                .filter(|t| t.part.kind.as_deref() == Some(label.as_str()))
                .collect();
            let pool = if specific.is_empty() {
                candidates
                    .iter()
                    .copied()
                    .filter(|t| t.part.kind.is_none())
                    .collect()
            } else {
                specific
            };
            if pool.is_empty() {
                let known: Vec<&str> = candidates
                    .iter()
                    .filter_map(|t| t.part.kind.as_deref())
                    .collect();
                violation.errors.push(FieldError {
                    path: String::new(),
                    message: if known.is_empty() {
                        format!("the schema describes no {} message on route {r}", m.dir)
                    } else {
                        format!(
                            "message kind {label:?} is not in the schema (it knows {} on route {r}: {})",
                            m.dir,
                            known.join(", ")
                        )
                    },
                });
                report.violations.push(violation);
                continue;
            }
            if pool.iter().any(|t| t.validator.is_valid(&value)) {
                continue;
            }
            // Report the closest fit: the candidate with the fewest errors.
            let (target, errors) = pool
                .iter()
                .map(|t| {
                    let errors: Vec<FieldError> = t
                        .validator
                        .iter_errors(&value)
                        .map(|e| FieldError {
                            path: e.instance_path().to_string(),
                            message: e.to_string(),
                        })
                        .collect();
                    (t, errors)
                })
                .min_by_key(|(_, e)| e.len())
                .expect("the pool is not empty");
            violation.schema = Some(target.part.pointer.clone());
            violation.errors = errors;
            report.violations.push(violation);
        }
        report
    }
}

/// The per-kind definitions of a `wsreplay schema` document, if it is one.
fn wsreplay_parts(doc: &Value) -> Option<Vec<Part>> {
    let defs = doc.get("$defs")?.as_object()?;
    let parts: Vec<Part> = defs
        .iter()
        .filter_map(|(name, def)| {
            let meta = def.get("x-wsreplay")?;
            let dir = match meta.get("direction")?.as_str()? {
                "c2s" => Dir::ClientToServer,
                "s2c" => Dir::ServerToClient,
                _ => return None,
            };
            Some(Part {
                route: Some(meta.get("route")?.as_str()?.to_string()),
                address: None,
                dir: Some(dir),
                kind: Some(meta.get("kind")?.as_str()?.to_string()),
                pointer: format!("/$defs/{}", pointer_token(name)),
            })
        })
        .collect();
    (!parts.is_empty()).then_some(parts)
}

/// The message payloads of an AsyncAPI 3.x document, by channel and operation.
fn asyncapi_parts(doc: &Value) -> Result<Vec<Part>, DocumentError> {
    let mut parts = Vec::new();
    let operations = doc.get("operations").and_then(Value::as_object);
    for (name, op) in operations.into_iter().flatten() {
        let dir = match op.get("action").and_then(Value::as_str) {
            Some("receive") => Dir::ClientToServer,
            Some("send") => Dir::ServerToClient,
            other => {
                return Err(DocumentError::Action {
                    operation: name.clone(),
                    action: other.map(str::to_string),
                })
            }
        };
        let channel_ref = op
            .pointer("/channel/$ref")
            .and_then(Value::as_str)
            .ok_or_else(|| DocumentError::NoChannel {
                operation: name.clone(),
            })?;
        if !channel_ref.starts_with("#/channels/") {
            return Err(DocumentError::Channel {
                operation: name.clone(),
                channel: channel_ref.to_string(),
            });
        }
        let refs: Vec<String> = match op.get("messages").and_then(Value::as_array) {
            Some(list) => list
                .iter()
                .filter_map(|m| m.get("$ref").and_then(Value::as_str).map(str::to_string))
                .collect(),
            // No list: every message of the channel.
            None => channel_message_refs(doc, channel_ref),
        };
        for r in refs {
            let pointer = resolve(doc, &r).ok_or_else(|| DocumentError::Unresolved {
                operation: name.clone(),
                reference: r.clone(),
            })?;
            parts.push(payload_part(doc, channel_ref, Some(dir), pointer));
        }
    }
    if parts.is_empty() {
        // No operations: every channel's messages, either direction.
        for (name, _) in doc
            .get("channels")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            let channel_ref = format!("#/channels/{}", fragment(&pointer_token(name)));
            for r in channel_message_refs(doc, &channel_ref) {
                if let Some(pointer) = resolve(doc, &r) {
                    parts.push(payload_part(doc, &channel_ref, None, pointer));
                }
            }
        }
    }
    Ok(parts)
}

/// The payload of an AsyncAPI message (at `message`) of the channel at `channel_ref`.
fn payload_part(doc: &Value, channel_ref: &str, dir: Option<Dir>, message: String) -> Part {
    let pointer = format!("{message}/payload");
    let kind = doc.pointer(&pointer).and_then(|p| {
        let schema = follow(doc, p);
        DISCRIMINATORS.iter().find_map(|d| {
            let field = follow(doc, schema.get("properties")?.get(*d)?);
            match (
                field.get("const"),
                field.get("enum").and_then(Value::as_array),
            ) {
                (Some(Value::String(s)), _) => Some(s.clone()),
                (_, Some(values)) if values.len() == 1 => values[0].as_str().map(str::to_string),
                _ => None,
            }
        })
    });
    let address = resolve(doc, channel_ref)
        .and_then(|c| doc.pointer(&format!("{c}/address")))
        .and_then(Value::as_str)
        .map(|a| a.split('?').next().unwrap_or_default().to_string());
    Part {
        route: channel_ref
            .strip_prefix("#/channels/")
            .map(pointer_unescape),
        address,
        dir,
        kind,
        pointer,
    }
}

/// References to the messages of a channel (`#/channels/NAME/messages/KEY`).
fn channel_message_refs(doc: &Value, channel_ref: &str) -> Vec<String> {
    let Some(pointer) = resolve(doc, channel_ref) else {
        return Vec::new();
    };
    doc.pointer(&format!("{pointer}/messages"))
        .and_then(Value::as_object)
        .map(|m| {
            m.keys()
                .map(|k| format!("{channel_ref}/messages/{}", fragment(&pointer_token(k))))
                .collect()
        })
        .unwrap_or_default()
}

/// Follows local `$ref`s from a `#/...` reference to the JSON pointer of the object
/// it finally names.
fn resolve(doc: &Value, reference: &str) -> Option<String> {
    let mut pointer = decode_fragment(reference.strip_prefix('#')?);
    for _ in 0..32 {
        match doc.pointer(&pointer)?.get("$ref").and_then(Value::as_str) {
            Some(next) => pointer = decode_fragment(next.strip_prefix('#')?),
            None => return Some(pointer),
        }
    }
    None
}

/// A value with its local `$ref` (if any) followed.
fn follow<'a>(doc: &'a Value, value: &'a Value) -> &'a Value {
    match value
        .get("$ref")
        .and_then(Value::as_str)
        .and_then(|r| resolve(doc, r))
    {
        Some(p) => doc.pointer(&p).unwrap_or(value),
        None => value,
    }
}

fn decode_fragment(fragment: &str) -> String {
    url::form_urlencoded::parse(format!("x={}", fragment.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| fragment.to_string())
}

fn pointer_unescape(token: &str) -> String {
    decode_fragment(token).replace("~1", "/").replace("~0", "~")
}
