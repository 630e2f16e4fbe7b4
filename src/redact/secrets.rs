//! Recognising credentials by their shape, and listing what a recording had redacted.
//!
//! [`redact`](crate::redact) removes secrets by *where* they are (a header, a query
//! parameter, a JSON key). This module finds the ones that turn up anywhere else, by
//! shape ([`find`]): JWTs, `Bearer` tokens, AWS access key ids (and a secret access key
//! next to one), PEM private keys, and the vendor formats gitleaks' default rules know
//! (GitHub, GitLab, Slack tokens and webhooks, Stripe, OpenAI, Anthropic, Google API,
//! npm, SendGrid keys), the password of a `scheme://user:pass@` URL and a DSN's
//! `Password=`; and by name: long random-looking strings in fields named like `*token*`,
//! `*secret*`, `*key*`, `*pass*`, `*pwd*`, `*auth*` or `*cred*`, and any value of a
//! password field ([`is_password_field`]). A literal prefilter ([`may_hold`]) and a lazy
//! DFA keep a text with no candidate cheap. [`is_suspicious`] is what the snapshot and
//! schema writers ask before writing a value. It also reads a finished recording back
//! and counts its placeholders for `wsreplay show --secrets`: names and counts, never
//! values.

use std::collections::{BTreeMap, HashSet};
use std::sync::LazyLock;

use regex::Regex;

use super::placeholder;
use crate::recording::{Body, Record, Recording};

/// Credential shapes found anywhere in a text, whatever field they are in: the
/// formats gitleaks' default rules know for the vendors below. The named group `secret`
/// is a whole credential (its placeholder names its kind); `bearer` and `pw` are the
/// part of a longer match to replace (a `Bearer` scheme word, a URL's user name and
/// host, a DSN's `Password=` stay readable).
static PATTERNS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(concat!(
        // JWT: base64url JSON header and payload (both start `{"` → `eyJ`), signature.
        r"(?P<secret>(?-u:\b)eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*",
        // AWS access key ids (long-term AKIA, temporary ASIA, and the other prefixes).
        r"|(?-u:\b)(?:AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AIPA|ANPA|ANVA|AROA|A3T[A-Z0-9])[A-Z0-9]{16}(?-u:\b)",
        // PEM private keys, also when truncated; inside JSON the newlines are `\n`.
        r"|-----BEGIN[A-Z0-9 ]*PRIVATE KEY-----[A-Za-z0-9+/=\\\s]*(?:-----END[A-Z0-9 ]*PRIVATE KEY-----)?",
        // GitHub: personal, OAuth, user-to-server, server-to-server, refresh tokens;
        // fine-grained personal access tokens.
        r"|(?-u:\b)gh[pousr]_[A-Za-z0-9]{36,251}(?-u:\b)",
        r"|(?-u:\b)github_pat_[A-Za-z0-9_]{22,251}",
        // GitLab: personal, deploy, pipeline trigger, runner, OAuth app, ... tokens.
        r"|(?-u:\b)gl(?:pat|dt|ptt|rt|soat|cbt|ft|imt|agent|oas)-[A-Za-z0-9_-]{20,}",
        // Slack: bot, user, app, legacy and configuration tokens; incoming webhooks.
        r"|(?-u:\b)(?:xox[abeoprs]|xoxe\.xox[bp]|xapp)-[A-Za-z0-9-]{10,}",
        r"|hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9+/_-]{20,}",
        // Stripe secret and restricted keys (live, test, prod).
        r"|(?-u:\b)(?:sk|rk)_(?:live|test|prod)_[A-Za-z0-9]{10,99}(?-u:\b)",
        // OpenAI (legacy, project, service account, admin keys) and Anthropic keys.
        r"|(?-u:\b)sk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,}T3BlbkFJ[A-Za-z0-9_-]{20,}",
        r"|(?-u:\b)sk-(?:proj|svcacct|admin)-[A-Za-z0-9_-]{40,}",
        r"|(?-u:\b)sk-ant-(?:api|admin)[0-9]{2}-[A-Za-z0-9_-]{32,}",
        // Google API keys, npm access tokens, SendGrid API keys.
        r"|(?-u:\b)AIza[A-Za-z0-9_-]{35}",
        r"|(?-u:\b)npm_[A-Za-z0-9]{36}(?-u:\b)",
        r"|(?-u:\b)SG\.[A-Za-z0-9_-]{16,32}\.[A-Za-z0-9_-]{16,64})",
        // Bearer tokens in free text: only the token is replaced.
        r"|(?-u:\b)[Bb]earer\s+(?P<bearer>[A-Za-z0-9._~+/-]{12,}=*)",
        // The password of a URL's user info (`postgres://app:PASSWORD@db/app`).
        r#"|(?-u:\b)[A-Za-z][A-Za-z0-9+.-]*://[^\s:/?#@"'<>\\]*:(?P<pw>[^\s/?#@"'<>\\]+)@"#,
        // A DSN's or connection string's password (`Password=...;`, `password=...`).
        r#"|(?i:(?-u:\b)(?:password|passwd|pwd)\s*:?=\s*)(?P<dsn>[^\s;&,"'<>\\]+)"#,
    ))
    .expect("the credential patterns are valid")
});

