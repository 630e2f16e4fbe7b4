//! `snapshot --learn N`, `check --learn N` and [`Gate::learn`](crate::Gate::learn): a
//! snapshot that learned the noise of the clean build.
//!
//! The recording is read once and replayed N times against the build it came from
//! (captures `<name>.learnK.jsonl` in the runs directory); what varies between the
//! recording and those runs becomes the snapshot's `(learned: …)` lines
//! ([`crate::structure::learn`]), which `check` then enforces as written.

use std::path::Path;

use super::check::{
    judge_replay, replay, CheckConfig, CheckError, Run, SnapshotPolicy, WrittenSnapshot,
};
use super::CheckResult;
use crate::recording::Recording;
use crate::replay::ReplayReport;
use crate::structure::learn::{learn, Learned};
use crate::structure::snapshot::{self, SnapshotError};
use crate::structure::StructureConfig;

/// `wsreplay snapshot RECORDING --learn N`: writes `DIR/<name>.snap`, learned from
/// `config.learn` replays. Its warnings hold what the reader tolerated in the
/// recording, what the replays reported and what varied but could not be learned.
pub async fn learn_snapshot(
    recording_path: &Path,
    config: &CheckConfig,
) -> Result<WrittenSnapshot, CheckError> {
    let recording = Recording::read(recording_path)?;
    let (learned, first) = learn_replays(recording_path, &recording, config).await?;
    let path = snapshot::path_for(&config.snapshots.dir, &snapshot::name_of(recording_path));
    snapshot::write(&path, recording_path, &learned.structure.render())?;
    let mut warnings = first.warnings;
    warnings.extend(first.replay_problems);
    Ok(WrittenSnapshot {
        path,
        structure: learned.structure,
        warnings,
    })
}

/// `check --learn N` on a recording without a snapshot: the result of the first
/// learning run (no snapshot yet), and the learned snapshot written as `.snap.new` for
/// review unless the policy is read-only.
pub(super) async fn first_check(
    recording_path: &Path,
    recording: &Recording,
    config: &CheckConfig,
) -> Result<CheckResult, CheckError> {
    let (learned, mut result) = learn_replays(recording_path, recording, config).await?;
    write_pending(&learned, &mut result, &config.snapshots, recording_path)?;
    Ok(result)
}

/// Writes the learned snapshot as `.snap.new` for review (unless the policy is
/// read-only), and names it in `result`.
pub(super) fn write_pending(
    learned: &Learned,
    result: &mut CheckResult,
    policy: &SnapshotPolicy,
    recording_path: &Path,
) -> Result<(), SnapshotError> {
    if !policy.read_only {
        let path = snapshot::new_path_for(&policy.dir, &result.name);
        snapshot::write(&path, recording_path, &learned.structure.render())?;
        result.written = Some(path);
    }
    Ok(())
}

/// Replays the recording `config.learn` times and learns from the captures.
async fn learn_replays(
    recording_path: &Path,
    recording: &Recording,
    config: &CheckConfig,
) -> Result<(Learned, CheckResult), CheckError> {
    let name = snapshot::name_of(recording_path);
    let read_only = SnapshotPolicy {
        read_only: true,
        ..config.snapshots.clone()
    };
    let capture = |k: usize| Run {
        recording_path,
        recording,
        stored: &None,
        capture: format!("{name}.learn{k}.jsonl"),
    };
    let first = capture(1);
    let (captured, report) = replay(&first, config).await?;
    // Only the first run is judged (against no snapshot): the check's result.
    let result = judge_replay(&first, &captured, &report, config, &read_only)?;
    let mut learning = Learning::new(captured, result);
    for k in 2..=config.learn {
        let (captured, report) = replay(&capture(k), config).await?;
        learning.add(captured, &report);
    }
    Ok(learning.finish(recording, &config.replayed_routes(), &config.structure))
}

/// The learning runs so far: their captures, what their replays reported, and the
/// result of checking the first.
pub(super) struct Learning {
    captures: Vec<Recording>,
    problems: Vec<String>,
    first: CheckResult,
}

impl Learning {
    /// The first learning run: its capture, and its result (judged with no snapshot).
    pub(super) fn new(capture: Recording, first: CheckResult) -> Learning {
        let problems = first.replay_problems.iter();
        Learning {
            problems: problems.map(|p| format!("learning run 1: {p}")).collect(),
            captures: vec![capture],
            first,
        }
    }

    /// Adds a further learning run: its capture, and what its replay reported.
    pub(super) fn add(&mut self, capture: Recording, report: &ReplayReport) {
        let k = self.captures.len() + 1;
        let problems = crate::replay::problem_lines(&report.problems).into_iter();
        (self.problems).extend(problems.map(|p| format!("learning run {k}: {p}")));
        self.captures.push(capture);
    }

    /// Learns from the runs on the replayed `routes`: what was learned, and the result
    /// of the first run (no snapshot yet), with the replay problems of every run and a
    /// warning for each variation that could not be learned.
    pub(super) fn finish(
        self,
        recording: &Recording,
        routes: &[String],
        structure: &StructureConfig,
    ) -> (Learned, CheckResult) {
        let learned = learn(recording, &self.captures, routes, structure);
        let mut first = self.first;
        first.replay_problems = self.problems;
        let unlearned = learned.unlearned.iter();
        (first.warnings).extend(unlearned.map(|u| format!("not learned: {u}")));
        (learned, first)
    }
}
