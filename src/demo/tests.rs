//! End-to-end tests of the demo system: the whole system against its frontend, the
//! regression build, out-of-order agent replies, agent failures, bad input and shutdown.

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::future::join_all;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::agent::{self, AgentKind};
use super::backend::{self, BackendConfig};
use super::frontend::{self, FrontendError, FrontendOptions};
use super::protocol::AGENT_EVENTS;
use super::{DemoSystem, Server};

type Ws = WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>;

const LOCAL: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 0);
const WAIT: Duration = Duration::from_secs(5);

fn options(server: &Server, chats: usize) -> FrontendOptions {
    FrontendOptions {
        url: format!("{}/ws?user_id=tester", server.url()),
        chats,
        error_probe: true,
        timeout: WAIT,
    }
}

async fn connect(url: &str) -> Ws {
    tokio_tungstenite::connect_async(url)
        .await
        .expect("connect")
        .0
}

async fn send(ws: &mut Ws, msg: Message) {
    ws.send(msg).await.expect("send");
}

async fn send_json(ws: &mut Ws, v: Value) {
    send(ws, Message::text(v.to_string())).await;
}

async fn recv(ws: &mut Ws) -> Value {
    loop {
        let msg = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("reply in time")
            .expect("open")
            .expect("frame");
        if let Message::Text(text) = msg {
            return serde_json::from_str(text.as_str()).expect("json");
        }
    }
}

/// Closes a raw client so that servers need not wait for its close reply.
async fn hang_up(mut ws: Ws) {
    ws.close(None).await.expect("close");
    while let Some(Ok(_)) = ws.next().await {}
}

/// A free loopback address (bound, then released).
async fn free_addr() -> SocketAddr {
    let l = TcpListener::bind(LOCAL).await.expect("bind");
    l.local_addr().expect("addr")
}

fn backend_cfg(nlp: String, data: String, viz: String, timeout: Duration) -> BackendConfig {
    BackendConfig {
        nlp_url: nlp,
        data_url: data,
        viz_url: viz,
        regression_events: Vec::new(),
        agent_timeout: timeout,
        reply_delay: Duration::ZERO,
        mutate: None,
        progress: None,
    }
}

#[tokio::test]
async fn clean_system_passes_the_frontend() {
    let sys = DemoSystem::start(false).await.expect("start");
    let report = frontend::run(&options(&sys.backend, 3)).await.expect("run");
    assert!(report.passed(), "{:?}", report.problems);
    for kind in AGENT_EVENTS {
        assert!(
            report.events.get(kind).is_some_and(|n| *n > 0),
            "{kind} in {:?}",
            report.events
        );
    }
    assert_eq!(report.events["agent_started"], 3);
    assert_eq!(report.events["agent_completed"], 3);
    assert_eq!(report.events["tool_executing"], 6);
    assert_eq!(report.events["tool_completed"], 6);
    assert_eq!(report.sent, 5);
    assert_eq!(report.received, 2 + report.events.values().sum::<usize>());
    sys.shutdown().await;
}

#[tokio::test]
async fn regression_build_breaks_tool_executing_payload() {
    let sys = DemoSystem::start(true).await.expect("start");
    let report = frontend::run(&options(&sys.backend, 2)).await.expect("run");
    assert!(!report.passed());
    assert!(
        report
            .problems
            .iter()
            .all(|p| p.contains("tool_executing") && p.contains("payload")),
        "{:?}",
        report.problems
    );
    assert!(report.problems[0].contains("'correlation_id', 'data', 'run_id', 'type', 'user_id'"));
    sys.shutdown().await;
}

#[tokio::test]
async fn concurrent_frontends_get_their_own_agent_replies() {
    let sys = DemoSystem::start(false).await.expect("start");
    let opts: Vec<FrontendOptions> = (0..10).map(|_| options(&sys.backend, 2)).collect();
    let reports = join_all(opts.iter().map(frontend::run)).await;
    for report in reports {
        let report = report.expect("run");
        assert!(report.passed(), "{:?}", report.problems);
        assert_eq!(report.events["agent_completed"], 2);
    }
    sys.shutdown().await;
}

