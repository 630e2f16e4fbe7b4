//! Recordings with redacted credentials replay: placeholders are URL-safe, live values
//! are sent in their place (`--credential`, `[replay.credentials]`, `Gate::credential`)
//! and never written to the capture, and a placeholder sent without a credential is
//! reported.

use std::sync::{Arc, Mutex};

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::StatusCode;
use tokio_tungstenite::tungstenite::Message;

use crate::support::*;

/// The token the recorded session used, and the live one a replay is given.
const RECORDED: &str = "secret123";
const LIVE: &str = "live-token-4567";
const ENV: &str = "WSREPLAY_IT_LIVE_TOKEN";
const CREDENTIAL: &str = "token=env:WSREPLAY_IT_LIVE_TOKEN";

/// What a connection presented: its `?token=` (decoded) and `Authorization` header.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Seen {
    token: Option<String>,
    authorization: Option<String>,
}

/// A build that checks credentials: anonymous connections are welcome, a token (query
/// or `Bearer`) that is not allowed gets a 401 (any token is allowed while none is
/// listed: a build that does not check). A signed-in connection also gets an
/// `account` message, and its welcome names the token (a build echoing a secret).
struct AuthServer {
    url: String,
    allowed: Arc<Mutex<Vec<String>>>,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl AuthServer {
    async fn start(allowed: &[&str]) -> AuthServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("ws://{}", listener.local_addr().unwrap());
        let server = AuthServer {
            url,
            allowed: Arc::new(Mutex::new(allowed.iter().map(|s| s.to_string()).collect())),
            seen: Arc::default(),
        };
        let (allowed, seen) = (server.allowed.clone(), server.seen.clone());
        tokio::spawn(async move {
            while let Ok((s, _)) = listener.accept().await {
                let (allowed, seen) = (allowed.clone(), seen.clone());
                tokio::spawn(async move {
                    let presented = Arc::new(Mutex::new(None));
                    let signed_in = presented.clone();
                    // The callback's error type is tungstenite's, not ours to shrink.
                    #[allow(clippy::result_large_err)]
                    let check = move |req: &Request, resp: Response| {
                        let token = req.uri().query().and_then(|q| {
                            url::form_urlencoded::parse(q.as_bytes())
                                .find(|(k, _)| k == "token")
                                .map(|(_, v)| v.into_owned())
                        });
                        let authorization = req
                            .headers()
                            .get("authorization")
                            .map(|v| v.to_str().unwrap().to_string());
                        seen.lock().unwrap().push(Seen {
                            token: token.clone(),
                            authorization: authorization.clone(),
                        });
                        let bearer = authorization
                            .as_deref()
                            .and_then(|a| a.strip_prefix("Bearer "))
                            .map(String::from);
                        let allowed = allowed.lock().unwrap();
                        match token.or(bearer) {
                            None => Ok(resp),
                            Some(t) if allowed.is_empty() || allowed.contains(&t) => {
                                *signed_in.lock().unwrap() = Some(t);
                                Ok(resp)
                            }
                            Some(_) => {
                                let mut refusal = ErrorResponse::new(Some("bad token".into()));
                                *refusal.status_mut() = StatusCode::UNAUTHORIZED;
                                Err(refusal)
                            }
                        }
                    };
                    let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(s, check).await else {
                        return;
                    };
                    let token = presented.lock().unwrap().clone();
                    let welcome = match &token {
                        Some(t) => format!(r#"{{"type":"welcome","note":"signed in with {t}"}}"#),
                        None => r#"{"type":"welcome","note":"anonymous"}"#.to_string(),
                    };
                    let _ = ws.send(Message::text(welcome)).await;
                    if token.is_some() {
                        let _ = ws
                            .send(Message::text(r#"{"type":"account","balance":1}"#))
                            .await;
                    }
                    while let Some(Ok(msg)) = ws.next().await {
                        if msg.is_text() && ws.send(msg).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        server
    }

    fn allow(&self, tokens: &[&str]) {
        *self.allowed.lock().unwrap() = tokens.iter().map(|s| s.to_string()).collect();
        self.seen.lock().unwrap().clear();
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

/// Records one session per `(request target, Authorization)` through the proxy, one
/// after the other: each waits for its greeting, says hello, gets the echo and closes.
/// Returns the recording's directory, path and text.
async fn record(
    server: &AuthServer,
    sessions: &[(&str, Option<&str>)],
) -> (tempfile::TempDir, std::path::PathBuf, String) {
    let rec = Recorder::start(&server.url).await;
    for (target, authorization) in sessions {
        let mut request = format!("ws://{}{target}", rec.addr())
            .into_client_request()
            .unwrap();
        if let Some(a) = authorization {
            request
                .headers_mut()
                .insert("Authorization", a.parse().unwrap());
        }
        let (mut ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();
        let welcome = ws.next().await.unwrap().unwrap().into_text().unwrap();
        if !welcome.contains("anonymous") {
            ws.next().await.unwrap().unwrap();
        }
        ws.send(Message::text(r#"{"type":"hello"}"#)).await.unwrap();
        ws.next().await.unwrap().unwrap();
        ws.close(None).await.unwrap();
        while ws.next().await.is_some() {}
    }
    let (_, text) = rec.finish().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("session.jsonl");
    std::fs::write(&path, &text).unwrap();
    (dir, path, text)
}

/// Runs `wsreplay ARGS` with `env` set (and the test's variable otherwise unset),
/// without blocking the runtime the servers run on.
async fn wsreplay(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut cmd = tokio::process::Command::new(bin());
    cmd.args(args).env_remove(ENV).env_remove("NO_COLOR");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = guard(cmd.output()).await.unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn replay_args<'a>(rec: &'a str, target: &'a str, out: &'a str) -> Vec<&'a str> {
    vec!["replay", rec, "--target", target, "--out", out]
}

#[tokio::test]
async fn a_redacted_query_token_is_replayed_with_the_live_credential_and_kept_out_of_the_capture() {
    let server = AuthServer::start(&[RECORDED]).await;
    let (dir, rec, text) = record(&server, &[("/ws?user_id=alice&token=secret123", None)]).await;
    let open = text
        .lines()
        .find(|l| l.contains(r#""kind":"open""#))
        .unwrap();
    let request: serde_json::Value = serde_json::from_str(open).unwrap();
    let target = request["request"]
        .as_str()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap();
    assert!(
        target.starts_with("/ws?user_id=alice&token=redacted-"),
        "{target}"
    );
    assert!(
        url::Url::parse(&format!("ws://h{target}")).is_ok_and(|u| u.as_str().ends_with(target)),
        "the placeholder is URL-safe: {target}"
    );

    server.allow(&[LIVE]);
    let out = dir.path().join("run.jsonl");
    let target = format!("r={}", server.url);
    let mut args = replay_args(rec.to_str().unwrap(), &target, out.to_str().unwrap());
    args.extend(["--credential", CREDENTIAL]);
    let (code, stdout, stderr) = wsreplay(&args, &[(ENV, LIVE)]).await;
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("no problems"), "{stdout}");
    assert_eq!(
        server.seen(),
        [Seen {
            token: Some(LIVE.into()),
            authorization: None
        }]
    );
    let capture = std::fs::read_to_string(&out).unwrap();
    assert!(
        capture.contains(r#""type\":\"account\""#),
        "signed in: {capture}"
    );
    assert!(
        !capture.contains(LIVE) && !stdout.contains(LIVE) && !stderr.contains(LIVE),
        "the live token leaked:\n{capture}"
    );
    assert!(capture.contains("&token=redacted-"), "{capture}");
    assert!(
        capture.contains("signed in with redacted-"),
        "the echoed token is scrubbed too: {capture}"
    );
}

#[tokio::test]
async fn without_a_credential_the_placeholder_is_sent_and_reported() {
    let server = AuthServer::start(&[RECORDED]).await;
    let (dir, rec, _) = record(&server, &[("/ws?user_id=alice&token=secret123", None)]).await;
    let out = dir.path().join("run.jsonl");
    let target = format!("r={}", server.url);
    let args = replay_args(rec.to_str().unwrap(), &target, out.to_str().unwrap());

    // A build that does not check the token: replayed, with a problem (exit 1).
    server.allow(&[]);
    let (code, stdout, stderr) = wsreplay(&args, &[]).await;
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(
        stdout.contains("r (recorded connection 1): query parameter token was redacted when recorded, so its placeholder was sent; pass --credential token=env:VAR"),
        "{stdout}"
    );
    assert!(
        stdout.contains("client r: 1/1 connection(s) replayed"),
        "{stdout}"
    );
    let seen = server.seen();
    assert!(
        seen[0]
            .token
            .as_deref()
            .is_some_and(|t| t.starts_with("redacted-")),
        "{seen:?}"
    );

    // A build that does: it refuses, and the error says what to pass (exit 2).
    server.allow(&[LIVE]);
    let (code, stdout, stderr) = wsreplay(&args, &[]).await;
    assert_eq!(code, 2, "{stdout}{stderr}");
    assert!(
        stderr.contains("refused every connection")
            && stderr.contains("redacted the query parameter token")
            && stderr.contains("--credential token=env:VAR"),
        "{stderr}"
    );
}

#[tokio::test]
async fn a_missing_variable_or_a_value_given_directly_is_an_error_saying_what_to_do() {
    let server = AuthServer::start(&[RECORDED]).await;
    let (dir, rec, _) = record(&server, &[("/ws?token=secret123", None)]).await;
    let out = dir.path().join("run.jsonl");
    let target = format!("r={}", server.url);
    let mut args = replay_args(rec.to_str().unwrap(), &target, out.to_str().unwrap());
    args.extend(["--credential", CREDENTIAL]);
    let (code, _, stderr) = wsreplay(&args, &[]).await;
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains(&format!(
            "credential token: the environment variable {ENV} is not set"
        )),
        "{stderr}"
    );
    let mut args = replay_args(rec.to_str().unwrap(), &target, out.to_str().unwrap());
    args.extend(["--credential", "token=s3cr3t-given-directly"]);
    let (code, _, stderr) = wsreplay(&args, &[]).await;
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("env:VAR") && stderr.contains("file:PATH"),
        "{stderr}"
    );
    assert!(!stderr.contains("s3cr3t-given-directly"), "{stderr}");
    assert!(
        server.seen().len() == 1,
        "nothing replayed: {:?}",
        server.seen()
    );
}

#[tokio::test]
async fn a_redacted_authorization_header_is_sent_with_the_credential_from_wsreplay_toml() {
    let server = AuthServer::start(&["hdr-secret-1"]).await;
    let (dir, rec, text) = record(&server, &[("/ws", Some("Bearer hdr-secret-1"))]).await;
    assert!(
        text.contains(r#"["authorization","Bearer redacted-"#),
        "{text}"
    );
    server.allow(&["live-hdr-789"]);
    let secret_file = dir.path().join("auth");
    std::fs::write(&secret_file, "live-hdr-789\n").unwrap();
    let config = dir.path().join("wsreplay.toml");
    // A bare token keeps the recorded `Bearer `; the name matches in any case.
    std::fs::write(
        &config,
        format!(
            "[replay.credentials]\nAUTHORIZATION = \"file:{}\"\n",
            secret_file.display()
        ),
    )
    .unwrap();
    let out = dir.path().join("run.jsonl");
    let target = format!("r={}", server.url);
    let mut args = replay_args(rec.to_str().unwrap(), &target, out.to_str().unwrap());
    args.extend(["--config", config.to_str().unwrap()]);
    let (code, stdout, stderr) = wsreplay(&args, &[]).await;
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert_eq!(
        server.seen(),
        [Seen {
            token: None,
            authorization: Some("Bearer live-hdr-789".into())
        }]
    );
    let capture = std::fs::read_to_string(&out).unwrap();
    assert!(!capture.contains("live-hdr-789"), "{capture}");
    assert!(capture.contains(r#""Bearer redacted-"#), "{capture}");
}

/// The recording as an earlier version wrote it: `<redacted:…>` placeholders.
fn old_form(text: &str) -> String {
    regex::Regex::new(r"redacted-((?:[a-z]+-)*[0-9a-f]{12})")
        .unwrap()
        .replace_all(text, "<redacted:$1>")
        .replace("<redacted:jwt-", "<redacted:jwt:")
}

#[tokio::test]
async fn recordings_with_the_old_placeholder_form_still_replay() {
    let server = AuthServer::start(&[RECORDED]).await;
    let (dir, _, text) = record(&server, &[("/ws?user_id=alice&token=secret123", None)]).await;
    let rec = dir.path().join("old.jsonl");
    let old = old_form(&text);
    assert!(
        old.contains("&token=<redacted:") && !old.contains("redacted-"),
        "{old}"
    );
    std::fs::write(&rec, old).unwrap();
    let (code, listing, _) = wsreplay(&["show", "--secrets", rec.to_str().unwrap()], &[]).await;
    assert_eq!(code, 0);
    assert!(listing.contains("query parameter token"), "{listing}");

    let out = dir.path().join("run.jsonl");
    let target = format!("r={}", server.url);
    let args = replay_args(rec.to_str().unwrap(), &target, out.to_str().unwrap());
    server.allow(&[]);
    let (code, stdout, stderr) = wsreplay(&args, &[]).await;
    assert_eq!(
        code, 1,
        "replayed, with the placeholder reported: {stdout}{stderr}"
    );
    assert!(!stderr.contains("invalid URL"), "{stderr}");
    assert!(
        stdout.contains("query parameter token was redacted"),
        "{stdout}"
    );
    let seen = server.seen();
    assert!(
        seen[0]
            .token
            .as_deref()
            .is_some_and(|t| t.starts_with("<redacted:")),
        "the recorded placeholder, percent-encoded on the wire: {seen:?}"
    );

    server.allow(&[LIVE]);
    let mut args = args;
    args.extend(["--credential", CREDENTIAL]);
    let (code, stdout, stderr) = wsreplay(&args, &[(ENV, LIVE)]).await;
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert_eq!(server.seen()[0].token.as_deref(), Some(LIVE));
}

/// Two connections, one signed in with `?token=` and one anonymous, checked against
/// their snapshot: a gate that cannot replay the first would see its `account`
/// message missing and report a false difference.
#[tokio::test]
async fn check_replays_every_connection_with_the_credential_and_names_a_missing_one() {
    let server = AuthServer::start(&[RECORDED]).await;
    let (dir, rec, _) = record(
        &server,
        &[
            ("/ws?user_id=alice&token=secret123", None),
            ("/ws?user_id=bob", None),
        ],
    )
    .await;
    let snapshots = dir.path().join("snapshots");
    let runs = dir.path().join("runs");
    let (code, _, stderr) = wsreplay(
        &[
            "snapshot",
            rec.to_str().unwrap(),
            "--snapshots",
            snapshots.to_str().unwrap(),
        ],
        &[],
    )
    .await;
    assert_eq!(code, 0, "{stderr}");
    server.allow(&[LIVE]);
    let target = format!("r={}", server.url);
    let args = [
        "check",
        rec.to_str().unwrap(),
        "--target",
        &target,
        "--snapshots",
        snapshots.to_str().unwrap(),
        "--runs",
        runs.to_str().unwrap(),
        "--check",
    ];
    let mut with = args.to_vec();
    with.extend(["--credential", CREDENTIAL]);
    let (code, stdout, stderr) = wsreplay(&with, &[(ENV, LIVE)]).await;
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("1 same"), "{stdout}");
    assert_eq!(server.seen().len(), 2);
    assert!(server
        .seen()
        .iter()
        .any(|s| s.token.as_deref() == Some(LIVE)));
    let run = std::fs::read_to_string(runs.join("session.jsonl")).unwrap();
    assert!(!run.contains(LIVE), "{run}");

    // Without it, the signed-in connection is refused: a real difference, and the
    // report says why.
    server.allow(&[LIVE]);
    let (code, stdout, stderr) = wsreplay(&args, &[]).await;
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(
        stdout.contains("query parameter token was redacted when recorded"),
        "{stdout}"
    );
}

#[tokio::test]
async fn the_gate_api_sends_credentials_too() {
    let server = AuthServer::start(&[RECORDED]).await;
    let (dir, rec, _) = record(&server, &[("/ws?user_id=alice&token=secret123", None)]).await;
    let snapshots = dir.path().join("snapshots");
    wsreplay::gate::check::write_snapshot(&rec, &snapshots, &Default::default()).unwrap();
    server.allow(&[LIVE]);
    let gate = wsreplay::Gate::load(&rec)
        .snapshots(&snapshots)
        .check_only()
        .credential("token", LIVE);
    assert!(!format!("{gate:?}").contains(LIVE));
    let outcome = guard(async {
        gate.start()
            .await
            .unwrap()
            .target("r", server.url.clone())
            .run()
            .await
            .unwrap()
    })
    .await;
    outcome.assert_structure();
    assert!(
        outcome.result().replay_problems.is_empty(),
        "{}",
        outcome.report()
    );
    assert_eq!(server.seen()[0].token.as_deref(), Some(LIVE));
    assert!(!outcome.report().contains(LIVE));
}

/// A build that signs in by message: `{"type":"login","password":…}` first (the
/// shape of a STOMP CONNECT's `passcode:` header, in JSON). It keeps what it was sent
/// and echoes it.
async fn message_login_server() -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}", listener.local_addr().unwrap());
    let got: Arc<Mutex<Vec<String>>> = Arc::default();
    let kept = got.clone();
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            let kept = kept.clone();
            tokio::spawn(async move {
                let Ok(mut ws) = tokio_tungstenite::accept_async(s).await else {
                    return;
                };
                while let Some(Ok(msg)) = ws.next().await {
                    if let Message::Text(text) = &msg {
                        kept.lock().unwrap().push(text.to_string());
                        if ws.send(msg).await.is_err() {
                            break;
                        }
                    }
                }
            });
        }
    });
    (url, got)
}

#[tokio::test]
async fn a_redacted_field_of_a_sent_message_takes_the_live_credential_or_is_reported() {
    let (url, got) = message_login_server().await;
    let rec = Recorder::start(&url).await;
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{}/ws", rec.addr()))
        .await
        .unwrap();
    let login = format!(r#"{{"type":"login","password":"{RECORDED}"}}"#);
    ws.send(Message::text(login)).await.unwrap();
    ws.next().await.unwrap().unwrap();
    ws.close(None).await.unwrap();
    while ws.next().await.is_some() {}
    let (_, text) = rec.finish().await;
    assert!(!text.contains(RECORDED), "{text}");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("login.jsonl");
    std::fs::write(&path, &text).unwrap();
    got.lock().unwrap().clear();

    let out = dir.path().join("run.jsonl");
    let target = format!("r={url}");
    let mut args = replay_args(path.to_str().unwrap(), &target, out.to_str().unwrap());
    let (code, stdout, _) = wsreplay(&args, &[]).await;
    assert_eq!(code, 1, "{stdout}");
    assert!(
        stdout
            .contains("the field password of messages the client sends was redacted when recorded")
            && stdout.contains("pass --credential password=env:VAR"),
        "{stdout}"
    );

    got.lock().unwrap().clear();
    args.extend(["--credential", "password=env:WSREPLAY_IT_LIVE_TOKEN"]);
    let (code, stdout, stderr) = wsreplay(&args, &[(ENV, LIVE)]).await;
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert_eq!(
        *got.lock().unwrap(),
        [format!(r#"{{"type":"login","password":"{LIVE}"}}"#)]
    );
    let capture = std::fs::read_to_string(&out).unwrap();
    assert!(
        !capture.contains(LIVE),
        "the live password leaked:\n{capture}"
    );
}
