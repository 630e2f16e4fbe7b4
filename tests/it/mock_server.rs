//! Mocks that real clients accept: the upgrade answered as recorded (subprotocol
//! included), conversations kept apart per live connection, ids the client chose
//! carried into byte-faithful recorded replies, and `wsreplay mock` serving on its own.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use wsreplay::recording::sink::Output;
use wsreplay::recording::{Dir, Record, Recording};
use wsreplay::replay::{Replay, ReplayConfig, ReplayReport};

use crate::support::*;

/// A recorded connection: its path, the subprotocol the server chose, and its
/// (`c2s`/`s2c`, text) messages.
type Conn = (
    &'static str,
    Option<&'static str>,
    Vec<(&'static str, &'static str)>,
);

/// A recording of `conns`, connections of route `app`.
fn recorded(conns: &[Conn]) -> Recording {
    let mut all = crate::protocols::session("/", None, &[]);
    all.records.clear();
    for (i, (path, subprotocol, messages)) in conns.iter().enumerate() {
        let one = crate::protocols::session(path, *subprotocol, messages);
        for mut r in one.records {
            match &mut r {
                Record::Open(o) => o.conn = i as u64 + 1,
                Record::Message(m) => m.conn = i as u64 + 1,
                Record::Close(c) => c.conn = i as u64 + 1,
                Record::End(e) => e.conn = i as u64 + 1,
                _ => {}
            }
            all.records.push(r);
        }
    }
    all
}

/// Mocks route `app` of `rec` on a free port; returns the running replay and its URL.
async fn serve(rec: Recording, dir: &tempfile::TempDir) -> (Replay, String) {
    let mut config = ReplayConfig::new(Output::File(dir.path().join("run.jsonl")));
    config.mock("app", "127.0.0.1:0".parse().unwrap());
    config.speed = Some(1.0);
    let replay = Replay::start(rec, config).await.unwrap();
    let url = replay.mock_url("app").unwrap();
    (replay, url)
}

async fn stop(replay: Replay) -> ReplayReport {
    replay.serve(async {}, false).await
}

type Client =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn next_text(ws: &mut Client) -> String {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("an answer")
            .unwrap()
            .unwrap();
        if let WsMessage::Text(t) = msg {
            return t.to_string();
        }
    }
}

