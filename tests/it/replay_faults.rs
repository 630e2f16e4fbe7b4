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
