//! The short soak: many concurrent connections through the recording proxy; every
//! message arrives byte-identical and the recording holds exactly what was sent
//! (`wsreplay soak` runs the long version: 1,000 connections × 100 messages).

use wsreplay::measure::soak::Load;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_connections_lose_and_alter_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let report =
        wsreplay::measure::soak::run(&Load::count(100, 20), &dir.path().join("soak.jsonl"), None)
            .await
            .unwrap();
    assert_eq!(report.sent, 2_000);
    assert_eq!(report.echoed_intact, 2_000);
    assert_eq!(report.recorded, [2_000, 2_000]);
    assert!(report.checksums_match);
    assert!(report.passed(), "{}", report.render());
}

/// The long-recording soak, short: 100 connections sending the example system's
/// traffic for 20 seconds through a recorder that compresses and rotates. Every file
/// reads on its own (with `wsreplay show` too), together they hold exactly what the
/// clients sent and received, and they are at least 5× smaller than their JSON Lines
/// (`scripts/soak-check.sh` runs the 10-minute version with the release binary).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotating_compressing_recorder_under_a_timed_soak_keeps_everything_small() {
    let dir = tempfile::tempdir().unwrap();
    let load = Load {
        duration: Some(std::time::Duration::from_secs(20)),
        rate: Some(5.0),
        min_ratio: Some(5.0),
        ..Load::count(100, 0)
    };
    let rotate = "64KB".parse().unwrap();
    let report =
        wsreplay::measure::soak::run(&load, &dir.path().join("soak.jsonl.zst"), Some(rotate))
            .await
            .unwrap();
    assert!(report.sent >= 100, "{}", report.render());
    assert_eq!(report.echoed_intact, report.sent);
    assert_eq!(report.recorded, [report.sent, report.sent]);
    assert!(report.checksums_match);
    assert_eq!(report.recording_warnings, 0);
    assert!(report.ratio() >= 5.0, "{}", report.render());
    assert!(report.passed(), "{}", report.render());
    let files: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), report.files);
    assert!(files.len() >= 2, "expected rotation: {files:?}");
    for file in &files {
        let (code, stdout, stderr) = crate::support::run(&["show", file.to_str().unwrap()]);
        assert_eq!(code, 0, "{stdout}{stderr}");
        assert!(stderr.is_empty(), "{}: {stderr}", file.display());
    }
}
