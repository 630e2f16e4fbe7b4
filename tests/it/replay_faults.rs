//! Replay against builds that misbehave: a target that closes mid-replay, one that
//! sends garbage, a peer that sends a mock something that is not JSON. Each is
//! reported; nothing hangs or panics.

use futures_util::{SinkExt, StreamExt};
use tokio::io::AsyncWriteExt;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::Message;
use wsreplay::recording::sink::Output;
use wsreplay::recording::{Dir, Record, Recording};
use wsreplay::replay::{Problem, Replay, ReplayConfig, ReplayReport};

use crate::support::*;

/// Replays the frontend of a recorded demo session against `target`.
async fn replay_frontend_against(target: &str) -> ReplayReport {
    let (rec, _) = record_demo(1, 2).await;
    let mut config = ReplayConfig::new(Output::Discard);
    config.step_timeout = std::time::Duration::from_secs(2);
    let mut replay = Replay::start(rec, config).await.unwrap();
    replay.target("frontend", target).unwrap();
    guard(replay.run())
        .await
        .expect("a misbehaving target is a report, not an error")
}

fn closed_early(report: &ReplayReport) -> Vec<String> {
    report
        .problems
        .iter()
        .filter(|p| matches!(p, Problem::ClosedEarly { route, .. } if route == "frontend"))
        .map(|p| p.to_string())
        .collect()
}

#[tokio::test]
async fn a_target_that_closes_mid_replay_is_reported() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut ws = tokio_tungstenite::accept_async(s).await.unwrap();
                ws.next().await; // one message, then the build "crashes"
                drop(ws);
            });
        }
    });
    let report = replay_frontend_against(&url).await;
    let closed = closed_early(&report);
    assert_eq!(closed.len(), 1, "{}", report.render());
    assert!(!report.clean());
}

#[tokio::test]
async fn a_target_that_sends_garbage_is_reported() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let head = read_head(&mut s).await;
            let key = head
                .lines()
                .find_map(|l| {
                    l.split_once(':')
                        .filter(|(n, _)| n.eq_ignore_ascii_case("sec-websocket-key"))
                })
                .map(|(_, v)| v.trim().to_string())
                .unwrap();
            let resp = format!(
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n\r\n",
                derive_accept_key(key.as_bytes())
            );
            s.write_all(resp.as_bytes()).await.unwrap();
            // Reserved bits and opcode, a masked frame from a server, an absurd
            // length: not WebSocket framing.
            s.write_all(&[0xff; 32]).await.unwrap();
            tokio::time::sleep(std::time::Duration::from_secs(5)).await;
        }
    });
    let report = replay_frontend_against(&url).await;
    let closed = closed_early(&report);
    assert_eq!(closed.len(), 1, "{}", report.render());
    assert!(
        closed[0].to_lowercase().contains("protocol"),
        "the report says what was wrong: {}",
        closed[0]
    );
}

