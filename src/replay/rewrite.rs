//! Changing values inside a recorded message without re-serialising it.
//!
//! A mock's reply is the recorded bytes: only the values that must change (ids carried
//! over from the live request, [`Edits`]) are replaced, in place, so key order, spacing
//! and number formatting stay as recorded and a reply that needs no change is
//! byte-identical. A message is read as a run of segments: JSON values, wherever a `{`
//! or `[` starts one that parses (a plain JSON frame, the arguments after a Socket.IO
//! packet prefix, a STOMP body, each SignalR record), and the framing text between them
//! (`431`, `receipt-id:7`). Inside JSON, each scalar is a [`Leaf`] with its path and
//! byte span; in framing text, an id is a token bounded by non-word characters, or the
//! span the protocol says carries it ([`crate::protocol::Protocol::framing_id`]).

use std::collections::HashMap;
use std::ops::Range;

/// Whether a key names an identifier (`id`, `message_id`, `requestId`, `correlation-id`).
pub fn is_id_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    k == "id" || k.ends_with("_id") || k.ends_with("-id") || key.ends_with("Id")
}

/// A scalar inside a JSON segment of a message.
#[derive(Clone, Debug, PartialEq)]
pub struct Leaf {
    /// Segment number and path with array indices: `0.params[1].id`.
    pub indexed: String,
    /// Object keys only, dotted (`params.id`), as `[[correlate]]` pairs name them.
    pub keys: String,
    /// The key it is the value of, if it is an object member.
    pub key: Option<String>,
    /// Its text: a string's content (unescaped), or a number or literal as written.
    pub text: String,
    /// Whether it is a JSON string.
    pub string: bool,
    /// Where its JSON text is in the message.
    pub span: Range<usize>,
}

impl Leaf {
    /// Its JSON text: quoted for a string.
    pub fn json(&self) -> String {
        if self.string {
            serde_json::to_string(&self.text).unwrap_or_default()
        } else {
            self.text.clone()
        }
    }
}

/// The byte ranges of the JSON values in `text`, in order.
pub fn json_segments(text: &str) -> Vec<Range<usize>> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if matches!(bytes[i], b'{' | b'[') {
            let mut values =
                serde_json::Deserializer::from_str(&text[i..]).into_iter::<serde::de::IgnoredAny>();
            if let Some(Ok(_)) = values.next() {
                let end = i + values.byte_offset();
                out.push(i..end);
                i = end;
                continue;
            }
        }
        i += 1;
    }
    out
}

/// Every scalar in the JSON segments of `text`.
pub fn leaves(text: &str) -> Vec<Leaf> {
    leaves_in(text, &json_segments(text))
}

/// Every scalar in the given JSON `segments` of `text` (from [`json_segments`]).
fn leaves_in(text: &str, segments: &[Range<usize>]) -> Vec<Leaf> {
    let mut out = Vec::new();
    for (n, segment) in segments.iter().enumerate() {
        let mut scan = Scanner {
            text,
            pos: segment.start,
            out: &mut out,
        };
        scan.value(&n.to_string(), "", None);
    }
    out
}

/// A reader of one JSON value already known to parse (bounds are still checked, so a
/// surprise ends the scan instead of panicking).
struct Scanner<'t, 'o> {
    text: &'t str,
    pos: usize,
    out: &'o mut Vec<Leaf>,
}

