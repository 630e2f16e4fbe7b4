//! The structure normaliser: what a recording's messages look like, without their
//! volatile values.
//!
//! Every JSON message is reduced to key paths (`payload.tool_name`, `rows[].service`)
//! and, per path, its JSON types (integer and float apart), recognised string formats
//! (uuid, ISO-8601 timestamp, prefixed ids such as `run_<uuid>`, hex ids, URLs) and
//! epoch numbers. Values are kept literally only for discriminators (`type`, ...) and
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
//! are counted, and the list is sorted.

pub mod diff;
pub mod formats;
pub mod observe;
pub mod render;
pub mod sequence;
pub mod snapshot;
pub mod timing;

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
}

impl StructureConfig {
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
