//! Keeping secrets out of recordings.
//!
//! Before anything reaches disk, the values of secret headers, secret query parameters
//! and secret JSON keys (at any depth) are replaced by a stable pseudonym: a keyed
//! BLAKE3 hash of the value, with a key drawn at random for each recording and never
//! written anywhere. The same secret therefore becomes the same placeholder on every
//! hop of one recording (correlation survives), but cannot be recovered or matched
//! across recordings. Placeholders (`redacted-1a2b3c4d5e6f`, see [`placeholder`]) are
//! URL-safe, so a recording with a redacted `?token=` can be replayed; a placeholder
//! is never redacted again.
//!
//! Unless the secret scan is switched off (`--no-secret-scan`), values that look like
//! credentials ([`crate::redact::secrets`]) are pseudonymised the same way wherever they are:
//! a JWT in a chat message, a token in `Sec-WebSocket-Protocol`, an API key in a field
//! named `stripe_key`.
//!
//! Only recordings are redacted; the proxy forwards the real values to the upstream.

pub mod placeholder;
pub mod secrets;

use std::collections::HashSet;

/// Headers redacted by default.
pub const DEFAULT_HEADERS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
];
/// Query parameters redacted by default.
pub const DEFAULT_QUERY: &[&str] = &["token", "access_token", "api_key", "password"];
/// JSON keys whose string values are redacted by default.
pub const DEFAULT_JSON_KEYS: &[&str] = &[
    "password",
    "access_token",
    "refresh_token",
    "api_key",
    "client_secret",
];

/// What to redact, on top of the defaults.
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedactConfig {
    #[serde(default)]
    pub headers: Vec<String>,
    #[serde(default)]
    pub query: Vec<String>,
    #[serde(default)]
    pub json_keys: Vec<String>,
    /// Look for credentials by their shape everywhere (JWTs, bearer tokens, AWS keys,
    /// private keys, random values in secret-named fields). On unless switched off.
    #[serde(default = "scan_by_default")]
    pub secret_scan: bool,
}

fn scan_by_default() -> bool {
    true
}

impl Default for RedactConfig {
    fn default() -> Self {
        RedactConfig {
            headers: Vec::new(),
            query: Vec::new(),
            json_keys: Vec::new(),
            secret_scan: true,
        }
    }
}

impl RedactConfig {
    pub fn merge(&mut self, other: RedactConfig) {
        self.headers.extend(other.headers);
        self.query.extend(other.query);
        self.json_keys.extend(other.json_keys);
        self.secret_scan &= other.secret_scan;
    }
}

/// Applies a [`RedactConfig`] with one pseudonym key.
#[derive(Clone)]
pub struct Redactor {
    headers: HashSet<String>,
    query: HashSet<String>,
    json_keys: HashSet<String>,
    /// Finds any secret JSON key (or, when scanning, any secret-like field name) in one
    /// pass over a message (case-insensitive).
    key_finder: aho_corasick::AhoCorasick,
    scan: bool,
    key: [u8; 32],
}

fn lower_set(defaults: &[&str], extra: &[String]) -> HashSet<String> {
    defaults
        .iter()
        .map(|s| s.to_string())
        .chain(extra.iter().cloned())
        .map(|s| s.to_ascii_lowercase())
        .collect()
}

impl Redactor {
    /// A redactor with a fresh random key.
    pub fn new(config: &RedactConfig) -> Self {
        let mut key = [0u8; 32];
        getrandom::fill(&mut key).expect("the operating system's random source is unavailable");
        Self::with_key(config, key)
    }

    /// A redactor with a given key (deterministic placeholders, for tests).
    pub fn with_key(config: &RedactConfig, key: [u8; 32]) -> Self {
        let json_keys = lower_set(DEFAULT_JSON_KEYS, &config.json_keys);
        let field_words = secrets::SECRET_FIELD_WORDS.iter().map(|w| w.to_string());
        let mut finder_words: Vec<String> = json_keys.iter().cloned().collect();
        if config.secret_scan {
            finder_words.extend(field_words);
        }
        let key_finder = aho_corasick::AhoCorasick::builder()
            .ascii_case_insensitive(true)
            .build(&finder_words)
            .expect("a handful of short keys always builds");
        Redactor {
            headers: lower_set(DEFAULT_HEADERS, &config.headers),
            query: lower_set(DEFAULT_QUERY, &config.query),
            json_keys,
            key_finder,
            scan: config.secret_scan,
            key,
        }
    }

    /// The placeholder that stands for `secret` throughout this recording:
    /// `redacted-1a2b3c4d5e6f`, or `redacted-jwt-1a2b3c4d5e6f` when the value's shape
    /// tells what it is (`jwt`, `aws-key`, `private-key`). A placeholder (of either
    /// form, see [`placeholder`]) stays as it is.
    pub fn pseudonym(&self, secret: &str) -> String {
        if placeholder::is_placeholder(secret) {
            return secret.to_string();
        }
        let hash = blake3::keyed_hash(&self.key, secret.as_bytes());
        placeholder::make(secrets::kind_of(secret), &hash.to_hex()[..12])
    }

