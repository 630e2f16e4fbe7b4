//! Volatile-value recognition: what a string or number looks like, so that snapshots
//! keep the shape of a value and never the value itself; and which strings could be
//! enum members.
//!
//! **The rule.** A string is tried against these formats in order; the first that fits
//! is its format, and a string that fits none is plain text (`string`):
//!
//! | format | requires |
//! |---|---|
//! | `string (empty)` | nothing at all |
//! | `uuid` | 8-4-4-4-12 hex digits and dashes, nothing else |
//! | ISO-8601 timestamp (with its style) | `YYYY-MM-DD`, optionally `T` or one space, `hh:mm[:ss[.fff]]` and a zone (`Z`, `±hh:mm`, `±hhmm`) or none |
//! | `id PREFIX<uuid>`, `<hex>`, `<n>` | no whitespace anywhere; a prefix of at most [`MAX_ID_PREFIX`] bytes that starts with a letter, holds only letters, digits, `_`, `-`, `:` and `.`, is made of words (each piece all lowercase, all uppercase or capitalised; 8 or more characters not mixing letters with digits or both cases, so a random token such as a Socket.IO sid has no prefix), and ends at a `_`, `-` or `:` (the last one, or the `_` or `:` before a uuid); then a uuid, 8+ hex digits, 4+ hex digits with a digit, or a counter (digits) |
//! | `hex id` | 8+ hex digits, nothing else |
//! | `digits` | ASCII digits, nothing else |
//! | `url` | `scheme://rest`, a scheme of letters, no space |
//!
//! So a string with whitespace is never an id, a uuid, a hex id or an enum member: a
//! sentence that happens to end in `eu-west-1`, `gpt-4`, `step-2`, `v1-3` or `room:7` is
//! plain text, whatever its words, length or trailing token. Only timestamps (a space
//! may separate date and time) and URLs have their own rules about spaces. An **enum
//! member** (a value a snapshot may keep literally) is plain text that is identifier-like:
//! at most 40 bytes, starting with a letter, only letters, digits, `_`, `-`, `.` and `:`.
//! Numbers between the years 2000 and 2100 in seconds or milliseconds since 1970 are
//! epoch times.
//!
//! A redaction placeholder (`redacted-1a2b3c4d5e6f`, or the older `<redacted:…>`) is
//! a plain string, never an id or an enum member, in either form: a recording and a
//! replay redacted with different keys or by different versions keep one structure.

use crate::redact::placeholder;

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
pub(crate) enum StrShape<'a> {
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
    pub(crate) fn of(s: &'a str) -> StrShape<'a> {
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
                && !s.contains(char::is_whitespace)
        }) {
            StrShape::Url
        } else {
            StrShape::Plain
        }
    }

    pub(crate) fn to_format(self) -> StrFormat {
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

    pub(crate) fn is(self, format: &StrFormat) -> bool {
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

    pub(crate) fn describe(&self) -> String {
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

pub(crate) fn is_hex(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit())
}

pub(crate) fn is_uuid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// `2026-11-23T07:08:54.123+00:00` → `fraction, ±hh:mm`.
pub(crate) fn timestamp_style(s: &str) -> Option<&'static str> {
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

/// Longest prefix of a prefixed id, in bytes (`nlp_client_` has 11).
pub const MAX_ID_PREFIX: usize = 32;

/// Whether `prefix` (up to and including its separator) can start a prefixed id: short,
/// starting with a letter, identifier characters only, and made of words.
fn id_prefix(prefix: &str) -> bool {
    let b = prefix.as_bytes();
    (2..=MAX_ID_PREFIX).contains(&b.len())
        && b[0].is_ascii_alphabetic()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b':' | b'.'))
        && made_of_words(&prefix[..prefix.len() - 1])
}

/// Whether an id's prefix (its separator left off) is made of words (`run`,
/// `nlp_client`, `MSG`, `Order`), not the head of a random token with a `_` or `-` in
/// it (a Socket.IO sid such as `PBSYqFLHZyIOu_42` or `C3_jqbpcnaukkq-9`, base64url):
/// each piece is all lowercase, all uppercase or capitalised, and a prefix of 8 or more
/// characters does not mix letters with digits or both cases. Decided on the prefix
/// alone, so a field's format never flips with its tail.
fn made_of_words(head: &str) -> bool {
    let classes = [
        head.bytes().any(|b| b.is_ascii_lowercase()),
        head.bytes().any(|b| b.is_ascii_uppercase()),
        head.bytes().any(|b| b.is_ascii_digit()),
    ];
    head.split(['_', '-', ':', '.']).all(word_like)
        && (head.len() < 8 || classes.iter().filter(|c| **c).count() < 2)
}

