//! The protocols real systems speak, end to end through the command line: a recorded
//! session's snapshot names each protocol's event kinds and the key paths inside their
//! payloads, `show` says how each connection was read, a renamed payload field is named
//! by `diff`, and conventions declared in `wsreplay.toml` group a home-grown protocol's
//! conversations. Sessions are written byte-exact from each protocol's specification.

use wsreplay::recording::{Body, Dir, Record, Recording};

use crate::support::*;

/// A recording of one connection opened with `request` (path and query) and the
/// subprotocol the server chose, carrying `messages` (`c2s`/`s2c`, text).
pub(crate) fn session(
    path: &str,
    subprotocol: Option<&str>,
    messages: &[(&str, &str)],
) -> Recording {
    let mut rec = Recording::single_connection(
        "app",
        messages.iter().map(|(dir, text)| {
            let dir = if *dir == "c2s" {
                Dir::ClientToServer
            } else {
                Dir::ServerToClient
            };
            (dir, Body::Text((*text).into()))
        }),
    );
    if let Some(Record::Open(open)) = rec.records.first_mut() {
        open.request = format!("GET {path} HTTP/1.1");
        if let Some(p) = subprotocol {
            open.response_headers = vec![("Sec-WebSocket-Protocol".into(), p.into())];
        }
    }
    rec
}

fn write(dir: &tempfile::TempDir, name: &str, rec: &Recording) -> String {
    let path = dir.path().join(name);
    write_recording(rec, &path);
    path.to_str().unwrap().to_string()
}

/// `wsreplay snapshot FILE EXTRA…` into `DIR/snaps`: the snapshot's text, or the exit
/// code and stderr when it failed.
fn snapshot_with(
    dir: &tempfile::TempDir,
    file: &str,
    extra: &[&str],
) -> Result<String, (i32, String)> {
    let snaps = dir.path().join("snaps");
    let mut args = vec!["snapshot", file, "--snapshots", snaps.to_str().unwrap()];
    args.extend(extra);
    let (code, _, err) = run(&args);
    if code != 0 {
        return Err((code, err));
    }
    let name = std::path::Path::new(file)
        .file_stem()
        .unwrap()
        .to_str()
        .unwrap();
    Ok(std::fs::read_to_string(snaps.join(format!("{name}.snap"))).unwrap())
}

fn snapshot_of(dir: &tempfile::TempDir, file: &str) -> String {
    snapshot_with(dir, file, &[]).unwrap()
}

