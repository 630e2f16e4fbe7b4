//! Streams in the structure (issue 17, item 3): a kind whose number per conversation
//! varied in the recording (the demo's progress updates: 2 in one chat, 1 in the other)
//! is a stream, so a build whose progress events vary in number from run to run passes
//! the gate every time; a kind that occurred once per chat stays exact, so a build that
//! sends it twice, or drops it in one chat, fails naming it.

use std::collections::HashMap;
use std::sync::Mutex;

use serde_json::Value;
use wsreplay::demo::backend::{Mutator, Outgoing, VariedProgress};
use wsreplay::{Gate, Verdict};

use crate::snapshots::RECORDINGS;
use crate::support::{check_checkout, check_demo_build, differences, seed, STEP_TIMEOUT};

/// 20 checks in a row against a build whose chats stream between `min` and `max`
/// progress updates (`None`: the chat's recorded number), drawn anew for every run.
async fn twenty_checks_with_progress(min: u64, max: Option<u64>) {
    let seed = seed();
    for run in 0..20 {
        let seed = seed.wrapping_add(run);
        let outcome =
            check_checkout(|c| c.progress = Some(VariedProgress { seed, min, max })).await;
        assert_eq!(
            outcome.verdict(),
            Verdict::Same,
            "run {run} (WSREPLAY_TEST_SEED={seed}):\n{}",
            outcome.report()
        );
    }
}

/// The recording's chats streamed 2 and 1 progress updates; the build streams 1-4.
#[tokio::test]
async fn progress_varying_in_number_passes_twenty_checks_in_a_row() {
    twenty_checks_with_progress(1, Some(4)).await;
}

/// The same with counts that do not disturb today's count-based pacing: between one and
/// the number the recording's chat had (1-2 and 1), never more.
#[tokio::test]
async fn fewer_progress_updates_pass_twenty_checks_in_a_row() {
    twenty_checks_with_progress(1, None).await;
}

#[tokio::test]
async fn a_once_per_chat_event_sent_twice_fails_naming_it() {
    // Each chat's second progress update becomes a second `agent_started`: the same
    // number of messages (today's pacing counts them), one chat announcing its start twice.
    let started: Mutex<HashMap<String, Value>> = Mutex::default();
    let progress: Mutex<HashMap<String, u32>> = Mutex::default();
    let twice = Mutator::new(move |to, v| {
        if to != Outgoing::Frontend {
            return true;
        }
        let chat = v["payload"]["message_id"].to_string();
        match v["type"].as_str() {
            Some("agent_started") => {
                started.lock().unwrap().insert(chat, v.clone());
            }
            Some("progress_update") => {
                let mut seen = progress.lock().unwrap();
                let n = seen.entry(chat.clone()).or_default();
                *n += 1;
                if *n == 2 {
                    *v = started.lock().unwrap()[&chat].clone();
                }
            }
            _ => {}
        }
        true
    });
    let lines = differences(&check_checkout(|c| c.mutate = Some(twice)).await);
    assert!(
        lines
            .iter()
            .any(|l| l == "agent_started (server→client): ×2 → ×3"),
        "{lines:#?}"
    );
}

#[tokio::test]
async fn a_once_per_chat_event_dropped_in_one_chat_fails_naming_it() {
    let dropped = Mutex::new(false);
    let drop_first = Mutator::new(move |to, v| {
        let first = to == Outgoing::Frontend && v["type"] == "agent_completed" && {
            let mut done = dropped.lock().unwrap();
            !std::mem::replace(&mut *done, true)
        };
        !first
    });
    let lines = differences(&check_checkout(|c| c.mutate = Some(drop_first)).await);
    assert!(
        lines
            .iter()
            .any(|l| l == "agent_completed (server→client): ×2 → ×1"),
        "{lines:#?}"
    );
}

/// `[structure] exact` in `wsreplay.toml` keeps a varying kind exact: the snapshot counts
/// it, and a build whose chat streams fewer progress updates than recorded fails naming it.
#[tokio::test]
async fn a_kind_declared_exact_is_compared_exactly() {
    use wsreplay::recording::Recording;
    use wsreplay::structure::{snapshot, Structure, StructureConfig};
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("wsreplay.toml");
    std::fs::write(&file, "[structure]\nexact = [\"progress_update\"]\n").unwrap();
    let recording = format!("{RECORDINGS}/checkout.jsonl");
    let config = StructureConfig {
        exact: vec!["progress_update".into()],
        ..StructureConfig::default()
    };
    let structure = Structure::of_with(&Recording::read(&recording).unwrap(), &config).render();
    assert!(
        structure.contains("### s2c progress_update ×3\n"),
        "{structure}"
    );
    let path = snapshot::path_for(dir.path(), "checkout");
    snapshot::write(&path, recording.as_ref(), &structure).unwrap();
    let gate = Gate::load(&recording)
        .snapshots(dir.path())
        .config(&file)
        .runs(dir.path().join("runs"))
        .step_timeout(STEP_TIMEOUT)
        .check_only();
    let one_each = VariedProgress {
        seed: 0,
        min: 1,
        max: Some(1),
    };
    let lines = differences(&check_demo_build(gate, |c| c.progress = Some(one_each)).await);
    assert!(
        lines
            .iter()
            .any(|l| l == "progress_update (server→client): ×3 → ×2"),
        "{lines:#?}"
    );
}
