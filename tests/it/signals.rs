//! The recorder as a process: SIGTERM finishes the file, SIGKILL loses nothing older
//! than the flush interval.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;
use wsreplay::recording::{Dir, Record, Recording};

use crate::support::*;

struct RecorderProcess {
    child: Child,
    addr: String,
    path: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

async fn spawn_recorder(upstream: &str) -> RecorderProcess {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rec.jsonl");
    spawn_recorder_to(upstream, dir, path).await
}

async fn spawn_recorder_to(
    upstream: &str,
    dir: tempfile::TempDir,
    path: std::path::PathBuf,
) -> RecorderProcess {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let child = Command::new(bin())
        .args(["record", "--out"])
        .arg(&path)
        .args(["--route", &format!("r={addr}={upstream}")])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while tokio::net::TcpStream::connect(&addr).await.is_err() {
        assert!(
            Instant::now() < deadline,
            "the recorder did not start listening"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    RecorderProcess {
        child,
        addr,
        path,
        _dir: dir,
    }
}

fn signal(child: &Child, sig: &str) {
    let status = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

fn texts(rec: &Recording, dir: Dir) -> Vec<String> {
    rec.records
        .iter()
        .filter_map(|r| match r {
            Record::Message(m) if m.dir == dir => m.body.as_text().map(str::to_string),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn sigterm_finishes_a_complete_valid_file() {
    let upstream = echo_server().await;
    let p = spawn_recorder(&upstream).await;
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{}/", p.addr))
        .await
        .unwrap();
    for i in 0..50 {
        ws.send(Message::text(format!(r#"{{"type":"n","i":{i}}}"#)))
            .await
            .unwrap();
        ws.next().await.unwrap().unwrap();
    }
    ws.close(None).await.unwrap();
    while ws.next().await.is_some() {}
    signal(&p.child, "-TERM");
    let out = p.child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("r: 1 connection(s), 50 c2s + 50 s2c message(s), 0 abnormal end(s)"),
        "{stdout}"
    );
    let rec = Recording::read(&p.path).unwrap();
    assert!(rec.warnings.is_empty(), "{:?}", rec.warnings);
    assert!(matches!(rec.records.last(), Some(Record::Finish(f)) if f.complete));
    assert_eq!(texts(&rec, Dir::ClientToServer).len(), 50);
    assert_eq!(texts(&rec, Dir::ServerToClient).len(), 50);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&p.path).unwrap().permissions().mode();
        assert_eq!(
            mode & 0o777,
            0o600,
            "recordings must be private to their owner"
        );
    }
}

#[tokio::test]
async fn sigterm_during_heavy_traffic_leaves_every_forwarded_frame_in_a_complete_file() {
    let upstream = echo_server().await;
    let p = spawn_recorder(&upstream).await;
    let (ws, _) = tokio_tungstenite::connect_async(format!("ws://{}/", p.addr))
        .await
        .unwrap();
    let (mut tx, mut rx) = ws.split();
    // Pipelined: the client sends as fast as it can while a second task reads echoes.
    let sender = tokio::spawn(async move {
        let mut sent = 0u64;
        while tx
            .send(Message::text(format!(r#"{{"type":"load","i":{sent}}}"#)))
            .await
            .is_ok()
        {
            sent += 1;
        }
        sent
    });
    let (signalled_tx, mut signalled) = tokio::sync::oneshot::channel();
    let mut signalled_tx = Some(signalled_tx);
    let mut received = Vec::new();
    let child = p.child;
    let reader = async {
        while let Some(Ok(msg)) = rx.next().await {
            if let Message::Text(t) = msg {
                received.push(t.to_string());
            }
            if received.len() == 5_000 {
                signal(&child, "-TERM");
                signalled_tx.take().unwrap().send(()).unwrap();
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(30), reader)
        .await
        .expect("the connection was not closed after SIGTERM");
    signalled
        .try_recv()
        .expect("5,000 echoes arrived before the signal");
    let sent = sender.await.unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rec = Recording::read(&p.path).unwrap();
    assert!(rec.warnings.is_empty(), "{:?}", rec.warnings);
    assert!(matches!(rec.records.last(), Some(Record::Finish(f)) if f.complete));
    // Every frame forwarded to the client is on disk, in order; what reached the
    // upstream is a prefix of what was sent, and covers every echo.
    assert_eq!(texts(&rec, Dir::ServerToClient), received);
    let c2s = texts(&rec, Dir::ClientToServer);
    assert!(c2s.len() >= received.len() && c2s.len() as u64 <= sent);
    for (i, text) in c2s.iter().enumerate() {
        assert_eq!(text, &format!(r#"{{"type":"load","i":{i}}}"#));
    }
}

#[tokio::test]
async fn sigkill_keeps_every_frame_forwarded_before_the_flush_interval() {
    sigkill_keeps_what_was_flushed("rec.jsonl").await;
}

/// A compressed recording (`.jsonl.zst`, as `--compress` writes) of a killed recorder
/// reads up to its last flushed block.
#[tokio::test]
async fn sigkill_of_a_compressing_recorder_keeps_every_flushed_frame() {
    sigkill_keeps_what_was_flushed("rec.jsonl.zst").await;
}

async fn sigkill_keeps_what_was_flushed(name: &str) {
    let upstream = echo_server().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    let mut p = spawn_recorder_to(&upstream, dir, path).await;
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{}/", p.addr))
        .await
        .unwrap();
    let mut echoed_at = Vec::new();
    let started = Instant::now();
    let mut i = 0;
    while started.elapsed() < Duration::from_millis(600) {
        let text = format!(r#"{{"type":"tick","i":{i}}}"#);
        ws.send(Message::text(text.clone())).await.unwrap();
        ws.next().await.unwrap().unwrap();
        echoed_at.push((text, Instant::now()));
        i += 1;
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let killed_at = Instant::now();
    p.child.kill().unwrap();
    p.child.wait().unwrap();
    let rec = Recording::read(&p.path).expect("a killed recording must still load");
    assert!(
        rec.warnings
            .iter()
            .any(|w| w.message.contains("not stopped cleanly")),
        "{:?}",
        rec.warnings
    );
    let (c2s, s2c) = (
        texts(&rec, Dir::ClientToServer),
        texts(&rec, Dir::ServerToClient),
    );
    let old: Vec<_> = echoed_at
        .iter()
        .filter(|(_, t)| killed_at.duration_since(*t) > Duration::from_millis(100))
        .collect();
    assert!(old.len() > 20, "the test should have produced traffic");
    for (text, _) in old {
        assert!(
            c2s.contains(text) && s2c.contains(text),
            "{text} was forwarded >100 ms before the kill but is not on disk"
        );
    }
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn a_full_disk_keeps_traffic_flowing_and_fails_loudly_at_the_end() {
    let upstream = echo_server().await;
    let dir = tempfile::tempdir().unwrap();
    let p = spawn_recorder_to(&upstream, dir, "/dev/full".into()).await;
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{}/", p.addr))
        .await
        .unwrap();
    for i in 0..200 {
        let text = format!(r#"{{"type":"n","i":{i},"pad":"{}"}}"#, "x".repeat(1000));
        ws.send(Message::text(text.clone())).await.unwrap();
        let echo = ws.next().await.unwrap().unwrap();
        assert_eq!(
            echo.into_text().unwrap().as_str(),
            text,
            "forwarding must go on"
        );
    }
    ws.close(None).await.unwrap();
    while ws.next().await.is_some() {}
    signal(&p.child, "-TERM");
    let out = p.child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(
        stderr.matches("cannot write the recording").count(),
        1,
        "logged once: {stderr}"
    );
    assert!(stderr.contains("is INCOMPLETE"), "{stderr}");
}
