//! The HTML report of `wsreplay check --html FILE` (and `diff --html FILE`).
//!
//! One self-contained file, no scripts and nothing fetched: a table with a row per
//! recording and route (pass/fail and the semantic summary from [`crate::structure::diff`]),
//! then per recording the faults injected, timing breaches, replay problems, the
//! unified diff of each changed route with the changed key paths highlighted, and the
//! session as a sequence diagram ([`crate::structure::sequence`]) drawn as inline SVG, with the
//! first message whose kind's structure differs marked.

use std::fmt::Write as _;

use super::Exporter;
use crate::gate::{CheckResult, Verdict};
use crate::structure::sequence::{ArrowKind, Sequence};
use crate::text::printable;

/// Most arrows drawn per diagram (the rest is summarised), around the marked one.
const MAX_ARROWS: usize = 400;

const STYLE: &str = r#"
body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #1d2330; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 18px; margin: 32px 0 8px; border-bottom: 1px solid #d0d5de; padding-bottom: 4px; }
h3 { font-size: 15px; margin: 18px 0 6px; }
table.results { border-collapse: collapse; margin: 12px 0; }
table.results th, table.results td { border: 1px solid #d0d5de; padding: 4px 10px; text-align: left; vertical-align: top; }
table.results th { background: #eef1f6; }
.pass { color: #0a7a32; font-weight: 600; }
.fail { color: #c0262d; font-weight: 600; }
.slow { color: #a35b00; font-weight: 600; }
.flaky { color: #8a6d00; font-weight: 600; }
.error { color: #7a1fa2; font-weight: 600; }
pre.diff { background: #f7f8fa; border: 1px solid #d0d5de; padding: 8px; overflow-x: auto; font: 12px/1.35 ui-monospace, monospace; }
pre.diff span { display: block; white-space: pre; }
pre.diff .del { background: #ffe5e5; color: #8c1d18; }
pre.diff .add { background: #e3f7e8; color: #135c2b; }
pre.diff .hunk { color: #1b6b8f; }
pre.diff mark { background: #ffd54a; color: inherit; font-weight: 700; }
ul.summary li { margin: 2px 0; }
.diagram { overflow-x: auto; border: 1px solid #d0d5de; background: #fff; }
"#;

/// The HTML report.
pub struct Html;

impl Exporter for Html {
    fn export(&self, results: &[CheckResult], out: &mut dyn std::io::Write) -> std::io::Result<()> {
        out.write_all(html(results).as_bytes())
    }
}

/// The whole report for these results.
fn html(results: &[CheckResult]) -> String {
    let mut out = String::new();
    let count = |v: Verdict| results.iter().filter(|r| r.verdict() == v).count();
    let _ = write!(
        out,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>wsreplay report</title><style>{STYLE}</style></head><body>\n\
         <h1>wsreplay report</h1>\n<p>{} recording(s): {} same, {} outside the timing envelope, {} flaky, {} differ, {} could not be checked.</p>\n",
        results.len(),
        count(Verdict::Same),
        count(Verdict::Slow),
        count(Verdict::Flaky),
        count(Verdict::Differs),
        count(Verdict::Error),
    );
    out += "<table class=\"results\"><tr><th>recording</th><th>route</th><th>result</th><th>what changed</th></tr>\n";
    for (i, r) in results.iter().enumerate() {
        rows(&mut out, i, r);
    }
    out += "</table>\n";
    for (i, r) in results.iter().enumerate() {
        section(&mut out, i, r);
    }
    out += "</body></html>\n";
    out
}

/// The table rows of one recording: errors, a missing snapshot, each route, timing.
fn rows(out: &mut String, i: usize, r: &CheckResult) {
    let name = format!(
        "<a href=\"#rec{i}\">{}</a>",
        esc(&r.recording.display().to_string())
    );
    let mut row = |route: &str, class: &str, result: &str, what: &str| {
        let _ = writeln!(
            out,
            "<tr><td>{name}</td><td>{}</td><td class=\"{class}\">{result}</td><td>{}</td></tr>",
            esc(route),
            esc(what)
        );
    };
    if let Some(e) = &r.error {
        row("", "error", "could not check", e);
    }
    if r.snapshot_missing {
        row("", "fail", "FAIL: no snapshot", "run `wsreplay snapshot`");
    }
    for route in &r.routes {
        if route.same() {
            row(&route.route, "pass", "PASS", "");
        } else if let Some(flaky) = &r.flaky {
            let what = format!("{flaky}: {}", route.summary.join("; "));
            row(&route.route, "flaky", "FLAKY", &what);
        } else {
            row(&route.route, "fail", "FAIL", &route.summary.join("; "));
        }
    }
    for b in &r.timing {
        row(&b.route, "slow", "TIMING", &b.to_string());
    }
}

fn section(out: &mut String, i: usize, r: &CheckResult) {
    let class = match r.verdict() {
        Verdict::Same => "pass",
        Verdict::Slow => "slow",
        Verdict::Flaky => "flaky",
        Verdict::Differs => "fail",
        Verdict::Error => "error",
    };
    let _ = writeln!(
        out,
        "<h2 id=\"rec{i}\">{} — <span class=\"{class}\">{}</span></h2>",
        esc(&r.recording.display().to_string()),
        esc(r.status())
    );
    if let Some(e) = &r.error {
        let _ = writeln!(out, "<p class=\"error\">{}</p>", esc(e));
    }
    list(out, "Faults injected (--fault)", &r.faults);
    if let Some(flaky) = &r.flaky {
        let _ = writeln!(
            out,
            "<p class=\"flaky\">Flaky: {flaky}; what varied in the first run is below.</p>"
        );
    }
    for route in r.routes.iter().filter(|r| !r.same()) {
        let what = if r.flaky.is_some() {
            "what varied"
        } else {
            "what changed"
        };
        let _ = writeln!(out, "<h3>route {}: {what}</h3>", esc(&route.route));
        list(out, "", &route.summary);
    }
    let timing: Vec<String> = r.timing.iter().map(ToString::to_string).collect();
    list(
        out,
        "Timing outside the envelope (--timing; not a structure difference)",
        &timing,
    );
    list(out, "Values the server issued (live values)", &r.live);
    list(out, "Replay problems", &r.replay_problems);
    if let Some(diagram) = &r.diagram {
        let marked = diagram.first_difference;
        let _ = writeln!(
            out,
            "<h3>Sequence diagram{}</h3>\n<div class=\"diagram\">{}</div>",
            if marked.is_some() {
                " (first differing message in red)"
            } else {
                ""
            },
            svg(&diagram.sequence, marked)
        );
    }
    for route in r.routes.iter().filter(|r| !r.diff.is_empty()) {
        let _ = writeln!(
            out,
            "<h3>route {}: structure diff</h3><pre class=\"diff\"><span class=\"hunk\">--- {} (snapshot) route {}\n+++ new run</span>{}</pre>",
            esc(&route.route),
            esc(&r.name),
            esc(&route.route),
            diff_lines(&route.diff)
        );
    }
}

fn list(out: &mut String, title: &str, items: &[String]) {
    if items.is_empty() {
        return;
    }
    if !title.is_empty() {
        let _ = writeln!(out, "<h3>{}</h3>", esc(title));
    }
    out.push_str("<ul class=\"summary\">");
    for item in items {
        let _ = write!(out, "<li>{}</li>", esc(item));
    }
    out.push_str("</ul>\n");
}

/// A unified diff as coloured lines; the key path of each changed field line (its
/// first column, or the kind heading) is highlighted.
fn diff_lines(diff: &str) -> String {
    let mut out = String::new();
    for line in diff.lines() {
        let (class, body) = match line.as_bytes().first() {
            Some(b'-') => ("del", &line[1..]),
            Some(b'+') => ("add", &line[1..]),
            Some(b'@') => ("hunk", line),
            _ => ("", line),
        };
        let text = if matches!(class, "del" | "add") {
            let sign = &line[..1];
            let trimmed = body.trim_start();
            let indent = &body[..body.len() - trimmed.len()];
            let end = trimmed.find("  ").unwrap_or(trimmed.len());
            let (path, rest) = trimmed.split_at(end);
            if path.is_empty() {
                esc(line)
            } else {
                format!("{sign}{indent}<mark>{}</mark>{}", esc(path), esc(rest))
            }
        } else {
            esc(line)
        };
        let _ = write!(out, "<span class=\"{class}\">{text}</span>");
    }
    out
}

/// The sequence as an SVG: one lifeline per participant, one arrow per run of
/// messages, faults as notes; `marked` in red.
pub fn svg(seq: &Sequence, marked: Option<usize>) -> String {
    const COL: usize = 160;
    const ROW: usize = 20;
    const TOP: usize = 50;
    const LEFT: usize = 150;
    let start = marked.map_or(0, |m| m.saturating_sub(MAX_ARROWS / 2));
    let end = (start + MAX_ARROWS).min(seq.arrows.len());
    let shown = &seq.arrows[start..end];
    let x = |p: usize| LEFT + p * COL + COL / 2;
    let width = LEFT + seq.participants.len().max(1) * COL + 20;
    let extra = usize::from(start > 0) + usize::from(end < seq.arrows.len());
    let height = TOP + (shown.len() + extra + 1) * ROW + 10;
    let mut out = String::new();
    let _ = write!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" font-family=\"system-ui, sans-serif\" font-size=\"12\">\
         <defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"9\" refY=\"5\" markerWidth=\"7\" markerHeight=\"7\" orient=\"auto-start-reverse\"><path d=\"M0,0 L10,5 L0,10 z\" fill=\"#33415c\"/></marker>\
         <marker id=\"arrow-red\" viewBox=\"0 0 10 10\" refX=\"9\" refY=\"5\" markerWidth=\"7\" markerHeight=\"7\" orient=\"auto-start-reverse\"><path d=\"M0,0 L10,5 L0,10 z\" fill=\"#d0021b\"/></marker></defs>"
    );
    for (i, p) in seq.participants.iter().enumerate() {
        let cx = x(i);
        let _ = write!(
            out,
            "<rect x=\"{}\" y=\"8\" width=\"{}\" height=\"26\" rx=\"4\" fill=\"#eef1f6\" stroke=\"#8a94a6\"/>\
             <text x=\"{cx}\" y=\"25\" text-anchor=\"middle\" font-weight=\"600\">{}</text>\
             <line x1=\"{cx}\" y1=\"34\" x2=\"{cx}\" y2=\"{}\" stroke=\"#b6bdc9\" stroke-dasharray=\"4 3\"/>",
            cx - COL / 2 + 8,
            COL - 16,
            esc(&p.name()),
            height - 4
        );
    }
    let mut y = TOP;
    if start > 0 {
        let _ = write!(
            out,
            "<text x=\"8\" y=\"{y}\" fill=\"#66708a\">… {start} earlier</text>"
        );
        y += ROW;
    }
    for (offset, a) in shown.iter().enumerate() {
        let is_marked = marked == Some(start + offset);
        let (x1, x2) = (x(a.from), x(a.to));
        if is_marked {
            let _ = write!(
                out,
                "<rect x=\"2\" y=\"{}\" width=\"{}\" height=\"{ROW}\" fill=\"#ffe1e1\"/>\
                 <text x=\"{}\" y=\"{}\" fill=\"#d0021b\" font-weight=\"700\" text-anchor=\"end\">first diff ▶</text>",
                y - ROW / 2 - 2,
                width - 4,
                LEFT - 4,
                y + 4
            );
        }
        let t = a.t_us as f64 / 1e6;
        let _ = write!(
            out,
            "<text x=\"8\" y=\"{}\" fill=\"#66708a\">{t:.3} s</text>",
            y + 4
        );
        match a.kind {
            ArrowKind::Fault => {
                let text = a.text();
                let w = (text.chars().count() * 7 + 12).max(COL - 8);
                let _ = write!(
                    out,
                    "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"18\" fill=\"#fff3cd\" stroke=\"#d39e00\"/>\
                     <text x=\"{x1}\" y=\"{}\" text-anchor=\"middle\" fill=\"#7a5200\">{}</text>",
                    x1.saturating_sub(w / 2),
                    y - 12,
                    w,
                    y + 1,
                    esc(&text)
                );
            }
            ArrowKind::Message | ArrowKind::Close => {
                let (color, marker) = if is_marked {
                    ("#d0021b", "arrow-red")
                } else {
                    ("#33415c", "arrow")
                };
                let dash = if a.kind == ArrowKind::Close {
                    " stroke-dasharray=\"5 3\""
                } else {
                    ""
                };
                let _ = write!(
                    out,
                    "<line x1=\"{x1}\" y1=\"{y}\" x2=\"{x2}\" y2=\"{y}\" stroke=\"{color}\" stroke-width=\"{}\"{dash} marker-end=\"url(#{marker})\"/>\
                     <text x=\"{}\" y=\"{}\" text-anchor=\"middle\" fill=\"{color}\"{}>{}</text>",
                    if is_marked { 2.5 } else { 1.2 },
                    (x1 + x2) / 2,
                    y - 4,
                    if is_marked { " font-weight=\"700\"" } else { "" },
                    esc(&a.text())
                );
            }
        }
        y += ROW;
    }
    if end < seq.arrows.len() {
        let _ = write!(
            out,
            "<text x=\"8\" y=\"{y}\" fill=\"#66708a\">… {} more</text>",
            seq.arrows.len() - end
        );
    }
    out += "</svg>";
    out
}

/// Text made safe for HTML and SVG.
/// Text for HTML and inline SVG: markup characters as entities, and control and bidi
/// characters of recorded data escaped (they are not even allowed in XML text).
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in printable(s).chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorded_text_is_escaped_for_html_and_svg() {
        assert_eq!(
            esc("a\u{1b}]0;t\u{7}<b>\u{202e}&\"'"),
            "a\\x1b]0;t\\x07&lt;b&gt;\\u{202e}&amp;&quot;&#39;"
        );
    }

    #[test]
    fn changed_paths_are_highlighted_and_text_escaped() {
        let html = diff_lines("@@ -1 +1 @@\n-payload.x  string\n+data.x     <b>\n same  y\n");
        assert_eq!(
            html,
            "<span class=\"hunk\">@@ -1 +1 @@</span>\
             <span class=\"del\">-<mark>payload.x</mark>  string</span>\
             <span class=\"add\">+<mark>data.x</mark>     &lt;b&gt;</span>\
             <span class=\"\"> same  y</span>"
        );
    }
}