/// Literal pieces every match of [`PATTERNS`] contains (ASCII case ignored): a text
/// with none of them holds no credential of a known shape, and the regex is not run.
pub(crate) const SHAPE_HINTS: &[&str] = &[
    "eyJ",
    "AKIA",
    "ASIA",
    "ABIA",
    "ACCA",
    "AGPA",
    "AIDA",
    "AIPA",
    "ANPA",
    "ANVA",
    "AROA",
    "A3T",
    "PRIVATE KEY",
    "ghp_",
    "gho_",
    "ghu_",
    "ghs_",
    "ghr_",
    "github_pat_",
    "glpat-",
    "gldt-",
    "glptt-",
    "glrt-",
    "glsoat-",
    "glcbt-",
    "glft-",
    "glimt-",
    "glagent-",
    "gloas-",
    "xox",
    "xapp-",
    "hooks.slack.com",
    "k_live_",
    "k_test_",
    "k_prod_",
    "sk-",
    "AIza",
    "npm_",
    "SG.",
    "bearer",
    "://",
    "password",
    "passwd",
    "pwd",
];

/// Finds [`SHAPE_HINTS`] in one pass (SIMD where the CPU has it).
static HINTS: LazyLock<aho_corasick::AhoCorasick> = LazyLock::new(|| {
    aho_corasick::AhoCorasick::builder()
        .ascii_case_insensitive(true)
        .build(SHAPE_HINTS)
        .expect("a few short literals always build")
});

/// AWS secret access keys: 40 characters of base64, recognised next to a key id.
static AWS_SECRET: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"[A-Za-z0-9/+]{40,}").expect("valid pattern"));

/// How far from an AWS key id its secret access key is looked for (bytes, each side).
const AWS_SECRET_REACH: usize = 256;

/// What a secret value is, judged by its content alone, so that one value gets one
/// placeholder wherever it turns up.
pub fn kind_of(value: &str) -> Option<&'static str> {
    let m = PATTERNS.captures(value)?;
    let whole = m.get(0)?;
    if whole.start() != 0 || whole.end() != value.len() || m.name("secret").is_none() {
        return None;
    }
    const KINDS: &[(&str, &str)] = &[
        ("eyJ", "jwt"),
        ("-----BEGIN", "private-key"),
        ("gh", "github-token"),
        ("github_pat_", "github-token"),
        ("gl", "gitlab-token"),
        ("xox", "slack-token"),
        ("xapp-", "slack-token"),
        ("hooks.slack.com", "slack-webhook"),
        ("sk_", "stripe-key"),
        ("rk_", "stripe-key"),
        ("sk-ant-", "anthropic-key"),
        ("sk-", "openai-key"),
        ("AIza", "google-api-key"),
        ("npm_", "npm-token"),
        ("SG.", "sendgrid-key"),
    ];
    Some(
        KINDS
            .iter()
            .find(|(prefix, _)| value.starts_with(prefix))
            .map_or("aws-key", |(_, kind)| kind),
    )
}

/// Whether `text` may hold a credential of a known shape: false means it holds none
/// ([`find`] would find nothing); true means it is worth looking.
pub fn may_hold(text: &str) -> bool {
    HINTS.is_match(text)
}

/// The spans of `text` that hold a credential, in order and not overlapping.
pub fn find(text: &str) -> Vec<std::ops::Range<usize>> {
    // Nearly every message holds no credential: a literal prefilter, then the lazy DFA
    // answer that without the capture-slot engines that `captures_iter` needs.
    if !may_hold(text) || !PATTERNS.is_match(text) {
        return Vec::new();
    }
    let mut found: Vec<std::ops::Range<usize>> = Vec::new();
    let mut aws_ids = Vec::new();
    for c in PATTERNS.captures_iter(text) {
        let Some(m) = ["secret", "bearer", "pw", "dsn"]
            .iter()
            .find_map(|g| c.name(g))
        else {
            continue;
        };
        if placeholder::is_placeholder(m.as_str()) {
            continue;
        }
        if kind_of(m.as_str()) == Some("aws-key") {
            aws_ids.push(m.range());
        }
        found.push(m.range());
    }
    // An AWS secret access key is 40 characters of base64 with nothing to tell it by,
    // except the key id it goes with: look for one around each key id.
    for id in aws_ids {
        let from = floor_boundary(text, id.start.saturating_sub(AWS_SECRET_REACH));
        let to = floor_boundary(text, (id.end + AWS_SECRET_REACH).min(text.len()));
        for m in AWS_SECRET.find_iter(&text[from..to]) {
            let range = from + m.start()..from + m.end();
            let whole = range.start > from || from == 0;
            let ends = range.end < to || to == text.len();
            if m.len() == 40 && whole && ends && looks_random(m.as_str()) {
                found.push(range);
            }
        }
    }
    found.sort_by_key(|r| r.start);
    found.dedup_by(|b, a| b.start < a.end);
    found
}

