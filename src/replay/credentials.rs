//! Live credentials for a replay, in place of what was redacted when recorded.
//!
//! A recording holds placeholders (`redacted-1a2b3c4d5e6f`) where the recorded
//! session sent secrets: a `?token=` query parameter, an `Authorization` header. A
//! build that checks them refuses a replay that sends the placeholders, so the user
//! names a live value per redacted name (`--credential token=env:TEST_TOKEN`,
//! `[replay.credentials]` in `wsreplay.toml`, [`crate::Gate::credential`]).
//!
//! - [`live_request`]: the request target and headers a replayed connection sends, a
//!   recorded placeholder replaced by the live value of its query parameter or header
//!   (query names exact, header names case-insensitive), and where a placeholder is
//!   sent because no credential was given ([`Redacted`], reported as a problem).
//! - [`Scrubber`]: live values never reach the replay's capture. The capture's redactor
//!   already redacts the credentials' names (on top of the defaults); the scrubber also
//!   replaces a live value wherever else it turns up (a build echoing a token in a
//!   message) by the placeholder the redactor gives it.
//!
//! Live values are never printed: [`Credentials`]' `Debug` shows names only, and
//! reports name the redacted place, not what was sent.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use crate::recording::{Body, Record};
use crate::redact::placeholder;
use crate::redact::Redactor;

/// Where a live value is read from: `env:VAR` or `file:PATH`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(try_from = "String")]
pub enum CredentialSource {
    /// An environment variable.
    Env(String),
    /// A file's contents, without one trailing line break.
    File(PathBuf),
}

impl FromStr for CredentialSource {
    type Err = CredentialError;

    fn from_str(s: &str) -> Result<CredentialSource, CredentialError> {
        match s.split_once(':') {
            Some(("env", var)) if !var.is_empty() => Ok(CredentialSource::Env(var.to_string())),
            Some(("file", path)) if !path.is_empty() => {
                Ok(CredentialSource::File(PathBuf::from(path)))
            }
            _ => Err(CredentialError::Source),
        }
    }
}

impl TryFrom<String> for CredentialSource {
    type Error = CredentialError;

    fn try_from(s: String) -> Result<CredentialSource, CredentialError> {
        s.parse()
    }
}

impl fmt::Display for CredentialSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CredentialSource::Env(var) => write!(f, "env:{var}"),
            CredentialSource::File(path) => write!(f, "file:{}", path.display()),
        }
    }
}

impl CredentialSource {
    /// Reads the live value for credential `name`.
    pub fn read(&self, name: &str) -> Result<String, CredentialError> {
        let value = match self {
            CredentialSource::Env(var) => match std::env::var(var) {
                Ok(v) => v,
                Err(std::env::VarError::NotPresent) => {
                    return Err(CredentialError::EnvMissing {
                        name: name.to_string(),
                        var: var.clone(),
                    })
                }
                Err(std::env::VarError::NotUnicode(_)) => {
                    return Err(CredentialError::Invalid {
                        name: name.to_string(),
                        from: format!("read from {self}"),
                        why: "is not valid UTF-8",
                    })
                }
            },
            CredentialSource::File(path) => {
                let text =
                    std::fs::read_to_string(path).map_err(|error| CredentialError::File {
                        name: name.to_string(),
                        path: path.clone(),
                        error,
                    })?;
                let text = text.strip_suffix('\n').unwrap_or(&text);
                text.strip_suffix('\r').unwrap_or(text).to_string()
            }
        };
        check_value(name, &value, &format!("read from {self}"))?;
        Ok(value)
    }
}

/// A `--credential NAME=SOURCE`: send the value read from SOURCE wherever the recording
/// has a placeholder in query parameter NAME or header NAME.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CredentialSpec {
    /// The redacted query parameter or header.
    pub name: String,
    pub source: CredentialSource,
}

impl FromStr for CredentialSpec {
    type Err = CredentialError;

    fn from_str(spec: &str) -> Result<CredentialSpec, CredentialError> {
        let (name, source) = spec.split_once('=').ok_or(CredentialError::Spec)?;
        if name.is_empty() {
            return Err(CredentialError::Spec);
        }
        let source = source.parse().map_err(|_| CredentialError::SourceOf {
            name: name.to_string(),
        })?;
        Ok(CredentialSpec {
            name: name.to_string(),
            source,
        })
    }
}

impl fmt::Display for CredentialSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.name, self.source)
    }
}

