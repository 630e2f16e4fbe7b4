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
//! JSON is redacted string literal by string literal (the `json` module): keys are
//! compared once decoded (`"pass\u0077ord"`), every one of duplicate keys counts,
//! everything under a
//! secret key is redacted, and the rest of the text stays byte for byte as sent. The
//! password of an upstream URL's user info is always redacted ([`Redactor::url`]).
//!
//! Unless the secret scan is switched off (`--no-secret-scan`), values that look like
//! credentials ([`crate::redact::secrets`]) are pseudonymised the same way wherever they
//! are: a JWT in a chat message (also `\u`-escaped), a token in
//! `Sec-WebSocket-Protocol` or in any other header, a path segment or query value, an API
//! key in a field named `stripe_key`, `tokens[]` or `credentials.*`, a form-encoded body,
//! base64-wrapped JSON (unwrapped, redacted and wrapped again), ping and pong payloads,
//! close reasons. [`crate::recording::sink::redact_record`] says which parts of a record
//! go through which of these.
//!
//! Only recordings are redacted; the proxy forwards the real values to the upstream.

mod json;
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
    "passcode",
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
    /// Finds, in one pass over a message (ASCII case ignored), anything that could need
    /// redacting: a secret JSON key or query parameter name, a JSON escape (which can
    /// hide one), and when scanning a secret-like field name, a literal every credential
    /// shape contains, or the start of base64-wrapped JSON. A message with none of them
    /// is left alone without further work.
    prefilter: aho_corasick::AhoCorasick,
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
        let query = lower_set(DEFAULT_QUERY, &config.query);
        let mut words: Vec<String> = json_keys.iter().chain(&query).cloned().collect();
        words.extend(JSON_ESCAPES.iter().map(|w| w.to_string()));
        if config.secret_scan {
            words.extend(
                secrets::SECRET_FIELD_WORDS
                    .iter()
                    .chain(secrets::SHAPE_HINTS)
                    .chain(BASE64_JSON_STARTS)
                    .map(|w| w.to_string()),
            );
        }
        let prefilter = aho_corasick::AhoCorasick::builder()
            .ascii_case_insensitive(true)
            .build(&words)
            .expect("a few dozen short literals always build");
        Redactor {
            headers: lower_set(DEFAULT_HEADERS, &config.headers),
            query,
            json_keys,
            prefilter,
            scan: config.secret_scan,
            key,
        }
    }

    /// The placeholder that stands for `secret` throughout this recording:
    /// `redacted-1a2b3c4d5e6f`, or `redacted-jwt-1a2b3c4d5e6f` when the value's shape
    /// tells what it is (`jwt`, `aws-key`, `github-token`, ...). A placeholder (of either
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
    /// are replaced, and the whole value if the name is a password's, or sounds secret
    /// and the value looks random.
    fn scanned_value(&self, name: &str, value: &str) -> String {
        if value.is_empty() || placeholder::is_placeholder(value) {
            return value.to_string();
        }
        if secrets::is_password_field(name)
            || (secrets::is_secret_field(name) && secrets::looks_random(value))
        {
            return self.pseudonym(value);
        }
        self.scan_text(value).unwrap_or_else(|| value.to_string())
    }

    /// When scanning: `text` with every credential found by its shape replaced, and
    /// base64-wrapped JSON unwrapped, redacted and wrapped again. `None` when nothing
    /// changed (or the scan is off).
    pub(crate) fn scan_text(&self, text: &str) -> Option<String> {
        if !self.scan {
            return None;
        }
        use base64::Engine as _;
        let unwrapped = base64_json(text).and_then(|(inner, engine)| {
            let redacted = self.text(&inner)?;
            Some(engine.encode(redacted))
        });
        self.shapes(unwrapped.as_deref().unwrap_or(text))
            .or(unwrapped)
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

    /// Redacts a request target (`/ws?token=…`): secret query parameters, and when
    /// scanning, credentials in path segments and parameter values (a random segment
    /// after one named like a secret, `/token/…`, too).
    pub fn target(&self, target: &str) -> String {
        let (path, query) = match target.split_once('?') {
            Some((path, query)) => (path, Some(query)),
            None => (target, None),
        };
        let path = self.path(path);
        match query {
            Some(query) => format!("{path}?{}", self.form(query, &self.query)),
            None => path,
        }
    }

    /// Redacts the segments of a URL path that hold credentials.
    fn path(&self, path: &str) -> String {
        if !self.scan || !self.prefilter.is_match(path) && !path.contains('%') {
            return path.to_string();
        }
        let mut previous = "";
        let mut out = Vec::new();
        for segment in path.split('/') {
            let decoded = percent_decode_path(segment);
            let redacted = if secrets::is_secret_field(previous)
                && secrets::looks_random(&decoded)
                && !placeholder::is_placeholder(&decoded)
            {
                Some(self.pseudonym(&decoded))
            } else {
                self.scan_text(&decoded)
            };
            out.push(redacted.unwrap_or_else(|| segment.to_string()));
            previous = segment;
        }
        out.join("/")
    }

    /// Redacts `name=value` pairs joined by `&` (a query string, a form-encoded body):
    /// the values of the names in `named`, and when scanning, of names that sound
    /// secret and values found by their shape.
    fn form(&self, query: &str, named: &HashSet<String>) -> String {
        query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((name, value))
                    if named.contains(&percent_decode(name).to_ascii_lowercase()) =>
                {
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
            .join("&")
    }

    /// Redacts an upstream URL (`wss://user:pass@host/path?query`): the password of its
    /// user info always, a user name that is a credential (`https://TOKEN@host`) when
    /// scanning, and its path and query as [`Redactor::target`] does.
    pub fn url(&self, url: &str) -> String {
        let Some((scheme, rest)) = url.split_once("://") else {
            return self.target(url);
        };
        let cut = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(cut);
        let authority = match authority.rsplit_once('@') {
            Some((userinfo, host)) => {
                let user = |user: &str| match self.scanned_value("token", &percent_decode(user)) {
                    same if same == percent_decode(user) => user.to_string(),
                    redacted => redacted,
                };
                let userinfo = match userinfo.split_once(':') {
                    Some((name, password)) => {
                        format!(
                            "{}:{}",
                            user(name),
                            self.pseudonym(&percent_decode(password))
                        )
                    }
                    None => user(userinfo),
                };
                format!("{userinfo}@{host}")
            }
            None => authority.to_string(),
        };
        format!("{scheme}://{authority}{}", self.target(tail))
    }

    /// Redacts a text message: the values of secret JSON keys (every occurrence, also
    /// of keys written with escapes) and of secret parameters of a form-encoded body,
    /// and when scanning, credentials found by their shape in every (unescaped) string,
    /// random-looking values under secret-sounding keys, and base64-wrapped JSON.
    /// Returns `None` when nothing changed.
    ///
    /// The text is edited in place (only the secret string literals are replaced), so
    /// formatting, key order and number spelling stay exactly as sent.
    pub fn text(&self, text: &str) -> Option<String> {
        if !self.prefilter.is_match(text) {
            return None;
        }
        let json = text.trim_start().starts_with(['{', '[']);
        let redacted = if json {
            json::redact(self, text)
        } else if let Some(frame) = self.stomp_headers(text) {
            Some(frame)
        } else if looks_form_encoded(text) {
            let named: HashSet<String> = self.query.union(&self.json_keys).cloned().collect();
            Some(self.form(text, &named)).filter(|f| f != text)
        } else {
            None
        };
        let current = redacted.as_deref().unwrap_or(text);
        let more = if json {
            self.scan.then(|| self.shapes(current)).flatten()
        } else {
            self.scan_text(current)
        };
        more.or(redacted)
    }
}

impl Redactor {
    /// A STOMP frame (a command line, `name:value` header lines, a blank line, the body)
    /// with the values of secret-named headers (`passcode`, `Authorization`, the
    /// configured JSON keys and headers) redacted in place; `None` for anything else, or
    /// when nothing changed.
    fn stomp_headers(&self, text: &str) -> Option<String> {
        let (command, rest) = text.split_once('\n')?;
        let command = command.trim_end_matches('\r');
        if command.is_empty() || !command.bytes().all(|b| b.is_ascii_uppercase()) {
            return None;
        }
        let head = rest
            .find("\n\n")
            .or_else(|| rest.find("\r\n\r\n"))
            .unwrap_or(rest.len());
        let mut out = String::with_capacity(text.len() + 16);
        out.push_str(&text[..text.len() - rest.len()]);
        let mut changed = false;
        for line in rest[..head].split_inclusive('\n') {
            let header = line.trim_end_matches(['\r', '\n']);
            if let Some((name, value)) = header.split_once(':') {
                let lower = name.to_ascii_lowercase();
                let secret = self.json_keys.contains(&lower) || self.headers.contains(&lower);
                if secret && !value.is_empty() && !placeholder::is_placeholder(value) {
                    out.push_str(name);
                    out.push(':');
                    out.push_str(&self.pseudonym(value));
                    out.push_str(&line[header.len()..]);
                    changed = true;
                    continue;
                }
            }
            out.push_str(line);
        }
        out.push_str(&rest[head..]);
        changed.then_some(out)
    }
}

/// JSON escapes that can hide a key name or a credential from a search of the raw text.
const JSON_ESCAPES: &[&str] = &["\\u", "\\/"];

/// How base64 (standard or URL-safe) of a JSON object or array starts: `{"`, `{\n`,
/// `{\r`, `{}`, `[{`, `["`, `[]`.
const BASE64_JSON_STARTS: &[&str] = &[
    "eyI", "eyJ", "ewo", "ew0", "e30", "W3s", "WyI", "WyJ", "W10",
];

/// `text` decoded, when it is base64 (standard or URL-safe, padded or not) of a JSON
/// object or array; with the engine that encodes it back the same way.
pub(crate) fn base64_json(text: &str) -> Option<(String, base64::engine::GeneralPurpose)> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    use base64::Engine as _;
    if text.len() < 8 || !BASE64_JSON_STARTS.iter().any(|s| text.starts_with(s)) {
        return None;
    }
    let bare = text.trim_end_matches('=');
    let mut url_safe = false;
    for b in bare.bytes() {
        match b {
            b'-' | b'_' => url_safe = true,
            b'+' | b'/' => {}
            b if b.is_ascii_alphanumeric() => {}
            _ => return None,
        }
    }
    let padded = bare.len() != text.len();
    let bytes = if url_safe {
        URL_SAFE_NO_PAD
    } else {
        STANDARD_NO_PAD
    }
    .decode(bare)
    .ok()?;
    let inner = String::from_utf8(bytes).ok()?;
    if !inner.trim_start().starts_with(['{', '[']) {
        return None;
    }
    let engine = match (url_safe, padded) {
        (false, true) => STANDARD,
        (false, false) => STANDARD_NO_PAD,
        (true, true) => URL_SAFE,
        (true, false) => URL_SAFE_NO_PAD,
    };
    Some((inner, engine))
}

