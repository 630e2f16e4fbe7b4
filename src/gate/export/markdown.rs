//! The Markdown summary (`check --summary-md FILE`), e.g. for `$GITHUB_STEP_SUMMARY`.
//!
//! Recorded text (paths, routes, kinds, keys, values in the semantic summary) reaches a
//! page that renders Markdown and raw HTML, so every cell is written as literal text:
//! the punctuation Markdown acts on is backslash-escaped (no HTML tag, entity, link,
//! image, emphasis, math or code span can start), `@` cannot start a mention, control characters are escaped and
//! line breaks folded.

use super::Exporter;
use crate::gate::CheckResult;
use crate::text::printable;

/// The Markdown summary.
pub struct Markdown;

impl Exporter for Markdown {
    fn export(&self, results: &[CheckResult], out: &mut dyn std::io::Write) -> std::io::Result<()> {
        out.write_all(summary_markdown(results).as_bytes())
    }
}

/// A Markdown summary for a CI job page.
fn summary_markdown(results: &[CheckResult]) -> String {
    let mut out = String::from("## wsreplay structure check\n\n| recording | route | result | what changed |\n|---|---|---|---|\n");
    for r in results {
        if let Some(e) = &r.error {
            out += &format!(
                "| {} | | ⚠️ could not check | {} |\n",
                cell(&r.recording.display().to_string()),
                cell(e)
            );
        }
        if r.snapshot_missing {
            out += &format!(
                "| {} | | ❌ no snapshot | run `wsreplay snapshot` |\n",
                cell(&r.recording.display().to_string())
            );
        }
        for route in &r.routes {
            let (result, what) = match &r.flaky {
                _ if route.same() => ("✅ same", String::new()),
                Some(flaky) => ("⚠️ flaky", format!("{flaky}: {}", route.summary.join("; "))),
                None => ("❌ differs", route.summary.join("; ")),
            };
            out += &format!(
                "| {} | {} | {result} | {} |\n",
                cell(&r.recording.display().to_string()),
                cell(&route.route),
                cell(&what)
            );
        }
        for b in &r.timing {
            out += &format!(
                "| {} | {} | ⏱ timing | {} |\n",
                cell(&r.recording.display().to_string()),
                cell(&b.route),
                cell(&b.to_string())
            );
        }
    }
    out
}

/// `text` as a table cell that renders as exactly that text.
fn cell(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for c in printable(text).chars() {
        match c {
            '\n' => out.push(' '),
            // A zero-width space after `@` keeps a recorded name from pinging anyone.
            '@' => out.push_str("@\u{200b}"),
            c if "\\`*_[]<>&|!~#$(){}".contains(c) => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::structure::diff::RouteDiff;

    /// Rendered as GitHub does: tables, raw HTML allowed.
    fn html(markdown: &str) -> String {
        let parser = pulldown_cmark::Parser::new_ext(markdown, pulldown_cmark::Options::all());
        let mut out = String::new();
        pulldown_cmark::html::push_html(&mut out, parser);
        out
    }

    #[test]
    fn recorded_text_renders_as_text() {
        let hostile = [
            "<img src=x onerror=alert(1)>",
            "<svg onload=alert(1)>",
            "<script>alert(1)</script>",
            "<details open>",
            "[click](javascript:alert(1))",
            "![x](http://evil/x.png)",
            "`code` | pipe",
            "@everyone",
            "&lt;entity",
        ];
        let mut result = CheckResult::failed(std::path::Path::new("rec/`x`|.jsonl"), "e".into());
        result.error = None;
        result.routes = vec![RouteDiff {
            route: "<b>route</b>".into(),
            summary: hostile.iter().map(|s| s.to_string()).collect(),
            diff: "-a\n+b\n".into(),
        }];
        let mut out = Vec::new();
        Markdown.export(&[result], &mut out).unwrap();
        let markdown = String::from_utf8(out).unwrap();
        let page = html(&markdown);
        for tag in [
            "<img", "<svg", "<script", "<details", "<a ", "<b>", "<code>",
        ] {
            assert!(!page.contains(tag), "{tag} rendered:\n{markdown}\n{page}");
        }
        // One table row of four cells: the pipes stayed inside their cells.
        assert_eq!(page.matches("<td>").count(), 4, "{page}");
        // The text is all there, as text.
        assert!(
            page.contains("&lt;img src=x onerror=alert(1)&gt;"),
            "{page}"
        );
        assert!(page.contains("@\u{200b}everyone"), "{page}");
        assert!(page.contains("&amp;lt;entity"), "{page}");
    }
}