/// Why a credential cannot be used. No message repeats what was given as a source: it
/// may be a live value given by mistake.
#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    #[error("--credential needs NAME=SOURCE, e.g. token=env:TEST_TOKEN (SOURCE is env:VAR or file:PATH)")]
    Spec,
    #[error("expected env:VAR (read from the environment) or file:PATH (read from a file); a live value itself is not accepted, so that it stays out of shell history, process lists and files under version control")]
    Source,
    #[error("credential {name}: the source must be env:VAR (read from the environment) or file:PATH (read from a file); a live value itself is not accepted, so that it stays out of shell history, process lists and files under version control")]
    SourceOf { name: String },
    #[error("credential {name}: the environment variable {var} is not set; set it to the live value (export {var}=...) or name another source")]
    EnvMissing { name: String, var: String },
    #[error("credential {name}: cannot read {}: {error}", path.display())]
    File {
        name: String,
        path: PathBuf,
        #[source]
        error: std::io::Error,
    },
    #[error("credential {name}: the value {from} {why}; a query parameter or header value must be one line of text")]
    Invalid {
        name: String,
        from: String,
        why: &'static str,
    },
    #[error("a credential needs a name: the redacted query parameter or header it stands in for")]
    NoName,
}

fn check_value(name: &str, value: &str, from: &str) -> Result<(), CredentialError> {
    let why = if value.is_empty() {
        "is empty"
    } else if value.chars().any(char::is_control) {
        "holds a line break or another control character"
    } else {
        return Ok(());
    };
    Err(CredentialError::Invalid {
        name: name.to_string(),
        from: from.to_string(),
        why,
    })
}

/// Live values by redacted name. `Debug` lists the names, never a value.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Credentials {
    entries: Vec<(String, String)>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("names", &self.names().collect::<Vec<_>>())
            .finish()
    }
}

impl Credentials {
    /// Sends `value` in place of the placeholders of query parameter or header `name`;
    /// replaces an earlier value for the same name.
    pub fn insert(&mut self, name: &str, value: impl Into<String>) -> Result<(), CredentialError> {
        let value = value.into();
        if name.is_empty() {
            return Err(CredentialError::NoName);
        }
        check_value(name, &value, "given")?;
        self.entries.retain(|(n, _)| n != name);
        self.entries.push((name.to_string(), value));
        Ok(())
    }

    /// Reads every `spec`'s live value; later ones replace earlier ones of the same name.
    pub fn read<'a>(
        &mut self,
        specs: impl IntoIterator<Item = &'a CredentialSpec>,
    ) -> Result<(), CredentialError> {
        for spec in specs {
            let value = spec.source.read(&spec.name)?;
            self.insert(&spec.name, value)?;
        }
        Ok(())
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The names given, in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|(n, _)| n.as_str())
    }

    fn query(&self, name: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A place in a recorded request that holds a placeholder.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Redacted {
    /// A query parameter (its name as recorded).
    Query(String),
    /// A request header (its name as recorded).
    Header(String),
    /// A field of a message the client sends: a JSON key, a STOMP frame header, a
    /// `name=value` pair (its name as recorded).
    Field(String),
}

impl Redacted {
    /// The name a credential for this place has.
    pub fn name(&self) -> &str {
        match self {
            Redacted::Query(n) | Redacted::Header(n) | Redacted::Field(n) => n,
        }
    }
}

impl fmt::Display for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Redacted::Query(n) => write!(f, "query parameter {n}"),
            Redacted::Header(n) => write!(f, "request header {n}"),
            Redacted::Field(n) => write!(f, "the field {n} of messages the client sends"),
        }
    }
}

/// What a replayed connection sends in its upgrade request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LiveRequest {
    /// Path and query, live values in place of placeholders (and every placeholder
    /// left percent-encoded, so the URL always parses).
    pub target: String,
    pub headers: Vec<(String, String)>,
    /// Where a placeholder is sent because no credential was given for it.
    pub missing: Vec<Redacted>,
}

