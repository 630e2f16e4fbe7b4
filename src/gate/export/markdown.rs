//! The Markdown summary (`check --summary-md FILE`), e.g. for `$GITHUB_STEP_SUMMARY`.

use super::Exporter;
use crate::gate::CheckResult;

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
    let cell = |s: &str| s.replace('|', "\\|").replace('\n', " ");
    for r in results {
        if let Some(e) = &r.error {
            out += &format!(
                "| `{}` | | ⚠️ could not check | {} |\n",
                r.recording.display(),
                cell(e)
            );
        }
        if r.snapshot_missing {
            out += &format!(
                "| `{}` | | ❌ no snapshot | run `wsreplay snapshot` |\n",
                r.recording.display()
            );
        }
        for route in &r.routes {
            let (result, what) = if route.same() {
                ("✅ same", String::new())
            } else {
                ("❌ differs", route.summary.join("; "))
            };
            out += &format!(
                "| `{}` | {} | {result} | {} |\n",
                r.recording.display(),
                route.route,
                cell(&what)
            );
        }
        for b in &r.timing {
            out += &format!(
                "| `{}` | {} | ⏱ timing | {} |\n",
                r.recording.display(),
                b.route,
                cell(&b.to_string())
            );
        }
    }
    out
}
