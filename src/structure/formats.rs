//! Volatile-value recognition: what a string or number looks like (uuid, timestamp,
//! prefixed id, hex id, URL, epoch seconds or milliseconds), so that snapshots keep the
//! shape of a value and never the value itself; and which strings could be enum members.
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
                && !s.contains(' ')
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

/// `run_3f2a…` → (`run_`, uuid); `thread_12` → (`thread_`, counter);
/// `nlp_client_ab12cd34` → (`nlp_client_`, hex).
pub(crate) fn prefixed_id(s: &str) -> Option<(&str, IdTail)> {
    let cut = s.rfind(['_', '-', ':'])?;
    let (prefix, tail) = (&s[..=cut], &s[cut + 1..]);
    if prefix.len() < 2 || !prefix.as_bytes()[0].is_ascii_alphabetic() {
        return None;
    }
    if prefix.ends_with('-') && prefix.contains("redacted-") && placeholder::contains(s) {
        return None;
    }
    // A uuid tail contains '-': look for it before the last separator.
    if let Some(i) = s.find(['_', ':']).filter(|&i| is_uuid(&s[i + 1..])) {
        return Some((&s[..=i], IdTail::Uuid));
    }
    // An id's prefix is made of words (`run`, `nlp_client`, `MSG`, `Order`); a random
    // token with a `_` or `-` in it (`PBSYqFLHZyIOu_42`, base64url) has no prefix.
    if !prefix[..cut].split(['_', '-', ':']).all(word_like) {
        return None;
    }
    // A long prefix that mixes letters with digits, or both cases, is a random token's
    // head (`C3_jqbpcnaukkq-9`, base64url), not a namespace. Decided on the prefix alone,
    // so a field's format does not flip with its tail.
    let head = &prefix[..cut];
    let classes = [
        head.bytes().any(|b| b.is_ascii_lowercase()),
        head.bytes().any(|b| b.is_ascii_uppercase()),
        head.bytes().any(|b| b.is_ascii_digit()),
    ];
    if head.len() >= 8 && classes.iter().filter(|c| **c).count() >= 2 {
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
}
