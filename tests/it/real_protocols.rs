//! Sessions between real implementations of the protocols (their own libraries, not
//! ours: socketioxide and rust_socketio, async-graphql, jsonrpsee), recorded through the
//! proxy: the snapshot names each protocol's kinds and payload paths, `wsreplay check`
//! of the recording against the unchanged server passes every time, and against a
//! server that renamed one payload field it fails naming the old and the new path.

use std::path::PathBuf;

use serde_json::json;

use crate::peers::graphql::{market_session, Market};
use crate::peers::socketio::{ChatRoom, ChatUser};
use crate::peers::{self};
use crate::support::*;

/// A recorded session written to a file, with its snapshot.
struct Recorded {
    file: PathBuf,
    snaps: PathBuf,
    snapshot: String,
    _dir: tempfile::TempDir,
}

/// Stops the recorder (once the last close had time to pass it) and snapshots what it
/// recorded.
async fn snapshot(recorder: Recorder) -> Recorded {
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let (recording, _) = recorder.finish().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("session.jsonl");
    write_recording(&recording, &file);
    let snaps = dir.path().join("snapshots");
    let written =
        wsreplay::gate::check::write_snapshot(&file, &snaps, &Default::default()).unwrap();
    Recorded {
        file,
        snaps,
        snapshot: written.structure.render(),
        _dir: dir,
    }
}

impl Recorded {
    fn assert_names(&self, needles: &[&str]) {
        for needle in needles {
            assert!(
                self.snapshot.contains(needle),
                "{needle:?} not in\n{}",
                self.snapshot
            );
        }
    }

    /// `wsreplay check` against the unchanged server at `url` passes `rounds` times.
    async fn passes(&self, url: &str, rounds: usize) {
        for round in 0..rounds {
            let (code, out) = peers::check(&self.file, &self.snaps, url).await;
            assert_eq!(code, 0, "round {round}:\n{out}");
        }
    }

    /// `wsreplay check` against a server that renamed a field fails with a summary line
    /// naming the field's old and new path.
    async fn fails_naming(&self, url: &str, old: &str, new: &str) {
        let (code, out) = peers::check(&self.file, &self.snaps, url).await;
        assert_eq!(code, 1, "{out}");
        let (old, new) = (format!("`{old}`"), format!("`{new}`"));
        assert!(
            out.lines().any(|l| l.contains(&old) && l.contains(&new)),
            "no summary line names {old} and {new}:\n{out}"
        );
    }
}

/// A socketioxide chat room and a rust_socketio user: join, chat (broadcast back to the
/// room), a question with an acknowledgement, leave.
#[tokio::test]
async fn a_socketio_chat_room_checks_clean_and_names_a_renamed_chat_field() {
    let room = ChatRoom::start().await;
    let recorder = Recorder::start(&room.url()).await;
    let mut ann = ChatUser::connect(recorder.addr()).await;
    ann.emit("join", json!({"room": "lobby", "user": "ann"}))
        .await;
    assert_eq!(ann.expect("joined").await["user"], "ann");
    ann.emit("chat", json!({"room": "lobby", "text": "hi"}))
        .await;
    assert_eq!(ann.expect("chat").await["text"], "hi");
    let members = ann.ask("members", json!({"room": "lobby"})).await;
    assert_eq!(members["members"], json!(["ann"]), "{members}");
    ann.emit("leave", json!({"room": "lobby"})).await;
    assert_eq!(ann.expect("left").await["user"], "ann");
    ann.disconnect().await;
    let recorded = snapshot(recorder).await;

    recorded.assert_names(&[
        "### s2c engine.io open ×1",
        "### s2c engine.io ping ×1",
        // rust_socketio pongs twice (once more as it leaves): heartbeats count once.
        "### c2s engine.io pong ×1",
        "### s2c connect ×1",
        "### c2s join ×1",
        "### s2c joined ×1",
        "### c2s chat ×1",
        "### s2c chat ×1",
        "### c2s members ×1",
        "### s2c members ack ×1",
        "### c2s leave ×1",
        "### s2c left ×1",
        "pingInterval",
        "members[]",
        "text",
        "×1 c2s members → s2c members ack",
        // The server's ping (at once, then on its timer) is no step of the conversation.
        "×1 per connection: s2c engine.io open → c2s connect → s2c connect → c2s join",
    ]);
    recorded.passes(&room.url(), 10).await;
    let renamed = ChatRoom::with_text_key("body").await;
    recorded.fails_naming(&renamed.url(), "text", "body").await;
}

