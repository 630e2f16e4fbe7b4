//! Long recordings: `--compress` (zstd, `.jsonl.zst`) under many connections, read by
//! every command as it is, and how much smaller it is on the demo system's traffic.

use wsreplay::measure::soak::Load;
use wsreplay::recording::Recording;

use crate::support::*;

/// The soak through a compressing recorder: the file is zstd, and it holds exactly
/// what the clients sent and received.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compressed_soak_recording_holds_every_message() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("soak.jsonl.zst");
    let report = wsreplay::measure::soak::run(&Load::count(100, 20), &path, None)
        .await
        .unwrap();
    assert_eq!(report.recorded, [2_000, 2_000]);
    assert!(report.checksums_match);
    assert!(report.passed(), "{}", report.render());
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(bytes[..4], [0x28, 0xb5, 0x2f, 0xfd], "not a zstd file");
}

/// A compressing recorder rotating every 8 KiB under the soak: many files, each read
/// on its own (the reader refuses a message whose connection has no `open` in the same
/// file, and warns when a file has no `finish`), adding up exactly to what was sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_compressed_soak_leaves_files_that_each_read_alone_and_add_up() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("soak.jsonl.zst");
    let rotate = "8KB".parse().unwrap();
    let report = wsreplay::measure::soak::run(&Load::count(100, 50), &base, Some(rotate))
        .await
        .unwrap();
    assert_eq!(report.recorded, [5_000, 5_000]);
    assert!(report.checksums_match);
    assert_eq!(report.recording_warnings, 0);
    assert!(report.passed(), "{}", report.render());
    let mut files: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert_eq!(files.len(), report.files);
    assert!(files.len() >= 2, "expected several files, got {files:?}");
    let mut continued = 0;
    for file in &files {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            name.starts_with("soak-2") && name.ends_with(".jsonl.zst"),
            "{name}"
        );
        let rec = Recording::read(file).unwrap();
        assert!(rec.warnings.is_empty(), "{name}: {:?}", rec.warnings);
        continued += rec.opens().filter(|o| o.continued).count();
    }
    assert!(continued > 0, "no connection spanned two files");
}

/// The demo system's traffic compresses at least 5×, and the compressed recording is
/// the same recording: same records, same snapshot name, no warnings.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_traffic_compresses_at_least_five_times_and_reads_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("demo.jsonl.zst");
    let (rec, _) = record_demo_to(&path, 10, 3).await;
    assert!(rec.warnings.is_empty(), "{:?}", rec.warnings);
    let compressed = std::fs::metadata(&path).unwrap().len();
    let plain = zstd::decode_all(std::fs::File::open(&path).unwrap()).unwrap();
    assert!(
        plain.len() as u64 >= 5 * compressed,
        "{} bytes of JSON Lines compressed to {compressed}: less than 5×",
        plain.len()
    );
    let plain_path = dir.path().join("demo.jsonl");
    std::fs::write(&plain_path, &plain).unwrap();
    let from_plain = Recording::read(&plain_path).unwrap();
    assert_eq!(from_plain.records, rec.records);
    assert_eq!(wsreplay::structure::snapshot::name_of(&path), "demo");
}

/// `show` and `snapshot` read a compressed recording as they read a plain one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_read_compressed_recordings_transparently() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("demo.jsonl.zst");
    record_demo_to(&path, 2, 1).await;
    let show = std::process::Command::new(bin())
        .arg("show")
        .arg(&path)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&show.stdout);
    assert!(show.status.success(), "{stdout}");
    assert!(stdout.contains("frontend"), "{stdout}");
    let snaps = dir.path().join("snaps");
    let snapshot = std::process::Command::new(bin())
        .arg("snapshot")
        .arg(&path)
        .arg("--snapshots")
        .arg(&snaps)
        .output()
        .unwrap();
    assert!(
        snapshot.status.success(),
        "{}",
        String::from_utf8_lossy(&snapshot.stderr)
    );
    assert!(snaps.join("demo.snap").exists());
}

/// `--only-path`: every connection is forwarded, only the matching ones are recorded,
/// whole, and the header says the file is a selection.
#[tokio::test]
async fn only_path_records_matching_connections_and_forwards_the_rest() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let upstream = echo_server().await;
    let recorder = Recorder::start_with(&upstream, |c| {
        c.filter.only_path = Some("/ws".into());
    })
    .await;
    for path in ["/ws?user_id=a", "/health", "/ws/b"] {
        let url = format!("ws://{}{path}", recorder.addr());
        let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        ws.send(Message::text(path)).await.unwrap();
        let echo = ws.next().await.unwrap().unwrap();
        assert_eq!(echo.into_text().unwrap().as_str(), path, "forwarded");
        ws.close(None).await.unwrap();
        while ws.next().await.is_some() {}
    }
    let (rec, _) = recorder.finish().await;
    assert_eq!(rec.header.filter.only_path.as_deref(), Some("/ws"));
    let requests: Vec<&str> = rec.opens().map(|o| o.request.as_str()).collect();
    assert_eq!(
        requests,
        ["GET /ws?user_id=a HTTP/1.1", "GET /ws/b HTTP/1.1"]
    );
    let texts: Vec<&str> = (rec.records.iter())
        .filter_map(|r| match r {
            wsreplay::recording::Record::Message(m) => m.body.as_text(),
            _ => None,
        })
        .collect();
    assert_eq!(texts, ["/ws?user_id=a", "/ws?user_id=a", "/ws/b", "/ws/b"]);
}
