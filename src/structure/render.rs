//! The rendered structure, what a snapshot holds: its text form and the parser that
//! reads it back.

use std::collections::BTreeMap;

use super::*;
use crate::recording::Recording;

/// Why a snapshot's text is not a rendered [`Structure`]: the line (1-based), what
/// is wrong with it, and the line itself.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {problem}: {text:?}")]
pub struct ParseError {
    pub line: usize,
    pub problem: &'static str,
    pub text: String,
}

/// The rendered structure: what a snapshot holds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Structure {
    pub routes: BTreeMap<String, RouteSection>,
}

/// One route of a [`Structure`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RouteSection {
    pub kinds: BTreeMap<KindKey, KindSection>,
    /// Conversation sequence → count, sorted.
    pub sequences: BTreeMap<String, u64>,
}

/// One message kind: how many, and each path's description.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KindSection {
    /// How many in the recording; for a stream, the fewest a conversation had (0 or 1).
    pub count: u64,
    /// Taken as a stream: its number per conversation varies (`×1+`, `×0+`), so it is
    /// not compared exactly.
    pub stream: bool,
    /// Path (with `?` when optional) → description.
    pub fields: BTreeMap<String, String>,
    /// Why the kind is a stream when it was learned from replays
    /// ([`learn`]): `learned: 1–4 per conversation`, written
    /// after its heading.
    pub learned: Option<String>,
}

impl KindSection {
    /// `3`, or `1+` for a stream.
    pub fn count_text(&self) -> String {
        if self.stream {
            format!("{}+", self.count)
        } else {
            self.count.to_string()
        }
    }
}

impl Structure {
    /// Normalises a recording against its own hints (what `wsreplay snapshot` does).
    pub fn of(recording: &Recording) -> Structure {
        Self::of_with(recording, &StructureConfig::default())
    }

    /// Like [`Structure::of`], with literal-field overrides.
    pub fn of_with(recording: &Recording, config: &StructureConfig) -> Structure {
        let obs = Observation::of_with(recording, config);
        obs.render(&obs.hints_with(config))
    }

    /// The text of one route's section.
    pub fn render_route(&self, route: &str) -> String {
        let Some(section) = self.routes.get(route) else {
            return String::new();
        };
        let mut out = format!("## route {route}\n");
        for ((dir, label), kind) in &section.kinds {
            out += &format!("\n### {dir} {label} ×{}", kind.count_text());
            if let Some(note) = &kind.learned {
                out += &format!("  ({note})");
            }
            out.push('\n');
            let width = kind
                .fields
                .keys()
                .map(|k| k.chars().count())
                .max()
                .unwrap_or(0);
            for (path, desc) in &kind.fields {
                out += &format!("{path:<width$}  {desc}\n");
            }
        }
        out += "\n### sequences\n";
        for (seq, n) in &section.sequences {
            out += &format!("×{n} {seq}\n");
        }
        out
    }

    /// The whole text (a snapshot's body).
    pub fn render(&self) -> String {
        let sections: Vec<String> = self.routes.keys().map(|r| self.render_route(r)).collect();
        sections.join("\n")
    }

