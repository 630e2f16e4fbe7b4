//! What checking (or diffing) one recording found, and the text printed for it.

use std::path::{Path, PathBuf};

use super::verdict::Verdict;
use crate::structure::diff::{paint, RouteDiff};
use crate::structure::sequence::Sequence;
use crate::structure::snapshot;
use crate::structure::timing::Breach;
use crate::text::printable;

/// The result of checking (or diffing) one recording.
#[derive(Clone, Debug)]
pub struct CheckResult {
    pub recording: PathBuf,
    pub name: String,
    pub routes: Vec<RouteDiff>,
    /// Why the recording could not be checked.
    pub error: Option<String>,
    /// What the replay reported (step timeouts, unmatched requests): context, not verdict.
    pub replay_problems: Vec<String>,
    /// What the replay did with values the server issues (`3 live values substituted:
    /// sessionId ×41`): context, not verdict.
    pub live: Vec<String>,
    /// No snapshot existed yet.
    pub snapshot_missing: bool,
    /// Where the changed snapshot was written for review.
    pub written: Option<PathBuf>,
    /// Timing figures outside the envelope (`--timing`); never part of the structure.
    pub timing: Vec<Breach>,
    /// Faults the replay injected (`--fault`), one line per rule and message kind.
    pub faults: Vec<String>,
    /// The session as a sequence diagram (of the run; of B for `diff`).
    pub diagram: Option<Diagram>,
    /// What the reader tolerated in the recordings compared (`FILE:LINE: message`):
    /// a torn last line, a recording that was not stopped cleanly.
    pub warnings: Vec<String>,
    /// `check --confirm N`: the difference of the first run did not reproduce in
    /// every confirm run; `routes` hold the first run's difference (the part that varied).
    pub flaky: Option<Flaky>,
    /// `check --confirm N`: how many confirm runs differed too, when none was the same
    /// (the difference reproduced: a real one); 0 when none were made.
    pub reproduced: usize,
}

/// How a difference fared in the confirm runs of `check --confirm N`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Flaky {
    /// Confirm runs that were the same as the snapshot.
    pub same: usize,
    /// Confirm runs made.
    pub runs: usize,
}

impl std::fmt::Display for Flaky {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "differed once, then the same in {} of {} confirm run(s)",
            self.same, self.runs
        )
    }
}

/// A session as a sequence diagram, with the first difference marked.
#[derive(Clone, Debug)]
pub struct Diagram {
    pub sequence: Sequence,
    /// The arrow of the first message whose kind's structure differs, if any.
    pub first_difference: Option<usize>,
}

impl CheckResult {
    pub(crate) fn failed(recording: &Path, error: String) -> CheckResult {
        CheckResult {
            recording: recording.to_owned(),
            name: snapshot::name_of(recording),
            routes: Vec::new(),
            error: Some(error),
            replay_problems: Vec::new(),
            live: Vec::new(),
            snapshot_missing: false,
            written: None,
            timing: Vec::new(),
            faults: Vec::new(),
            diagram: None,
            warnings: Vec::new(),
            flaky: None,
            reproduced: 0,
        }
    }

    pub fn verdict(&self) -> Verdict {
        if self.error.is_some() {
            Verdict::Error
        } else if self.flaky.is_some() {
            Verdict::Flaky
        } else if self.snapshot_missing || self.routes.iter().any(|r| !r.same()) {
            Verdict::Differs
        } else if !self.timing.is_empty() {
            Verdict::Slow
        } else {
            Verdict::Same
        }
    }

    /// The headline of [`CheckResult::render`] and the reports.
    pub fn status(&self) -> &'static str {
        match self.verdict() {
            Verdict::Same => "same structure",
            Verdict::Slow => "same structure, TIMING OUTSIDE THE ENVELOPE",
            Verdict::Flaky => "FLAKY (the difference did not reproduce)",
            Verdict::Differs if self.snapshot_missing => "NO SNAPSHOT",
            Verdict::Differs => "STRUCTURE DIFFERS",
            Verdict::Error => "COULD NOT CHECK",
        }
    }

    /// The report printed for this recording. Recorded text in it (routes, kinds, keys,
    /// values) has its control and bidi characters escaped ([`printable`]).
    pub fn render(&self, color: bool) -> String {
        let mut out = String::new();
        push(
            &mut out,
            &format!("{}: {}\n", self.recording.display(), self.status()),
        );
        if let Some(e) = &self.error {
            push(&mut out, &format!("  error: {e}\n"));
        }
        if let Some(flaky) = &self.flaky {
            push(
                &mut out,
                &format!("  flaky: {flaky}; what varied in the first run:\n"),
            );
        }
        if self.reproduced > 0 {
            push(
                &mut out,
                &format!(
                    "  confirmed: the difference reproduced in {} confirm run(s)\n",
                    self.reproduced
                ),
            );
        }
        bullets(&mut out, "warnings:".into(), &self.warnings);
        bullets(&mut out, "faults injected (--fault):".into(), &self.faults);
        for r in self.routes.iter().filter(|r| !r.same()) {
            push(&mut out, &format!("  route {}:\n", r.route));
            for line in &r.summary {
                push(&mut out, &format!("    - {line}\n"));
            }
        }
        for r in self.routes.iter().filter(|r| !r.diff.is_empty()) {
            push(
                &mut out,
                &format!(
                    "\n--- {} (snapshot) route {}\n+++ new run\n",
                    self.name, r.route
                ),
            );
            for line in r.diff.lines() {
                out += &paint(line, color);
                out.push('\n');
            }
        }
        bullets(
            &mut out,
            format!(
                "timing (--timing, reported apart from the structure): {} figure(s) outside the envelope:",
                self.timing.len()
            ),
            &self.timing,
        );
        for line in &self.live {
            push(&mut out, &format!("  {line}\n"));
        }
        bullets(
            &mut out,
            format!("replay reported {} problem(s):", self.replay_problems.len()),
            &self.replay_problems,
        );
        if let Some(p) = &self.written {
            push(&mut out, &format!(
                "  wrote {} — review with `wsreplay review` (or `cargo insta review` in a Rust project)\n",
                p.display()
            ));
        }
        out
    }
}

/// An indented heading and its items as bullets; nothing when there are none.
fn bullets(out: &mut String, heading: String, items: &[impl std::fmt::Display]) {
    if items.is_empty() {
        return;
    }
    push(out, &format!("  {heading}\n"));
    for item in items {
        push(out, &format!("    - {item}\n"));
    }
}

/// Appends text that may hold recorded data, made safe to show.
fn push(out: &mut String, text: &str) {
    out.push_str(&printable(text));
}