/// An async-graphql server over `graphql-transport-ws`: three concurrent subscriptions
/// and a query on one connection, their items interleaved, replay 20 times without a
/// difference (each operation's messages are a sequence of their own, by `id`).
#[tokio::test]
async fn a_graphql_ws_session_with_concurrent_subscriptions_checks_clean_20_times() {
    let market = Market::start().await;
    let recorder = Recorder::start(&market.url()).await;
    let received = market_session(recorder.addr()).await;
    assert_eq!(received["1"].len(), 4, "{received:?}");
    assert_eq!(received["3"][3]["data"]["trades"]["price"], 53);
    assert_eq!(received["4"][0]["data"]["market"]["open"], true);
    let recorded = snapshot(recorder).await;

    recorded.assert_names(&[
        "### c2s subscribe ×4",
        // Each subscription streams its own number of items (the query one): a stream.
        "### s2c next ×1+",
        "### s2c complete ×4",
        "payload.data.ticks.price",
        "payload.data.trades.price",
        "payload.data.market.name",
    ]);
    recorded.passes(&market.url(), 20).await;
    let renamed = Market::with_price_key("amount").await;
    recorded
        .fails_naming(
            &renamed.url(),
            "payload.data.trades.price",
            "payload.data.trades.amount",
        )
        .await;
}

/// Issue 18: the same graphql-ws client gets the same results from a mock of the
/// recorded async-graphql server as from the server itself: the subprotocol confirmed,
/// every operation's items and completion, by operation id.
#[tokio::test]
async fn a_graphql_ws_client_gets_the_recorded_results_from_a_mock() {
    use wsreplay::replay::{Replay, ReplayConfig};
    let market = Market::start().await;
    let recorder = Recorder::start(&market.url()).await;
    let received = market_session(recorder.addr()).await;
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let (recording, _) = recorder.finish().await;
    drop(market);
    let mut config = ReplayConfig::new(wsreplay::recording::sink::Output::Discard);
    config.mock("r", "127.0.0.1:0".parse().unwrap());
    let replay = Replay::start(recording, config).await.unwrap();
    let mocked = market_session(replay.mock_addr("r").unwrap()).await;
    assert_eq!(mocked, received);
    let report = replay.serve(async {}, false).await;
    assert!(report.problems.is_empty(), "{:?}", report.problems);
}

/// A jsonrpsee server whose `lookup` answers `{n, NAME_KEY}` after a pause of its own
/// per call (so concurrent calls are answered out of order) and whose `fail` refuses.
async fn rpc_server(name_key: &'static str) -> (String, jsonrpsee::server::ServerHandle) {
    use jsonrpsee::server::{RpcModule, Server};
    use jsonrpsee::types::ErrorObjectOwned;

    let server = Server::builder().build("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}", server.local_addr().unwrap());
    let mut module = RpcModule::new(());
    module
        .register_async_method("lookup", move |params, _, _| async move {
            let (n,): (u64,) = params.parse()?;
            tokio::time::sleep(std::time::Duration::from_millis((n * 7919) % 40)).await;
            let mut item = json!({"n": n});
            item[name_key] = json!(format!("item-{n}"));
            Ok::<_, ErrorObjectOwned>(item)
        })
        .unwrap();
    module
        .register_method("fail", |_, _, _| {
            Err::<(), _>(ErrorObjectOwned::owned(-32000, "refused", None::<()>))
        })
        .unwrap();
    (url, server.start(module))
}