/// The request target and headers to send for a recorded `target` and `headers`.
///
/// A query parameter's live value replaces the placeholder in its value,
/// percent-encoded. A header's live value is the whole header value (`Bearer eyJ…`,
/// `sid=…`); when the recorded value was a word and a placeholder (`Bearer
/// redacted-…`) and the live value has no space (a bare token), the word is kept.
pub fn live_request(
    target: &str,
    headers: &[(String, String)],
    credentials: &Credentials,
) -> LiveRequest {
    let mut missing = Vec::new();
    let target = match target.split_once('?') {
        Some((path, query)) if query.contains("redacted") => {
            let pairs: Vec<String> = query
                .split('&')
                .map(|pair| live_pair(pair, credentials, &mut missing))
                .collect();
            format!("{path}?{}", pairs.join("&"))
        }
        _ => target.to_string(),
    };
    let headers = headers
        .iter()
        .map(|(name, value)| {
            if !placeholder::contains(value) {
                return (name.clone(), value.clone());
            }
            match credentials.header(name) {
                Some(live) => (name.clone(), live_header(value, live)),
                None => {
                    missing.push(Redacted::Header(name.clone()));
                    (name.clone(), value.clone())
                }
            }
        })
        .collect();
    missing.sort();
    missing.dedup();
    LiveRequest {
        target,
        headers,
        missing,
    }
}

/// A message the client sends, with live values in place of the placeholders of its
/// named fields: a JSON key's string (`"passcode": "redacted-…"`, the live value
/// escaped for JSON), a STOMP frame header (`passcode:redacted-…`), a `name=value`
/// pair. Field names match credentials in any case. `None` when nothing changed; where
/// a placeholder stays for want of a credential, its field is added to `missing`.
pub fn live_message(
    text: &str,
    credentials: &Credentials,
    missing: &mut Vec<Redacted>,
) -> Option<String> {
    if !placeholder::contains(text) {
        return None;
    }
    let json = matches!(text.trim_start().as_bytes().first(), Some(b'{' | b'['));
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for found in placeholder::PATTERN.find_iter(text) {
        let Some(name) = field_name(&text[..found.start()]) else {
            continue;
        };
        match credentials.header(name) {
            Some(live) => {
                out.push_str(&text[last..found.start()]);
                if json {
                    let quoted = serde_json::Value::from(live).to_string();
                    out.push_str(&quoted[1..quoted.len() - 1]);
                } else {
                    out.push_str(live);
                }
                last = found.end();
            }
            None => missing.push(Redacted::Field(name.to_string())),
        }
    }
    (last > 0).then(|| {
        out.push_str(&text[last..]);
        out
    })
}

/// The name of the field whose value starts where `before` ends: `"key": "`, `key:`,
/// `key=`.
fn field_name(before: &str) -> Option<&str> {
    let before = before.trim_end_matches(['"', ' ', '\t']);
    let before = before.strip_suffix([':', '='])?;
    let before = before.trim_end_matches([' ', '\t', '"']);
    let start = before
        .rfind(|c: char| !(c.is_ascii_alphanumeric() || "_-.".contains(c)))
        .map_or(0, |i| i + 1);
    Some(&before[start..]).filter(|name| !name.is_empty())
}

fn live_pair(pair: &str, credentials: &Credentials, missing: &mut Vec<Redacted>) -> String {
    let Some((name, value)) = pair.split_once('=') else {
        return pair.to_string();
    };
    let decoded = decode(value);
    if !placeholder::contains(&decoded) {
        return pair.to_string();
    }
    let name_decoded = decode(name);
    match credentials.query(&name_decoded) {
        Some(live) => format!(
            "{name}={}",
            encode(&placeholder::replace_all(&decoded, live))
        ),
        None => {
            missing.push(Redacted::Query(name_decoded));
            if value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._~%+".contains(&b))
            {
                pair.to_string()
            } else {
                // `<redacted:…>`, as older versions wrote it, is not valid in a URL.
                format!("{name}={}", encode(&decoded))
            }
        }
    }
}

fn live_header(recorded: &str, live: &str) -> String {
    if !live.contains(' ') {
        if let Some((word, rest)) = recorded.split_once(' ') {
            if !word.is_empty() && placeholder::is_placeholder(rest.trim()) {
                return format!("{word} {live}");
            }
        }
    }
    live.to_string()
}

fn decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={s}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| s.to_string())
}

fn encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Live values shorter than this are not looked for outside the query and headers they
/// were sent in: a short value would match ordinary text (and the query and headers
/// are redacted by name anyway).
pub const MIN_SCRUBBED_LEN: usize = 8;

/// Replaces live credential values in captured records by their placeholders.
pub struct Scrubber {
    finder: aho_corasick::AhoCorasick,
    /// Per pattern of `finder`, its placeholder.
    placeholders: Vec<String>,
}