#[tokio::test]
async fn the_mock_confirms_the_subprotocol_the_recorded_server_chose() {
    let dir = tempfile::tempdir().unwrap();
    let rec = recorded(&[(
        "/graphql",
        Some("graphql-transport-ws"),
        vec![
            ("c2s", r#"{"type":"connection_init"}"#),
            ("s2c", r#"{"type":"connection_ack"}"#),
        ],
    )]);
    let (replay, url) = serve(rec, &dir).await;
    let mut request = format!("{url}/graphql").into_client_request().unwrap();
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        "graphql-transport-ws".parse().unwrap(),
    );
    // tungstenite refuses a 101 without the offered subprotocol: connecting proves it.
    let (mut ws, response) = tokio_tungstenite::connect_async(request).await.unwrap();
    assert_eq!(
        response.headers()["sec-websocket-protocol"],
        "graphql-transport-ws"
    );
    ws.send(WsMessage::text(r#"{"type":"connection_init"}"#))
        .await
        .unwrap();
    assert_eq!(next_text(&mut ws).await, r#"{"type":"connection_ack"}"#);
    ws.close(None).await.unwrap();

    // A client that offers nothing the recorded server chose is answered, and reported.
    let (ws, response) = tokio_tungstenite::connect_async(format!("{url}/graphql"))
        .await
        .unwrap();
    assert!(response.headers().get("sec-websocket-protocol").is_none());
    drop(ws);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let report = stop(replay).await;
    let lines = wsreplay::replay::problem_lines(&report.problems).join("\n");
    assert!(
        lines.contains(
            "offered no subprotocol, but the recorded server chose `graphql-transport-ws`"
        ),
        "{lines}"
    );
    assert!(lines.contains("without sending anything"), "{lines}");
}

#[tokio::test]
async fn a_recorded_refusal_is_refused_again() {
    let dir = tempfile::tempdir().unwrap();
    let mut rec = recorded(&[("/ws", None, vec![])]);
    if let Some(Record::Open(o)) = rec.records.first_mut() {
        o.status = 403;
    }
    let (replay, url) = serve(rec, &dir).await;
    let err = tokio_tungstenite::connect_async(format!("{url}/ws"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("403"), "{err}");
    stop(replay).await;
}

/// Two users whose first message is the same: each is told apart by the first one that
/// differs and gets its own conversation, whichever connects first.
#[tokio::test]
async fn two_users_with_the_same_opening_get_their_own_answers() {
    let user = |name: &'static str| -> Conn {
        let (join, welcome, said) = match name {
            "alice" => (
                r#"{"type":"join","name":"alice"}"#,
                r#"{"type":"welcome","you":"alice","room":"r1"}"#,
                r#"{"type":"said","by":"alice","text":"hi bob"}"#,
            ),
            _ => (
                r#"{"type":"join","name":"bob"}"#,
                r#"{"type":"welcome","you":"bob","room":"r1"}"#,
                r#"{"type":"said","by":"bob","text":"hi alice"}"#,
            ),
        };
        (
            "/chat",
            None,
            vec![
                ("s2c", r#"{"type":"hello","sid":"s-1"}"#),
                ("c2s", r#"{"type":"ping"}"#),
                ("s2c", r#"{"type":"pong"}"#),
                ("c2s", join),
                ("s2c", welcome),
                ("c2s", r#"{"type":"say"}"#),
                ("s2c", said),
            ],
        )
    };
    for round in 0..20 {
        let dir = tempfile::tempdir().unwrap();
        let (replay, url) = serve(recorded(&[user("alice"), user("bob")]), &dir).await;
        // Bob connects first on odd rounds.
        let mut names = ["alice", "bob"];
        if round % 2 == 1 {
            names.reverse();
        }
        let mut clients = Vec::new();
        for name in names {
            let (mut ws, _) = tokio_tungstenite::connect_async(format!("{url}/chat"))
                .await
                .unwrap();
            assert!(next_text(&mut ws).await.contains("hello"));
            clients.push((name, ws));
        }
        for (_, ws) in &mut clients {
            ws.send(WsMessage::text(r#"{"type":"ping"}"#))
                .await
                .unwrap();
            assert_eq!(next_text(ws).await, r#"{"type":"pong"}"#);
        }
        for (name, ws) in &mut clients {
            let join = format!(r#"{{"type":"join","name":"{name}"}}"#);
            ws.send(WsMessage::text(join)).await.unwrap();
            let welcome = next_text(ws).await;
            assert!(
                welcome.contains(&format!(r#""you":"{name}""#)),
                "round {round}: {name} got {welcome}"
            );
            ws.send(WsMessage::text(r#"{"type":"say"}"#)).await.unwrap();
            let said = next_text(ws).await;
            assert!(
                said.contains(&format!(r#""by":"{name}""#)),
                "round {round}: {name} got {said}"
            );
        }
        for (_, mut ws) in clients {
            ws.close(None).await.unwrap();
        }
        let report = stop(replay).await;
        assert!(report.problems.is_empty(), "{:?}", report.problems);
    }
}

/// A real JSON-RPC server (jsonrpsee) on `addr`, its methods answering out of order.
async fn rpc_server() -> (std::net::SocketAddr, jsonrpsee::server::ServerHandle) {
    use jsonrpsee::server::{RpcModule, Server};
    use jsonrpsee::types::ErrorObjectOwned;
    let server = Server::builder().build("127.0.0.1:0").await.unwrap();
    let addr = server.local_addr().unwrap();
    let mut module = RpcModule::new(());
    module
        .register_async_method("lookup", |params, _, _| async move {
            let (n,): (u64,) = params.parse()?;
            tokio::time::sleep(Duration::from_millis((n * 7919) % 40)).await;
            Ok::<_, ErrorObjectOwned>(serde_json::json!({"n": n, "name": format!("item-{n}")}))
        })
        .unwrap();
    (addr, server.start(module))
}

/// Records a jsonrpsee client's eight concurrent calls against a jsonrpsee server;
/// then, with the server gone, the same client and a client numbering its requests
/// from 1000 get every answer from the mock, each to its own request, and an answer
/// that needs no new id is the recorded bytes.
#[tokio::test]
async fn json_rpc_clients_get_their_own_answers_from_the_mock_whatever_their_ids() {
    use jsonrpsee::core::client::ClientT;
    use jsonrpsee::rpc_params;
    use jsonrpsee::ws_client::WsClientBuilder;

    let (addr, handle) = rpc_server().await;
    let rec = Recorder::start(&format!("ws://{addr}")).await;
    let lookups = |url: String| async move {
        let client = WsClientBuilder::default().build(url).await.unwrap();
        let calls =
            (0..8u64).map(|n| client.request::<serde_json::Value, _>("lookup", rpc_params![n]));
        futures_util::future::join_all(calls)
            .await
            .into_iter()
            .map(Result::unwrap)
            .collect::<Vec<_>>()
    };
    let answers = lookups(format!("ws://{}", rec.addr())).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (recording, _) = rec.finish().await;
    handle.stop().unwrap();
    handle.stopped().await;
    let mut recording = recording;
    for r in &mut recording.records {
        if let Record::Open(o) = r {
            o.route = "app".into();
        }
    }

    let dir = tempfile::tempdir().unwrap();
    let (replay, url) = serve(recording.clone(), &dir).await;
    assert_eq!(lookups(url.clone()).await, answers);

    // Ids from 1000, all sent before any answer: each answer carries its request's id
    // and the result recorded for the same parameters.
    let (mut ws, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
    for n in (0..8u64).rev() {
        let call = format!(
            r#"{{"jsonrpc":"2.0","id":{},"method":"lookup","params":[{n}]}}"#,
            1000 + n
        );
        ws.send(WsMessage::text(call)).await.unwrap();
    }
    for _ in 0..8 {
        let answer: serde_json::Value = serde_json::from_str(&next_text(&mut ws).await).unwrap();
        let id = answer["id"].as_u64().unwrap();
        assert!((1000..1008).contains(&id), "{answer}");
        assert_eq!(answer["result"]["n"], id - 1000, "{answer}");
    }
    // The recorded bytes, when the id is the recorded one.
    let recorded_call = recording
        .records
        .iter()
        .find_map(|r| match r {
            Record::Message(m) if m.dir == Dir::ClientToServer => m.body.as_text(),
            _ => None,
        })
        .unwrap()
        .to_string();
    let id: serde_json::Value =
        serde_json::from_str::<serde_json::Value>(&recorded_call).unwrap()["id"].clone();
    let recorded_answer = recording
        .records
        .iter()
        .find_map(|r| match r {
            Record::Message(m) if m.dir == Dir::ServerToClient => {
                let text = m.body.as_text()?;
                let v: serde_json::Value = serde_json::from_str(text).ok()?;
                (v["id"] == id).then(|| text.to_string())
            }
            _ => None,
        })
        .unwrap();
    let (mut fresh, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
    fresh.send(WsMessage::text(recorded_call)).await.unwrap();
    assert_eq!(next_text(&mut fresh).await, recorded_answer);
    drop((ws, fresh));
    let report = stop(replay).await;
    assert_eq!(report.mocks[0].unmatched, 0, "{:?}", report.problems);
}

/// A `--fault` KIND on a mock names replies as the route's protocol does: a JSON-RPC
/// response by the method it answers.
#[tokio::test]
async fn a_fault_on_a_mock_names_replies_by_protocol() {
    let dir = tempfile::tempdir().unwrap();
    let rec = recorded(&[(
        "/rpc",
        None,
        vec![
            (
                "c2s",
                r#"{"jsonrpc":"2.0","id":1,"method":"lookup","params":[1]}"#,
            ),
            ("s2c", r#"{"jsonrpc":"2.0","id":1,"result":{"n":1}}"#),
            (
                "c2s",
                r#"{"jsonrpc":"2.0","id":2,"method":"other","params":[]}"#,
            ),
            ("s2c", r#"{"jsonrpc":"2.0","id":2,"result":{"ok":true}}"#),
        ],
    )]);
    let mut config = ReplayConfig::new(Output::File(dir.path().join("run.jsonl")));
    config.mock("app", "127.0.0.1:0".parse().unwrap());
    config.faults = vec!["app:drop:lookup → result".parse().unwrap()];
    let replay = Replay::start(rec, config).await.unwrap();
    let url = replay.mock_url("app").unwrap();
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("{url}/rpc"))
        .await
        .unwrap();
    for call in [
        r#"{"jsonrpc":"2.0","id":1,"method":"lookup","params":[1]}"#,
        r#"{"jsonrpc":"2.0","id":2,"method":"other","params":[]}"#,
    ] {
        ws.send(WsMessage::text(call)).await.unwrap();
    }
    assert_eq!(
        next_text(&mut ws).await,
        r#"{"jsonrpc":"2.0","id":2,"result":{"ok":true}}"#
    );
    drop(ws);
    let report = stop(replay).await;
    assert_eq!(report.mocks[0].dropped, 1);
}

#[tokio::test]
async fn a_close_the_recorded_server_began_is_begun_again_after_its_request() {
    // RabbitMQ closes a STOMP connection after DISCONNECT; stompjs waits for that close.
    let dir = tempfile::tempdir().unwrap();
    let mut rec = recorded(&[(
        "/ws",
        None,
        vec![
            ("c2s", "CONNECT\naccept-version:1.2\n\n\0"),
            ("s2c", "CONNECTED\nversion:1.2\n\n\0\n"),
            ("c2s", "DISCONNECT\nreceipt:close-1\n\n\0"),
        ],
    )]);
    rec.records.push(Record::Close(wsreplay::recording::Close {
        t_us: 0,
        conn: 1,
        dir: Dir::ServerToClient,
        code: Some(1000),
        reason: "STOMP died".into(),
        base64: None,
    }));
    let (replay, url) = serve(rec, &dir).await;
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("{url}/ws"))
        .await
        .unwrap();
    ws.send(WsMessage::text("CONNECT\naccept-version:1.2\n\n\0"))
        .await
        .unwrap();
    assert!(next_text(&mut ws).await.starts_with("CONNECTED"));
    ws.send(WsMessage::text("DISCONNECT\nreceipt:close-1\n\n\0"))
        .await
        .unwrap();
    let closed = tokio::time::timeout(Duration::from_secs(10), ws.next())
        .await
        .expect("the mock closes")
        .unwrap()
        .unwrap();
    match closed {
        WsMessage::Close(Some(frame)) => {
            assert_eq!(u16::from(frame.code), 1000);
            assert_eq!(frame.reason.as_str(), "STOMP died");
        }
        other => panic!("expected the recorded close, got {other:?}"),
    }
    let report = stop(replay).await;
    assert!(report.problems.is_empty(), "{:?}", report.problems);
}
