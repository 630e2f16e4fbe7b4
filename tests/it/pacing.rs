//! Causal pacing: a chat room whose users depend on each other across connections, and a
//! backend whose progress streams vary in length from run to run.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use wsreplay::recording::sink::Output;
use wsreplay::recording::{Dir, Record, Recording};
use wsreplay::replay::{Replay, ReplayConfig};
use wsreplay::structure::diff::{compare, routes_of};
use wsreplay::structure::render::Structure;

use crate::support::{guard, label_counts, Recorder};

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Connects a plain JSON client to `ws://addr/path`.
async fn connect(addr: std::net::SocketAddr, path: &str) -> Ws {
    tokio_tungstenite::connect_async(format!("ws://{addr}{path}"))
        .await
        .unwrap()
        .0
}

async fn send(ws: &mut Ws, v: Value) {
    ws.send(Message::text(v.to_string())).await.unwrap();
}

/// The next JSON message, which must be of type `kind`.
async fn expect(ws: &mut Ws, kind: &str) -> Value {
    loop {
        match ws.next().await.unwrap().unwrap() {
            Message::Text(t) => {
                let v: Value = serde_json::from_str(&t).unwrap();
                assert_eq!(v["type"], kind, "{v}");
                return v;
            }
            Message::Close(_) => panic!("closed while waiting for {kind}"),
            _ => {}
        }
    }
}

/// Closes and reads until the server's close.
async fn close(mut ws: Ws) {
    ws.close(None).await.unwrap();
    while let Some(Ok(_)) = ws.next().await {}
}

/// Spawns a server that handles each connection with `handle`; returns its URL.
async fn serve<F, Fut>(handle: F) -> String
where
    F: Fn(tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}", listener.local_addr().unwrap());
    let handle = Arc::new(handle);
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            let handle = handle.clone();
            tokio::spawn(async move {
                if let Ok(ws) = tokio_tungstenite::accept_async(s).await {
                    handle(ws).await;
                }
            });
        }
    });
    url
}

type Rooms = Arc<Mutex<HashMap<String, Vec<(u64, mpsc::UnboundedSender<Message>)>>>>;

/// A chat room server: `join` (answered `joined`, to the joiner only), `chat` (broadcast
/// as `message` to every member of the room, the sender too), `leave` (answered `left`).
/// A join by `ignored` (a broken build) is not answered, and does not join.
async fn chat_server(ignored: Option<&'static str>) -> String {
    let rooms: Rooms = Arc::default();
    let next = Arc::new(std::sync::atomic::AtomicU64::new(0));
    serve(move |ws| {
        let (rooms, id) = (rooms.clone(), next.fetch_add(1, std::sync::atomic::Ordering::SeqCst));
        async move {
            let (mut tx, mut rx) = ws.split();
            let (out, mut queue) = mpsc::unbounded_channel::<Message>();
            let writer = tokio::spawn(async move {
                while let Some(m) = queue.recv().await {
                    if tx.send(m).await.is_err() {
                        break;
                    }
                }
            });
            let mut joined: Option<(String, String)> = None;
            while let Some(Ok(msg)) = rx.next().await {
                let Message::Text(t) = msg else { continue };
                let v: Value = serde_json::from_str(&t).unwrap_or_default();
                let reply = |v: Value| out.send(Message::text(v.to_string()));
                match v["type"].as_str() {
                    Some("join") if v["user"].as_str() == ignored => {}
                    Some("join") => {
                        let (room, user) = (v["room"].as_str().unwrap_or("").to_string(), v["user"].as_str().unwrap_or("").to_string());
                        rooms.lock().unwrap().entry(room.clone()).or_default().push((id, out.clone()));
                        let _ = reply(json!({"type": "joined", "room": room, "user": user}));
                        joined = Some((room, user));
                    }
                    Some("chat") => {
                        let Some((room, user)) = &joined else { continue };
                        let message = json!({"type": "message", "room": room, "from": user, "text": v["text"]});
                        for (_, member) in rooms.lock().unwrap().get(room).into_iter().flatten() {
                            let _ = member.send(Message::text(message.to_string()));
                        }
                    }
                    Some("leave") => {
                        if let Some((room, user)) = joined.take() {
                            leave(&rooms, &room, id);
                            let _ = reply(json!({"type": "left", "room": room, "user": user}));
                        }
                    }
                    _ => {}
                }
            }
            if let Some((room, _)) = joined {
                leave(&rooms, &room, id);
            }
            drop(out);
            let _ = writer.await;
        }
    })
    .await
}

