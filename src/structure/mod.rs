//! The structure normaliser: what a recording's messages look like, without their
//! volatile values.
//!
//! Every JSON message is reduced to key paths (`payload.tool_name`, `rows[].service`)
//! and, per path, its JSON types (integer and float apart), recognised string formats
//! and epoch numbers ([`formats`] states the rule: which formats there are, what each
//! requires, and why text with whitespace is always plain text). Values are kept literally only for discriminators (`type`, ...) and
//! for low-cardinality, enum-like fields, detected from the *baseline* recording
//! ([`Hints`]) so that the same fields are literal in every run compared with it. An
//! enum-like field's values are identifier-like, each seen at least twice in the
//! baseline (anywhere in it), and none looks random or like a credential
//! ([`crate::redact::secrets::is_suspicious`]); `[structure] literal` fields may hold
//! values seen once, and no literal that looks like a secret is ever written.
//! Messages are grouped by route, direction and kind (discriminator value); a path
//! absent from some messages of its kind is marked optional (`?`). Arrays are the union
//! of their elements. Non-JSON text and binary get their kind and a size class.
//!
//! Besides the catalogue, each route gets its conversation sequences: messages grouped
//! by a correlation value (`message_id`, `response_to`, ... at any depth), so concurrent
//! conversations and out-of-order replies do not reorder anything; identical sequences
//! are counted, and the list is sorted. A kind whose number per conversation varied in
//! the baseline among conversations that open with the same kind (and was above one at
//! least once), or that `[structure] streams` names, is a *stream*: its heading and its
//! runs read `×1+` (or `×0+`, named at the end of a sequence, when some conversations had
//! none), so its number is not compared; `[structure] exact` keeps a kind exact.

pub mod diff;
pub mod formats;
pub mod learn;
pub mod observe;
pub mod patterns;
pub mod render;
pub mod sequence;
pub mod snapshot;
pub mod timing;

use std::collections::BTreeMap;

use crate::protocol;
use crate::recording::Dir;

pub use formats::{IdTail, StrFormat};
pub use observe::{Hints, Observation};
pub use render::{KindSection, RouteSection, Structure};

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
    /// [`MAX_LITERALS`] of them (up to [`MAX_CONFIGURED_LITERALS`] identifier-like values),
    /// or has seen a value only once. Credential-shaped values are never kept.
    #[serde(default)]
    pub literal: Vec<String>,
    /// Never keep these fields' values, even when they look like an enum.
    #[serde(default)]
    pub volatile: Vec<String>,
    /// Message kinds (labels) taken as streams, whose number per conversation is not
    /// compared exactly, even when the baseline's conversations all had the same number
    /// (a recording of a single conversation).
    #[serde(default)]
    pub streams: Vec<String>,
    /// Message kinds (labels) never taken as streams, even when their number per
    /// conversation varied in the baseline.
    #[serde(default)]
    pub exact: Vec<String>,
    /// How each named route's messages are read (`[structure.route.NAME]`).
    #[serde(default)]
    pub route: BTreeMap<String, RouteProtocol>,
    /// Kinds (route, direction, label) a learned snapshot takes as streams, read from
    /// its `(learned: …)` headings ([`learn::learned_streams`]), and the fewest a
    /// conversation may have (0 or 1); not a `wsreplay.toml` key.
    #[serde(skip)]
    pub learned_streams: BTreeMap<(String, Dir, String), u64>,
}

/// `[structure.route.NAME]`: how one route's messages are read, instead of the protocol
/// chosen per connection.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteProtocol {
    /// A built-in protocol: `json`, `socketio`, `graphql-ws`, `jsonrpc`, `cdp`, `stomp`,
    /// `signalr`, `phoenix` or `actioncable`.
    pub protocol: Option<String>,
    /// JSON: the keys that name a message's kind, tried in order (instead of `type`,
    /// `event`, `kind`, `action`, `op`, `method`).
    #[serde(default)]
    pub discriminator: Vec<String>,
    /// JSON: the keys (at any depth) or dotted paths (from the top) whose value ties a
    /// message to its conversation (instead of `message_id`, `response_to`, ...).
    #[serde(default)]
    pub correlate: Vec<String>,
    /// JSON after a fixed prefix: a regular expression for the text before the JSON.
    pub prefix: Option<String>,
}

/// A `[structure.route.NAME]` table that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConventionError {
    #[error("[structure.route.{route}]: protocol {name:?} is not built in; use one of: {known}")]
    UnknownProtocol {
        route: String,
        name: String,
        known: String,
    },
    #[error("[structure.route.{route}]: prefix {pattern:?} is not a regular expression: {source}")]
    Prefix {
        route: String,
        pattern: String,
        #[source]
        source: regex::Error,
    },
    #[error("[structure.route.{route}]: discriminator, correlate and prefix declare a JSON convention; they go with protocol \"json\" (or none), not {name:?}")]
    NotJson { route: String, name: String },
}

impl RouteProtocol {
    /// The protocol this table declares for `route`.
    pub fn protocol(&self, route: &str) -> Result<protocol::Shared, ConventionError> {
        let declares =
            !self.discriminator.is_empty() || !self.correlate.is_empty() || self.prefix.is_some();
        let name = self.protocol.as_deref().unwrap_or("json");
        if !declares {
            return protocol::builtin(name).ok_or_else(|| ConventionError::UnknownProtocol {
                route: route.to_string(),
                name: name.to_string(),
                known: protocol::NAMES.join(", "),
            });
        }
        if name != "json" {
            return Err(ConventionError::NotJson {
                route: route.to_string(),
                name: name.to_string(),
            });
        }
        let prefix = match &self.prefix {
            Some(p) => Some(
                regex::Regex::new(p).map_err(|source| ConventionError::Prefix {
                    route: route.to_string(),
                    pattern: p.clone(),
                    source,
                })?,
            ),
            None => None,
        };
        let or = |declared: &[String], builtin: &[&str]| {
            if declared.is_empty() {
                builtin.iter().map(|s| s.to_string()).collect()
            } else {
                declared.to_vec()
            }
        };
        Ok(std::sync::Arc::new(protocol::declared::Declared {
            discriminators: or(&self.discriminator, protocol::DISCRIMINATORS),
            correlate: or(&self.correlate, protocol::CORRELATION_KEYS),
            prefix,
        }))
    }
}

impl StructureConfig {
    /// The protocols of the routes named in `[structure.route.NAME]`.
    pub fn overrides(&self) -> Result<protocol::Overrides, ConventionError> {
        self.route
            .iter()
            .map(|(route, table)| Ok((route.clone(), table.protocol(route)?)))
            .collect()
    }

    /// Whether `list` names `path`, by its key path or its field name.
    pub(crate) fn names(list: &[String], path: &str) -> bool {
        list.iter().any(|e| e == path || e == field_name(path))
    }
}

/// A message kind within a route: direction and label.
pub type KindKey = (Dir, String);

/// The field name of a key path: `payload.rows[].status` → `status`.
pub(crate) fn field_name(path: &str) -> &str {
    let p = path.trim_end_matches("[]");
    p.rsplit('.').next().unwrap_or(p)
}
