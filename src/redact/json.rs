//! Redacting JSON text in place, string literal by string literal.
//!
//! A message is not parsed into a map (which keeps only the last of duplicate keys and
//! forgets how each string was escaped): every string literal is found in the text,
//! decoded (`"pass\u0077ord"` is `password`), and judged with the keys it sits under.
//! Each literal to redact is replaced by its redacted value, written as JSON; every
//! other byte of the text (formatting, key order, number spelling) stays as sent.
//! The walk is lenient: text that is not quite JSON is walked as far as it goes, and the
//! caller still scans the whole text for credential shapes.

use super::{secrets, Redactor};

/// What a value's keys say about it.
#[derive(Clone, Copy, Default)]
pub(super) struct Under {
    /// Under a key redacted by name (`password`, `--redact-json-key`), at any depth.
    pub named: bool,
    /// Under a key whose random-looking values are secret (`*token*`, `credentials`).
    pub secretish: bool,
    /// Under a password key (`pass`, `passwd`, `db_password`).
    pub password: bool,
}

/// An object or array being walked.
struct Frame {
    object: bool,
    /// In an object: whether the next string is a key.
    expect_key: bool,
    /// In an object: the current key and what it says about its value.
    key: Under,
    /// What the keys above this container say.
    under: Under,
}

impl Frame {
    /// What applies to a value in this container.
    fn value(&self) -> Under {
        if !self.object {
            return self.under;
        }
        Under {
            named: self.under.named || self.key.named,
            secretish: self.under.secretish || self.key.secretish,
            password: self.under.password || self.key.password,
        }
    }
}

/// Redacts every string literal of `text` that [`Redactor::json_string`] redacts, and
/// every key holding a credential. `None` when nothing changed.
pub(super) fn redact(r: &Redactor, text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = String::new();
    let mut copied = 0;
    let mut stack: Vec<Frame> = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => {
                let Some(end) = string_end(bytes, i) else {
                    break;
                };
                let literal = &text[i..=end];
                let decoded = decode(literal);
                let is_key = stack.last().is_some_and(|f| f.object && f.expect_key);
                let replacement = if is_key {
                    let frame = stack.last_mut().expect("checked above");
                    frame.expect_key = false;
                    frame.key = r.key_says(&decoded);
                    // A key is no place for a credential, but some maps are keyed by one.
                    r.scan_text(&decoded)
                } else {
                    let under = stack.last().map(Frame::value).unwrap_or_default();
                    r.json_string(under, &decoded)
                };
                if let Some(new) = replacement {
                    out.push_str(&text[copied..i]);
                    out.push_str(&serde_json::Value::String(new).to_string());
                    copied = end + 1;
                }
                i = end + 1;
                continue;
            }
            b'{' | b'[' => {
                let under = stack.last().map(Frame::value).unwrap_or_default();
                stack.push(Frame {
                    object: bytes[i] == b'{',
                    expect_key: true,
                    key: Under::default(),
                    under,
                });
            }
            b'}' | b']' => {
                stack.pop();
            }
            b',' => {
                if let Some(f) = stack.last_mut().filter(|f| f.object) {
                    f.expect_key = true;
                    f.key = Under::default();
                }
            }
            _ => {}
        }
        i += 1;
    }
    if copied == 0 {
        return None;
    }
    out.push_str(&text[copied..]);
    Some(out)
}

/// The index of the closing quote of the string literal opening at `start`.
fn string_end(bytes: &[u8], start: usize) -> Option<usize> {
    let mut i = start + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'"' => return Some(i),
            _ => i += 1,
        }
    }
    None
}

/// A string literal's value; its raw content when it does not decode.
fn decode(literal: &str) -> String {
    if !literal.contains('\\') {
        return literal[1..literal.len() - 1].to_string();
    }
    serde_json::from_str::<String>(literal)
        .unwrap_or_else(|_| literal[1..literal.len() - 1].to_string())
}

impl Redactor {
    /// What a (decoded) JSON key says about the values under it.
    pub(super) fn key_says(&self, key: &str) -> Under {
        Under {
            named: self.json_keys.contains(&key.to_ascii_lowercase()),
            secretish: self.scan && secrets::is_secret_field(key),
            password: self.scan && secrets::is_password_field(key),
        }
    }

    /// The redacted form of a (decoded) JSON string value, `None` to keep it.
    pub(super) fn json_string(&self, under: Under, value: &str) -> Option<String> {
        if value.is_empty() || super::placeholder::is_placeholder(value) {
            return None;
        }
        if under.named
            || (self.scan && under.password)
            || (self.scan && under.secretish && secrets::looks_random(value))
        {
            return Some(self.pseudonym(value));
        }
        self.scan_text(value)
    }
}
