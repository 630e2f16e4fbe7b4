//! Values the server issues ("live values"): a replay learns the build's session id
//! and sends it back in place of the recorded one, in messages (whole, and inside a
//! URL) and in the request of a connection opened later; `[[live]] ignore = "auto"`
//! switches that off, and the build then refuses the replay.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::Message;

use crate::check::{text, wsreplay};
use crate::peers::chromium::{Cdp, Chromium};
use crate::support::*;

/// A build that issues a fresh session id (`sess_<random>`) in its first message on
/// `/ws`, and refuses (an `error`, then a close) a client message whose `session_id`
/// or `href` (`/s/<id>/items`) is not its connection's session. A connection opened
/// with `?session=<id>` joins the session issued last; any other id is refused.
struct SessionServer {
    url: String,
    /// The sessions issued, in order.
    issued: Arc<Mutex<Vec<String>>>,
}

impl SessionServer {
    async fn start() -> SessionServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("ws://{}", listener.local_addr().unwrap());
        let issued = Arc::new(Mutex::new(Vec::new()));
        let sessions = issued.clone();
        let counter = Arc::new(AtomicU64::new(1));
        tokio::spawn(async move {
            while let Ok((s, _)) = listener.accept().await {
                let (sessions, counter) = (sessions.clone(), counter.clone());
                tokio::spawn(async move {
                    let mut target = String::new();
                    #[allow(clippy::result_large_err)]
                    let note = |request: &Request, response: Response| {
                        target = request.uri().to_string();
                        Ok(response)
                    };
                    let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(s, note).await else {
                        return;
                    };
                    let session = match target.split_once("?session=") {
                        None => {
                            let n = counter.fetch_add(1, Ordering::SeqCst);
                            let random = RandomState::new().hash_one(n);
                            let id = format!("sess_{n}{random:016x}");
                            sessions.lock().unwrap().push(id.clone());
                            let welcome = json!({"type": "welcome", "session": {"id": id}});
                            let _ = ws.send(Message::text(welcome.to_string())).await;
                            id
                        }
                        Some((_, id)) => {
                            if sessions.lock().unwrap().last().map(String::as_str) != Some(id) {
                                refuse(&mut ws, "unknown session in the URL").await;
                                return;
                            }
                            id.to_string()
                        }
                    };
                    let mut count = 0;
                    while let Some(Ok(msg)) = ws.next().await {
                        let Some(request) = msg
                            .to_text()
                            .ok()
                            .and_then(|t| serde_json::from_str::<Value>(t).ok())
                        else {
                            continue;
                        };
                        let href = format!("/s/{session}/items");
                        let href_ok = request.get("href").is_none_or(|h| *h == href);
                        if request["session_id"] != session.as_str() || !href_ok {
                            refuse(&mut ws, "unknown session").await;
                            return;
                        }
                        count += 1;
                        let answer = match request["type"].as_str() {
                            Some("join") => json!({"type": "joined"}),
                            _ => json!({"type": "item_added", "count": count}),
                        };
                        if ws.send(Message::text(answer.to_string())).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        SessionServer { url, issued }
    }

    fn issued(&self) -> Vec<String> {
        self.issued.lock().unwrap().clone()
    }
}

async fn refuse<S>(ws: &mut tokio_tungstenite::WebSocketStream<S>, reason: &str)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let error = json!({"type": "error", "reason": reason});
    let _ = ws.send(Message::text(error.to_string())).await;
    let _ = ws.close(None).await;
}

type Client =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn ask(ws: &mut Client, request: Value) -> Value {
    ws.send(Message::text(request.to_string())).await.unwrap();
    receive(ws).await
}

async fn receive(ws: &mut Client) -> Value {
    loop {
        if let Message::Text(t) = ws.next().await.unwrap().unwrap() {
            return serde_json::from_str(&t).unwrap();
        }
    }
}

/// Records a session through the recorder: a first connection that is issued a session
/// and adds two items, then a second that joins it by URL and message and adds one.
async fn record_session(dir: &Path) -> String {
    let server = SessionServer::start().await;
    let recorder = Recorder::start(&server.url).await;
    let base = format!("ws://{}", recorder.addr());
    let (mut first, _) = tokio_tungstenite::connect_async(format!("{base}/ws"))
        .await
        .unwrap();
    let welcome = receive(&mut first).await;
    let id = welcome["session"]["id"].as_str().unwrap().to_string();
    for name in ["apple", "pear"] {
        let added = ask(
            &mut first,
            json!({"type": "add_item", "session_id": id, "href": format!("/s/{id}/items"), "name": name}),
        )
        .await;
        assert_eq!(added["type"], "item_added", "{added}");
    }
    let (mut second, _) = tokio_tungstenite::connect_async(format!("{base}/ws?session={id}"))
        .await
        .unwrap();
    let joined = ask(&mut second, json!({"type": "join", "session_id": id})).await;
    assert_eq!(joined["type"], "joined", "{joined}");
    let added = ask(
        &mut second,
        json!({"type": "add_item", "session_id": id, "name": "plum"}),
    )
    .await;
    assert_eq!(added["type"], "item_added", "{added}");
    second.close(None).await.unwrap();
    first.close(None).await.unwrap();
    for ws in [&mut first, &mut second] {
        while let Some(Ok(_)) = ws.next().await {}
    }
    let (recording, _) = recorder.finish().await;
    assert_eq!(server.issued(), std::slice::from_ref(&id));
    std::fs::create_dir_all(dir.join("recordings")).unwrap();
    write_recording(&recording, &dir.join("recordings/session.jsonl"));
    id
}

#[tokio::test]
async fn a_session_id_the_server_issues_is_learned_and_sent_back() {
    let project = tempfile::tempdir().unwrap();
    let dir = project.path();
    let recorded = record_session(dir).await;
    let snap = wsreplay(dir, &["snapshot", "recordings/session.jsonl"], false).await;
    assert!(snap.status.success(), "{}", text(&snap));

    // A fresh build: it knows nothing of the recorded session.
    let build = SessionServer::start().await;
    let target = format!("r={}", build.url);
    let args = [
        "check",
        "recordings/",
        "--target",
        &target,
        "--html",
        "report.html",
    ];
    let check = wsreplay(dir, &args, false).await;
    let out = text(&check);
    assert_eq!(check.status.code(), Some(0), "{out}");
    assert!(out.contains("same structure"), "{out}");
    assert!(!out.contains("problem"), "{out}");
    // Two messages on the first connection, each with the id and the href; the URL
    // and two messages on the second.
    assert!(
        out.contains("1 live value substituted: session.id ×7"),
        "{out}"
    );
    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    assert!(html.contains("session.id ×7"), "{html}");
    let issued = build.issued();
    assert_eq!(issued.len(), 1, "{issued:?}");
    assert_ne!(issued[0], recorded);

    // Switched off, the recorded (stale) id is sent and the build refuses it.
    std::fs::write(dir.join("wsreplay.toml"), "[[live]]\nignore = \"auto\"\n").unwrap();
    let off = wsreplay(dir, &["check", "recordings/", "--target", &target], false).await;
    let out = text(&off);
    assert_eq!(off.status.code(), Some(1), "{out}");
    assert!(out.contains("STRUCTURE DIFFERS"), "{out}");
    assert!(!out.contains("live value"), "{out}");

    // Declared explicitly (detection still off), it is substituted again.
    std::fs::write(
        dir.join("wsreplay.toml"),
        "[[live]]\nignore = \"auto\"\n\n[[live]]\nfrom = \"s2c welcome session.id\"\n",
    )
    .unwrap();
    let declared = wsreplay(dir, &["check", "recordings/", "--target", &target], false).await;
    let out = text(&declared);
    assert_eq!(declared.status.code(), Some(0), "{out}");
    assert!(out.contains("session.id ×7"), "{out}");
}

#[tokio::test]
async fn a_live_entry_that_is_not_an_origin_is_refused_naming_the_file_and_line() {
    let project = tempfile::tempdir().unwrap();
    let dir = project.path();
    std::fs::write(
        dir.join("wsreplay.toml"),
        "[[live]]\nfrom = \"welcome session.id\"\n",
    )
    .unwrap();
    let (code, _, err) = run(&[
        "replay",
        CHECKOUT,
        "--target",
        "frontend=ws://127.0.0.1:9",
        "--config",
        &dir.join("wsreplay.toml").display().to_string(),
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("wsreplay.toml"), "{err}");
    assert!(err.contains("line 1") || err.contains("line 2"), "{err}");
    assert!(err.contains("s2c KIND PATH"), "{err}");
}

/// Opens a page, navigates it to a `data:` URL, evaluates, reads the DOM and closes
/// the page, through a recorder in front of `browser`.
async fn record_cdp(browser: &Chromium) -> wsreplay::recording::Recording {
    let (authority, path) = browser.url["ws://".len()..].split_once('/').unwrap();
    let recorder = Recorder::start(&format!("ws://{authority}")).await;
    let url = format!("ws://{}/{path}", recorder.addr());
    let mut cdp = Cdp::connect(&url).await;
    let created = cdp
        .call("Target.createTarget", json!({"url": "about:blank"}), None)
        .await;
    let target = created["targetId"].as_str().unwrap().to_string();
    let attached = cdp
        .call(
            "Target.attachToTarget",
            json!({"targetId": target, "flatten": true}),
            None,
        )
        .await;
    let session = attached["sessionId"].as_str().unwrap().to_string();
    let s = Some(session.as_str());
    cdp.call(
        "Page.navigate",
        json!({"url": "data:text/html,<h1>wsreplay</h1>"}),
        s,
    )
    .await;
    let two = cdp
        .call(
            "Runtime.evaluate",
            json!({"expression": "1 + 1", "returnByValue": true}),
            s,
        )
        .await;
    assert_eq!(two["result"]["value"], 2, "{two}");
    cdp.call("DOM.getDocument", json!({"depth": 1}), s).await;
    cdp.call("Target.closeTarget", json!({"targetId": target}), None)
        .await;
    cdp.ws.close(None).await.unwrap();
    while let Some(Ok(_)) = cdp.ws.next().await {}
    recorder.finish().await.0
}

/// Replays `recording` against `browser`; returns the report and the server messages
/// the replay received.
async fn replay_cdp(
    recording: &wsreplay::recording::Recording,
    browser: &Chromium,
    live: Vec<wsreplay::replay::live::LiveEntry>,
) -> (wsreplay::replay::ReplayReport, Vec<Value>) {
    use wsreplay::recording::{Dir, Record, Recording};
    use wsreplay::replay::{Replay, ReplayConfig};
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run.jsonl");
    let mut config = ReplayConfig::new(wsreplay::recording::sink::Output::File(out.clone()));
    // Without live values the stale ids get errors and the waits for what they
    // would have started time out: a short step timeout keeps that quick.
    if live.contains(&wsreplay::replay::live::LiveEntry::NoDetection) {
        config.step_timeout = std::time::Duration::from_secs(1);
    }
    config.live = live;
    let mut replay = Replay::start(recording.clone(), config).await.unwrap();
    replay.target("r", &browser.url).unwrap();
    let report = guard(replay.run()).await.unwrap();
    let received = Recording::read(&out)
        .unwrap()
        .records
        .iter()
        .filter_map(|r| match r {
            Record::Message(m) if m.dir == Dir::ServerToClient => {
                serde_json::from_str(m.body.as_text()?).ok()
            }
            _ => None,
        })
        .collect();
    (report, received)
}

#[tokio::test]
async fn a_devtools_session_replays_against_a_fresh_chromium() {
    let Some(recorded_on) = Chromium::start().await else {
        return;
    };
    let recording = record_cdp(&recorded_on).await;
    drop(recorded_on);
    let Some(fresh) = Chromium::start().await else {
        return;
    };
    let (report, received) = replay_cdp(&recording, &fresh, Vec::new()).await;
    let summary = report.render();
    assert!(report.problems.is_empty(), "{summary}");
    let errors: Vec<&Value> = received
        .iter()
        .filter(|m| m.get("error").is_some())
        .collect();
    assert!(errors.is_empty(), "{errors:?}\n{summary}");
    assert!(
        received.iter().any(|m| m["result"]["result"]["value"] == 2),
        "{received:?}"
    );
    let live = report.live.lines();
    assert!(live[0].contains("targetId ×"), "{summary}");
    assert!(live[0].contains("sessionId ×"), "{summary}");

    // Without substitution the browser knows none of the recorded ids.
    let off = vec![wsreplay::replay::live::LiveEntry::NoDetection];
    let (report, received) = replay_cdp(&recording, &fresh, off).await;
    assert!(report.live.lines().is_empty(), "{}", report.render());
    assert!(
        received.iter().any(|m| m.get("error").is_some()),
        "{received:?}"
    );
}