    /// Redacts header values in place.
    pub fn headers(&self, headers: &mut [(String, String)]) {
        for (name, value) in headers.iter_mut() {
            let lower = name.to_ascii_lowercase();
            if self.headers.contains(&lower) {
                *value = match lower.as_str() {
                    "cookie" => self.cookie_pairs(value, "; "),
                    "set-cookie" => self.set_cookie(value),
                    _ => self.credentials(value),
                };
            } else if self.scan {
                *value = match lower.as_str() {
                    "sec-websocket-protocol" => self.subprotocols(value),
                    // Handshake nonces: random by design, not secret.
                    "sec-websocket-key" | "sec-websocket-accept" => continue,
                    _ => self.scanned_value(&lower, value),
                };
            }
        }
    }

    /// Some platforms carry a bearer token as a WebSocket subprotocol
    /// (`Sec-WebSocket-Protocol: access_token, eyJ…`, or Kubernetes'
    /// `base64url.bearer.authorization.k8s.io.<token>`); protocol names stay.
    fn subprotocols(&self, value: &str) -> String {
        const K8S: &str = "base64url.bearer.authorization.k8s.io.";
        value
            .split(',')
            .map(str::trim)
            .map(|p| match p.strip_prefix(K8S) {
                Some(token) if !token.is_empty() => format!("{K8S}{}", self.pseudonym(token)),
                _ => self.scanned_value("token", p),
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// A value under a name that is not known to be secret: credentials found by shape
    /// are replaced, and the whole value if the name sounds secret and it looks random.
    fn scanned_value(&self, name: &str, value: &str) -> String {
        if secrets::is_secret_field(name) && secrets::looks_random(value) {
            return self.pseudonym(value);
        }
        self.shapes(value).unwrap_or_else(|| value.to_string())
    }

    /// Replaces every credential found by its shape. `None` when there was none.
    fn shapes(&self, text: &str) -> Option<String> {
        let found = secrets::find(text);
        if found.is_empty() {
            return None;
        }
        let mut out = String::with_capacity(text.len());
        let mut at = 0;
        for range in found {
            out.push_str(&text[at..range.start]);
            out.push_str(&self.pseudonym(&text[range.clone()]));
            at = range.end;
        }
        out.push_str(&text[at..]);
        Some(out)
    }

    /// `Bearer abc` → `Bearer redacted-…`: the scheme stays readable and the token
    /// gets the same placeholder it gets in a query string or a JSON body.
    fn credentials(&self, value: &str) -> String {
        match value.split_once(' ') {
            Some((scheme, token)) if !scheme.is_empty() && !token.trim().is_empty() => {
                format!("{scheme} {}", self.pseudonym(token.trim()))
            }
            _ => self.pseudonym(value),
        }
    }

    fn cookie_pairs(&self, value: &str, sep: &str) -> String {
        value
            .split(';')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(|pair| match pair.split_once('=') {
                Some((name, v)) => format!("{name}={}", self.pseudonym(v)),
                None => self.pseudonym(pair),
            })
            .collect::<Vec<_>>()
            .join(sep)
    }

    /// Only the cookie's value is secret; its attributes (`Path`, `HttpOnly`) stay.
    fn set_cookie(&self, value: &str) -> String {
        match value.split_once(';') {
            Some((pair, attrs)) => format!("{};{attrs}", self.cookie_pairs(pair, "; ")),
            None => self.cookie_pairs(value, "; "),
        }
    }

    /// Redacts secret query parameters of a request target (`/ws?token=…`).
    pub fn target(&self, target: &str) -> String {
        let Some((path, query)) = target.split_once('?') else {
            return target.to_string();
        };
        let query = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((name, value)) if self.is_secret_param(name) => {
                    let decoded = percent_decode(value);
                    format!("{name}={}", self.pseudonym(&decoded))
                }
                Some((name, value)) if self.scan => {
                    let decoded = percent_decode(value);
                    let scanned = self.scanned_value(&percent_decode(name), &decoded);
                    if scanned == decoded {
                        pair.to_string()
                    } else {
                        format!("{name}={scanned}")
                    }
                }
                _ => pair.to_string(),
            })
            .collect::<Vec<_>>()
            .join("&");
        format!("{path}?{query}")
    }

    fn is_secret_param(&self, name: &str) -> bool {
        self.query
            .contains(&percent_decode(name).to_ascii_lowercase())
    }

    /// Redacts a text message: secret JSON keys, and when scanning, credentials found
    /// by their shape. Returns `None` when nothing changed.
    ///
    /// The text is edited in place (only the secret string literals are replaced), so
    /// formatting, key order and number spelling stay exactly as sent.
    pub fn text(&self, text: &str) -> Option<String> {
        let keyed = self.json_text(text);
        if !self.scan {
            return keyed;
        }
        self.shapes(keyed.as_deref().unwrap_or(text)).or(keyed)
    }

    /// Redacts the values of secret JSON keys (and, when scanning, random-looking
    /// values of secret-sounding keys).
    fn json_text(&self, text: &str) -> Option<String> {
        let json = text.trim_start().starts_with(['{', '[']);
        if !json || !self.key_finder.is_match(text) {
            return None;
        }
        let value: serde_json::Value = serde_json::from_str(text).ok()?;
        let mut secrets = Vec::new();
        self.collect_secrets(&value, &mut secrets);
        if secrets.is_empty() {
            return None;
        }
        let mut out = text.to_string();
        for secret in &secrets {
            let literal = serde_json::Value::String(secret.clone()).to_string();
            let placeholder = serde_json::Value::String(self.pseudonym(secret)).to_string();
            out = out.replace(&literal, &placeholder);
        }
        if !self.fully_redacted(&out) {
            // The sender escaped a secret differently than serde_json would: fall back
            // to re-serialising the whole document, which is always safe.
            let mut value = value;
            self.replace_secrets(&mut value);
            out = value.to_string();
        }
        Some(out)
    }

    /// Whether every secret-keyed string in `text` is a placeholder.
    fn fully_redacted(&self, text: &str) -> bool {
        let Ok(value) = serde_json::from_str::<serde_json::Value>(text) else {
            return false;
        };
        let mut left = Vec::new();
        self.collect_secrets(&value, &mut left);
        left.is_empty()
    }

    fn collect_secrets(&self, value: &serde_json::Value, out: &mut Vec<String>) {
        match value {
            serde_json::Value::Object(map) => {
                for (k, v) in map {
                    match v {
                        serde_json::Value::String(s) if self.is_secret(k, s) => out.push(s.clone()),
                        other => self.collect_secrets(other, out),
                    }
                }
            }
            serde_json::Value::Array(items) => {
                items.iter().for_each(|v| self.collect_secrets(v, out))
            }
            _ => {}
        }
    }

    fn replace_secrets(&self, value: &mut serde_json::Value) {
        match value {
            serde_json::Value::Object(map) => {
                for (k, v) in map.iter_mut() {
                    match v {
                        serde_json::Value::String(s) if self.is_secret(k, s) => {
                            *s = self.pseudonym(s)
                        }
                        other => self.replace_secrets(other),
                    }
                }
            }
            serde_json::Value::Array(items) => {
                items.iter_mut().for_each(|v| self.replace_secrets(v))
            }
            _ => {}
        }
    }

    fn is_secret(&self, key: &str, value: &str) -> bool {
        if placeholder::is_placeholder(value) {
            return false;
        }
        self.json_keys.contains(&key.to_ascii_lowercase())
            || (self.scan && secrets::is_secret_field(key) && secrets::looks_random(value))
    }
}

fn percent_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={s}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| s.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn redactor() -> Redactor {
        Redactor::with_key(
            &RedactConfig {
                json_keys: vec!["session".into()],
                ..RedactConfig::default()
            },
            [7; 32],
        )
    }