/// Each protocol: a session, and the same session from a server that renamed one
/// payload field; the kinds and paths the snapshot must name; the summary's words.
struct Case {
    name: &'static str,
    path: &'static str,
    subprotocol: Option<&'static str>,
    before: Vec<(&'static str, &'static str)>,
    after: Vec<(&'static str, &'static str)>,
    snapshot_has: &'static [&'static str],
    summary_has: &'static [&'static str],
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "socketio",
            path: "/socket.io/?EIO=4&transport=websocket",
            subprotocol: None,
            before: vec![
                ("s2c", r#"0{"sid":"a","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#),
                ("c2s", "40"),
                ("s2c", r#"40{"sid":"b"}"#),
                ("c2s", r#"421["chat",{"text":"hi","room":"r"}]"#),
                ("s2c", r#"431[{"ok":true}]"#),
                ("s2c", r#"42["message",{"text":"hi","author":"ann"}]"#),
            ],
            after: vec![
                ("s2c", r#"0{"sid":"a","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#),
                ("c2s", "40"),
                ("s2c", r#"40{"sid":"b"}"#),
                ("c2s", r#"421["chat",{"text":"hi","room":"r"}]"#),
                ("s2c", r#"431[{"ok":true}]"#),
                ("s2c", r#"42["message",{"text":"hi","user":"ann"}]"#),
            ],
            snapshot_has: &["### s2c message ×1", "author", "### s2c chat ack ×1", "### c2s chat ×1", "room"],
            summary_has: &["message (server→client)", "`author`", "`user`"],
        },
        Case {
            name: "graphql",
            path: "/graphql",
            subprotocol: Some("graphql-transport-ws"),
            before: vec![
                ("c2s", r#"{"type":"connection_init"}"#),
                ("s2c", r#"{"type":"connection_ack"}"#),
                ("c2s", r#"{"id":"1","type":"subscribe","payload":{"query":"subscription { price }"}}"#),
                ("s2c", r#"{"id":"1","type":"next","payload":{"data":{"price":{"amount":1}}}}"#),
                ("s2c", r#"{"id":"1","type":"complete"}"#),
            ],
            after: vec![
                ("c2s", r#"{"type":"connection_init"}"#),
                ("s2c", r#"{"type":"connection_ack"}"#),
                ("c2s", r#"{"id":"1","type":"subscribe","payload":{"query":"subscription { price }"}}"#),
                ("s2c", r#"{"id":"1","type":"next","payload":{"data":{"price":{"value":1}}}}"#),
                ("s2c", r#"{"id":"1","type":"complete"}"#),
            ],
            snapshot_has: &["### s2c next ×1", "payload.data.price.amount", "×1 c2s subscribe → s2c next → s2c complete"],
            summary_has: &["next (server→client)", "`payload.data.price.amount`", "`payload.data.price.value`"],
        },
        Case {
            name: "jsonrpc",
            path: "/rpc",
            subprotocol: None,
            before: vec![
                ("c2s", r#"{"jsonrpc":"2.0","method":"getUser","params":{"id":1},"id":1}"#),
                ("s2c", r#"{"jsonrpc":"2.0","result":{"name":"ann","email":"a@x"},"id":1}"#),
            ],
            after: vec![
                ("c2s", r#"{"jsonrpc":"2.0","method":"getUser","params":{"id":1},"id":1}"#),
                ("s2c", r#"{"jsonrpc":"2.0","result":{"name":"ann","mail":"a@x"},"id":1}"#),
            ],
            snapshot_has: &["### s2c getUser → result ×1", "result.email"],
            summary_has: &["getUser → result (server→client)", "`result.email`", "`result.mail`"],
        },
        Case {
            name: "cdp",
            path: "/devtools/browser/3f2a6c1e-8b7d-4e2f-9a1b-0c3d5e7f9a2b",
            subprotocol: None,
            before: vec![
                ("c2s", r#"{"id":1,"method":"Target.getTargets"}"#),
                ("s2c", r#"{"id":1,"result":{"targetInfos":[{"targetId":"T","type":"page"}]}}"#),
            ],
            after: vec![
                ("c2s", r#"{"id":1,"method":"Target.getTargets"}"#),
                ("s2c", r#"{"id":1,"result":{"targetInfos":[{"id":"T","type":"page"}]}}"#),
            ],
            snapshot_has: &["### s2c Target.getTargets → result ×1", "result.targetInfos[].targetId"],
            summary_has: &["Target.getTargets → result (server→client)", "`result.targetInfos[].targetId`"],
        },
        Case {
            name: "stomp",
            path: "/ws",
            subprotocol: Some("v12.stomp"),
            before: vec![
                ("c2s", "CONNECT\naccept-version:1.2\nhost:h\n\n\0"),
                ("s2c", "CONNECTED\nversion:1.2\n\n\0"),
                ("c2s", "SUBSCRIBE\nid:0\ndestination:/topic/orders\n\n\0"),
                ("s2c", "MESSAGE\nsubscription:0\nmessage-id:1\ndestination:/topic/orders\ncontent-type:application/json\n\n{\"order\":{\"total\":5}}\0"),
            ],
            after: vec![
                ("c2s", "CONNECT\naccept-version:1.2\nhost:h\n\n\0"),
                ("s2c", "CONNECTED\nversion:1.2\n\n\0"),
                ("c2s", "SUBSCRIBE\nid:0\ndestination:/topic/orders\n\n\0"),
                ("s2c", "MESSAGE\nsubscription:0\nmessage-id:1\ndestination:/topic/orders\ncontent-type:application/json\n\n{\"order\":{\"sum\":5}}\0"),
            ],
            snapshot_has: &["### s2c MESSAGE ×1", "body.order.total", "destination"],
            summary_has: &["MESSAGE (server→client)", "`body.order.total`", "`body.order.sum`"],
        },
        Case {
            name: "signalr",
            path: "/chathub?id=x",
            subprotocol: None,
            before: vec![
                ("c2s", "{\"protocol\":\"json\",\"version\":1}\u{1e}"),
                ("s2c", "{}\u{1e}"),
                ("s2c", "{\"type\":1,\"target\":\"Receive\",\"arguments\":[{\"user\":\"a\",\"text\":\"hi\"}]}\u{1e}"),
            ],
            after: vec![
                ("c2s", "{\"protocol\":\"json\",\"version\":1}\u{1e}"),
                ("s2c", "{}\u{1e}"),
                ("s2c", "{\"type\":1,\"target\":\"Receive\",\"arguments\":[{\"sender\":\"a\",\"text\":\"hi\"}]}\u{1e}"),
            ],
            snapshot_has: &["### s2c Invocation Receive ×1", "arguments[].user"],
            summary_has: &["Invocation Receive (server→client)", "`arguments[].user`"],
        },
        Case {
            name: "phoenix",
            path: "/socket/websocket?vsn=2.0.0",
            subprotocol: None,
            before: vec![
                ("c2s", r#"["1","1","room:lobby","phx_join",{}]"#),
                ("s2c", r#"["1","1","room:lobby","phx_reply",{"status":"ok","response":{}}]"#),
                ("s2c", r#"[null,null,"room:lobby","new_msg",{"body":"hi","user":"a"}]"#),
            ],
            after: vec![
                ("c2s", r#"["1","1","room:lobby","phx_join",{}]"#),
                ("s2c", r#"["1","1","room:lobby","phx_reply",{"status":"ok","response":{}}]"#),
                ("s2c", r#"[null,null,"room:lobby","new_msg",{"text":"hi","user":"a"}]"#),
            ],
            snapshot_has: &["### s2c new_msg ×1", "payload.body"],
            summary_has: &["new_msg (server→client)", "`payload.body`", "`payload.text`"],
        },
        Case {
            name: "actioncable",
            path: "/cable",
            subprotocol: Some("actioncable-v1-json"),
            before: vec![
                ("s2c", r#"{"type":"welcome"}"#),
                ("c2s", r#"{"command":"subscribe","identifier":"{\"channel\":\"ChatChannel\"}"}"#),
                ("s2c", r#"{"identifier":"{\"channel\":\"ChatChannel\"}","message":{"text":"hi"}}"#),
            ],
            after: vec![
                ("s2c", r#"{"type":"welcome"}"#),
                ("c2s", r#"{"command":"subscribe","identifier":"{\"channel\":\"ChatChannel\"}"}"#),
                ("s2c", r#"{"identifier":"{\"channel\":\"ChatChannel\"}","message":{"body":"hi"}}"#),
            ],
            snapshot_has: &["### c2s subscribe ×1", "identifier.channel", "message.text"],
            summary_has: &["message (server→client)", "`message.text`", "`message.body`"],
        },
    ]
}

#[test]
fn each_protocol_names_its_kinds_and_payload_paths_and_a_renamed_field() {
    for case in cases() {
        let dir = tempfile::tempdir().unwrap();
        let before = session(case.path, case.subprotocol, &case.before);
        let after = session(case.path, case.subprotocol, &case.after);
        let a = write(&dir, &format!("{}.jsonl", case.name), &before);
        let b = write(&dir, &format!("{}-new.jsonl", case.name), &after);
        let snap = snapshot_of(&dir, &a);
        for needle in case.snapshot_has {
            assert!(
                snap.contains(needle),
                "{}: {needle:?} not in\n{snap}",
                case.name
            );
        }
        let (code, out, err) = run(&["show", &a]);
        assert_eq!(code, 0, "{err}");
        assert!(
            out.contains("read as "),
            "{}: show says how it was read:\n{out}",
            case.name
        );
        let (code, same, _) = run(&["diff", &a, &a]);
        assert_eq!(code, 0, "{}: {same}", case.name);
        let (code, out, err) = run(&["diff", &a, &b]);
        assert_eq!(code, 1, "{}: {out}{err}", case.name);
        let summary: String = out
            .lines()
            .filter(|l| l.starts_with("    - "))
            .collect::<Vec<_>>()
            .join("\n");
        for needle in case.summary_has {
            assert!(
                summary.contains(needle),
                "{}: {needle:?} not in the summary:\n{out}",
                case.name
            );
        }
    }
}

/// `[structure.route.NAME]` with `correlate = ["id"]`: the route's conversations are
/// grouped by `id`, so interleaved requests and responses are separate sequences.
#[test]
fn a_declared_correlation_key_groups_sequences() {
    let dir = tempfile::tempdir().unwrap();
    let rec = session(
        "/",
        None,
        &[
            ("c2s", r#"{"type":"get","id":1}"#),
            ("c2s", r#"{"type":"put","id":2}"#),
            ("s2c", r#"{"type":"put_ok","id":2}"#),
            ("s2c", r#"{"type":"get_ok","id":1}"#),
        ],
    );
    let file = write(&dir, "home.jsonl", &rec);
    let default = snapshot_of(&dir, &file);
    assert!(
        default.contains("×1 per connection: c2s get → c2s put → s2c put_ok → s2c get_ok"),
        "{default}"
    );
    let config = dir.path().join("wsreplay.toml");
    let with_config = &["--config", config.to_str().unwrap()];
    std::fs::write(
        &config,
        "[structure.route.app]\nprotocol = \"json\"\ncorrelate = [\"id\"]\n",
    )
    .unwrap();
    let declared = snapshot_with(&dir, &file, with_config).unwrap();
    assert!(declared.contains("×1 c2s get → s2c get_ok"), "{declared}");
    assert!(declared.contains("×1 c2s put → s2c put_ok"), "{declared}");

    // A table that cannot be used is an error naming it.
    std::fs::write(
        &config,
        "[structure.route.app]\nprotocol = \"carrier-pigeon\"\n",
    )
    .unwrap();
    let (code, err) = snapshot_with(&dir, &file, with_config).unwrap_err();
    assert_eq!(code, 2);
    assert!(err.contains("[structure.route.app]: protocol \"carrier-pigeon\" is not built in; use one of: json, socketio"), "{err}");
}

/// JSON-RPC and CDP responses are labelled by the method they answer in `show` and
/// `schema` too (the snapshot: see above).
#[test]
fn responses_are_labelled_by_their_method_everywhere() {
    for case in cases()
        .into_iter()
        .filter(|c| matches!(c.name, "jsonrpc" | "cdp"))
    {
        let dir = tempfile::tempdir().unwrap();
        let file = write(
            &dir,
            "s.jsonl",
            &session(case.path, case.subprotocol, &case.before),
        );
        let method = if case.name == "cdp" {
            "Target.getTargets"
        } else {
            "getUser"
        };
        let (code, show, _) = run(&["show", &file]);
        assert_eq!(code, 0);
        assert!(show.contains(&format!("{method} → result ×1")), "{show}");
        let (code, schema, err) = run(&["schema", &file, "--format", "json-schema"]);
        assert_eq!(code, 0, "{err}");
        assert!(schema.contains(&format!("{method} → result")), "{schema}");
    }
}

/// A connection whose handshake does not say what it speaks is read as plain JSON,
/// unless `--protocol ROUTE=NAME` says otherwise.
#[test]
fn the_command_line_chooses_a_routes_protocol() {
    let dir = tempfile::tempdir().unwrap();
    let rec = session("/ws", None, &[("c2s", r#"42["chat",{"text":"hi"}]"#)]);
    let file = write(&dir, "plain.jsonl", &rec);
    let guessed = snapshot_of(&dir, &file);
    assert!(guessed.contains("### c2s (text) ×1"), "{guessed}");
    let told = snapshot_with(&dir, &file, &["--protocol", "app=socketio"]).unwrap();
    assert!(told.contains("### c2s chat ×1"), "{told}");
    let (code, shown, err) = run(&["show", &file, "--protocol", "app=socketio"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        shown.contains("read as socketio: its route's configuration"),
        "{shown}"
    );
    assert!(shown.contains("c2s    1 message(s): chat ×1"), "{shown}");
    let (_, timeline, _) = run(&["show", &file, "--timeline", "--protocol", "app=socketio"]);
    assert!(timeline.contains("c2s    chat 42["), "{timeline}");
    let (code, err) = snapshot_with(&dir, &file, &["--protocol", "app=smoke-signals"]).unwrap_err();
    assert_eq!(code, 2);
    assert!(
        err.contains("\"smoke-signals\" is not a built-in protocol; use one of: json, socketio"),
        "{err}"
    );
}

/// A mock of a Socket.IO server names live requests as the recording's protocol does,
/// so a client that asks in another order still gets the answer to what it asked.
#[tokio::test]
async fn a_socketio_mock_answers_the_event_that_was_asked() {
    use futures_util::{SinkExt, StreamExt};
    use wsreplay::recording::sink::Output;
    use wsreplay::replay::{Replay, ReplayConfig};
    let rec = session(
        "/socket.io/?EIO=4&transport=websocket",
        None,
        &[
            ("c2s", r#"42["join",{"room":"a"}]"#),
            ("s2c", r#"42["joined",{"room":"a","members":2}]"#),
            ("c2s", r#"42["chat",{"text":"hi"}]"#),
            ("s2c", r#"42["message",{"text":"hi","author":"ann"}]"#),
        ],
    );
    let mut config = ReplayConfig::new(Output::Discard);
    config.mock("app", "127.0.0.1:0".parse().unwrap());
    let replay = Replay::start(rec, config).await.unwrap();
    let url = format!(
        "ws://{}/socket.io/?EIO=4&transport=websocket",
        replay.mock_addr("app").unwrap()
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    // Asked the other way round: chat first.
    ws.send(tokio_tungstenite::tungstenite::Message::text(
        r#"42["chat",{"text":"yo"}]"#,
    ))
    .await
    .unwrap();
    let answer = guard(ws.next()).await.unwrap().unwrap();
    assert!(
        answer.to_text().unwrap().starts_with(r#"42["message""#),
        "{answer:?}"
    );
    ws.send(tokio_tungstenite::tungstenite::Message::text(
        r#"42["join",{"room":"b"}]"#,
    ))
    .await
    .unwrap();
    let answer = guard(ws.next()).await.unwrap().unwrap();
    assert!(
        answer.to_text().unwrap().starts_with(r#"42["joined""#),
        "{answer:?}"
    );
    ws.close(None).await.unwrap();
    let report = guard(replay.run()).await.unwrap();
    assert!(report.problems.is_empty(), "{}", report.render());
}