#[tokio::test]
async fn a_mock_that_receives_non_json_reports_it_and_keeps_answering() {
    let (rec, _) = record_demo(1, 1).await;
    let request = first_request(&rec, "nlp");
    let mut config = ReplayConfig::new(Output::Discard);
    config.mock("nlp", "127.0.0.1:0".parse().unwrap());
    let replay = Replay::start(rec, config).await.unwrap();
    let url = format!("ws://{}/", replay.mock_addr("nlp").unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    ws.send(Message::text("definitely { not json"))
        .await
        .unwrap();
    ws.send(Message::text(request)).await.unwrap();
    let answer = guard(ws.next()).await.unwrap().unwrap();
    assert!(
        answer.to_text().unwrap().contains("nlp_query_response"),
        "the recorded answer still comes: {answer:?}"
    );
    ws.close(None).await.unwrap();
    let report = guard(replay.run()).await.unwrap();
    let unmatched: Vec<_> = report
        .problems
        .iter()
        .filter(|p| matches!(p, Problem::Unmatched { .. }))
        .map(|p| p.to_string())
        .collect();
    assert_eq!(unmatched.len(), 1, "{}", report.render());
    assert!(
        unmatched[0].contains("definitely { not json"),
        "{}",
        unmatched[0]
    );
}

fn first_request(rec: &Recording, route: &str) -> String {
    let conn = rec.opens().find(|o| o.route == route).unwrap().conn;
    rec.records
        .iter()
        .find_map(|r| match r {
            Record::Message(m) if m.conn == conn && m.dir == Dir::ClientToServer => {
                m.body.as_text().map(str::to_string)
            }
            _ => None,
        })
        .unwrap()
}

/// A flood of unexpected requests is one line in the report, with its count.
#[tokio::test]
async fn repeated_unexpected_requests_are_summarised() {
    let (rec, _) = record_demo(1, 1).await;
    let mut config = ReplayConfig::new(Output::Discard);
    config.mock("nlp", "127.0.0.1:0".parse().unwrap());
    let replay = Replay::start(rec, config).await.unwrap();
    let url = format!("ws://{}/", replay.mock_addr("nlp").unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    for i in 0..2000 {
        ws.feed(Message::text(format!(r#"{{"type":"surprise","n":{i}}}"#)))
            .await
            .unwrap();
    }
    ws.flush().await.unwrap();
    ws.close(None).await.unwrap();
    while guard(ws.next()).await.is_some() {}
    let report = guard(replay.run()).await.unwrap();
    assert_eq!(report.problems.len(), 2000);
    let text = report.render();
    let lines: Vec<&str> = text.lines().filter(|l| l.contains("surprise")).collect();
    assert_eq!(lines.len(), 1, "{text}");
    assert!(
        lines[0].ends_with("(×2000: this and 1999 more like it)"),
        "{}",
        lines[0]
    );
}

/// A target that accepts TCP connections and never says a word; returns its address.
async fn silent_target() -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            held.push(s); // open, unread, unanswered
        }
    });
    addr
}

/// Runs `wsreplay ARGS`, failing the test if it does not end within 30 s; returns the
/// exit code and stdout + stderr.
async fn wsreplay_bounded(args: &[&str]) -> (Option<i32>, String) {
    let run = tokio::process::Command::new(bin())
        .args(args)
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(std::time::Duration::from_secs(30), run)
        .await
        .unwrap_or_else(|_| panic!("wsreplay {args:?} hung on a silent target"))
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), text)
}

#[tokio::test]
async fn a_silent_target_times_out_the_handshake_and_exits_2() {
    let addr = silent_target().await;
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run.jsonl");
    let run = run.to_str().unwrap();
    let d = dir.path().to_str().unwrap();
    for (scheme, stage) in [("ws", "WebSocket"), ("wss", "TLS")] {
        let target = format!("frontend={scheme}://{addr}");
        let started = std::time::Instant::now();
        let (code, text) = wsreplay_bounded(&[
            "replay",
            CHECKOUT,
            "--target",
            &target,
            "--handshake-timeout",
            "0.5",
            "--out",
            run,
        ])
        .await;
        assert_eq!(code, Some(2), "{text}");
        assert!(
            text.contains(&format!(
                "target frontend at {scheme}://{addr}/ws?user_id=demo accepted connections but never finished the {stage} handshake (waited 500ms each time)"
            )) && text.contains("--handshake-timeout"),
            "{text}"
        );
        assert!(started.elapsed() < std::time::Duration::from_secs(10));
    }
    let target = format!("frontend=ws://{addr}");
    let (code, text) = wsreplay_bounded(&[
        "check",
        CHECKOUT,
        "--target",
        &target,
        "--handshake-timeout",
        "0.5",
        "--check",
        "--runs",
        d,
        "--snapshots",
        d,
    ])
    .await;
    assert_eq!(code, Some(2), "{text}");
    assert!(
        text.contains("never finished the WebSocket handshake (waited 500ms each time)"),
        "{text}"
    );
}

