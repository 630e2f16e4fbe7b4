//! The placeholders that stand for redacted values, written and recognised.
//!
//! A placeholder is `redacted-<hash>`, or `redacted-<kind>-<hash>` when the value's
//! shape told what it was (`redacted-jwt-1a2b3c4d5e6f`): 12 hex digits of a keyed hash,
//! letters, digits and `-` only, so it is a valid query value, header value, cookie
//! value and JSON string as it stands, and a recording with a redacted `?token=` stays
//! replayable. Recordings written by earlier versions hold `<redacted:1a2b3c4d5e6f>`
//! or `<redacted:jwt:1a2b3c4d5e6f>`; both forms are recognised everywhere a
//! placeholder is looked for ([`PATTERN`]).

use std::borrow::Cow;
use std::sync::LazyLock;

use regex::Regex;

/// Every placeholder, in the current form (`kind`) or the old one (`old_kind`).
pub static PATTERN: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(concat!(
        r"(?-u:\b)redacted-(?:(?P<kind>[a-z]+(?:-[a-z]+)*)-)?[0-9a-f]{12}(?-u:\b)",
        r"|<redacted:(?:(?P<old_kind>[a-z-]+):)?[0-9a-f]{12}>",
    ))
    .expect("the placeholder pattern is valid")
});

/// The placeholder for a value whose keyed hash is `hash` (hex), naming its `kind`
/// (`jwt`, `aws-key`, `private-key`) when known.
pub fn make(kind: Option<&str>, hash: &str) -> String {
    match kind {
        Some(kind) => format!("redacted-{kind}-{hash}"),
        None => format!("redacted-{hash}"),
    }
}

/// Whether `text` holds a placeholder (of either form).
pub fn contains(text: &str) -> bool {
    text.contains("redacted") && PATTERN.is_match(text)
}

/// Whether `value` is one placeholder and nothing else.
pub fn is_placeholder(value: &str) -> bool {
    value.len() < 64
        && PATTERN
            .find(value)
            .is_some_and(|m| m.start() == 0 && m.end() == value.len())
}

/// The kind each placeholder in `text` names (`secret` when it names none), with the
/// placeholder itself.
pub fn kinds(text: &str) -> impl Iterator<Item = (&str, &str)> {
    PATTERN.captures_iter(text).map(|c| {
        let kind = c.name("kind").or_else(|| c.name("old_kind"));
        (
            kind.map_or("secret", |k| k.as_str()),
            c.get(0).map_or("", |m| m.as_str()),
        )
    })
}

/// `text` with every placeholder replaced by `with`.
pub fn replace_all<'t>(text: &'t str, with: &str) -> Cow<'t, str> {
    if !text.contains("redacted") {
        return Cow::Borrowed(text);
    }
    PATTERN.replace_all(text, regex::NoExpand(with))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_url_safe_and_both_forms_are_recognised() {
        for p in [
            make(None, "1a2b3c4d5e6f"),
            make(Some("aws-key"), "abcdef012345"),
        ] {
            assert!(
                p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'),
                "{p}"
            );
            assert!(is_placeholder(&p), "{p}");
            assert!(url::Url::parse(&format!("ws://h/ws?token={p}")).is_ok());
        }
        assert!(is_placeholder("<redacted:1a2b3c4d5e6f>"));
        assert!(is_placeholder("<redacted:jwt:1a2b3c4d5e6f>"));
        assert!(!is_placeholder("redacted-1a2b3c4d5e6"));
        assert!(!is_placeholder("xredacted-1a2b3c4d5e6f"));
        assert!(!is_placeholder("redacted-1a2b3c4d5e6f0"));
        let text = "Bearer redacted-aws-key-abcdef012345 and <redacted:jwt:1a2b3c4d5e6f>, redacted-abcdef012345";
        let found: Vec<_> = kinds(text).collect();
        assert_eq!(
            found,
            [
                ("aws-key", "redacted-aws-key-abcdef012345"),
                ("jwt", "<redacted:jwt:1a2b3c4d5e6f>"),
                ("secret", "redacted-abcdef012345")
            ]
        );
        assert_eq!(replace_all(text, "X"), "Bearer X and X, X");
        assert!(!contains("a redacted summary"));
    }

    #[test]
    fn the_redactor_writes_url_safe_placeholders_and_never_redacts_one_again() {
        use crate::redact::{RedactConfig, Redactor};
        let r = Redactor::with_key(&RedactConfig::default(), [9; 32]);
        let p = r.pseudonym("s3cr3t value");
        assert!(p.starts_with("redacted-") && is_placeholder(&p), "{p}");
        assert_eq!(r.pseudonym("s3cr3t value"), p, "stable per secret");
        let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1MSIsImV4cCI6MTl9.c2lnbmF0dXJl";
        assert!(r.pseudonym(jwt).starts_with("redacted-jwt-"));
        let target = format!("/ws?token={p}&access_token=<redacted:1a2b3c4d5e6f>");
        assert_eq!(r.target(&target), target);
        let mut headers = vec![
            ("Authorization".to_string(), format!("Bearer {p}")),
            (
                "Cookie".to_string(),
                "sid=<redacted:1a2b3c4d5e6f>".to_string(),
            ),
        ];
        let before = headers.clone();
        r.headers(&mut headers);
        assert_eq!(headers, before);
        let body = format!(r#"{{"password":"{p}","api_secret":"<redacted:1a2b3c4d5e6f>"}}"#);
        assert_eq!(r.text(&body), None);
    }
}