#[tokio::test]
async fn agent_answers_concurrently_and_out_of_order() {
    let nlp = agent::spawn(AgentKind::Nlp, LOCAL, Duration::from_millis(20))
        .await
        .expect("agent");
    let mut ws = connect(&nlp.url()).await;
    let ids: Vec<String> = (0..20).map(|i| format!("m{i}")).collect();
    for id in &ids {
        send_json(
            &mut ws,
            json!({"type": "nlp_query", "message_id": id, "text": "cost of EC2"}),
        )
        .await;
    }
    let mut order = Vec::new();
    for _ in &ids {
        let reply = recv(&mut ws).await;
        assert_eq!(reply["type"], "nlp_query_response");
        assert_eq!(reply["data"]["intent"], "cost_analysis");
        assert!(reply["client_id"]
            .as_str()
            .is_some_and(|c| c.starts_with("nlp_client_")));
        order.push(
            reply["response_to"]
                .as_str()
                .expect("response_to")
                .to_owned(),
        );
    }
    let mut sorted = order.clone();
    sorted.sort_by_key(|id| id[1..].parse::<u32>().unwrap_or_default());
    assert_eq!(sorted, ids, "every request answered once");
    assert_ne!(order, ids, "20 jittered replies came back in send order");
    hang_up(ws).await;
    nlp.shutdown().await;
}

#[tokio::test]
async fn agent_rejects_what_it_does_not_handle() {
    let viz = agent::spawn(AgentKind::Viz, LOCAL, Duration::ZERO)
        .await
        .expect("agent");
    let mut ws = connect(&viz.url()).await;
    send_json(&mut ws, json!({"type": "heartbeat"})).await;
    assert_eq!(recv(&mut ws).await["type"], "heartbeat_response");
    send_json(&mut ws, json!({"type": "nlp_query", "message_id": "x"})).await;
    let err = recv(&mut ws).await;
    assert_eq!(err["error"]["type"], "server_error");
    assert!(err["error"]["message"]
        .as_str()
        .is_some_and(|m| m.contains("'nlp_query' for viz agent")));
    send_json(&mut ws, json!({"type": "generate_chart"})).await;
    assert_eq!(
        recv(&mut ws).await["error"]["message"],
        "missing message_id"
    );
    send(&mut ws, Message::text("nope")).await;
    assert_eq!(recv(&mut ws).await["type"], "error");
    hang_up(ws).await;
    viz.shutdown().await;
}

#[tokio::test]
async fn unreachable_agent_gives_an_error_envelope() {
    let gone = format!("ws://{}", free_addr().await);
    let cfg = backend_cfg(gone.clone(), gone.clone(), gone, WAIT);
    let backend = backend::spawn(cfg, LOCAL).await.expect("backend");
    match frontend::run(&options(&backend, 1)).await {
        Err(FrontendError::ServerError { event, .. }) => {
            assert!(event.contains("nlp agent unreachable"), "{event}");
        }
        other => panic!("expected a server error, got {other:?}"),
    }
    backend.shutdown().await;
}

#[tokio::test]
async fn silent_agent_times_out() {
    let silent = TcpListener::bind(LOCAL).await.expect("bind");
    let url = format!("ws://{}", silent.local_addr().expect("addr"));
    let swallow = tokio::spawn(async move {
        let (stream, _) = silent.accept().await.expect("accept");
        let mut ws = tokio_tungstenite::accept_async(stream)
            .await
            .expect("handshake");
        while let Some(Ok(_)) = ws.next().await {}
    });
    let cfg = backend_cfg(url.clone(), url.clone(), url, Duration::from_millis(200));
    let backend = backend::spawn(cfg, LOCAL).await.expect("backend");
    match frontend::run(&options(&backend, 1)).await {
        Err(FrontendError::ServerError { event, .. }) => {
            assert!(event.contains("nlp agent timed out"), "{event}");
        }
        other => panic!("expected a server error, got {other:?}"),
    }
    backend.shutdown().await;
    swallow.await.expect("silent agent");
}