#[tokio::test]
async fn a_handshake_timeout_on_one_connection_is_a_problem_of_the_replay() {
    // Two recorded users; the target answers the first upgrade and sits on the second.
    let (rec, _) = record_demo(2, 1).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let mut held = Vec::new();
        let mut first = true;
        while let Ok((s, _)) = listener.accept().await {
            if std::mem::take(&mut first) {
                tokio::spawn(async move {
                    let mut ws = tokio_tungstenite::accept_async(s).await.unwrap();
                    while let Some(Ok(_)) = ws.next().await {}
                });
            } else {
                held.push(s);
            }
        }
    });
    let mut config = ReplayConfig::new(Output::Discard);
    config.step_timeout = std::time::Duration::from_millis(300);
    config.handshake_timeout = std::time::Duration::from_millis(300);
    let mut replay = Replay::start(rec, config).await.unwrap();
    replay.target("frontend", &url).unwrap();
    let report = guard(replay.run()).await.unwrap();
    let timeouts: Vec<_> = report
        .problems
        .iter()
        .filter(|p| matches!(p, Problem::HandshakeTimeout { .. }))
        .map(ToString::to_string)
        .collect();
    assert_eq!(timeouts.len(), 1, "{}", report.render());
    assert!(
        timeouts[0].contains("did not finish the WebSocket handshake within 300ms"),
        "{}",
        timeouts[0]
    );
    assert_eq!(report.clients[0].connected, 1, "{}", report.render());
}

#[tokio::test]
async fn a_recording_with_absurd_times_is_refused_not_slept_on() {
    // A hand-edited recording: 30 years (~1e15 µs) added to some records.
    const YEARS: u64 = 1_000_000_000_000_000;
    let (rec, _) = record_demo(2, 1).await;
    let opens: Vec<u64> = rec
        .opens()
        .filter(|o| o.route == "frontend")
        .map(|o| o.conn)
        .collect();
    let attempt = |rec: Recording, speed: Option<f64>| async move {
        let mut config = ReplayConfig::new(Output::Discard);
        config.speed = speed;
        config.mock("nlp", "127.0.0.1:0".parse().unwrap());
        let mut replay = Replay::start(rec, config).await.unwrap();
        // Never contacted: the replay is refused before it starts.
        replay.target("frontend", "ws://127.0.0.1:9").unwrap();
        let run = tokio::time::timeout(std::time::Duration::from_secs(20), replay.run());
        run.await
            .expect("the replay slept on an absurd recorded time")
            .unwrap_err()
            .to_string()
    };
    // The second user's connection opens 30 years after the first.
    let mut late_start = rec.clone();
    for r in &mut late_start.records {
        if let Record::Open(o) = r {
            if o.conn == opens[1] {
                o.t_us += YEARS;
            }
        }
    }
    let err = attempt(late_start, None).await;
    assert!(
        err.contains(&format!(
            "replaying route frontend would wait 277778 hours for recorded connection {} to start, longer than the 24 hours",
        opens[1])) && err.contains("hand-edited or corrupt") && !err.contains("--speed"),
        "{err}"
    );
    // The first user's last message 30 years after its first: --speed 1 waits for it.
    let mut late_step = rec.clone();
    let last_c2s = late_step
        .records
        .iter()
        .rposition(|r| matches!(r, Record::Message(m) if m.conn == opens[0] && m.dir == Dir::ClientToServer))
        .unwrap();
    if let Record::Message(m) = &mut late_step.records[last_c2s] {
        m.t_us += YEARS;
    }
    let err = attempt(late_step.clone(), Some(1.0)).await;
    assert!(
        err.contains("would wait 277778 hours for step `")
            && err.contains("or replay faster (--speed)"),
        "{err}"
    );
    // A mock reply recorded 30 years after its request.
    let mut late_reply = rec.clone();
    let nlp = late_reply
        .opens()
        .find(|o| o.route == "nlp")
        .map(|o| o.conn)
        .unwrap();
    for r in &mut late_reply.records {
        if let Record::Message(m) = r {
            if m.conn == nlp && m.dir == Dir::ServerToClient {
                m.t_us += YEARS;
            }
        }
    }
    let err = attempt(late_reply, None).await;
    assert!(
        err.contains("replaying route nlp would wait 277778 hours for the mock to send its recorded `nlp_query_response`"),
        "{err}"
    );
}
