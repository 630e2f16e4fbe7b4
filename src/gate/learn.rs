//! `snapshot --learn N` and `check --learn N`: a snapshot that learned the noise of the
//! clean build.
//!
//! The recording is read once and replayed N times against the build it came from
//! (captures `<name>.learnK.jsonl` in the runs directory); what varies between the
//! recording and those runs becomes the snapshot's `(learned: …)` lines
//! ([`crate::structure::learn`]), which `check` then enforces as written.

use std::path::Path;

use super::check::{judge_replay, replay, CheckConfig, CheckError, Run, SnapshotPolicy, WrittenSnapshot};
use super::CheckResult;
use crate::recording::Recording;
use crate::structure::learn::{learn, Learned};
use crate::structure::snapshot;

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
    if !config.snapshots.read_only {
        let path = snapshot::new_path_for(&config.snapshots.dir, &result.name);
        snapshot::write(&path, recording_path, &learned.structure.render())?;
        result.written = Some(path);
    }
    Ok(result)
}

/// Replays the recording `config.learn` times and learns from the captures: what was
/// learned, and the result of the first run (with no snapshot to compare), whose
/// replay problems are those of every run and whose warnings name what could not be
/// learned.
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
    let (mut captures, mut problems, mut first) = (Vec::new(), Vec::new(), None);
    for k in 1..=config.learn.max(1) {
        let run = Run {
            recording_path,
            recording,
            stored: &None,
            capture: format!("{name}.learn{k}.jsonl"),
        };
        let (captured, report) = replay(&run, config).await?;
        let result = judge_replay(&run, &captured, &report, config, &read_only)?;
        problems.extend(
            (result.replay_problems.iter()).map(|p| format!("learning run {k}: {p}")),
        );
        first.get_or_insert(result);
        captures.push(captured);
    }
    let learned = learn(
        recording,
        &captures,
        &config.replayed_routes(),
        &config.structure,
    );
    let mut first = first.expect("at least one learning run");
    first.replay_problems = problems;
    (first.warnings).extend(learned.unlearned.iter().map(|u| format!("not learned: {u}")));
    Ok((learned, first))
}