    #[test]
    fn the_same_secret_gets_the_same_placeholder_everywhere() {
        let r = redactor();
        let mut headers = vec![
            ("Authorization".to_string(), "Bearer s3cr3t".to_string()),
            ("Cookie".to_string(), "sid=abc; theme=dark".to_string()),
            ("User-Agent".to_string(), "test".to_string()),
        ];
        r.headers(&mut headers);
        let target = r.target("/ws?user_id=x&token=s3cr3t");
        let body = r
            .text(r#"{"type":"auth","payload":{"password":"s3cr3t","n":1.50}}"#)
            .unwrap();
        let p = r.pseudonym("s3cr3t");
        assert_eq!(headers[0].1, format!("Bearer {p}"));
        assert_eq!(
            headers[1].1,
            format!("sid={}; theme={}", r.pseudonym("abc"), r.pseudonym("dark"))
        );
        assert_eq!(headers[2].1, "test");
        assert_eq!(target, format!("/ws?user_id=x&token={p}"));
        assert_eq!(
            body,
            format!(r#"{{"type":"auth","payload":{{"password":"{p}","n":1.50}}}}"#)
        );
        assert!(!format!("{headers:?}{target}{body}").contains("s3cr3t"));
    }

    #[test]
    fn differently_escaped_secrets_are_still_removed() {
        let r = redactor();
        let out = r.text(r#"{"session":"a\u0062c"}"#).unwrap();
        assert!(!out.contains("abc") && !out.contains("u0062"), "{out}");
        assert_eq!(r.text(r#"{"type":"chat"}"#), None);
    }
}