/// Whether a text message is a form-encoded body (`user=a&pass=b`): one line of
/// `name=value` pairs joined by `&`, names of word characters.
fn looks_form_encoded(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 64 << 10
        && text.split('&').all(|pair| {
            pair.split_once('=').is_some_and(|(name, value)| {
                !name.is_empty()
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"_.-[]%".contains(&b))
                    && !value.bytes().any(|b| b.is_ascii_whitespace())
            })
        })
}

/// Percent-decodes a path segment (`+` stays a plus).
fn percent_decode_path(s: &str) -> String {
    if !s.contains('%') {
        return s.to_string();
    }
    percent_decode(&s.replace('+', "%2B"))
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
    fn a_stomp_frames_secret_headers_are_redacted_in_place() {
        let r = redactor();
        let connect = "CONNECT\naccept-version:1.2\nlogin:guest\npasscode:guest\nhost:/\n\n\0";
        let out = r.text(connect).unwrap();
        let p = r.pseudonym("guest");
        assert_eq!(
            out,
            format!("CONNECT\naccept-version:1.2\nlogin:guest\npasscode:{p}\nhost:/\n\n\0")
        );
        // A body that merely mentions a passcode is not a header.
        let send = "SEND\ndestination:/queue/a\n\npasscode:guest\0";
        assert_eq!(r.text(send), None);
        assert_eq!(r.text("hello passcode:guest"), None);
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

    /// Issue 15: names written with escapes, the first of duplicate keys and a JWT
    /// whose characters are `\u`-escaped slipped through.
    #[test]
    fn escaped_keys_duplicate_keys_and_escaped_credentials_are_redacted() {
        let jwt = test_support::jwt(1);
        let escaped_jwt: String = jwt
            .chars()
            .map(|c| format!("\\u{:04x}", c as u32))
            .collect();
        for scan in [true, false] {
            let r = Redactor::with_key(
                &RedactConfig {
                    secret_scan: scan,
                    ..RedactConfig::default()
                },
                [7; 32],
            );
            let text = r#"{"pass\u0077ord":"esc-s3cret-1","password":"dup-s3cret-2","n":1,"password":"dup-s3cret-3","api_key":["arr-s3cret-4",{"deep":"deep-s3cret-5"}],"x":{"PASSWORD":"case-s3cret-6"}}"#;
            let out = r.text(text).unwrap();
            for secret in 1..=6 {
                assert!(
                    !out.contains(&format!("s3cret-{secret}")),
                    "scan {scan}: {out}"
                );
            }
            assert!(
                out.starts_with(r#"{"pass\u0077ord":""#),
                "keys stay as written: {out}"
            );
            assert!(out.contains(r#","n":1,"#), "{out}");
            assert_eq!(r.text(&out), None, "redacting twice changes nothing");
        }
        let r = redactor();
        let text = format!(r#"{{"type":"chat","text":"token: {escaped_jwt}"}}"#);
        let out = r.text(&text).unwrap();
        assert!(!out.contains(&escaped_jwt), "{out}");
        let value: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(value["text"], format!("token: {}", r.pseudonym(&jwt)));
        // A JWT with escaped slashes, as PHP writes them, and one used as a key.
        let text = format!(r#"{{"a":"x\/{jwt}","{jwt}":1}}"#);
        let out = r.text(&text).unwrap();
        assert!(!out.contains(&jwt), "{out}");
    }

    /// Issue 15: where credentials hid from the scan (path segments, an upstream's
    /// user info, form bodies, base64-wrapped JSON, `tokens[]`, `credentials.*`, `pass`).
    #[test]
    fn credentials_are_found_in_every_place_text_is_scanned() {
        let r = redactor();
        let creds = test_support::planted(3);
        let gh = &creds["github-pat"];
        let password = &creds["url-password"];
        // A path segment, and a random one after a segment named like a secret.
        let target = r.target(&format!("/ws/{gh}/room?cb=x&sig=1"));
        assert_eq!(target, format!("/ws/{}/room?cb=x&sig=1", r.pseudonym(gh)));
        let random = &creds["random"];
        let target = r.target(&format!("/ws/token/{random}"));
        assert_eq!(target, format!("/ws/token/{}", r.pseudonym(random)));
        // The upstream URL: password always, a token as user name, query parameters.
        let url = r.url(&format!(
            "wss://app:{password}@db.internal:5432/x?token=t0k"
        ));
        assert!(url.starts_with(&format!("wss://app:{}@", r.pseudonym(password))));
        assert!(url.ends_with(&format!("@db.internal:5432/x?token={}", r.pseudonym("t0k"))));
        let url = r.url(&format!("https://{gh}@github.com/o/r"));
        assert_eq!(url, format!("https://{}@github.com/o/r", r.pseudonym(gh)));
        assert_eq!(r.url("ws://127.0.0.1:9/ws?a=1"), "ws://127.0.0.1:9/ws?a=1");
        // A form-encoded body.
        let form = format!("user=alice&pass=hunter2-form&client_secret=cs-1&note={gh}");
        let out = r.text(&form).unwrap();
        assert_eq!(
            out,
            format!(
                "user=alice&pass={}&client_secret={}&note={}",
                r.pseudonym("hunter2-form"),
                r.pseudonym("cs-1"),
                r.pseudonym(gh)
            )
        );
        // Base64-wrapped JSON: a whole message, a string in JSON, a query parameter.
        use base64::Engine as _;
        let inner = r#"{"password":"b64-s3cret","ok":true}"#;
        let wrapped = base64::engine::general_purpose::STANDARD.encode(inner);
        let out = r.text(&wrapped).unwrap();
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(&out)
            .unwrap();
        let decoded = String::from_utf8(decoded).unwrap();
        assert_eq!(
            decoded,
            format!(
                r#"{{"password":"{}","ok":true}}"#,
                r.pseudonym("b64-s3cret")
            )
        );
        let out = r
            .text(&format!(r#"{{"type":"x","data":"{wrapped}"}}"#))
            .unwrap();
        assert!(!out.contains(&wrapped), "{out}");
        let url_safe = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(inner);
        let target = r.target(&format!("/graphql?header={url_safe}&payload=e30"));
        assert!(
            !target.contains(&url_safe) && target.ends_with("&payload=e30"),
            "{target}"
        );
        // Values under `tokens[]`, `credentials.*`, `pass`, `passwd`; other text stays.
        let text = format!(
            r#"{{"tokens":["{random}","short"],"credentials":{{"client":"{random}2","user":"alice"}},"pass":"hunter2","passwd":"hunter3","password_policy":"strict","bypass":"yes","dsn":"Server=db;User Id=sa;Password=Pa55w0rd!;","db":"postgres://app:{password}@db/app"}}"#
        );
        let out = r.text(&text).unwrap();
        for gone in [random.as_str(), "hunter2", "hunter3", "Pa55w0rd!", password] {
            assert!(!out.contains(gone), "{gone} in {out}");
        }
        for kept in [
            r#""short""#,
            r#""alice""#,
            r#""strict""#,
            r#""yes""#,
            &format!("Password={};", r.pseudonym("Pa55w0rd!")),
            &format!("postgres://app:{}@db/app", r.pseudonym(password)),
        ] {
            assert!(out.contains(kept), "{kept} lost in {out}");
        }
        // Any header, whatever its name; close reasons and pings go through `text`.
        let mut headers = vec![
            ("X-Upstream-Hint".to_string(), format!("use {gh}")),
            (
                "X-Db".to_string(),
                format!("postgres://app:{password}@db/app"),
            ),
            ("X-Password".to_string(), "hunter4".to_string()),
        ];
        r.headers(&mut headers);
        let headers = format!("{headers:?}");
        assert!(!headers.contains(gh.as_str()) && !headers.contains(password.as_str()));
        assert!(!headers.contains("hunter4"), "{headers}");
        assert_eq!(
            r.text(&format!("bye {gh}")),
            Some(format!("bye {}", r.pseudonym(gh)))
        );
    }

    /// Every planted credential format is replaced, wherever it sits in a message.
    #[test]
    fn every_vendor_format_is_replaced() {
        let r = redactor();
        for (name, secret) in test_support::planted(5) {
            if matches!(
                name,
                "random" | "url-password" | "dsn-password" | "aws-secret"
            ) {
                continue;
            }
            for text in [
                format!(r#"{{"type":"chat","text":"here: {secret} ok"}}"#),
                format!("plain text {secret}"),
                format!(r#"{{"note":"{secret}"}}"#),
            ] {
                let out = r
                    .text(&text)
                    .unwrap_or_else(|| panic!("{name} missed in {text}"));
                assert!(!out.contains(&secret), "{name}: {out}");
                assert!(out.contains(&r.pseudonym(&secret)), "{name}: {out}");
            }
        }
    }

    /// The demo's traffic holds no secret: the scan leaves every message as it was.
    #[test]
    fn ordinary_traffic_is_left_alone() {
        let r = redactor();
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/recordings/checkout.jsonl");
        let rec = crate::recording::Recording::read(std::path::Path::new(path)).unwrap();
        let mut texts = 0;
        for record in &rec.records {
            if let crate::recording::Record::Message(m) = record {
                if let Some(text) = m.body.as_text() {
                    assert_eq!(r.text(text), None, "{text}");
                    texts += 1;
                }
            }
        }
        assert!(texts >= 30, "{texts}");
        for plain in [
            r#"{"type":"tool_executing","payload":{"tool_name":"sql_query","key":"enter"}}"#,
            "a=1&b=two",
            "see https://example.com/docs?x=1 for details",
            "eyJustAWord and W3schools",
        ] {
            assert_eq!(r.text(plain), None, "{plain}");
        }
    }

    #[test]
    fn differently_escaped_secrets_are_still_removed() {
        let r = redactor();
        let out = r.text(r#"{"session":"a\u0062c"}"#).unwrap();
        assert!(!out.contains("abc") && !out.contains("u0062"), "{out}");
        assert_eq!(r.text(r#"{"type":"chat"}"#), None);
    }

    /// Fake credentials for tests, built at run time so that no scanner flags the
    /// source: pseudo-random characters in each vendor's format. None is real.
    pub(crate) mod test_support {
        use std::collections::BTreeMap;

        const ALNUM: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

        /// `len` characters of `alphabet`, pseudo-random from `seed`.
        pub fn chars(alphabet: &str, len: usize, seed: &mut u64) -> String {
            let a = alphabet.as_bytes();
            (0..len)
                .map(|_| {
                    *seed ^= *seed << 13;
                    *seed ^= *seed >> 7;
                    *seed ^= *seed << 17;
                    a[(*seed % a.len() as u64) as usize] as char
                })
                .collect()
        }

        /// A JWT (HS256) for user `n`, with a made-up signature.
        pub fn jwt(n: u64) -> String {
            use base64::Engine as _;
            let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
            let mut seed = 0x9e37_79b9_7f4a_7c15 ^ n;
            format!(
                "{}.{}.{}",
                b64.encode(r#"{"alg":"HS256","typ":"JWT"}"#),
                b64.encode(format!(r#"{{"sub":"user-{n}","exp":1900000000}}"#)),
                chars(&format!("{ALNUM}-_"), 43, &mut seed)
            )
        }

        /// One credential of each format, by name.
        pub fn planted(n: u64) -> BTreeMap<&'static str, String> {
            let mut seed = 0x2545_f491_4f6c_dd1d ^ n.wrapping_mul(0x9e37_79b9);
            let mut c = |alphabet: &str, len: usize| chars(alphabet, len, &mut seed);
            let digits = "0123456789";
            let mut out = BTreeMap::new();
            out.insert("github-pat", format!("ghp_{}", c(ALNUM, 36)));
            out.insert("github-oauth", format!("gho_{}", c(ALNUM, 36)));
            out.insert("github-app", format!("ghs_{}", c(ALNUM, 36)));
            out.insert(
                "github-fine-grained",
                format!("github_pat_{}_{}", c(ALNUM, 22), c(ALNUM, 59)),
            );
            out.insert("gitlab", format!("glpat-{}", c(ALNUM, 20)));
            out.insert(
                "slack-bot",
                format!("xoxb-{}-{}-{}", c(digits, 11), c(digits, 12), c(ALNUM, 24)),
            );
            out.insert(
                "slack-user",
                format!(
                    "xoxp-{}-{}-{}-{}",
                    c(digits, 11),
                    c(digits, 11),
                    c(digits, 12),
                    c("0123456789abcdef", 32)
                ),
            );
            out.insert("stripe", format!("sk_live_{}", c(ALNUM, 24)));
            out.insert("stripe-restricted", format!("rk_live_{}", c(ALNUM, 24)));
            out.insert(
                "openai",
                format!("sk-proj-{}T3BlbkFJ{}", c(ALNUM, 58), c(ALNUM, 58)),
            );
            out.insert("google", format!("AIza{}", c(ALNUM, 35)));
            out.insert(
                "npm",
                format!("npm_{}", c("abcdefghijklmnopqrstuvwxyz0123456789", 36)),
            );
            out.insert("sendgrid", format!("SG.{}.{}", c(ALNUM, 22), c(ALNUM, 43)));
            out.insert(
                "aws-id",
                format!("AKIA{}", c("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16)),
            );
            out.insert("aws-secret", c(&format!("{ALNUM}/+"), 40));
            out.insert("jwt", jwt(n));
            out.insert("url-password", c(ALNUM, 18));
            out.insert("dsn-password", c(ALNUM, 14));
            out.insert("random", c(ALNUM, 32));
            out
        }
    }
}
