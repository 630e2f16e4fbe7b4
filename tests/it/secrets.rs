//! Secrets never reach the recording; the same secret gets the same placeholder.

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use wsreplay::recording::Record;

use crate::support::*;

#[tokio::test]
async fn authorization_header_token_query_and_json_keys_are_redacted() {
    let upstream = echo_server().await;
    let rec = Recorder::start_with(&upstream, |c| {
        c.redact.json_keys.push("session_key".into());
    })
    .await;
    let mut request = format!("ws://{}/ws?user_id=alice&token=qry-s3cret-41", rec.addr())
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("Authorization", "Bearer hdr-s3cret-42".parse().unwrap());
    request
        .headers_mut()
        .insert("Cookie", "sid=cookie-s3cret-43".parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let body = r#"{"type":"login","password":"hdr-s3cret-42","nested":{"session_key":"json-s3cret-44"},"n":1.50}"#;
    ws.send(Message::text(body)).await.unwrap();
    let echoed = ws.next().await.unwrap().unwrap();
    assert_eq!(
        echoed.into_text().unwrap().as_str(),
        body,
        "the upstream must get the real values"
    );
    ws.close(None).await.unwrap();
    while ws.next().await.is_some() {}
    let (recording, text) = rec.finish().await;
    for secret in [
        "qry-s3cret-41",
        "hdr-s3cret-42",
        "cookie-s3cret-43",
        "json-s3cret-44",
    ] {
        assert!(!text.contains(secret), "{secret} leaked into the recording");
    }
    let Record::Open(open) = &recording.records[0] else {
        panic!()
    };
    let auth = open.header("authorization").unwrap();
    assert!(auth.starts_with("Bearer redacted-"), "{auth}");
    let placeholder = auth.strip_prefix("Bearer ").unwrap();
    assert!(
        open.request.contains("user_id=alice&token=redacted-"),
        "{}",
        open.request
    );
    // Same secret, same placeholder: the header token and the JSON password match.
    let messages: Vec<_> = recording
        .records
        .iter()
        .filter_map(|r| match r {
            Record::Message(m) => m.body.as_text(),
            _ => None,
        })
        .collect();
    assert_eq!(messages.len(), 2);
    for m in messages {
        assert!(m.contains(&format!(r#""password":"{placeholder}""#)), "{m}");
        assert!(m.ends_with(r#""n":1.50}"#), "formatting must be kept: {m}");
    }
}

const JWT: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJ1c2VyLTQyIiwiZXhwIjoxOTAwMDAwMDAwfQ.Zm9yZ2VkLXNpZ25hdHVyZS1mb3ItdGVzdHM";

/// An echo server that accepts the first subprotocol the client offers.
async fn echo_with_subprotocol() -> String {
    use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            tokio::spawn(async move {
                // The callback's error type is tungstenite's, not ours to shrink.
                #[allow(clippy::result_large_err)]
                let choose = |req: &Request, mut resp: Response| {
                    if let Some(first) = req
                        .headers()
                        .get("sec-websocket-protocol")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.split(',').next())
                    {
                        resp.headers_mut()
                            .insert("sec-websocket-protocol", first.trim().parse().unwrap());
                    }
                    Ok(resp)
                };
                let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(s, choose).await else {
                    return;
                };
                while let Some(Ok(msg)) = ws.next().await {
                    if msg.is_text() && ws.send(msg).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    url
}

/// One frontend hop and one agent hop through a two-route recorder: a JWT in a chat
/// message, an `Authorization` header and an `?api_key=` query on the first; the same
/// JWT as a subprotocol and in a field on the second.
async fn record_two_hops(scan: bool) -> (tempfile::TempDir, std::path::PathBuf, String) {
    use wsreplay::config::Route;
    use wsreplay::record::proxy::{Proxy, ProxyConfig};
    let upstream = echo_with_subprotocol().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rec.jsonl");
    let routes: Vec<Route> = ["frontend", "agent"]
        .iter()
        .map(|n| format!("{n}=127.0.0.1:0={upstream}").parse().unwrap())
        .collect();
    let mut config = ProxyConfig::new(
        routes,
        wsreplay::recording::sink::Output::File(path.clone()),
    );
    config.redact.secret_scan = scan;
    let proxy = Proxy::start(config).await.unwrap();

    let url = format!(
        "ws://{}/ws?user_id=u1&api_key=AK-query-s3cret-9001",
        proxy.addr("frontend").unwrap()
    );
    let mut request = url.into_client_request().unwrap();
    request.headers_mut().insert(
        "Authorization",
        "Bearer hdr-opaque-s3cret-77".parse().unwrap(),
    );
    let (mut front, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let chat = format!(r#"{{"type":"chat","text":"my token is {JWT}, keep it safe"}}"#);
    front.send(Message::text(chat.clone())).await.unwrap();
    let echoed = front.next().await.unwrap().unwrap();
    assert_eq!(
        echoed.into_text().unwrap().as_str(),
        chat,
        "forwarded unchanged"
    );

    let mut request = format!("ws://{}/agent", proxy.addr("agent").unwrap())
        .into_client_request()
        .unwrap();
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        format!("access_token, {JWT}").parse().unwrap(),
    );
    let (mut agent, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let call = format!(
        r#"{{"type":"tool_call","auth":{{"session_token":"{JWT}"}},"args":{{"api_secret":"sk_live_9fQ2xT7LmZ4pW8rV"}}}}"#
    );
    agent.send(Message::text(call)).await.unwrap();
    agent.next().await.unwrap().unwrap();
    for ws in [&mut front, &mut agent] {
        ws.close(None).await.unwrap();
        while ws.next().await.is_some() {}
    }
    assert!(proxy.stop().await.complete());
    let text = std::fs::read_to_string(&path).unwrap();
    (dir, path, text)
}

#[tokio::test]
async fn a_jwt_header_and_query_key_never_reach_the_recording_and_one_jwt_is_one_placeholder() {
    let (_dir, path, text) = record_two_hops(true).await;
    for secret in [
        JWT,
        "hdr-opaque-s3cret-77",
        "AK-query-s3cret-9001",
        "sk_live_9fQ2xT7LmZ4pW8rV",
    ] {
        assert!(!text.contains(secret), "{secret} leaked:\n{text}");
    }
    let rec = wsreplay::recording::Recording::read(&path).unwrap();
    let opens: Vec<_> = rec
        .records
        .iter()
        .filter_map(|r| match r {
            Record::Open(o) => Some(o),
            _ => None,
        })
        .collect();
    let protocol = opens[1].header("sec-websocket-protocol").unwrap();
    let placeholder = protocol.strip_prefix("access_token, ").unwrap();
    assert!(placeholder.starts_with("redacted-jwt-"), "{protocol}");
    // The same JWT: in the first hop's chat text, the second hop's subprotocol and its
    // session_token field (each message sent and echoed).
    let chat = format!("my token is {placeholder}, keep it safe");
    assert_eq!(text.matches(&chat).count(), 2, "chat sent and echoed");
    assert_eq!(text.matches(placeholder).count(), 2 + 1 + 2, "{text}");
    assert!(opens[0]
        .header("sec-websocket-key")
        .is_some_and(|k| !k.contains("redacted")));

    let out = std::process::Command::new(bin())
        .args(["show", "--secrets"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(out.status.success());
    let listing = String::from_utf8(out.stdout).unwrap();
    assert!(!listing.contains("redacted-") && !listing.contains(JWT));
    insta::assert_snapshot!(listing, @"
    where                                  kind         count  distinct
    message field api_secret               secret           2         1
    message field session_token            jwt              2         1
    message field text                     jwt              2         1
    query parameter api_key                secret           1         1
    request header authorization           secret           1         1
    request header sec-websocket-protocol  jwt              1         1
    ");
}

#[tokio::test]
async fn no_secret_scan_keeps_values_found_only_by_their_shape() {
    let (_dir, _path, text) = record_two_hops(false).await;
    assert!(text.contains(JWT), "the scan was off: the JWT stays");
    assert!(text.contains("sk_live_9fQ2xT7LmZ4pW8rV"));
    for named in ["hdr-opaque-s3cret-77", "AK-query-s3cret-9001"] {
        assert!(!text.contains(named), "named secrets are always redacted");
    }
}
