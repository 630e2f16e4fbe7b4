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
    replay_spawned_after(|_| String::new(), serve, extra).await
}

/// [`replay_spawned`] with shell commands (`before(dir)`) run by `--spawn` before the
/// build.
async fn replay_spawned_after(
    before: impl FnOnce(&std::path::Path) -> String,
    serve: &str,
    extra: &[&str],
) -> (std::process::Output, tempfile::TempDir, u16) {
    let dir = tempfile::tempdir().unwrap();
    let rec_path = dir.path().join("demo.jsonl");
    record_demo_to(&rec_path, 1, 2).await;
    let port = free_port();
    let spawn = format!(
        "{}exec {} serve-demo --backend 127.0.0.1:{port}{serve} --nlp-url $WSREPLAY_MOCK_NLP --data-url $WSREPLAY_MOCK_DATA --viz-url $WSREPLAY_MOCK_VIZ",
        before(dir.path()),
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

/// Whether process `pid` is running (not gone, not a zombie).
fn running(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            let state = stat[stat.rfind(')')? + 1..].split_whitespace().next()?;
            Some(!matches!(state, "Z" | "X"))
        })
        .unwrap_or(false)
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn spawn_ends_everything_the_build_started_even_what_ignores_sigterm_or_left_the_group() {
    // Beside the build: a child that ignores SIGTERM (in the build's process group), a
    // `setsid` daemon (its own session, still the build's child), and two daemons that
    // double-forked away (re-parented when their parent exited): one with the build's
    // environment, one that cleared it.
    let before = |dir: &std::path::Path| {
        let d = dir.display();
        format!(
            "(trap '' TERM; exec sleep 1000) & echo $! > {d}/stubborn.pid; \
             setsid sleep 1000 & echo $! > {d}/setsid.pid; \
             setsid sh -c 'sleep 1000 & echo $! > {d}/forked.pid' & \
             env -i PATH=\"$PATH\" setsid sh -c 'sleep 1000 & echo $! > {d}/bare.pid' & \
             sleep 0.2; "
        )
    };
    let started = std::time::Instant::now();
    let (out, dir, _) = replay_spawned_after(before, "", &[]).await;
    let pids: Vec<(&str, i32)> = ["stubborn", "setsid", "forked", "bare"]
        .into_iter()
        .map(|name| {
            let path = dir.path().join(format!("{name}.pid"));
            let pid = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            (name, pid.trim().parse().unwrap())
        })
        .collect();
    let left: Vec<_> = pids.iter().filter(|(_, pid)| running(*pid)).collect();
    for (_, pid) in &left {
        // Do not leave them behind when the test fails.
        unsafe { libc::kill(*pid, libc::SIGKILL) };
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("no problems"), "{stdout}");
    assert!(left.is_empty(), "still running after the replay: {left:?}");
    // SIGKILL came after the 5 s grace period, not much later.
    assert!(started.elapsed() < Duration::from_secs(20));
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn the_library_ends_the_builds_daemons_but_not_other_children_of_the_process() {
    // Through the Rust API, in this test process (no subreaper): the build's process
    // group, its descendants and what carries its environment are ended; a child this
    // process started itself is not.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display();
    let (rec, _) = record_demo(1, 1).await;
    struct Reaped(std::process::Child);
    impl Drop for Reaped {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let unrelated = Reaped(
        std::process::Command::new("sleep")
            .arg("1000")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let port = free_port();
    let url = format!("ws://127.0.0.1:{port}");
    let mut config = ReplayConfig::new(Output::Discard);
    for agent in AGENTS {
        config.mock(agent, "127.0.0.1:0".parse().unwrap());
    }
    config.spawn = Some(wsreplay::replay::SpawnSpec {
        command: format!(
            "(trap '' TERM; exec sleep 1000) & echo $! > {d}/stubborn.pid; \
             setsid sh -c 'sleep 1000 & echo $! > {d}/forked.pid' & sleep 0.2; \
             exec {} serve-demo --backend 127.0.0.1:{port} --nlp-url $WSREPLAY_MOCK_NLP \
             --data-url $WSREPLAY_MOCK_DATA --viz-url $WSREPLAY_MOCK_VIZ",
            bin()
        ),
        timeout: Duration::from_secs(20),
    });
    // Known before the start, so that the start waits for the build to listen.
    config.targets.push(wsreplay::replay::ReplayTarget {
        route: "frontend".into(),
        upstream: wsreplay::config::parse_target("frontend", &url).unwrap(),
    });
    let replay = Replay::start(rec, config).await.unwrap();
    let report = guard(replay.run()).await.unwrap();
    let pid = |name: &str| -> i32 {
        let text = std::fs::read_to_string(dir.path().join(format!("{name}.pid"))).unwrap();
        text.trim().parse().unwrap()
    };
    let left: Vec<_> = ["stubborn", "forked"]
        .into_iter()
        .filter(|name| running(pid(name)))
        .collect();
    for name in &left {
        unsafe { libc::kill(pid(name), libc::SIGKILL) };
    }
    let unrelated_running = running(unrelated.0.id() as i32);
    drop(unrelated);
    assert!(report.problems.is_empty(), "{}", report.render());
    assert!(left.is_empty(), "still running after the replay: {left:?}");
    assert!(unrelated_running, "a child of the test process was killed");
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

/// A `--target` URL with a path replaces the recorded path: a browser's
/// `/devtools/browser/<id>` is issued anew, and the replay asks for the new one (with the
/// recorded query), not `<new>/devtools/browser/<old>`.
#[tokio::test]
async fn a_target_path_replaces_the_recorded_path() {
    use futures_util::SinkExt;
    // An echo server that remembers the paths asked for.
    let paths = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = paths.clone();
    let upstream = echo_server_with(move |request, response| {
        seen.lock().unwrap().push(request.uri().to_string());
        response
    })
    .await;
    let rec = Recorder::start(&upstream).await;
    let (mut ws, _) = tokio_tungstenite::connect_async(format!(
        "ws://{}/devtools/browser/old-id?x=1",
        rec.addr()
    ))
    .await
    .unwrap();
    ws.send(tokio_tungstenite::tungstenite::Message::text(
        r#"{"id":1,"method":"Browser.getVersion"}"#,
    ))
    .await
    .unwrap();
    ws.next().await.unwrap().unwrap();
    ws.close(None).await.unwrap();
    while ws.next().await.is_some() {}
    let (recording, _) = rec.finish().await;
    paths.lock().unwrap().clear();

    let mut replay = Replay::start(recording, ReplayConfig::new(Output::Discard))
        .await
        .unwrap();
    replay
        .target("r", &format!("{upstream}/devtools/browser/new-id"))
        .unwrap();
    let report = guard(replay.run()).await.unwrap();
    assert!(report.problems.is_empty(), "{}", report.render());
    assert_eq!(*paths.lock().unwrap(), ["/devtools/browser/new-id?x=1"]);
}