/// A real JSON-RPC server and client (jsonrpsee): eight concurrent calls, answered out
/// of order, and an error, recorded through the proxy; the snapshot names every
/// response by its method, 20 replays against the same server give no difference, and
/// a server that renamed one result field fails the check naming it.
#[tokio::test]
async fn a_jsonrpsee_session_with_concurrent_calls_replays_without_a_difference() {
    use jsonrpsee::core::client::ClientT;
    use jsonrpsee::rpc_params;
    use jsonrpsee::ws_client::WsClientBuilder;

    let (url, handle) = rpc_server("name").await;
    let recorder = Recorder::start(&url).await;
    let client = WsClientBuilder::default()
        .build(format!("ws://{}", recorder.addr()))
        .await
        .unwrap();
    let calls = (0..8u64).map(|n| client.request::<serde_json::Value, _>("lookup", rpc_params![n]));
    for answer in futures_util::future::join_all(calls).await {
        answer.unwrap();
    }
    client
        .request::<(), _>("fail", rpc_params![])
        .await
        .unwrap_err();
    drop(client);
    let recorded = snapshot(recorder).await;

    recorded.assert_names(&[
        "### s2c lookup → result ×8",
        "### s2c fail → error ×1",
        "×8 c2s lookup → s2c lookup → result",
        "result.name",
    ]);
    for round in 0..20 {
        let outcome = wsreplay::Gate::load(&recorded.file)
            .snapshots(&recorded.snaps)
            .check_only()
            .start()
            .await
            .unwrap()
            .target("r", &url)
            .run()
            .await
            .unwrap();
        assert_eq!(
            outcome.verdict(),
            wsreplay::Verdict::Same,
            "round {round}: {}",
            outcome.report()
        );
    }
    let (renamed, renamed_handle) = rpc_server("label").await;
    recorded
        .fails_naming(&renamed, "result.name", "result.label")
        .await;
    handle.stop().unwrap();
    renamed_handle.stop().unwrap();
}

/// Alice and bob in a socketioxide room, recorded through the proxy: alice joins, bob
/// joins (his connection opened before alice joined, or only after), alice chats once
/// bob is there (both get the broadcast), both ask who is in the room, both leave.
async fn record_two_users(
    room: &peers::Listening,
    open_first: bool,
) -> wsreplay::recording::Recording {
    let recorder = Recorder::start(&room.url()).await;
    let addr = recorder.addr();
    let mut alice = ChatUser::connect(addr).await;
    let early = if open_first {
        Some(ChatUser::connect(addr).await)
    } else {
        None
    };
    alice
        .emit("join", json!({"room": "lobby", "user": "alice"}))
        .await;
    assert_eq!(alice.expect("joined").await["user"], "alice");
    let mut bob = match early {
        Some(bob) => bob,
        None => ChatUser::connect(addr).await,
    };
    bob.emit("join", json!({"room": "lobby", "user": "bob"}))
        .await;
    assert_eq!(bob.expect("joined").await["user"], "bob");
    assert_eq!(alice.expect("joined").await["user"], "bob");
    alice
        .emit("chat", json!({"room": "lobby", "text": "hi bob"}))
        .await;
    assert_eq!(alice.expect("chat").await["user"], "alice");
    assert_eq!(bob.expect("chat").await["text"], "hi bob");
    for user in [&alice, &bob] {
        let members = user.ask("members", json!({"room": "lobby"})).await;
        assert_eq!(members["members"], json!(["alice", "bob"]), "{members}");
    }
    bob.emit("leave", json!({"room": "lobby"})).await;
    assert_eq!(bob.expect("left").await["user"], "bob");
    assert_eq!(alice.expect("left").await["user"], "bob");
    alice.emit("leave", json!({"room": "lobby"})).await;
    assert_eq!(alice.expect("left").await["user"], "alice");
    bob.disconnect().await;
    alice.disconnect().await;
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    recorder.finish().await.0
}