impl Scrubber {
    /// A scrubber for `credentials`' values ([`MIN_SCRUBBED_LEN`] or longer), each
    /// replaced by the placeholder `redactor` gives it; `None` when there is none.
    pub fn new(credentials: &Credentials, redactor: &Redactor) -> Option<Scrubber> {
        let mut patterns = Vec::new();
        let mut placeholders = Vec::new();
        for (_, value) in &credentials.entries {
            if value.len() < MIN_SCRUBBED_LEN {
                continue;
            }
            let placeholder = redactor.pseudonym(value);
            let encoded = encode(value);
            if encoded != *value {
                patterns.push(encoded);
                placeholders.push(placeholder.clone());
            }
            patterns.push(value.clone());
            placeholders.push(placeholder);
        }
        if patterns.is_empty() {
            return None;
        }
        let finder = aho_corasick::AhoCorasick::builder()
            .match_kind(aho_corasick::MatchKind::LeftmostLongest)
            .build(&patterns)
            .expect("a few credential values always build");
        Some(Scrubber {
            finder,
            placeholders,
        })
    }

    /// Removes live values from every text field of `record`.
    pub fn record(&self, record: &mut Record) {
        match record {
            Record::Open(open) => {
                self.text(&mut open.request);
                self.text(&mut open.upstream);
                let headers = open.headers.iter_mut().chain(&mut open.response_headers);
                for (_, value) in headers {
                    self.text(value);
                }
            }
            Record::Message(m) => self.body(&mut m.body),
            Record::Ping(c) | Record::Pong(c) | Record::Control(c) => self.body(&mut c.body),
            Record::Close(c) => self.text(&mut c.reason),
            Record::End(e) => {
                if let Some(error) = &mut e.error {
                    self.text(error);
                }
            }
            Record::Fault(_) | Record::Finish(_) => {}
        }
    }

    fn text(&self, text: &mut String) {
        if self.finder.is_match(text.as_str()) {
            *text = self.finder.replace_all(text, &self.placeholders);
        }
    }