#[tokio::test]
async fn backend_starts_before_its_agents() {
    let addrs = [free_addr().await, free_addr().await, free_addr().await];
    let [nlp, data, viz] = addrs.map(|a| format!("ws://{a}"));
    let backend = backend::spawn(backend_cfg(nlp, data, viz, WAIT), LOCAL)
        .await
        .expect("backend");
    let mut agents = Vec::new();
    for (kind, addr) in AgentKind::all().into_iter().zip(addrs) {
        agents.push(
            agent::spawn(kind, addr, Duration::from_millis(5))
                .await
                .expect("agent"),
        );
    }
    let report = frontend::run(&options(&backend, 1)).await.expect("run");
    assert!(report.passed(), "{:?}", report.problems);
    backend.shutdown().await;
    join_all(agents.into_iter().map(Server::shutdown)).await;
}

#[tokio::test]
async fn backend_answers_bad_input_with_error_envelopes() {
    let sys = DemoSystem::start(false).await.expect("start");
    let mut ws = connect(&format!("{}/ws", sys.backend.url())).await;
    let bad = [
        Message::binary(vec![1u8, 2, 3]),
        Message::text("{nope"),
        Message::text("[1, 2]"),
        Message::text(r#"{"type": "bogus"}"#),
        Message::text(r#"{"type": "chat", "message_id": "m1"}"#),
        Message::text(r#"{"type": "chat", "message_id": "", "text": "hi"}"#),
    ];
    let expected = [
        "binary frames not supported",
        "invalid JSON: ",
        "invalid JSON: message must be a JSON object",
        "unknown message type 'bogus'",
        "chat needs message_id and text",
        "chat needs message_id and text",
    ];
    let mut client_ids = Vec::new();
    for (msg, want) in bad.into_iter().zip(expected) {
        send(&mut ws, msg).await;
        let err = recv(&mut ws).await;
        assert_eq!(err["type"], "error");
        assert_eq!(err["error"]["type"], "server_error");
        assert!(
            err["error"]["message"]
                .as_str()
                .is_some_and(|m| m.starts_with(want)),
            "{err}"
        );
        assert!(err["timestamp"].is_string());
        client_ids.push(err["client_id"].clone());
    }
    send_json(&mut ws, json!({"type": "heartbeat", "timestamp": 1.5})).await;
    let hb = recv(&mut ws).await;
    assert_eq!(hb["type"], "heartbeat_response");
    assert!(hb["server_time"].is_f64());
    client_ids.push(hb["client_id"].clone());
    client_ids.dedup();
    assert_eq!(client_ids.len(), 1, "one client id per connection");
    hang_up(ws).await;
    sys.shutdown().await;
}

/// The event types of one chat, and the payload of its first event.
async fn chat_events(url: &str, message_id: &str, text: &str) -> (Vec<String>, Value) {
    let mut ws = connect(url).await;
    send_json(
        &mut ws,
        json!({"type": "chat", "message_id": message_id, "text": text}),
    )
    .await;
    let mut kinds = Vec::new();
    let mut first = Value::Null;
    loop {
        let ev = recv(&mut ws).await;
        if first.is_null() {
            first = ev["payload"].clone();
        }
        kinds.push(ev["type"].as_str().expect("type").to_owned());
        if ev["type"] == "agent_completed" {
            hang_up(ws).await;
            return (kinds, first);
        }
    }
}

#[tokio::test]
async fn same_message_gives_the_same_event_sequence() {
    let sys = DemoSystem::start(false).await.expect("start");
    let url = format!("{}/ws?user_id=al%20ice", sys.backend.url());
    let (a, first_a) = chat_events(&url, "msg_fixed", CHAT_TEXT).await;
    let (b, first_b) = chat_events(&url, "msg_fixed", CHAT_TEXT).await;
    assert_eq!(a, b);
    assert_eq!(first_a["user_id"], "al ice");
    assert_eq!(first_a["thread_id"], "thread_1");
    assert_ne!(first_a["run_id"], first_b["run_id"]);
    let anon = format!("{}/ws", sys.backend.url());
    let (_, first_c) = chat_events(&anon, "msg_other", CHAT_TEXT).await;
    assert!(first_c["user_id"]
        .as_str()
        .is_some_and(|u| u.starts_with("user_")));
    sys.shutdown().await;
}

const CHAT_TEXT: &str = "Any cost spike in RDS this week?";

#[tokio::test]
async fn shutdown_closes_open_connections() {
    let sys = DemoSystem::start(false).await.expect("start");
    let mut ws = connect(&sys.backend.url()).await;
    send_json(&mut ws, json!({"type": "heartbeat"})).await;
    recv(&mut ws).await;
    let read_to_end = async {
        let mut frames = Vec::new();
        while let Some(Ok(frame)) = ws.next().await {
            frames.push(frame);
        }
        frames
    };
    let (stopped, frames) = tokio::join!(
        tokio::time::timeout(WAIT, sys.shutdown()),
        tokio::time::timeout(WAIT, read_to_end)
    );
    stopped.expect("prompt shutdown");
    let frames = frames.expect("closed in time");
    match frames.as_slice() {
        [Message::Close(Some(frame))] => assert_eq!(frame.code, CloseCode::Away),
        other => panic!("expected one close frame, got {other:?}"),
    }
}

#[tokio::test]
async fn connect_failure_names_the_url() {
    let url = format!("ws://{}", free_addr().await);
    let opts = FrontendOptions::new(url.clone());
    match frontend::run(&opts).await {
        Err(e @ FrontendError::Connect { .. }) => assert!(e.to_string().contains(&url)),
        other => panic!("expected a connect error, got {other:?}"),
    }
}

#[tokio::test]
async fn regression_events_widen_the_breakage() {
    let sys = DemoSystem::start(false).await.expect("start");
    let mut cfg = backend_cfg(sys.nlp.url(), sys.data.url(), sys.viz.url(), WAIT);
    cfg.regression_events = vec!["tool_executing".into(), "agent_completed".into()];
    let broken = backend::spawn(cfg, LOCAL).await.expect("backend");
    let report = frontend::run(&options(&broken, 1)).await.expect("run");
    let about = |kind: &str| report.problems.iter().filter(|p| p.contains(kind)).count();
    assert_eq!(
        about("tool_executing has no object 'payload'"),
        2,
        "{:?}",
        report.problems
    );
    assert_eq!(
        about("agent_completed has no object 'payload'"),
        1,
        "{:?}",
        report.problems
    );
    assert_eq!(report.problems.len(), 3, "{:?}", report.problems);
    broken.shutdown().await;
    sys.shutdown().await;
}

#[tokio::test]
async fn backend_reconnects_after_an_agent_restart() {
    let mut sys = DemoSystem::start(false).await.expect("start");
    let opts = options(&sys.backend, 1);
    assert!(frontend::run(&opts).await.expect("run").passed());
    let nlp_addr = sys.nlp.addr();
    sys.nlp.shutdown().await;
    let down = frontend::run(&opts).await;
    assert!(
        matches!(down, Err(FrontendError::ServerError { .. })),
        "{down:?}"
    );
    sys.nlp = agent::spawn(AgentKind::Nlp, nlp_addr, Duration::from_millis(5))
        .await
        .expect("restart nlp");
    let report = frontend::run(&opts).await.expect("run");
    assert!(report.passed(), "{:?}", report.problems);
    sys.shutdown().await;
}