impl Scanner<'_, '_> {
    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.pos).copied()
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\r' | b'\n')) {
            self.pos += 1;
        }
    }

    /// A string's span, starting at its opening quote.
    fn string(&mut self) -> Range<usize> {
        let start = self.pos;
        self.pos += 1;
        while let Some(b) = self.peek() {
            self.pos += 1;
            match b {
                b'\\' => self.pos += 1,
                b'"' => break,
                _ => {}
            }
        }
        start..self.pos.min(self.text.len())
    }

    fn value(&mut self, indexed: &str, keys: &str, key: Option<&str>) -> Option<()> {
        self.ws();
        match self.peek()? {
            b'{' => {
                self.pos += 1;
                loop {
                    self.ws();
                    match self.peek()? {
                        b'}' => break,
                        b',' => self.pos += 1,
                        b'"' => {
                            let span = self.string();
                            let name: String = serde_json::from_str(&self.text[span]).ok()?;
                            self.ws();
                            (self.peek()? == b':').then_some(())?;
                            self.pos += 1;
                            let keys = if keys.is_empty() {
                                name.clone()
                            } else {
                                format!("{keys}.{name}")
                            };
                            self.value(&format!("{indexed}.{name}"), &keys, Some(&name))?;
                        }
                        _ => return None,
                    }
                }
                self.pos += 1;
            }
            b'[' => {
                self.pos += 1;
                let mut n = 0;
                loop {
                    self.ws();
                    match self.peek()? {
                        b']' => break,
                        b',' => self.pos += 1,
                        _ => {
                            self.value(&format!("{indexed}[{n}]"), keys, None)?;
                            n += 1;
                        }
                    }
                }
                self.pos += 1;
            }
            b'"' => {
                let span = self.string();
                let text = serde_json::from_str(&self.text[span.clone()]).ok()?;
                self.leaf(indexed, keys, key, text, true, span);
            }
            _ => {
                let start = self.pos;
                while !matches!(
                    self.peek(),
                    None | Some(b',' | b']' | b'}' | b' ' | b'\t' | b'\r' | b'\n')
                ) {
                    self.pos += 1;
                }
                let span = start..self.pos;
                let text = self.text[span.clone()].to_string();
                self.leaf(indexed, keys, key, text, false, span);
            }
        }
        Some(())
    }

    fn leaf(
        &mut self,
        indexed: &str,
        keys: &str,
        key: Option<&str>,
        text: String,
        string: bool,
        span: Range<usize>,
    ) {
        self.out.push(Leaf {
            indexed: indexed.to_string(),
            keys: keys.to_string(),
            key: key.map(str::to_string),
            text,
            string,
            span,
        });
    }
}

/// What to change in a recorded reply.
#[derive(Clone, Debug, Default)]
pub struct Edits {
    /// String contents replaced wherever they are a whole JSON string.
    pub strings: HashMap<String, String>,
    /// Ids (a string's content or a number as written) replaced where an id is: the
    /// value of an id-named key (see [`is_id_key`]), a token of the
    /// framing text, the protocol's framing id. The new value is JSON text.
    pub ids: HashMap<String, String>,
    /// Dotted key paths set to a JSON text (`[[correlate]]` pairs).
    pub paths: Vec<(String, String)>,
}

impl Edits {
    pub fn is_empty(&self) -> bool {
        self.strings.is_empty() && self.ids.is_empty() && self.paths.is_empty()
    }

    /// `text` with the edits made, or `None` when nothing in it changes.
    /// `framing_id` is where the protocol's framing carries an id, if it does.
    pub fn apply(&self, text: &str, framing_id: Option<Range<usize>>) -> Option<String> {
        if self.is_empty() {
            return None;
        }
        let mut changes: Vec<(Range<usize>, String)> = Vec::new();
        let segments = json_segments(text);
        for leaf in leaves_in(text, &segments) {
            let by_path = self.paths.iter().find(|(p, _)| *p == leaf.keys);
            let new = if let Some((_, json)) = by_path {
                Some(json.clone())
            } else if leaf.string && self.strings.contains_key(&leaf.text) {
                serde_json::to_string(&self.strings[&leaf.text]).ok()
            } else if leaf.key.as_deref().is_some_and(is_id_key) {
                self.ids.get(&leaf.text).cloned()
            } else {
                None
            };
            if let Some(new) = new.filter(|n| *n != leaf.json()) {
                changes.push((leaf.span, new));
            }
        }
        if let Some(span) = framing_id.filter(|s| text.get(s.clone()).is_some()) {
            if let Some(new) = self.ids.get(&text[span.clone()]) {
                changes.push((span, unquoted(new)));
            }
        } else {
            let mut prev = 0;
            for segment in segments.iter().chain([&(text.len()..text.len())]) {
                self.tokens(text, prev..segment.start, &mut changes);
                prev = segment.end;
            }
        }
        if changes.is_empty() {
            return None;
        }
        changes.sort_by_key(|(span, _)| span.start);
        let mut out = String::with_capacity(text.len() + 16);
        let mut at = 0;
        for (span, new) in changes {
            if span.start < at {
                continue;
            }
            out.push_str(&text[at..span.start]);
            out.push_str(&new);
            at = span.end;
        }
        out.push_str(&text[at..]);
        Some(out)
    }