fn leave(rooms: &Rooms, room: &str, id: u64) {
    if let Some(members) = rooms.lock().unwrap().get_mut(room) {
        members.retain(|(m, _)| *m != id);
    }
}

/// Records alice and bob through a proxy: both join the room (bob's connection opens
/// only after alice has joined, unless `open_first`, when both connections open before
/// anyone joins), then alice speaks, both receive her message, and both leave. Alice's
/// message depends on bob's `joined`, which only bob's connection shows.
async fn record_chat(server: &str, open_first: bool) -> Recording {
    let recorder = Recorder::start(server).await;
    let addr = recorder.addr();
    let pause = || tokio::time::sleep(Duration::from_millis(30));
    let join = |user: &str| json!({"type": "join", "room": "lobby", "user": user});
    let mut alice = connect(addr, "/chat?user=alice").await;
    let mut bob = if open_first {
        pause().await;
        Some(connect(addr, "/chat?user=bob").await)
    } else {
        None
    };
    pause().await;
    send(&mut alice, join("alice")).await;
    expect(&mut alice, "joined").await;
    pause().await;
    let mut bob = match bob.take() {
        Some(bob) => bob,
        None => connect(addr, "/chat?user=bob").await,
    };
    pause().await;
    send(&mut bob, join("bob")).await;
    expect(&mut bob, "joined").await;
    pause().await;
    send(&mut alice, json!({"type": "chat", "text": "hello bob"})).await;
    expect(&mut alice, "message").await;
    expect(&mut bob, "message").await;
    pause().await;
    send(&mut bob, json!({"type": "leave"})).await;
    expect(&mut bob, "left").await;
    send(&mut alice, json!({"type": "leave"})).await;
    expect(&mut alice, "left").await;
    close(bob).await;
    close(alice).await;
    recorder.finish().await.0
}

/// Replays `rec`'s route `r` against `url`; the replay must report no problem (no step
/// timeout, no early close). Returns its capture.
async fn replay_cleanly(rec: &Recording, url: &str, run: usize) -> Recording {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run.jsonl");
    let mut config = ReplayConfig::new(Output::File(out.clone()));
    config.step_timeout = Duration::from_secs(5);
    let mut replay = Replay::start(rec.clone(), config).await.unwrap();
    replay.target("r", url).unwrap();
    let report = guard(replay.run()).await.unwrap();
    assert!(report.clean(), "run {run}:\n{}", report.render());
    Recording::read(&out).unwrap()
}

/// Replays `rec`'s route `r` against `url` `runs` times; each replay must report no
/// problem, capture the recorded messages per direction and kind, and have the
/// recording's structure (0 differences). Returns the captures. Independent of the
/// server and protocol.
pub(crate) async fn assert_replays_cleanly(
    rec: &Recording,
    url: &str,
    runs: usize,
) -> Vec<Recording> {
    let recorded = label_counts(rec);
    let structure = Structure::of(rec);
    let mut captures = Vec::new();
    for run in 0..runs {
        let capture = replay_cleanly(rec, url, run).await;
        assert_eq!(label_counts(&capture), recorded, "run {run}");
        let replayed = Structure::of(&capture);
        for diff in compare(&structure, &replayed, &routes_of(&structure, &replayed)) {
            assert!(diff.same(), "run {run}: {:?}\n{}", diff.summary, diff.diff);
        }
        captures.push(capture);
    }
    captures
}

#[tokio::test]
async fn a_chat_room_replays_twenty_times_with_alice_waiting_for_bob_to_join() {
    let server = chat_server(None).await;
    for open_first in [false, true] {
        let rec = record_chat(&server, open_first).await;
        let captures = assert_replays_cleanly(&rec, &server, 20).await;
        // Bob got alice's message in every run: he had joined before she spoke.
        for capture in &captures {
            let messages = labels(capture)
                .into_iter()
                .filter(|(_, dir, label)| *dir == Dir::ServerToClient && label == "message")
                .count();
            assert_eq!(messages, 2, "open_first: {open_first}");
        }
    }
}

