//! The short soak: many concurrent connections through the recording proxy; every
//! message arrives byte-identical and the recording holds exactly what was sent
//! (`wsreplay soak` runs the long version: 1,000 connections × 100 messages).

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_connections_lose_and_alter_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let report = wsreplay::measure::soak::run(100, 20, &dir.path().join("soak.jsonl"), None)
        .await
        .unwrap();
    assert_eq!(report.sent, 2_000);
    assert_eq!(report.echoed_intact, 2_000);
    assert_eq!(report.recorded, [2_000, 2_000]);
    assert!(report.checksums_match);
    assert!(report.passed(), "{}", report.render());
}