    /// Parses text written by [`Structure::render`].
    pub fn parse(text: &str) -> Result<Structure, ParseError> {
        let mut out = Structure::default();
        let mut route: Option<String> = None;
        let mut kind: Option<KindKey> = None;
        let mut in_sequences = false;
        for (i, line) in text.lines().enumerate() {
            let err = |problem: &'static str| ParseError {
                line: i + 1,
                problem,
                text: line.to_string(),
            };
            if line.trim().is_empty() {
                continue;
            }
            if let Some(name) = line.strip_prefix("## route ") {
                route = Some(name.to_string());
                out.routes.entry(name.to_string()).or_default();
                kind = None;
                in_sequences = false;
                continue;
            }
            let section = out
                .routes
                .get_mut(
                    route
                        .as_deref()
                        .ok_or_else(|| err("text before the first `## route`"))?,
                )
                .expect("inserted above");
            if line == "### sequences" {
                in_sequences = true;
                kind = None;
            } else if let Some(head) = line.strip_prefix("### ") {
                let (dir, rest) = head
                    .split_once(' ')
                    .ok_or_else(|| err("expected `### DIR KIND ×N`"))?;
                let dir = match dir {
                    "c2s" => Dir::ClientToServer,
                    "s2c" => Dir::ServerToClient,
                    _ => return Err(err("direction must be c2s or s2c")),
                };
                let (rest, learned) = learn::split_note(rest);
                let (label, count) = rest
                    .rsplit_once(" ×")
                    .ok_or_else(|| err("expected `×N` after the kind"))?;
                let (count, stream) = match count.strip_suffix('+') {
                    Some(fewest) => (fewest, true),
                    None => (count, false),
                };
                let count = count.parse().map_err(|_| err("bad count"))?;
                section.kinds.insert(
                    (dir, label.to_string()),
                    KindSection {
                        count,
                        stream,
                        fields: BTreeMap::new(),
                        learned: learned.map(str::to_string),
                    },
                );
                kind = Some((dir, label.to_string()));
                in_sequences = false;
            } else if in_sequences {
                let (n, seq) = line
                    .split_once(' ')
                    .ok_or_else(|| err("expected `×N SEQUENCE`"))?;
                let n = n
                    .strip_prefix('×')
                    .and_then(|n| n.parse().ok())
                    .ok_or_else(|| err("bad count"))?;
                section.sequences.insert(seq.to_string(), n);
            } else if let Some(k) = &kind {
                let (path, desc) = line
                    .split_once("  ")
                    .ok_or_else(|| err("expected `PATH  DESCRIPTION`"))?;
                // Rendered paths never start so (awkward keys are quoted); one that did
                // would render as a heading or lose its leading space.
                if path.starts_with(|c: char| c.is_whitespace() || c == '#') {
                    return Err(err("a field path cannot start with whitespace or `#`"));
                }
                section
                    .kinds
                    .get_mut(k)
                    .expect("inserted above")
                    .fields
                    .insert(path.trim_end().to_string(), desc.trim().to_string());
            } else {
                return Err(err("field line outside a `### DIR KIND ×N` section"));
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recording::Body;

    /// Found by the normaliser fuzz target: keys and labels that would break the
    /// line-based text (a `### ` prefix, newlines, double spaces) must round-trip.
    #[test]
    fn awkward_keys_and_labels_render_and_parse_back() {
        let texts = [
            r####"{"type":"t","### age_id":"m","a  b":1," lead":2,"new\nline":3,"\"q":4}"####,
            r#"{"type":"two\nlines","x":1}"#,
        ];
        let rec = Recording::single_connection(
            "r",
            texts
                .iter()
                .map(|t| (Dir::ServerToClient, Body::Text(t.to_string()))),
        );
        let structure = Structure::of(&rec);
        let rendered = structure.render();
        assert!(
            rendered.contains(r####""###\u0020age_id""####),
            "{rendered}"
        );
        assert!(
            rendered.contains(r#"### s2c "two\nlines" ×1"#),
            "{rendered}"
        );
        let parsed = Structure::parse(&rendered).unwrap();
        assert_eq!(parsed, structure);
        // Found by the snapshot-reader fuzz target: a field line that starts with a
        // vertical tab would have been trimmed into a heading.
        let hostile = "## route r\n\n### s2c t ×1\n\u{b}### s2c x  string\n";
        let err = Structure::parse(hostile).unwrap_err().to_string();
        assert!(
            err.starts_with("line 4: a field path cannot start"),
            "{err}"
        );
    }

    /// A hand-edited recording's route name with a line break cannot forge a line of
    /// the snapshot text.
    #[test]
    fn a_route_name_cannot_forge_snapshot_lines() {
        let rec = Recording::single_connection(
            "r\n## route forged\n\n### s2c fake ×9",
            [(Dir::ServerToClient, Body::Text(r#"{"type":"t"}"#.into()))],
        );
        let structure = Structure::of(&rec);
        let text = structure.render();
        assert_eq!(text.matches("## route").count(), 1, "{text}");
        assert!(!text.contains("\n### s2c fake"), "{text}");
        assert_eq!(Structure::parse(&text).unwrap(), structure);
    }

    #[test]
    fn literal_detection_can_be_configured() {
        let rec = Recording::single_connection(
            "r",
            (0..20).map(|i| {
                let text = format!(r#"{{"type":"t","status":"s{i}","mode":"fast"}}"#);
                (Dir::ServerToClient, Body::Text(text))
            }),
        );
        let field = |s: &Structure, f: &str| {
            s.routes["r"].kinds[&(Dir::ServerToClient, "t".to_string())].fields[f].clone()
        };
        let auto = Structure::of(&rec);
        assert_eq!(
            (field(&auto, "status"), field(&auto, "mode")),
            ("string".into(), "\"fast\"".into())
        );
        let config = StructureConfig {
            literal: vec!["status".into()],
            volatile: vec!["mode".into()],
            ..StructureConfig::default()
        };
        let configured = Structure::of_with(&rec, &config);
        assert!(field(&configured, "status").starts_with("\"s0\" | \"s1\" | \"s10\""));
        assert_eq!(field(&configured, "mode"), "string");
    }

    #[test]
    fn parse_inverts_render() {
        let text = "## route frontend\n\n### s2c agent_started ×3\npayload     object\npayload.x?  integer\ntype        \"agent_started\"\n\n### sequences\n×3 c2s chat → s2c agent_started\n×1 per connection: c2s heartbeat → s2c heartbeat_response\n";
        let s = Structure::parse(text).unwrap();
        assert_eq!(s.render(), text);
    }
}
