//! Checking recordings as `check` does: each recording's first replay, then its confirm
//! runs (`--confirm N`: a difference replayed again, flaky when it does not reproduce)
//! or, for a recording without a snapshot, its learning runs (`--learn N`,
//! [`super::learn`]); many recordings at once (`-j`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::check::{replay_and_judge, CheckConfig, CheckError, Run, SnapshotPolicy};
use super::result::{CheckResult, Flaky};
use super::verdict::Verdict;
use crate::recording::Recording;
use crate::structure::diff::RouteDiff;
use crate::structure::snapshot;

/// Checks one recording: replay, normalise, compare, maybe write `.snap.new`.
pub async fn check_one(recording_path: &Path, config: &CheckConfig) -> CheckResult {
    match check_inner(recording_path, config).await {
        Ok(r) => r,
        Err(e) => CheckResult::failed(recording_path, e.to_string()),
    }
}

async fn check_inner(
    recording_path: &Path,
    config: &CheckConfig,
) -> Result<CheckResult, CheckError> {
    let recording = Recording::read(recording_path)?;
    let name = snapshot::name_of(recording_path);
    let snap_path = snapshot::path_for(&config.snapshots.dir, &name);
    let stored = snapshot::read_structure(&snap_path)?;
    // Learning writes a .snap.new; where none may be written, one run does.
    if stored.is_none() && config.learn > 0 && !config.snapshots.read_only {
        return super::learn::first_check(recording_path, &recording, config).await;
    }
    let first = Run {
        recording_path,
        recording: &recording,
        stored: &stored,
        capture: format!("{name}.jsonl"),
    };
    let mut result = replay_and_judge(first, config, &config.snapshots).await?;
    if !Confirmation::wanted(&result, config.confirm) {
        return Ok(result);
    }
    // Confirm runs: write nothing for review, keep their captures apart.
    let policy = SnapshotPolicy {
        read_only: true,
        ..config.snapshots.clone()
    };
    let mut confirmation = Confirmation::default();
    for k in 1..=config.confirm {
        let again = Run {
            recording_path,
            recording: &recording,
            stored: &stored,
            capture: format!("{name}.confirm{k}.jsonl"),
        };
        confirmation.add(replay_and_judge(again, config, &policy).await);
    }
    confirmation.settle(&mut result, config.confirm);
    Ok(result)
}

/// How the confirm runs of a difference fared (`--confirm N`).
#[derive(Debug, Default)]
pub(super) struct Confirmation {
    same: usize,
    differed: usize,
}

impl Confirmation {
    /// Whether `result` calls for confirm runs: a difference from a snapshot.
    pub(super) fn wanted(result: &CheckResult, confirm: usize) -> bool {
        confirm > 0 && result.verdict() == Verdict::Differs && !result.snapshot_missing
    }

    /// Counts a confirm run; one that could not be checked counts neither way.
    pub(super) fn add<E>(&mut self, run: Result<CheckResult, E>) {
        match run {
            Ok(r) if r.error.is_none() && r.routes.iter().all(RouteDiff::same) => self.same += 1,
            Ok(r) if r.error.is_none() => self.differed += 1,
            _ => {}
        }
    }

    /// Marks the first run's `result` flaky when some confirm run was the same (and
    /// removes its `.snap.new`: a difference that did not reproduce is no change to
    /// review), else notes how many confirm runs reproduced it.
    pub(super) fn settle(self, result: &mut CheckResult, runs: usize) {
        if self.same == 0 {
            result.reproduced = self.differed;
            return;
        }
        if let Some(path) = result.written.take() {
            let _ = std::fs::remove_file(path);
        }
        result.flaky = Some(Flaky {
            same: self.same,
            runs,
        });
    }
}

/// Checks many recordings, at most `jobs` at a time; results in input order.
pub async fn check_all(files: Vec<PathBuf>, config: CheckConfig, jobs: usize) -> Vec<CheckResult> {
    let config = Arc::new(config);
    let permits = Arc::new(tokio::sync::Semaphore::new(jobs.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    for (i, file) in files.iter().cloned().enumerate() {
        let (config, permits) = (config.clone(), permits.clone());
        tasks.spawn(async move {
            let _permit = permits.acquire_owned().await;
            (i, check_one(&file, &config).await)
        });
    }
    let mut results: Vec<Option<CheckResult>> = vec![None; files.len()];
    while let Some(done) = tasks.join_next().await {
        if let Ok((i, r)) = done {
            results[i] = Some(r);
        }
    }
    results
        .into_iter()
        .zip(files)
        .map(|(r, f)| {
            r.unwrap_or_else(|| CheckResult::failed(&f, "the check task panicked".into()))
        })
        .collect()
}