    /// Ids as whole tokens in the framing text `gap`.
    fn tokens(&self, text: &str, gap: Range<usize>, changes: &mut Vec<(Range<usize>, String)>) {
        let word = |c: char| c.is_alphanumeric() || c == '_';
        let part = &text[gap.clone()];
        for (old, new) in &self.ids {
            for (i, _) in part.match_indices(old.as_str()) {
                let before = part[..i].chars().next_back();
                let after = part[i + old.len()..].chars().next();
                if !before.is_some_and(word) && !after.is_some_and(word) {
                    let start = gap.start + i;
                    changes.push((start..start + old.len(), unquoted(new)));
                }
            }
        }
    }
}

/// A JSON text as it reads in framing text: a string's content, a number as it is.
fn unquoted(json: &str) -> String {
    serde_json::from_str::<String>(json).unwrap_or_else(|_| json.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(pairs: &[(&str, &str)]) -> Edits {
        Edits {
            ids: pairs
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect(),
            ..Edits::default()
        }
    }

    #[test]
    fn leaves_have_paths_spans_and_text() {
        let text = r#"42["chat",{"id":7, "to":"a\"b","n":[1,2.50]}]"#;
        let found = leaves(text);
        let names: Vec<(&str, &str, &str)> = found
            .iter()
            .map(|l| (l.indexed.as_str(), l.keys.as_str(), l.text.as_str()))
            .collect();
        assert_eq!(
            names,
            [
                ("0[0]", "", "chat"),
                ("0[1].id", "id", "7"),
                ("0[1].to", "to", "a\"b"),
                ("0[1].n[0]", "n", "1"),
                ("0[1].n[1]", "n", "2.50"),
            ]
        );
        assert_eq!(&text[found[2].span.clone()], r#""a\"b""#);
    }

    #[test]
    fn only_the_changed_value_changes_and_the_rest_stays_byte_for_byte() {
        let text = "{ \"result\": {\"count\":1, \"b\":2.50},\n  \"id\": 1 }";
        let out = ids(&[("1", "1001")]).apply(text, None).unwrap();
        assert_eq!(
            out,
            "{ \"result\": {\"count\":1, \"b\":2.50},\n  \"id\": 1001 }"
        );
        assert_eq!(ids(&[("9", "10")]).apply(text, None), None);
        assert_eq!(Edits::default().apply(text, None), None);
    }

    #[test]
    fn batches_strings_paths_and_framing_tokens() {
        let batch = r#"[{"id":2,"result":"x"},{"id":1,"result":"y"}]"#;
        let out = ids(&[("1", "1001"), ("2", "1002")])
            .apply(batch, None)
            .unwrap();
        assert_eq!(
            out,
            r#"[{"id":1002,"result":"x"},{"id":1001,"result":"y"}]"#
        );

        let mut edits = ids(&[("rcpt-1", "\"r-9\"")]);
        edits.strings.insert("msg_old1".into(), "msg_new2".into());
        let stomp = "RECEIPT\nreceipt-id:rcpt-1\n\n{\"echo\":\"msg_old1\"}\0";
        assert_eq!(
            edits.apply(stomp, None).unwrap(),
            "RECEIPT\nreceipt-id:r-9\n\n{\"echo\":\"msg_new2\"}\0"
        );

        let socketio = r#"431[{"ok":true}]"#;
        let out = ids(&[("1", "5")]).apply(socketio, Some(2..3)).unwrap();
        assert_eq!(out, r#"435[{"ok":true}]"#);

        let paths = Edits {
            paths: vec![("re.n".into(), "7".into())],
            ..Edits::default()
        };
        assert_eq!(
            paths.apply(r#"{"re":{"n":1},"x":1}"#, None).unwrap(),
            r#"{"re":{"n":7},"x":1}"#
        );
    }

    #[test]
    fn a_number_that_is_not_an_id_is_left_alone() {
        let text = r#"{"count":1,"items":[1],"id":1}"#;
        assert_eq!(
            ids(&[("1", "5")]).apply(text, None).unwrap(),
            r#"{"count":1,"items":[1],"id":5}"#
        );
    }
}