#[tokio::test]
async fn a_wait_for_another_users_event_that_never_comes_is_reported_once_with_its_edge() {
    let rec = record_chat(&chat_server(None).await, false).await;
    let broken = chat_server(Some("bob")).await;
    let mut config = ReplayConfig::new(Output::Discard);
    config.step_timeout = Duration::from_millis(300);
    let mut replay = Replay::start(rec, config).await.unwrap();
    replay.target("r", &broken).unwrap();
    let text = guard(replay.run()).await.unwrap().render();
    let (build, replay) = text
        .split_once("what the replay could not do")
        .unwrap_or_else(|| panic!("{text}"));
    let edge = "waited 300ms for `joined` on r#2 /chat?user=bob (its recorded server message 1) before sending `chat`; it never came";
    assert_eq!(replay.matches(edge).count(), 1, "{text}");
    assert!(replay.contains("r#1 /chat?user=alice: "), "{text}");
    assert!(!build.contains("waited"), "{text}");
}

/// Every data message of `rec`: (connection, direction, label), in order.
fn labels(rec: &Recording) -> Vec<(u64, Dir, String)> {
    rec.records
        .iter()
        .filter_map(|r| match r {
            Record::Message(m) => Some((m.conn, m.dir, wsreplay::protocol::label(m.op, &m.body))),
            Record::Close(c) if c.dir == Dir::ClientToServer => {
                Some((c.conn, c.dir, "close".into()))
            }
            _ => None,
        })
        .collect()
}

/// An agent backend: each `chat` (with its `message_id`) is answered by `agent_started`,
/// `progress_update` a varying number of times, then `agent_completed`, all echoing the
/// `message_id`. `progress(n)` says how many progress updates the n-th chat gets.
async fn agent_backend(progress: impl Fn(u64) -> u64 + Send + Sync + 'static) -> String {
    let chats = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let progress = Arc::new(progress);
    serve(move |mut ws| {
        let (chats, progress) = (chats.clone(), progress.clone());
        async move {
            while let Some(Ok(msg)) = ws.next().await {
                let Message::Text(t) = msg else { continue };
                let v: Value = serde_json::from_str(&t).unwrap_or_default();
                if v["type"] != "chat" {
                    continue;
                }
                let id = v["message_id"].clone();
                let n = progress(chats.fetch_add(1, std::sync::atomic::Ordering::SeqCst));
                let mut events = vec![json!({"type": "agent_started", "message_id": id})];
                events.extend(
                    (0..n).map(|i| json!({"type": "progress_update", "message_id": id, "step": i})),
                );
                events.push(json!({"type": "agent_completed", "message_id": id, "answer": "42"}));
                for e in events {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    if ws.send(Message::text(e.to_string())).await.is_err() {
                        return;
                    }
                }
            }
        }
    })
    .await
}

#[tokio::test]
async fn progress_streams_longer_or_shorter_than_recorded_neither_hurry_nor_hang_the_client() {
    const CHATS: usize = 3;
    let recorded = agent_backend(|_| 3).await;
    let recorder = Recorder::start(&recorded).await;
    let mut ws = connect(recorder.addr(), "/agent").await;
    for c in 0..CHATS {
        send(
            &mut ws,
            json!({"type": "chat", "message_id": format!("msg_{c}"), "text": "hi"}),
        )
        .await;
        expect(&mut ws, "agent_started").await;
        for _ in 0..3 {
            expect(&mut ws, "progress_update").await;
        }
        expect(&mut ws, "agent_completed").await;
    }
    close(ws).await;
    let rec = recorder.finish().await.0;
    // Each run streams a different number of updates per chat: none, fewer, more.
    let varying = agent_backend(|n| (n * 5 + 2) % 9).await;
    for run in 0..20 {
        let capture = replay_cleanly(&rec, &varying, run).await;
        // The client sent each chat, and its close, only once the previous chat's
        // `agent_completed` had come, and every chat got its `agent_completed`.
        let mut completed = 0;
        let mut sent = 0;
        for (_, dir, label) in labels(&capture) {
            match (dir, label.as_str()) {
                (Dir::ClientToServer, "chat") => {
                    assert_eq!(completed, sent, "run {run}: chat sent early");
                    sent += 1;
                }
                (Dir::ClientToServer, "close") => {
                    assert_eq!(completed, CHATS, "run {run}: closed early");
                }
                (Dir::ServerToClient, "agent_completed") => completed += 1,
                _ => {}
            }
        }
        assert_eq!((sent, completed), (CHATS, CHATS), "run {run}");
    }
}
