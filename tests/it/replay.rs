//! Replay against the in-process demo system: recorded frontends drive a fresh backend
//! whose agents are wsreplay's mocks.

use std::time::Duration;

use futures_util::StreamExt;
use serde_json::Value;
use wsreplay::recording::sink::Output;
use wsreplay::recording::{Dir, Record, Recording};
use wsreplay::replay::{Problem, Replay, ReplayConfig, ReplayError, ReplayReport};

use crate::support::*;

async fn replay_against_backend(rec: &Recording, regression: bool) -> (ReplayReport, Recording) {
    replay_with(rec, regression, |_| {}).await
}

async fn replay_with(
    rec: &Recording,
    regression: bool,
    tweak: impl FnOnce(&mut ReplayConfig),
) -> (ReplayReport, Recording) {
    let regression = if regression {
        vec!["tool_executing".to_string()]
    } else {
        Vec::new()
    };
    replay_demo(rec, tweak, regression, None).await
}

fn json_messages(rec: &Recording, route: &str, dir: Dir) -> Vec<(u64, Value)> {
    let routes: std::collections::BTreeMap<u64, &str> =
        rec.opens().map(|o| (o.conn, o.route.as_str())).collect();
    rec.records
        .iter()
        .filter_map(|r| match r {
            Record::Message(m) if m.dir == dir && routes[&m.conn] == route => {
                Some((m.conn, serde_json::from_str(m.body.as_text()?).ok()?))
            }
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn a_recorded_session_replays_with_the_same_messages_per_type() {
    let (rec, _) = record_demo(1, 3).await;
    let (report, run) = replay_against_backend(&rec, false).await;
    assert!(report.clean(), "{}", report.render());
    assert_eq!(label_counts(&run), label_counts(&rec));
    let completed = json_messages(&run, "frontend", Dir::ServerToClient)
        .iter()
        .filter(|(_, m)| m["type"] == "agent_completed")
        .count();
    assert_eq!(completed, 3);
}

#[tokio::test]
async fn wall_clock_pacing_with_speed_replays_the_same_conversation() {
    let (rec, _) = record_demo(2, 2).await;
    let (report, run) = replay_with(&rec, false, |c| c.speed = Some(2.0)).await;
    assert!(report.clean(), "{}", report.render());
    assert_eq!(label_counts(&run), label_counts(&rec));
}

#[tokio::test]
async fn ten_concurrent_clients_get_their_own_answers() {
    let (rec, _) = record_demo(10, 2).await;
    let (report, run) = replay_against_backend(&rec, false).await;
    assert!(report.clean(), "{}", report.render());
    assert_eq!(label_counts(&run), label_counts(&rec));
    for agent in AGENTS {
        let live_ids: std::collections::HashSet<String> =
            json_messages(&run, agent, Dir::ClientToServer)
                .into_iter()
                .map(|(_, m)| m["message_id"].as_str().unwrap().to_string())
                .collect();
        let answers = json_messages(&run, agent, Dir::ServerToClient);
        assert_eq!(answers.len(), 20);
        for (_, answer) in answers {
            let to = answer["response_to"].as_str().unwrap();
            assert!(
                live_ids.contains(to),
                "{agent}: response_to {to} is not a live message_id"
            );
        }
    }
}

#[tokio::test]
async fn the_regressed_backend_still_replays_and_its_change_is_captured() {
    let (rec, _) = record_demo(1, 2).await;
    let (report, run) = replay_against_backend(&rec, true).await;
    assert!(report.clean(), "{}", report.render());
    let tool = json_messages(&run, "frontend", Dir::ServerToClient)
        .into_iter()
        .map(|(_, m)| m)
        .find(|m| m["type"] == "tool_executing")
        .unwrap();
    assert!(
        tool.get("payload").is_none() && tool["data"].is_object(),
        "{tool}"
    );
}

#[tokio::test]
async fn a_changed_agent_request_is_reported() {
    let (mut rec, _) = record_demo(1, 1).await;
    // Pretend the recorded build sent an extra field to the nlp agent.
    for r in &mut rec.records {
        if let Record::Message(m) = r {
            if let Some(text) = m.body.as_text() {
                if text.contains("\"nlp_query\"") {
                    let mut v: Value = serde_json::from_str(text).unwrap();
                    v["locale"] = "en-GB".into();
                    m.body = wsreplay::recording::Body::Text(v.to_string());
                }
            }
        }
    }
    let (report, _) = replay_against_backend(&rec, false).await;
    let changed: Vec<_> = report
        .problems
        .iter()
        .filter(|p| matches!(p, Problem::RequestChanged { route, .. } if route == "nlp"))
        .map(|p| p.to_string())
        .collect();
    assert_eq!(changed.len(), 1, "{}", report.render());
    assert!(changed[0].contains("missing `locale`"), "{}", changed[0]);
}

/// A WebSocket server that accepts and reads but never answers.
async fn silent_backend() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            tokio::spawn(async move {
                if let Ok(mut ws) = tokio_tungstenite::accept_async(s).await {
                    while let Some(Ok(_)) = ws.next().await {}
                }
            });
        }
    });
    url
}

