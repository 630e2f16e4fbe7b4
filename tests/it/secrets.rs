//! Secrets never reach the recording; the same secret gets the same placeholder.

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use wsreplay::format::Record;

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
    assert!(auth.starts_with("Bearer <redacted:"), "{auth}");
    let placeholder = auth.strip_prefix("Bearer ").unwrap();
    assert!(
        open.request.contains("user_id=alice&token=<redacted:"),
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