/// Issue 17: a two-user Socket.IO chat room replays 20 times against the unchanged
/// server with 0 differences and no step timeout (bob's broadcast arrives because
/// replayed alice speaks only once replayed bob has joined), whether bob's connection
/// opened early or only after alice joined.
#[tokio::test]
async fn a_two_user_socketio_room_replays_twenty_times_without_a_difference() {
    let room = ChatRoom::start().await;
    for open_first in [false, true] {
        let rec = record_two_users(&room, open_first).await;
        crate::pacing::assert_replays_cleanly(&rec, &room.url(), 20).await;
    }
}

/// Issue 18: two Socket.IO users recorded together, then served by a mock with the room
/// gone: whichever connects first, each gets the answers recorded on their own
/// connection (their own `joined` first, the broadcast they got, who is in the room),
/// 20 times out of 20.
#[tokio::test]
async fn two_socketio_users_each_get_their_own_answers_from_the_mock() {
    use wsreplay::replay::{Replay, ReplayConfig};
    let rec = record_two_users(&ChatRoom::start().await, true).await;
    for round in 0..20 {
        let mut config = ReplayConfig::new(wsreplay::recording::sink::Output::Discard);
        config.mock("r", "127.0.0.1:0".parse().unwrap());
        let replay = Replay::start(rec.clone(), config).await.unwrap();
        let addr = replay.mock_addr("r").unwrap();
        let mut users = Vec::new();
        let names = if round % 2 == 0 {
            ["alice", "bob"]
        } else {
            ["bob", "alice"]
        };
        for name in names {
            users.push((name, ChatUser::connect(addr).await));
        }
        for (name, user) in &mut users {
            user.emit("join", json!({"room": "lobby", "user": name}))
                .await;
        }
        for (name, user) in &mut users {
            assert_eq!(user.expect("joined").await["user"], *name, "round {round}");
        }
        let (alice, bob) = match &mut users[..] {
            [(_, a), (_, b)] if round % 2 == 0 => (a, b),
            [(_, b), (_, a)] => (a, b),
            _ => unreachable!(),
        };
        assert_eq!(alice.expect("joined").await["user"], "bob", "round {round}");
        alice
            .emit("chat", json!({"room": "lobby", "text": "hi bob"}))
            .await;
        assert_eq!(alice.expect("chat").await["user"], "alice", "round {round}");
        assert_eq!(bob.expect("chat").await["text"], "hi bob", "round {round}");
        for user in [&*alice, &*bob] {
            let members = user.ask("members", json!({"room": "lobby"})).await;
            assert_eq!(members["members"], json!(["alice", "bob"]), "round {round}");
        }
        for (_, user) in users {
            user.disconnect().await;
        }
        let report = replay.serve(async {}, false).await;
        assert_eq!(
            report.mocks[0].unmatched, 0,
            "round {round}: {:?}",
            report.problems
        );
    }
}

/// A replayed client's `--fault ROUTE:ACTION:KIND` names its messages as the route's
/// protocol does: `chat` is a Socket.IO event, not a `(text)` frame.
#[tokio::test]
async fn a_client_side_fault_names_socketio_events() {
    use wsreplay::recording::{Record, Recording};
    use wsreplay::replay::{Replay, ReplayConfig};
    let room = ChatRoom::start().await;
    let rec = record_two_users(&room, false).await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run.jsonl");
    let mut config = ReplayConfig::new(wsreplay::recording::sink::Output::File(out.clone()));
    config.faults = vec!["r:drop:chat".parse().unwrap()];
    config.step_timeout = std::time::Duration::from_millis(500);
    let mut replay = Replay::start(rec, config).await.unwrap();
    replay.target("r", &room.url()).unwrap();
    guard(replay.run()).await.unwrap();
    let capture = Recording::read(&out).unwrap();
    let dropped: Vec<&str> = capture
        .records
        .iter()
        .filter_map(|r| match r {
            Record::Fault(f) => Some(f.label.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(dropped, ["chat"]);
}