/// `run_3f2a…` → (`run_`, uuid); `thread_12` → (`thread_`, counter);
/// `nlp_client_ab12cd34` → (`nlp_client_`, hex). `None` for anything whose prefix is
/// not identifier-like (see the module documentation), so never for text with spaces.
pub(crate) fn prefixed_id(s: &str) -> Option<(&str, IdTail)> {
    // A uuid tail contains '-': look for it before the last separator.
    if let Some(i) = s.find(['_', ':']).filter(|&i| is_uuid(&s[i + 1..])) {
        return id_prefix(&s[..=i]).then_some((&s[..=i], IdTail::Uuid));
    }
    let cut = s.rfind(['_', '-', ':'])?;
    let (prefix, tail) = (&s[..=cut], &s[cut + 1..]);
    if !id_prefix(prefix) {
        return None;
    }
    if prefix.ends_with('-') && prefix.contains("redacted-") && placeholder::contains(s) {
        return None;
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

/// Whether a piece of an id's prefix reads as a word: digits aside, all lowercase, all
/// uppercase, or capitalised; random letters mix the cases.
fn word_like(piece: &str) -> bool {
    let mut letters = piece.bytes().filter(u8::is_ascii_alphabetic);
    let Some(first) = letters.next() else {
        return true;
    };
    let rest: Vec<u8> = letters.collect();
    rest.iter().all(u8::is_ascii_lowercase)
        || (first.is_ascii_uppercase() && rest.iter().all(u8::is_ascii_uppercase))
}

/// Whether a string has the shape of an enum member: a short identifier-like token
/// (callers also check that it is no recognised format such as an id).
pub(crate) fn enum_token(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 40
        && b[0].is_ascii_alphabetic()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.' | b':'))
        && !(s.starts_with("redacted-") && placeholder::is_placeholder(s))
}

/// Whether a string value could be an enum member.
pub(crate) fn enum_like(s: &str) -> bool {
    enum_token(s) && StrFormat::of(s) == StrFormat::Plain
}

/// One observed JSON type of a path.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum TypeTag {
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

pub(crate) fn number_tag(v: f64, float: bool) -> TypeTag {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_formats() {
        let f = |s| StrFormat::of(s);
        for placeholder in [
            "redacted-1a2b3c4d5e6f",
            "redacted-aws-key-1a2b3c4d5e6f",
            "Bearer redacted-jwt-1a2b3c4d5e6f",
            "<redacted:1a2b3c4d5e6f>",
            "Bearer <redacted:jwt:1a2b3c4d5e6f>",
        ] {
            assert_eq!(f(placeholder), StrFormat::Plain, "{placeholder}");
        }
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
        // A random token (a Socket.IO sid) that ends in `_` and digits is no id.
        for token in [
            "PBSYqFLHZyIOu_42",
            "q7Xk2-ab12",
            "aB_1234",
            "C3_jqbpcnaukkq-9",
        ] {
            assert_eq!(f(token), StrFormat::Plain, "{token}");
        }
        assert_eq!(
            f("Order-7"),
            StrFormat::PrefixedId("Order-".into(), IdTail::Counter)
        );
        assert_eq!(
            f("MSG_7"),
            StrFormat::PrefixedId("MSG_".into(), IdTail::Counter)
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
            !enum_like("redacted-1a2b3c4d5e6f")
                && enum_like("data_helper")
                && enum_like("EC2")
                && !enum_like("Cost by service")
                && !enum_like("msg_4f3a9c2b")
        );
    }

    /// Issue 21: sentences that end in a region, a model name or a version were ids.
    #[test]
    fn sentences_ending_in_id_like_tokens_are_text() {
        for s in [
            "Preparing analysis step 1/4 in eu-west-1",
            "answered by gpt-4",
            "now at step-2",
            "upgrade to v1-3",
            "joined room:7",
            "Preparing\teu-west-1",
            "http://a.example/ b",
        ] {
            assert_eq!(StrFormat::of(s), StrFormat::Plain, "{s}");
        }
        // Alone, such tokens are ids; a prefix longer than MAX_ID_PREFIX is not.
        assert_eq!(
            StrFormat::of("eu-west-1"),
            StrFormat::PrefixedId("eu-west-".into(), IdTail::Counter)
        );
        let long = format!("{}_12", "a".repeat(MAX_ID_PREFIX));
        assert_eq!(StrFormat::of(&long), StrFormat::Plain);
    }

    mod properties {
        use super::super::*;
        use proptest::prelude::*;

        fn whitespace() -> impl Strategy<Value = String> {
            prop::sample::select(vec![" ", "\t", "\n", "\r\n", "\u{a0}", "\u{3000}", "  "])
                .prop_map(str::to_string)
        }

        /// Tokens a sentence may end in (regions, models, versions, rooms, counters).
        fn id_like_token() -> impl Strategy<Value = String> {
            prop_oneof![
                "(eu|us|ap)-(west|east|north|south)-[1-9]",
                "gpt-[0-9](o|-turbo)?",
                "step-[0-9]{1,3}",
                "v[0-9]{1,2}-[0-9]{1,2}",
                "room:[0-9]{1,4}",
                "[a-z]{1,10}[_:-][0-9a-f]{1,16}",
                "[a-z]{1,6}_[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
            ]
        }

        fn sentence() -> impl Strategy<Value = String> {
            prop::collection::vec("[A-Za-z][a-z]{0,9}[,.]?", 1..8).prop_map(|w| w.join(" "))
        }

        proptest! {
            /// Any string with whitespace is plain text (or a timestamp, whose date
            /// and time a space may separate), and never an enum member.
            #[test]
            fn whitespace_is_never_an_id(a in "\\PC{0,40}", ws in whitespace(), b in "\\PC{0,40}") {
                let s = format!("{a}{ws}{b}");
                let f = StrFormat::of(&s);
                prop_assert!(
                    f == StrFormat::Plain || matches!(f, StrFormat::Timestamp(_)),
                    "{s:?} is {f:?}"
                );
                prop_assert!(!enum_like(&s), "{s:?} is enum-like");
            }

            /// A sentence ending in an id-like token is text, whatever the token.
            #[test]
            fn sentences_never_end_in_an_id(words in sentence(), ws in whitespace(), token in id_like_token()) {
                let s = format!("{words}{ws}{token}");
                prop_assert_eq!(StrFormat::of(&s), StrFormat::Plain, "{:?}", s);
            }

            /// Every id shape of the demo system classifies as it always did.
            #[test]
            fn id_shapes_keep_their_format(
                uuid in "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
                hex16 in "[0-9a-f]{16}",
                hex8 in "[0-9a-f]{8}",
                n in 0u32..10_000_000,
            ) {
                let id = |p: &str, t| StrFormat::PrefixedId(p.to_string(), t);
                prop_assert_eq!(StrFormat::of(&format!("run_{uuid}")), id("run_", IdTail::Uuid));
                prop_assert_eq!(StrFormat::of(&format!("msg_{hex16}")), id("msg_", IdTail::Hex));
                prop_assert_eq!(StrFormat::of(&format!("thread_{n}")), id("thread_", IdTail::Counter));
                prop_assert_eq!(
                    StrFormat::of(&format!("nlp_client_{hex8}")),
                    id("nlp_client_", IdTail::Hex)
                );
                prop_assert_eq!(StrFormat::of(&uuid), StrFormat::Uuid);
            }

            /// A free-text field is the same structure whatever its words, lengths and
            /// trailing tokens: the run is rendered with the baseline's hints, as
            /// `check` does.
            #[test]
            fn free_text_keeps_its_structure(
                baseline in prop::collection::vec(sentence(), 1..4),
                run in prop::collection::vec((sentence(), ws_token()), 1..4),
            ) {
                use crate::recording::{Body, Dir, Recording};
                use crate::structure::Observation;
                let rec = |texts: Vec<String>| {
                    Recording::single_connection(
                        "r",
                        texts.into_iter().map(|t| {
                            let m = serde_json::json!({"type": "progress", "message": t});
                            (Dir::ServerToClient, Body::Text(m.to_string()))
                        }),
                    )
                };
                let base = Observation::of(&rec(baseline));
                let hints = base.hints();
                let run: Vec<String> = run.into_iter().map(|(w, t)| format!("{w}{t}")).collect();
                let old = base.render(&hints).routes["r"].kinds[&(Dir::ServerToClient, "progress".into())].fields.clone();
                let new = Observation::of(&rec(run)).render(&hints).routes["r"].kinds[&(Dir::ServerToClient, "progress".into())].fields.clone();
                prop_assert_eq!(old, new);
            }
        }

        /// Nothing, or whitespace and an id-like token.
        fn ws_token() -> impl Strategy<Value = String> {
            prop_oneof![
                Just(String::new()),
                (whitespace(), id_like_token()).prop_map(|(w, t)| format!("{w}{t}")),
            ]
        }
    }
}