    fn body(&self, body: &mut Body) {
        match body {
            Body::Text(t) => self.text(t),
            Body::Bytes(b) => {
                if self.finder.is_match(b.as_slice()) {
                    *b = self.finder.replace_all_bytes(b, &self.placeholders);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds(pairs: &[(&str, &str)]) -> Credentials {
        let mut c = Credentials::default();
        for (n, v) in pairs {
            c.insert(n, *v).unwrap();
        }
        c
    }

    fn headers(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn placeholders_are_replaced_by_live_values_query_by_exact_name_headers_by_any_case() {
        let recorded = headers(&[
            ("authorization", "Bearer redacted-1a2b3c4d5e6f"),
            ("Cookie", "sid=redacted-abcdef012345"),
            ("Origin", "http://app"),
        ]);
        let live = live_request(
            "/ws?user=a&token=redacted-1a2b3c4d5e6f&Token=redacted-1a2b3c4d5e6f",
            &recorded,
            &creds(&[
                ("token", "live tok/1"),
                ("Authorization", "eyJ.live"),
                ("cookie", "sid=s1; theme=dark"),
            ]),
        );
        assert_eq!(
            live.target,
            "/ws?user=a&token=live+tok%2F1&Token=redacted-1a2b3c4d5e6f"
        );
        assert_eq!(
            live.headers,
            headers(&[
                ("authorization", "Bearer eyJ.live"),
                ("Cookie", "sid=s1; theme=dark"),
                ("Origin", "http://app"),
            ])
        );
        assert_eq!(live.missing, [Redacted::Query("Token".into())]);
        // A live value with a space is the whole header value.
        let live = live_request(
            "/",
            &recorded[..1],
            &creds(&[("AUTHORIZATION", "Basic dTpw")]),
        );
        assert_eq!(live.headers[0].1, "Basic dTpw");
    }

    #[test]
    fn placeholders_in_sent_messages_take_the_live_value_of_their_field() {
        let creds = creds(&[("passcode", "s3cr\"et"), ("Token", "tok-1")]);
        let mut missing = Vec::new();
        // A STOMP CONNECT frame: the header's value, raw.
        let stomp = "CONNECT\nlogin:guest\npasscode:redacted-7235e805e92e\n\n\0";
        assert_eq!(
            live_message(stomp, &creds, &mut missing).as_deref(),
            Some("CONNECT\nlogin:guest\npasscode:s3cr\"et\n\n\0")
        );
        // JSON: escaped for JSON, keys in any case; an unnamed field is reported.
        let json =
            r#"{"type":"auth","token": "redacted-jwt-0123456789ab","pin":"redacted-aaaaaaaaaaaa"}"#;
        let live = live_message(json, &creds, &mut missing).unwrap();
        assert_eq!(
            live,
            r#"{"type":"auth","token": "tok-1","pin":"redacted-aaaaaaaaaaaa"}"#
        );
        let json = r#"{"passcode":"redacted-0123456789ab"}"#;
        let live = live_message(json, &creds, &mut missing).unwrap();
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&live).unwrap()["passcode"],
            "s3cr\"et"
        );
        assert_eq!(missing, [Redacted::Field("pin".into())]);
        assert_eq!(live_message(r#"{"a":"plain"}"#, &creds, &mut missing), None);
        assert_eq!(
            Redacted::Field("pin".into()).to_string(),
            "the field pin of messages the client sends"
        );
    }

    #[test]
    fn the_old_placeholder_form_is_sent_percent_encoded_or_replaced() {
        let target = "/ws?token=<redacted:1a2b3c4d5e6f>&x=1";
        let recorded = headers(&[("Authorization", "Bearer <redacted:jwt:1a2b3c4d5e6f>")]);
        let none = live_request(target, &recorded, &Credentials::default());
        assert_eq!(none.target, "/ws?token=%3Credacted%3A1a2b3c4d5e6f%3E&x=1");
        assert!(url::Url::parse(&format!("ws://h{}", none.target)).is_ok());
        assert_eq!(none.headers, recorded);
        assert_eq!(
            none.missing,
            [
                Redacted::Query("token".into()),
                Redacted::Header("Authorization".into())
            ]
        );
        assert_eq!(
            none.missing[0].to_string() + ", " + &none.missing[1].to_string(),
            "query parameter token, request header Authorization"
        );
        let live = live_request(
            target,
            &recorded,
            &creds(&[("token", "t-live"), ("authorization", "h-live")]),
        );
        assert_eq!(live.target, "/ws?token=t-live&x=1");
        assert_eq!(live.headers[0].1, "Bearer h-live");
        assert!(live.missing.is_empty());
    }

    #[test]
    fn specs_and_sources_parse_and_say_what_is_wrong() {
        let spec: CredentialSpec = "token=env:TEST_TOKEN".parse().unwrap();
        assert_eq!(spec.name, "token");
        assert_eq!(spec.source, CredentialSource::Env("TEST_TOKEN".into()));
        let spec: CredentialSpec = "Authorization=file:/run/auth=x".parse().unwrap();
        assert_eq!(spec.source, CredentialSource::File("/run/auth=x".into()));
        let err = "token".parse::<CredentialSpec>().unwrap_err().to_string();
        assert!(err.contains("NAME=SOURCE"), "{err}");
        let err = "token=s3cret"
            .parse::<CredentialSpec>()
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("env:VAR") && err.contains("file:PATH"),
            "{err}"
        );
        assert!(
            !err.contains("s3cret"),
            "a mistaken live value is not repeated: {err}"
        );
        let err = CredentialSource::Env("WSREPLAY_SURELY_UNSET_VAR".into())
            .read("token")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("WSREPLAY_SURELY_UNSET_VAR is not set"),
            "{err}"
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tok");
        std::fs::write(&path, "from-file\n").unwrap();
        assert_eq!(CredentialSource::File(path).read("t").unwrap(), "from-file");
        let mut c = Credentials::default();
        assert!(c.insert("t", "two\nlines").is_err());
        c.insert("token", "first").unwrap();
        c.insert("token", "second-value").unwrap();
        assert_eq!(format!("{c:?}"), r#"Credentials { names: ["token"] }"#);
    }

    #[test]
    fn live_values_are_scrubbed_from_captured_records() {
        use crate::recording::{Dir, Message, Opcode};
        let redactor = Redactor::with_key(&Default::default(), [3; 32]);
        let scrubber = Scrubber::new(
            &creds(&[("token", "live tok/12345"), ("short", "abc")]),
            &redactor,
        )
        .unwrap();
        let p = redactor.pseudonym("live tok/12345");
        let mut record = Record::Message(Message::whole(
            1,
            Dir::ServerToClient,
            Opcode::TEXT,
            Body::Text(r#"{"hello":"live tok/12345","q":"live+tok%2F12345","abc":1}"#.into()),
        ));
        scrubber.record(&mut record);
        let Record::Message(m) = record else { panic!() };
        assert_eq!(
            m.body.as_text().unwrap(),
            format!(r#"{{"hello":"{p}","q":"{p}","abc":1}}"#)
        );
    }
}