#[tokio::test]
async fn a_backend_that_answers_nothing_is_reported_with_what_was_awaited() {
    let (rec, _) = record_demo(1, 1).await;
    let silent = silent_backend().await;
    let mut config = ReplayConfig::new(Output::Discard);
    config.step_timeout = Duration::from_millis(200);
    let mut replay = Replay::start(rec.clone(), config).await.unwrap();
    replay.target("frontend", &silent).unwrap();
    let report = guard(replay.run()).await.unwrap();
    let first = report
        .problems
        .first()
        .map(|p| p.to_string())
        .unwrap_or_default();
    assert!(
        first.starts_with("frontend#1 /ws?user_id=user0: waited 200ms for server message 1 (recorded: heartbeat_response) before sending `chat`; 0 of "),
        "{}",
        report.render()
    );
    assert!(report
        .problems
        .iter()
        .all(|p| matches!(p, Problem::StepTimeout { .. } | Problem::ClosedEarly { .. })));
}

#[tokio::test]
async fn an_unreachable_target_is_an_error_naming_the_address() {
    let (rec, _) = record_demo(1, 1).await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut replay = Replay::start(rec.clone(), ReplayConfig::new(Output::Discard))
        .await
        .unwrap();
    replay
        .target("frontend", &format!("ws://127.0.0.1:{port}"))
        .unwrap();
    let err = replay.run().await.unwrap_err();
    assert!(matches!(err, ReplayError::TargetUnreachable { .. }));
    assert!(
        err.to_string().contains(&format!("127.0.0.1:{port}")),
        "{err}"
    );
}

#[tokio::test]
async fn an_unknown_route_is_an_error_listing_the_known_ones() {
    let (rec, _) = record_demo(1, 1).await;
    let mut config = ReplayConfig::new(Output::Discard);
    config.mock("nlpp", "127.0.0.1:0".parse().unwrap());
    let err = Replay::start(rec.clone(), config)
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("no route \"nlpp\"") && err.contains("data, frontend, nlp, viz"),
        "{err}"
    );
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A 2-chat demo recording in a fresh directory, replayed against `serve-demo` (with
/// `serve` appended to its arguments) started by `--spawn` on a free port, the agents
/// mocked, with `extra` arguments. Returns the output, the directory (demo.jsonl,
/// run.jsonl) and the port.
async fn replay_spawned(
    serve: &str,
    extra: &[&str],
) -> (std::process::Output, tempfile::TempDir, u16) {
    let dir = tempfile::tempdir().unwrap();
    let rec_path = dir.path().join("demo.jsonl");
    record_demo_to(&rec_path, 1, 2).await;
    let port = free_port();
    let spawn = format!(
        "exec {} serve-demo --backend 127.0.0.1:{port}{serve} --nlp-url $WSREPLAY_MOCK_NLP --data-url $WSREPLAY_MOCK_DATA --viz-url $WSREPLAY_MOCK_VIZ",
        bin()
    );
    let out = tokio::process::Command::new(bin())
        .arg("replay")
        .arg(&rec_path)
        .args(["--target", &format!("frontend=ws://127.0.0.1:{port}")])
        .args(MOCK_AGENTS)
        .args(extra)
        .args(["--spawn", &spawn, "--out"])
        .arg(dir.path().join("run.jsonl"))
        .output()
        .await
        .unwrap();
    (out, dir, port)
}

#[tokio::test]
async fn spawn_starts_the_build_and_stops_it_at_the_end() {
    let (out, dir, port) = replay_spawned("", &[]).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("client frontend: 1/1 connection(s) replayed")
            && stdout.contains("no problems"),
        "{stdout}"
    );
    assert!(
        tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err(),
        "the spawned build must be stopped when the replay ends"
    );
    let run = Recording::read(dir.path().join("run.jsonl")).unwrap();
    let rec = Recording::read(dir.path().join("demo.jsonl")).unwrap();
    assert_eq!(label_counts(&run), label_counts(&rec));
}

#[tokio::test]
async fn a_crashing_build_is_reported_with_its_stderr_tail() {
    let dir = tempfile::tempdir().unwrap();
    let rec_path = dir.path().join("demo.jsonl");
    record_demo_to(&rec_path, 1, 1).await;
    for (spawn, expected, tail) in [
        (
            "echo starting >&2; echo 'fatal: no config at /etc/backend.toml' >&2; exit 3",
            "exited (exit status: 3) before 127.0.0.1:",
            "accepted connections; its stderr ends with:\n  | starting\n  | fatal: no config at /etc/backend.toml\n",
        ),
        (
            "exit 4",
            "exited (exit status: 4) before 127.0.0.1:",
            "accepted connections; (its stderr was empty)\n",
        ),
    ] {
        let out = tokio::process::Command::new(bin())
            .arg("replay")
            .arg(&rec_path)
            .args([
                "--target",
                &format!("frontend=ws://127.0.0.1:{}", free_port()),
            ])
            .args(["--spawn", spawn, "--out"])
            .arg(dir.path().join("run.jsonl"))
            .output()
            .await
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains(expected), "{stderr}");
        assert!(stderr.ends_with(tail), "{stderr}");
    }
}

#[tokio::test]
async fn the_mock_summary_counts_the_responses_a_fault_dropped() {
    let extra = [
        "--fault",
        "data:drop:sql_query_response",
        "--step-timeout",
        "1",
    ];
    let (out, _dir, _) = replay_spawned(" --agent-timeout 0.2", &extra).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(
            "mock data: 2 request(s), 2 answered from the recording (2 dropped by --fault), 0 unmatched"
        ) && stdout.contains("mock nlp: 2 request(s), 2 answered from the recording, 0 unmatched"),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
