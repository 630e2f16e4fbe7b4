//! Recognising credentials by their shape, and listing what a recording had redacted.
//!
//! [`redact`](crate::redact) removes secrets by *where* they are (a header, a query
//! parameter, a JSON key). This module finds the ones that turn up anywhere else: JWTs,
//! `Bearer` tokens, AWS access key ids and PEM private keys anywhere in a text message,
//! and long random-looking strings in fields named like `*token*`, `*secret*`, `*key*`
//! or `*password*`. It also reads a finished recording back and counts its placeholders
//! for `wsreplay show --secrets`: names and counts, never values.

use std::collections::{BTreeMap, HashSet};
use std::sync::LazyLock;

use regex::Regex;

use crate::recording::{Record, Recording};

/// Credential shapes found anywhere in a text, whatever field they are in. The named
/// group `secret` is the part to replace (a `Bearer` scheme word stays readable).
static PATTERNS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(concat!(
        // JWT: base64url JSON header and payload (both start `{"` → `eyJ`), signature.
        r"(?P<secret>\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*",
        // AWS access key ids (long-term AKIA, temporary ASIA, and the other prefixes).
        r"|\b(?:AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AIPA|ANPA|ANVA|AROA)[A-Z0-9]{16}\b",
        // PEM private keys, also when truncated; inside JSON the newlines are `\n`.
        r"|-----BEGIN[A-Z0-9 ]*PRIVATE KEY-----[A-Za-z0-9+/=\\\s]*(?:-----END[A-Z0-9 ]*PRIVATE KEY-----)?)",
        // Bearer tokens in free text: only the token is replaced.
        r"|\b[Bb]earer\s+(?P<bearer>[A-Za-z0-9._~+/-]{12,}=*)",
    ))
    .expect("the credential patterns are valid")
});

/// Placeholders as [`crate::redact::Redactor::pseudonym`] writes them.
static PLACEHOLDER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"<redacted:(?:(?P<kind>[a-z-]+):)?[0-9a-f]{12}>").expect("valid pattern")
});

/// What a secret value is, judged by its content alone, so that one value gets one
/// placeholder wherever it turns up.
pub fn kind_of(value: &str) -> Option<&'static str> {
    let m = PATTERNS.captures(value)?;
    let whole = m.get(0)?;
    if whole.start() != 0 || whole.end() != value.len() || m.name("secret").is_none() {
        return None;
    }
    Some(if value.starts_with("eyJ") {
        "jwt"
    } else if value.starts_with("-----BEGIN") {
        "private-key"
    } else {
        "aws-key"
    })
}

/// The spans of `text` that hold a credential, in order and not overlapping.
pub fn find(text: &str) -> Vec<std::ops::Range<usize>> {
    // Nearly every message holds no credential: the lazy DFA answers that without the
    // capture-slot engines that `captures_iter` needs.
    if !PATTERNS.is_match(text) {
        return Vec::new();
    }
    PATTERNS
        .captures_iter(text)
        .filter_map(|c| c.name("secret").or_else(|| c.name("bearer")))
        .map(|m| m.range())
        .collect()
}

/// Whether a value must never be shown as it is (a snapshot literal, a schema `const`):
/// it holds a credential of a known shape, or looks random ([`looks_random`]).
pub fn is_suspicious(value: &str) -> bool {
    looks_random(value) || !find(value).is_empty()
}

/// Field names whose random-looking values are treated as secrets.
pub const SECRET_FIELD_WORDS: &[&str] = &["token", "secret", "key", "password", "credential"];

/// Whether a field of this name is one whose random-looking values are secret.
pub fn is_secret_field(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    SECRET_FIELD_WORDS.iter().any(|w| name.contains(w))
}

/// A long, random-looking value: at least 16 characters, no spaces, letters mixed with
/// digits (or upper with lower case), and at least 3.5 bits of entropy per character.
/// `tool_executing_result` is not; `9f86d081884c7d659a2feaa0c55ad015` and API keys are.
pub fn looks_random(value: &str) -> bool {
    if value.len() < 16 || value.len() > 8192 || value.contains(char::is_whitespace) {
        return false;
    }
    let has = |f: fn(&u8) -> bool| value.as_bytes().iter().any(f);
    let classes = [
        has(u8::is_ascii_lowercase),
        has(u8::is_ascii_uppercase),
        has(u8::is_ascii_digit),
    ];
    classes.iter().filter(|c| **c).count() >= 2 && entropy(value) >= 3.5
}

/// Shannon entropy in bits per byte.
fn entropy(value: &str) -> f64 {
    let mut counts = [0u32; 256];
    for b in value.bytes() {
        counts[b as usize] += 1;
    }
    let n = value.len() as f64;
    counts
        .iter()
        .filter(|c| **c > 0)
        .map(|&c| {
            let p = c as f64 / n;
            -p * p.log2()
        })
        .sum()
}

/// Where redacted values were found in a recording, and how many: the report of
/// `wsreplay show --secrets`.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Inventory {
    /// Sorted by place, then kind.
    pub entries: Vec<InventoryEntry>,
}

