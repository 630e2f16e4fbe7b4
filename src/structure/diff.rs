//! Comparing two structures: a unified diff for reviewers and a short semantic summary.
//!
//! The diff is rendered with `similar` (patience algorithm, grouped hunks), coloured
//! when asked. The summary reads the two [`Structure`]s and names what changed per
//! message kind: kinds no longer sent or new, objects missing or new (with their
//! fields), fields added, removed, renamed or moved, types and literal values changed,
//! and guesses such as "looks like `payload` moved to `data`"; and how conversation
//! patterns changed ([`patterns`](crate::structure::patterns)).

use std::collections::{BTreeMap, BTreeSet};

use similar::{ChangeTag, TextDiff};

use crate::recording::Dir;
use crate::structure::patterns::explain;
use crate::structure::{KindSection, RouteSection, Structure};
use crate::text::printable;

/// The comparison of one route.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteDiff {
    pub route: String,
    /// One line per changed message kind (empty when the route is the same).
    pub summary: Vec<String>,
    /// Unified diff of the route's snapshot section (empty when the same).
    pub diff: String,
}

impl RouteDiff {
    pub fn same(&self) -> bool {
        self.summary.is_empty() && self.diff.is_empty()
    }
}

/// Every route either structure has, sorted (what `diff` and `review` compare).
pub fn routes_of(old: &Structure, new: &Structure) -> Vec<String> {
    let routes: std::collections::BTreeSet<&String> =
        old.routes.keys().chain(new.routes.keys()).collect();
    routes.into_iter().cloned().collect()
}

/// Compares `old` (the snapshot) with `new` (the run) for each route in `routes`.
pub fn compare(old: &Structure, new: &Structure, routes: &[String]) -> Vec<RouteDiff> {
    routes
        .iter()
        .map(|route| {
            let (a, b) = (old.render_route(route), new.render_route(route));
            let empty = RouteSection::default();
            let mut summary = summarize_route(
                old.routes.get(route).unwrap_or(&empty),
                new.routes.get(route).unwrap_or(&empty),
            );
            match (
                old.routes.contains_key(route),
                new.routes.contains_key(route),
            ) {
                (true, false) => {
                    summary.insert(0, format!("route {route}: no traffic in the new run"))
                }
                (false, true) => summary.insert(0, format!("route {route}: not in the snapshot")),
                _ => {}
            }
            RouteDiff {
                route: route.clone(),
                diff: if a == b {
                    String::new()
                } else {
                    unified_diff(&a, &b, false)
                },
                summary,
            }
        })
        .collect()
}

fn direction(dir: Dir) -> &'static str {
    match dir {
        Dir::ClientToServer => "client→server",
        Dir::ServerToClient => "server→client",
    }
}

fn summarize_route(old: &RouteSection, new: &RouteSection) -> Vec<String> {
    let mut out = Vec::new();
    let kinds: BTreeSet<_> = old.kinds.keys().chain(new.kinds.keys()).collect();
    for key in kinds {
        let (dir, label) = key;
        let head = format!("{label} ({})", direction(*dir));
        match (old.kinds.get(key), new.kinds.get(key)) {
            (Some(o), None) => {
                out.push(format!("{head}: no longer sent (was ×{})", o.count_text()))
            }
            (None, Some(n)) => out.push(format!("{head}: new message kind, ×{}", n.count_text())),
            (Some(o), Some(n)) => {
                let changes = kind_changes(o, n);
                if !changes.is_empty() {
                    out.push(format!("{head}: {changes}"));
                }
            }
            (None, None) => {}
        }
    }
    if old.sequences != new.sequences {
        let explained = explain(&old.sequences, &new.sequences);
        let mut what = explained.lines;
        let (gone, added) = (explained.unpaired_gone, explained.unpaired_new);
        if gone + added > 0 {
            what.push(format!("{gone} conversation pattern(s) gone, {added} new"));
        }
        if what.is_empty() {
            what.push("conversation counts changed".into());
        }
        out.push(format!(
            "conversation sequences changed: {}",
            what.join("; ")
        ));
    }
    out
}

/// Strips the optional marker.
fn bare(path: &str) -> &str {
    path.strip_suffix('?').unwrap_or(path)
}

fn leaf_name(path: &str) -> &str {
    let p = bare(path).trim_end_matches("[]");
    p.rsplit('.').next().unwrap_or(p)
}

fn parent(path: &str) -> &str {
    bare(path).rsplit_once('.').map_or("", |(p, _)| p)
}

