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
    echo_server_with(first_subprotocol).await
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
    message field api_secret               stripe-key       2         1
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

/// Fake credentials in every format gitleaks' default rules know, built at run time
/// (pseudo-random characters in each vendor's format, so no scanner flags this file
/// and none is real), by name.
fn planted(n: u64) -> Vec<(&'static str, String)> {
    use base64::Engine as _;
    const ALNUM: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut seed = 0x5851_f42d_4c95_7f2d ^ n.wrapping_mul(0x9e37_79b9);
    let mut c = |alphabet: &str, len: usize| -> String {
        let a = alphabet.as_bytes();
        (0..len)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                a[(seed % a.len() as u64) as usize] as char
            })
            .collect()
    };
    let d = "0123456789";
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let jwt = format!(
        "{}.{}.{}",
        b64.encode(r#"{"alg":"HS256","typ":"JWT"}"#),
        b64.encode(format!(r#"{{"sub":"user-{n}","exp":1900000000}}"#)),
        c(&format!("{ALNUM}-_"), 43)
    );
    vec![
        ("github-pat", format!("ghp_{}", c(ALNUM, 36))),
        ("github-oauth", format!("gho_{}", c(ALNUM, 36))),
        ("github-app", format!("ghs_{}", c(ALNUM, 36))),
        (
            "github-fine-grained",
            format!("github_pat_{}_{}", c(ALNUM, 22), c(ALNUM, 59)),
        ),
        ("gitlab", format!("glpat-{}", c(ALNUM, 20))),
        (
            "slack-bot",
            format!("xoxb-{}-{}-{}", c(d, 11), c(d, 12), c(ALNUM, 24)),
        ),
        (
            "slack-user",
            format!(
                "xoxp-{}-{}-{}-{}",
                c(d, 11),
                c(d, 11),
                c(d, 12),
                c("0123456789abcdef", 32)
            ),
        ),
        ("stripe", format!("sk_live_{}", c(ALNUM, 24))),
        ("stripe-restricted", format!("rk_live_{}", c(ALNUM, 24))),
        (
            "openai",
            format!("sk-proj-{}T3BlbkFJ{}", c(ALNUM, 58), c(ALNUM, 58)),
        ),
        ("google", format!("AIza{}", c(ALNUM, 35))),
        (
            "npm",
            format!("npm_{}", c("abcdefghijklmnopqrstuvwxyz0123456789", 36)),
        ),
        ("sendgrid", format!("SG.{}.{}", c(ALNUM, 22), c(ALNUM, 43))),
        (
            "aws-id",
            format!("AKIA{}", c("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16)),
        ),
        ("aws-secret", c(&format!("{ALNUM}/+"), 40)),
        ("jwt", jwt),
        ("url-password", c(ALNUM, 18)),
        ("dsn-password", c(ALNUM, 14)),
        ("form-password", format!("hunter2-{}", c(ALNUM, 6))),
        ("json-password", format!("swordfish-{}", c(ALNUM, 6))),
        ("random", c(ALNUM, 32)),
    ]
}

/// Every place a credential can sit on one connection through the recorder: the
/// upstream URL's user info, a path segment, query values, headers of any name, JSON
/// (escaped keys, duplicate keys, `\u`-escaped JWT, `tokens[]`, `credentials.*`,
/// `pass`), a form body, base64-wrapped JSON, a binary message of UTF-8 JSON, a ping
/// and a close reason. Returns the recording's path and text.
async fn record_planted(
    dir: &std::path::Path,
    creds: &std::collections::HashMap<&str, String>,
) -> (std::path::PathBuf, String) {
    use base64::Engine as _;
    let upstream = echo_server().await;
    let host = upstream.strip_prefix("ws://").unwrap();
    let upstream = format!("ws://app:{}@{host}", creds["url-password"]);
    let rec = Recorder::start_with(&upstream, |_| {}).await;
    let header = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!(
        r#"{{"host":"h","Authorization":"{}"}}"#,
        creds["jwt"]
    ));
    let url = format!(
        "ws://{}/ws/{}/room?cb={}&header={header}&v=1",
        rec.addr(),
        creds["github-pat"],
        creds["gitlab"]
    );
    let mut request = url.into_client_request().unwrap();
    let h = request.headers_mut();
    h.insert("X-Client-Hint", creds["slack-bot"].parse().unwrap());
    h.insert("X-Goog-Api-Key", creds["google"].parse().unwrap());
    h.insert(
        "Authorization",
        format!("Bearer {}", creds["jwt"]).parse().unwrap(),
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let escaped_jwt: String = creds["jwt"]
        .chars()
        .map(|c| format!("\\u{:04x}", c as u32))
        .collect();
    let chat = format!(
        r#"{{"type":"chat","text":"key {openai} and {aws_id} / {aws_secret}","tokens":["{npm}"],"credentials":{{"mail":"{sendgrid}","x":"{random}"}},"pass\u0077ord":"{pw}","password":"{pw}","password":"{pw}2","auth":"{escaped_jwt}","pass":"{pw}3","dsn":"Server=db;User Id=sa;Password={dsn};","db":"postgres://app:{url_pw}@db/app"}}"#,
        openai = creds["openai"],
        aws_id = creds["aws-id"],
        aws_secret = creds["aws-secret"],
        npm = creds["npm"],
        sendgrid = creds["sendgrid"],
        random = creds["random"],
        pw = creds["json-password"],
        dsn = creds["dsn-password"],
        url_pw = creds["url-password"],
    );
    let form = format!(
        "user=alice&passwd={}&note={}",
        creds["form-password"], creds["stripe"]
    );
    let wrapped = base64::engine::general_purpose::STANDARD.encode(format!(
        r#"{{"type":"auth","api":"{}","slack":"{}"}}"#,
        creds["stripe-restricted"], creds["slack-user"]
    ));
    let binary = format!(r#"{{"type":"bin","app":"{}"}}"#, creds["github-app"]);
    for _ in 0..2 {
        for text in [&chat, &form, &wrapped] {
            ws.send(Message::text(text.clone())).await.unwrap();
            let echoed = ws.next().await.unwrap().unwrap();
            assert_eq!(
                echoed.into_text().unwrap().as_str(),
                text,
                "forwarded unchanged"
            );
        }
        ws.send(Message::binary(binary.clone().into_bytes()))
            .await
            .unwrap();
        ws.next().await.unwrap().unwrap();
    }
    ws.send(Message::Ping(
        creds["github-oauth"].clone().into_bytes().into(),
    ))
    .await
    .unwrap();
    use tokio_tungstenite::tungstenite::protocol::{frame::coding::CloseCode, CloseFrame};
    ws.close(Some(CloseFrame {
        code: CloseCode::Normal,
        reason: format!("bye {}", creds["github-fine-grained"]).into(),
    }))
    .await
    .unwrap();
    while ws.next().await.is_some() {}
    let path = dir.join("planted.jsonl");
    let (_recording, text) = rec.finish().await;
    std::fs::write(&path, &text).unwrap();
    (path, text)
}

fn assert_none_planted(what: &str, text: &str, creds: &std::collections::HashMap<&str, String>) {
    for (name, secret) in creds {
        assert!(
            !text.contains(secret.as_str()),
            "{name} ({secret}) leaked into {what}:\n{text}"
        );
    }
}

/// Issue 15 (items 3 and 4): the planted credentials reach neither the recording nor
/// anything made from it. With WSREPLAY_PLANTED_OUT=DIR, the recording, what was made
/// from it and the planted values are left in DIR (`scripts/gitleaks-check.sh`).
#[tokio::test]
async fn planted_credentials_reach_no_recording_snapshot_schema_or_show() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::env::var_os("WSREPLAY_PLANTED_OUT")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| dir.path().to_path_buf());
    std::fs::create_dir_all(&out).unwrap();
    let creds: std::collections::HashMap<&str, String> = planted(1).into_iter().collect();
    let (path, text) = record_planted(&out, &creds).await;
    assert_none_planted("the recording", &text, &creds);
    let rec = wsreplay::recording::Recording::read(&path).unwrap();
    let kinds: Vec<&str> = rec
        .records
        .iter()
        .map(|r| match r {
            Record::Ping(_) => "ping",
            Record::Close(_) => "close",
            Record::Message(_) => "message",
            _ => "",
        })
        .collect();
    assert_eq!(kinds.iter().filter(|k| **k == "message").count(), 16);
    assert!(kinds.contains(&"ping") && kinds.contains(&"close"));
    let Record::Open(open) = &rec.records[0] else {
        panic!()
    };
    assert!(open.upstream.starts_with("ws://app:") && open.upstream.contains("@127.0.0.1:"));
    assert!(open.request.contains("/room?cb=") && open.request.ends_with("&v=1 HTTP/1.1"));
    let path = path.to_str().unwrap();
    let snapshots = out.join("snapshots");
    let snapshots = snapshots.to_str().unwrap();
    for args in [
        vec!["show", path],
        vec!["show", "--timeline", path],
        vec!["show", "--mermaid", path],
        vec!["show", "--secrets", path],
        vec!["schema", "--format", "json-schema", path],
        vec!["schema", "--format", "asyncapi", path],
        vec!["snapshot", "--snapshots", snapshots, path],
    ] {
        let (code, stdout, stderr) = run(&args);
        assert_eq!(code, 0, "{args:?}: {stderr}");
        assert_none_planted(&format!("{args:?}"), &format!("{stdout}{stderr}"), &creds);
        if args[0] != "snapshot" {
            let name = args[..args.len() - 1].join("_").replace("--", "");
            std::fs::write(out.join(format!("{name}.txt")), stdout).unwrap();
        }
    }
    let snap = std::fs::read_to_string(out.join("snapshots/planted.snap")).unwrap();
    assert_none_planted("the snapshot", &snap, &creds);
    let (_, listing, _) = run(&["show", "--secrets", path]);
    for kind in [
        "github-token",
        "gitlab-token",
        "slack-token",
        "stripe-key",
        "jwt",
    ] {
        assert!(listing.contains(kind), "{kind} not listed:\n{listing}");
    }
    let values: Vec<&str> = creds.values().map(String::as_str).collect();
    std::fs::write(out.join("planted-values.txt"), values.join("\n") + "\n").unwrap();
}

/// Issue 15 (item 2): values a recording still holds (recorded with
/// `--no-secret-scan`, or by an older build) never become snapshot literals, schema
/// `const`s or `enum`s, nor reach a diff: credentials even when seen twice, any value
/// seen once.
#[test]
fn credentials_in_a_recording_never_become_literals() {
    use wsreplay::recording::{Body, Dir, Recording};
    let creds: std::collections::HashMap<&str, String> = planted(2).into_iter().collect();
    let message = |n: usize, extra: &str| {
        format!(
            r#"{{"type":"session","gh":"{}","g":"{}","npm":"{}","r":"{}","state":"open","pin":"pin{n}x"{extra}}}"#,
            creds["github-pat"], creds["google"], creds["npm"], creds["random"]
        )
    };
    let rec = |extra: &str| {
        Recording::single_connection(
            "r",
            (0..2).map(|n| (Dir::ServerToClient, Body::Text(message(n, extra)))),
        )
    };
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.jsonl"), dir.path().join("b.jsonl"));
    write_recording(&rec(""), &a);
    write_recording(&rec(r#","added":"x""#), &b);
    let (a, b) = (a.to_str().unwrap(), b.to_str().unwrap());
    let snapshots = dir.path().join("snapshots");
    let snapshots = snapshots.to_str().unwrap();
    for args in [
        vec!["snapshot", "--snapshots", snapshots, a],
        vec!["schema", "--format", "json-schema", a],
        vec!["schema", "--format", "asyncapi", a],
        vec!["diff", a, b],
    ] {
        let (_, stdout, stderr) = run(&args);
        assert_none_planted(&format!("{args:?}"), &format!("{stdout}{stderr}"), &creds);
        assert!(
            !stdout.contains("pin0x") && !stdout.contains("pin1x"),
            "{stdout}"
        );
    }
    let snap = std::fs::read_to_string(dir.path().join("snapshots/a.snap")).unwrap();
    assert_none_planted("the snapshot", &snap, &creds);
    assert!(snap.contains("state  \"open\""), "{snap}");
    assert!(
        snap.contains("gh     string") && snap.contains("pin    string"),
        "{snap}"
    );
}