/// Redacted values of one kind found in one place.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InventoryEntry {
    /// Where: `request header authorization`, `message field token`, ...
    pub place: String,
    /// The kind of secret the placeholder names (`jwt`, `bearer`, ...; `secret`).
    pub kind: String,
    /// Placeholders found.
    pub count: u64,
    /// Distinct placeholders among them.
    pub distinct: u64,
}

impl Inventory {
    /// Counts every placeholder in `recording`.
    pub fn of(recording: &Recording) -> Inventory {
        let mut seen: BTreeMap<(String, String), (u64, HashSet<String>)> = BTreeMap::new();
        let mut add = |place: String, text: &str| {
            for m in PLACEHOLDER.captures_iter(text) {
                let kind = m.name("kind").map_or("secret", |k| k.as_str()).to_string();
                let entry = seen.entry((place.clone(), kind)).or_default();
                entry.0 += 1;
                entry.1.insert(m[0].to_string());
            }
        };
        for record in &recording.records {
            match record {
                Record::Open(open) => {
                    for (name, value) in &open.headers {
                        add(
                            format!("request header {}", name.to_ascii_lowercase()),
                            value,
                        );
                    }
                    for (name, value) in &open.response_headers {
                        add(
                            format!("response header {}", name.to_ascii_lowercase()),
                            value,
                        );
                    }
                    let query = open.request.split_once('?').map_or("", |(_, q)| q);
                    for pair in query.split(['&', ' ']) {
                        if let Some((name, value)) = pair.split_once('=') {
                            add(format!("query parameter {name}"), value);
                        }
                    }
                }
                Record::Message(m) => {
                    let Some(text) = m.body.as_text() else {
                        continue;
                    };
                    if !text.contains("<redacted:") {
                        continue;
                    }
                    match serde_json::from_str::<serde_json::Value>(text) {
                        Ok(value) => walk_fields(&value, None, &mut add),
                        Err(_) => add("message text".into(), text),
                    }
                }
                _ => {}
            }
        }
        Inventory {
            entries: seen
                .into_iter()
                .map(|((place, kind), (count, distinct))| InventoryEntry {
                    place,
                    kind,
                    count,
                    distinct: distinct.len() as u64,
                })
                .collect(),
        }
    }

    /// A table for people: where, what, how often. Never a value.
    pub fn render(&self) -> String {
        if self.entries.is_empty() {
            return "no redacted values in this recording\n".into();
        }
        let width = self
            .entries
            .iter()
            .map(|e| e.place.len())
            .max()
            .unwrap_or(0);
        let mut out = format!(
            "{:width$}  {:11}  {:>5}  {:>8}\n",
            "where", "kind", "count", "distinct"
        );
        for e in &self.entries {
            out += &format!(
                "{:width$}  {:11}  {:>5}  {:>8}\n",
                e.place, e.kind, e.count, e.distinct
            );
        }
        out
    }
}

fn walk_fields(value: &serde_json::Value, key: Option<&str>, add: &mut impl FnMut(String, &str)) {
    match value {
        serde_json::Value::String(s) => {
            let place = key.map_or("message text".to_string(), |k| format!("message field {k}"));
            add(place, s)
        }
        serde_json::Value::Object(map) => {
            map.iter().for_each(|(k, v)| walk_fields(v, Some(k), add))
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| walk_fields(v, key, add)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const JWT: &str = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1MSIsImV4cCI6MTl9.c2lnbmF0dXJlLXZhbHVl";

    #[test]
    fn credentials_are_found_by_shape() {
        let text = format!(
            r#"{{"text":"use {JWT} or Bearer abcdEFGH1234.x or AKIAIOSFODNN7EXAMPLE","pem":"-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----"}}"#
        );
        let found: Vec<&str> = find(&text).into_iter().map(|r| &text[r]).collect();
        assert_eq!(
            found,
            [
                JWT,
                "abcdEFGH1234.x",
                "AKIAIOSFODNN7EXAMPLE",
                r"-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----"
            ]
        );
        assert_eq!(kind_of(JWT), Some("jwt"));
        assert_eq!(kind_of("AKIAIOSFODNN7EXAMPLE"), Some("aws-key"));
        assert_eq!(kind_of("abcdEFGH1234.x"), None);
        assert_eq!(kind_of(&format!("x{JWT}")), None);
    }

    #[test]
    fn ordinary_protocol_text_is_not_a_secret() {
        let text = r#"{"type":"tool_executing","message_id":"m-12","payload":{"tool_name":"sql_query","bearer":"none"}}"#;
        assert!(find(text).is_empty());
        assert!(!looks_random("tool_executing_result"));
        assert!(!looks_random("short1A"));
        assert!(looks_random("9f86d081884c7d659a2feaa0c55ad015"));
        assert!(looks_random("sk_live_51HxQ2eKjT8pZ3mW9vY"));
        assert!(is_secret_field("githubToken") && is_secret_field("SIGNING_KEY"));
        assert!(!is_secret_field("message_id"));
    }
}