/// Describes how one message kind's fields changed, or "" when they did not.
fn kind_changes(old: &KindSection, new: &KindSection) -> String {
    let o: BTreeMap<&str, &str> = old
        .fields
        .iter()
        .map(|(k, v)| (bare(k), v.as_str()))
        .collect();
    let n: BTreeMap<&str, &str> = new
        .fields
        .iter()
        .map(|(k, v)| (bare(k), v.as_str()))
        .collect();
    let mut removed: Vec<&str> = o.keys().filter(|k| !n.contains_key(*k)).copied().collect();
    let mut added: Vec<&str> = n.keys().filter(|k| !o.contains_key(*k)).copied().collect();
    let mut parts = Vec::new();
    let mut guesses = Vec::new();

    // Whole objects gone or new: name the object, not every field in it.
    let gone_objects = whole_objects(&removed, &o);
    let new_objects = whole_objects(&added, &n);
    for obj in &gone_objects {
        parts.push(format!("`{obj}` {} missing", o[obj]));
    }
    for obj in &new_objects {
        let children: Vec<&str> = added
            .iter()
            .filter(|p| {
                parent(p) == *obj
                    || bare(p)
                        .strip_prefix(*obj)
                        .is_some_and(|r| r.starts_with("[]."))
            })
            .map(|p| leaf_name(p))
            .collect();
        parts.push(format!(
            "new `{obj}` {} with {}",
            n[obj],
            dedup(children).join(", ")
        ));
    }
    for g in &gone_objects {
        for a in &new_objects {
            let gl: BTreeSet<&str> = removed
                .iter()
                .filter(|p| bare(p).starts_with(&format!("{g}.")))
                .map(|p| leaf_name(p))
                .collect();
            let al: BTreeSet<&str> = added
                .iter()
                .filter(|p| bare(p).starts_with(&format!("{a}.")))
                .map(|p| leaf_name(p))
                .collect();
            let all_new: BTreeSet<&str> = added.iter().map(|p| leaf_name(p)).collect();
            let shared = gl.iter().filter(|l| all_new.contains(*l)).count();
            if !gl.is_empty()
                && (shared * 2 >= gl.len() || gl.intersection(&al).count() * 2 >= al.len().max(1))
            {
                guesses.push(format!("looks like `{g}` moved to `{a}`"));
            }
        }
    }
    let inside = |p: &str, objs: &[&str]| {
        objs.iter().any(|obj| {
            bare(p) == *obj
                || bare(p).starts_with(&format!("{obj}."))
                || bare(p).starts_with(&format!("{obj}[]"))
        })
    };
    removed.retain(|p| !inside(p, &gone_objects));
    added.retain(|p| !inside(p, &new_objects));

    // Single fields: moved (same name elsewhere) or renamed (same parent and type).
    let mut paired = BTreeSet::new();
    for r in &removed {
        let alike = |a: &&&str| !paired.contains(**a) && base_type(o[r]) == base_type(n[**a]);
        let candidate = added
            .iter()
            .find(|a| alike(a) && leaf_name(a) == leaf_name(r));
        let candidate =
            candidate.or_else(|| added.iter().find(|a| alike(a) && parent(a) == parent(r)));
        if let Some(a) = candidate {
            paired.insert(*a);
            paired.insert(*r);
            if leaf_name(a) == leaf_name(r) {
                parts.push(format!("`{r}` moved to `{a}`"));
            } else {
                parts.push(format!("`{r}` renamed to `{a}`"));
            }
        }
    }
    let removed: Vec<&str> = removed
        .into_iter()
        .filter(|p| !paired.contains(p))
        .collect();
    let added: Vec<&str> = added.into_iter().filter(|p| !paired.contains(p)).collect();
    if !removed.is_empty() {
        parts.push(format!("removed {}", ticks(&removed)));
    }
    let (top, nested): (Vec<&str>, Vec<&str>) = added
        .iter()
        .partition(|p| !bare(p).contains('.') && !bare(p).contains("[]"));
    if !top.is_empty() {
        parts.push(format!("new top-level {}", top.join(", ")));
    }
    if !nested.is_empty() {
        parts.push(format!("new {}", ticks(&nested)));
    }
    for (path, before) in &o {
        if let Some(after) = n.get(path) {
            if before != after {
                parts.push(format!("`{path}` {before} → {after}"));
            }
        }
    }
    let optional_changes: Vec<String> = old
        .fields
        .keys()
        .filter_map(|k| {
            let now = new.fields.keys().find(|n| bare(n) == bare(k))?;
            (now != k).then(|| {
                if now.ends_with('?') {
                    format!("`{}` now sometimes absent", bare(k))
                } else {
                    format!("`{}` now always present", bare(k))
                }
            })
        })
        .collect();
    parts.extend(optional_changes);
    if parts.is_empty() && old.count_text() != new.count_text() {
        parts.push(format!("×{} → ×{}", old.count_text(), new.count_text()));
    }
    let mut text = parts.join("; ");
    if !guesses.is_empty() {
        text = format!("{text} — {}", guesses.join("; "));
    }
    text
}

/// The JSON type a description starts with: literal values are strings.
fn base_type(desc: &str) -> &str {
    if desc.starts_with('"') {
        return "string";
    }
    desc.split([':', ' ']).next().unwrap_or(desc)
}