/// The largest char boundary of `text` at or below `i`.
fn floor_boundary(text: &str, mut i: usize) -> usize {
    while !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// Whether a value must never be shown as it is (a snapshot literal, a schema `const`):
/// it holds a credential of a known shape, or looks random ([`looks_random`]).
pub fn is_suspicious(value: &str) -> bool {
    looks_random(value) || !find(value).is_empty()
}

/// Field names whose random-looking values are treated as secrets.
pub const SECRET_FIELD_WORDS: &[&str] = &[
    "token",
    "secret",
    "key",
    "pass",
    "pwd",
    "credential",
    "creds",
    "auth",
];

/// Whether a field of this name is one whose random-looking values are secret.
pub fn is_secret_field(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    SECRET_FIELD_WORDS.iter().any(|w| name.contains(w))
}

/// Whether a field of this name holds a password, whatever it looks like: its last
/// word is `password`, `passwd`, `pass`, `pwd`, `passphrase` or `passcode` (`password`,
/// `db_pass`, `userPassword`, STOMP's `passcode`; not `password_policy` nor `bypass`).
pub fn is_password_field(name: &str) -> bool {
    let last = name
        .rsplit(|c: char| !c.is_ascii_alphanumeric())
        .find(|w| !w.is_empty())
        .unwrap_or("");
    // camelCase: the last word starts at the last upper-case letter.
    let last = match last.rfind(|c: char| c.is_ascii_uppercase()) {
        Some(i) if last[i..].len() > 1 => &last[i..],
        _ => last,
    };
    [
        "password",
        "passwd",
        "pass",
        "pwd",
        "passphrase",
        "passcode",
    ]
    .iter()
    .any(|w| last.eq_ignore_ascii_case(w))
}

/// A long, random-looking value: at least 16 characters, no spaces, letters mixed with
/// digits (or upper with lower case), and at least 3.5 bits of entropy per character
/// (less below 20 characters, which cannot reach that much as often: a 16-character
/// Socket.IO sid such as `VUqkcBm8k08k6iiF` has 3.45).
/// `tool_executing_result` is not; `9f86d081884c7d659a2feaa0c55ad015` and API keys are.
pub fn looks_random(value: &str) -> bool {
    if value.len() < 16 || value.len() > 8192 || value.contains(char::is_whitespace) {
        return false;
    }
    let threshold = 3.5_f64.min((value.len() as f64).log2() - 0.8);
    let has = |f: fn(&u8) -> bool| value.as_bytes().iter().any(f);
    let classes = [
        has(u8::is_ascii_lowercase),
        has(u8::is_ascii_uppercase),
        has(u8::is_ascii_digit),
    ];
    classes.iter().filter(|c| **c).count() >= 2 && entropy(value) >= threshold
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
            for (kind, placeholder) in placeholder::kinds(text) {
                let entry = seen.entry((place.clone(), kind.to_string())).or_default();
                entry.0 += 1;
                entry.1.insert(placeholder.to_string());
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
                    add("upstream url".into(), &open.upstream);
                    let target = open.request.split(' ').nth(1).unwrap_or("");
                    add(
                        "request path".into(),
                        target.split('?').next().unwrap_or(""),
                    );
                    let query = open.request.split_once('?').map_or("", |(_, q)| q);
                    for pair in query.split(['&', ' ']) {
                        if let Some((name, value)) = pair.split_once('=') {
                            let unwrapped = super::base64_json(value).map(|(inner, _)| inner);
                            add(
                                format!("query parameter {name}"),
                                unwrapped.as_deref().unwrap_or(value),
                            );
                        }
                    }
                }
                Record::Message(m) => {
                    let text = match &m.body {
                        Body::Text(text) => text.as_str(),
                        Body::Bytes(bytes) => match std::str::from_utf8(bytes) {
                            Ok(text) => text,
                            Err(_) => continue,
                        },
                    };
                    // Base64-wrapped JSON was redacted inside its wrapping.
                    let unwrapped = super::base64_json(text).map(|(inner, _)| inner);
                    let text = unwrapped.as_deref().unwrap_or(text);
                    if !placeholder::contains(text) {
                        continue;
                    }
                    match serde_json::from_str::<serde_json::Value>(text) {
                        Ok(value) => walk_fields(&value, None, &mut add),
                        Err(_) => add("message text".into(), text),
                    }
                }
                Record::Ping(c) | Record::Pong(c) | Record::Control(c) => {
                    if let Some(text) = c.body.as_text() {
                        add("ping or pong payload".into(), text);
                    }
                }
                Record::Close(c) => add("close reason".into(), &c.reason),
                Record::End(e) => add("connection error".into(), e.error.as_deref().unwrap_or("")),
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
        let kinds = self
            .entries
            .iter()
            .map(|e| e.kind.len())
            .fold(11, usize::max);
        let mut out = format!(
            "{:width$}  {:kinds$}  {:>5}  {:>8}\n",
            "where", "kind", "count", "distinct"
        );
        for e in &self.entries {
            out += &format!(
                "{:width$}  {:kinds$}  {:>5}  {:>8}\n",
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

    /// Issue 15: the vendor formats gitleaks' default rules know.
    #[test]
    fn vendor_formats_are_found_with_their_kind() {
        let creds = crate::redact::tests::test_support::planted(11);
        let kinds = [
            ("github-pat", "github-token"),
            ("github-oauth", "github-token"),
            ("github-app", "github-token"),
            ("github-fine-grained", "github-token"),
            ("gitlab", "gitlab-token"),
            ("slack-bot", "slack-token"),
            ("slack-user", "slack-token"),
            ("stripe", "stripe-key"),
            ("stripe-restricted", "stripe-key"),
            ("openai", "openai-key"),
            ("google", "google-api-key"),
            ("npm", "npm-token"),
            ("sendgrid", "sendgrid-key"),
            ("aws-id", "aws-key"),
            ("jwt", "jwt"),
        ];
        for (name, kind) in kinds {
            let secret = &creds[name];
            assert_eq!(kind_of(secret), Some(kind), "{name}");
            let text = format!(r#"{{"a":"x {secret}","b":"{secret}"}} ({secret})"#);
            let found: Vec<&str> = find(&text).into_iter().map(|r| &text[r]).collect();
            assert_eq!(found, [secret.as_str(); 3], "{name}");
            assert!(is_suspicious(secret), "{name}");
        }
        // Only the password of a URL or a DSN; the AWS secret next to its key id.
        let pw = &creds["url-password"];
        let text =
            format!("db at mysql://app:{pw}@db.internal:3306/app, or Server=db;Password={pw};");
        let found: Vec<&str> = find(&text).into_iter().map(|r| &text[r]).collect();
        assert_eq!(found, [pw.as_str(); 2]);
        let (id, key) = (&creds["aws-id"], &creds["aws-secret"]);
        let text = format!("[default]\naws_access_key_id = {id}\naws_secret_access_key = {key}\n");
        let found: Vec<&str> = find(&text).into_iter().map(|r| &text[r]).collect();
        assert_eq!(found, [id.as_str(), key.as_str()]);
        assert!(
            find(key).is_empty(),
            "a lone 40-character string is no AWS secret"
        );
        assert!(!may_hold("nothing to see here") && may_hold("x ghp_"));
        // A placeholder is never found again.
        let r = crate::redact::Redactor::with_key(&Default::default(), [1; 32]);
        let placeholder = r.pseudonym("pw");
        assert!(find(&format!("postgres://app:{placeholder}@db/app")).is_empty());
        assert!(find(&format!("a password={placeholder} placeholder")).is_empty());
        assert!(is_password_field("db_password") && is_password_field("userPassword"));
        assert!(is_password_field("pass") && is_password_field("X-Passwd"));
        assert!(!is_password_field("password_policy") && !is_password_field("bypass"));
    }

    #[test]
    fn ordinary_protocol_text_is_not_a_secret() {
        let text = r#"{"type":"tool_executing","message_id":"m-12","payload":{"tool_name":"sql_query","bearer":"none"}}"#;
        assert!(find(text).is_empty());
        for text in [
            "see https://example.com:8443/docs?x=1 and ws://127.0.0.1:9/ws",
            "the task-list, a desk-top, npm_install, xoxo, sg.msg, the gh_cli, skills",
            "password reset: enter your password below",
        ] {
            assert!(find(text).is_empty(), "{text}");
        }
        assert!(!looks_random("tool_executing_result"));
        for sid in ["VUqkcBm8k08k6iiF", "daqC0G5_cCF0qd5G", "MpUUcHUaHheufTXu"] {
            assert!(looks_random(sid), "{sid}");
        }
        assert!(!looks_random("short1A"));
        assert!(looks_random("9f86d081884c7d659a2feaa0c55ad015"));
        assert!(looks_random("sk_live_51HxQ2eKjT8pZ3mW9vY"));
        assert!(is_secret_field("githubToken") && is_secret_field("SIGNING_KEY"));
        assert!(!is_secret_field("message_id"));
    }
}