/// Paths that are objects (or arrays) whose every descendant is also in `paths`.
fn whole_objects<'a>(paths: &[&'a str], all: &BTreeMap<&str, &str>) -> Vec<&'a str> {
    paths
        .iter()
        .filter(|p| all[*p].starts_with("object") || all[*p].starts_with("array"))
        .filter(|p| {
            !paths.iter().any(|q| {
                *q != **p
                    && p.starts_with(&format!("{q}."))
                    && (all[q].starts_with("object") || all[q].starts_with("array"))
            })
        })
        .copied()
        .collect()
}

fn dedup(v: Vec<&str>) -> Vec<&str> {
    let mut seen = BTreeSet::new();
    v.into_iter().filter(|x| seen.insert(*x)).collect()
}

fn ticks(paths: &[&str]) -> String {
    paths
        .iter()
        .map(|p| format!("`{p}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A unified diff (3 lines of context), coloured for a terminal when `color` is set.
pub fn unified_diff(old: &str, new: &str, color: bool) -> String {
    let diff = TextDiff::configure()
        .algorithm(similar::Algorithm::Patience)
        .diff_lines(old, new);
    let mut out = String::new();
    for group in diff.grouped_ops(3) {
        let (first, last) = (&group[0], &group[group.len() - 1]);
        let header = format!(
            "@@ -{},{} +{},{} @@",
            first.old_range().start + 1,
            last.old_range().end - first.old_range().start,
            first.new_range().start + 1,
            last.new_range().end - first.new_range().start
        );
        out += &paint(&header, color);
        out.push('\n');
        for op in &group {
            for change in diff.iter_changes(op) {
                let sign = match change.tag() {
                    ChangeTag::Delete => "-",
                    ChangeTag::Insert => "+",
                    ChangeTag::Equal => " ",
                };
                let line = format!("{sign}{}", change.value().trim_end_matches('\n'));
                out += &paint(&line, color);
                out.push('\n');
            }
        }
    }
    out
}

/// A line of a unified diff, coloured by its first character when `color` is set:
/// removed red, added green, hunk headers cyan. Control and bidi characters of the
/// line are escaped first ([`printable`]): a diff is for people.
pub fn paint(line: &str, color: bool) -> String {
    let line = printable(line);
    use anstyle::AnsiColor;
    let style = match line.as_bytes().first() {
        Some(b'-') => AnsiColor::Red.on_default(),
        Some(b'+') => AnsiColor::Green.on_default(),
        Some(b'@') => AnsiColor::Cyan.on_default(),
        _ => anstyle::Style::new(),
    };
    if color && style != anstyle::Style::new() {
        format!("{style}{line}{style:#}")
    } else {
        line.into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(fields: &[(&str, &str)]) -> KindSection {
        KindSection {
            count: 6,
            stream: false,
            learned: None,
            fields: fields
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    #[test]
    fn the_payload_to_data_regression_is_named() {
        let old = kind(&[
            ("payload", "object"),
            ("payload.agent_name", "\"data_helper\""),
            ("payload.run_id", "string: id run_<uuid>"),
            ("payload.timestamp", "number: epoch seconds"),
            ("payload.tool_name", "\"aws_cost_analyzer\""),
            ("payload.user_id", "\"x\""),
            ("type", "\"tool_executing\""),
        ]);
        let new = kind(&[
            ("correlation_id", "string: id corr_<hex>"),
            ("data", "object"),
            ("data.metadata", "object"),
            ("data.metadata.agent_name", "\"data_helper\""),
            ("data.status", "string"),
            ("data.timestamp", "number: epoch seconds"),
            ("data.tool_name", "\"aws_cost_analyzer\""),
            ("run_id", "string: id run_<uuid>"),
            ("type", "\"tool_executing\""),
            ("user_id", "string"),
        ]);
        insta::assert_snapshot!(kind_changes(&old, &new), @"`payload` object missing; new `data` object with metadata, status, timestamp, tool_name; new top-level correlation_id, run_id, user_id — looks like `payload` moved to `data`");
    }

    #[test]
    fn renames_moves_and_type_changes() {
        let old = kind(&[
            ("a", "object"),
            ("a.x", "float"),
            ("a.y", "string"),
            ("n", "float"),
            ("t", "string: ISO-8601 timestamp (Z)"),
        ]);
        let new = kind(&[
            ("a", "object"),
            ("a.z", "float"),
            ("b", "object"),
            ("b.y", "string"),
            ("n", "integer"),
            ("t", "number: epoch seconds"),
            ("extra?", "boolean"),
        ]);
        insta::assert_snapshot!(kind_changes(&old, &new), @"new `b` object with y; `a.x` renamed to `a.z`; removed `a.y`; new top-level extra; `n` float → integer; `t` string: ISO-8601 timestamp (Z) → number: epoch seconds");
    }

    #[test]
    fn unified_diff_marks_lines() {
        let d = unified_diff("a\nb\nc\n", "a\nB\nc\n", false);
        assert_eq!(d, "@@ -1,3 +1,3 @@\n a\n-b\n+B\n c\n");
    }
}
