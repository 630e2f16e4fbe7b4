//! Upstreams that are down, refuse, or die mid-session; requests that are not upgrades.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use wsreplay::recording::{EndHow, Record, Side};

use crate::support::*;

fn end_of(rec: &wsreplay::recording::Recording) -> &wsreplay::recording::End {
    rec.records
        .iter()
        .find_map(|r| match r {
            Record::End(e) => Some(e),
            _ => None,
        })
        .expect("an end record")
}

#[tokio::test]
async fn upstream_down_gives_the_client_a_502_and_the_recording_says_so() {
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        l.local_addr().unwrap().port()
    };
    let rec = Recorder::start(&format!("ws://127.0.0.1:{port}")).await;
    let (_, head) = raw_client(rec.addr(), "/ws", "").await;
    assert!(head.starts_with("HTTP/1.1 502 Bad Gateway"), "{head}");
    let (recording, _) = rec.finish().await;
    let Record::Open(open) = &recording.records[0] else {
        panic!()
    };
    assert_eq!(open.status, 502);
    let end = end_of(&recording);
    assert_eq!((end.how, end.by), (EndHow::Unreachable, Side::Upstream));
    assert!(
        end.error
            .as_deref()
            .unwrap()
            .contains(&format!("127.0.0.1:{port}")),
        "{end:?}"
    );
}

/// The first message record: here, the part of a message forwarded before its sender
/// vanished.
fn first_message(rec: &wsreplay::recording::Recording) -> &wsreplay::recording::Message {
    rec.records
        .iter()
        .find_map(|r| match r {
            Record::Message(m) => Some(m),
            _ => None,
        })
        .expect("what was forwarded of the message is recorded")
}

/// The upstream sends 300 of a 1,000-byte message's bytes, then dies.
async fn upstream_dies(reset: bool) -> (wsreplay::recording::Recording, Duration) {
    let up = RawUpstream::bind().await;
    let rec = Recorder::start(&up.url).await;
    let (client, (mut upstream, _)) = tokio::join!(raw_client(rec.addr(), "/", ""), up.accept(""));
    let (mut client, _) = client;
    let frame = wsreplay::record::frame::encode_frame(
        true,
        0,
        wsreplay::recording::Opcode::BINARY,
        None,
        &[7; 1000],
    );
    upstream.write_all(&frame[..4 + 300]).await.unwrap();
    assert_eq!(read_exact(&mut client, 4 + 300).await, frame[..4 + 300]);
    if reset {
        #[allow(deprecated)] // SO_LINGER 0 is exactly how a test produces an RST
        upstream.set_linger(Some(Duration::ZERO)).unwrap();
    }
    let started = std::time::Instant::now();
    drop(upstream);
    let mut buf = [0u8; 16];
    let n = tokio::time::timeout(Duration::from_secs(1), client.read(&mut buf))
        .await
        .expect("the client's connection was not closed within 1 s");
    assert!(matches!(n, Ok(0) | Err(_)), "{n:?}");
    let waited = started.elapsed();
    drop(client);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let recording = rec.finish().await.0;
    let partial = first_message(&recording);
    assert_eq!(partial.body.as_bytes(), [7; 300].as_slice());
    assert_eq!((partial.truncated, partial.size), (true, Some(1000)));
    (recording, waited)
}

#[tokio::test]
async fn upstream_vanishing_closes_the_client_and_is_recorded_as_eof() {
    let (rec, _) = upstream_dies(false).await;
    let end = end_of(&rec);
    assert_eq!((end.how, end.by), (EndHow::Eof, Side::Upstream));
}

#[tokio::test]
async fn upstream_reset_closes_the_client_and_is_recorded_as_reset() {
    let (rec, _) = upstream_dies(true).await;
    let end = end_of(&rec);
    assert_eq!(
        (end.how, end.by),
        (EndHow::Reset, Side::Upstream),
        "{end:?}"
    );
    assert!(end.error.is_some());
}

#[tokio::test]
async fn a_plain_http_request_gets_a_400_that_says_what_this_is() {
    let up = RawUpstream::bind().await;
    let rec = Recorder::start(&up.url).await;
    let mut s = TcpStream::connect(rec.addr()).await.unwrap();
    s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).await.unwrap();
    assert!(resp.starts_with("HTTP/1.1 400"), "{resp}");
    assert!(resp.contains("records WebSocket traffic"), "{resp}");
    rec.finish().await;
}

#[tokio::test]
async fn an_upstream_refusal_reaches_the_client_unchanged() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}", listener.local_addr().unwrap());
    let rec = Recorder::start(&url).await;
    let refusal = "HTTP/1.1 403 Forbidden\r\nContent-Length: 6\r\nX-Why: no\r\n\r\ndenied";
    let server = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        read_head(&mut s).await;
        s.write_all(refusal.as_bytes()).await.unwrap();
    });
    let mut c = TcpStream::connect(rec.addr()).await.unwrap();
    c.write_all(format!("GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {KEY}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut resp = String::new();
    c.read_to_string(&mut resp).await.unwrap();
    server.await.unwrap();
    assert_eq!(resp, refusal);
    let (recording, _) = rec.finish().await;
    let Record::Open(open) = &recording.records[0] else {
        panic!()
    };
    assert_eq!(open.status, 403);
    assert_eq!(end_of(&recording).how, EndHow::Rejected);
}

/// A masked client text frame carrying `len` bytes of `x`.
fn client_frame(len: usize) -> Vec<u8> {
    wsreplay::record::frame::encode_frame(
        true,
        0,
        wsreplay::recording::Opcode::TEXT,
        Some([1, 2, 3, 4]),
        &vec![b'x'; len],
    )
}

#[tokio::test]
async fn a_client_reset_mid_message_ends_the_upstream_and_keeps_what_was_forwarded() {
    let up = RawUpstream::bind().await;
    let rec = Recorder::start(&up.url).await;
    let (client, (mut upstream, _)) = tokio::join!(raw_client(rec.addr(), "/", ""), up.accept(""));
    let (client, _) = client;
    let frame = client_frame(1000);
    let sent = 8 + 400; // header (2 + 2 length + 4 mask) and 400 of 1000 payload bytes
    let mut client = client;
    client.write_all(&frame[..sent]).await.unwrap();
    assert_eq!(read_exact(&mut upstream, sent).await, frame[..sent]);
    #[allow(deprecated)] // SO_LINGER 0 is exactly how a test produces an RST
    client.set_linger(Some(Duration::ZERO)).unwrap();
    drop(client);
    let mut buf = [0u8; 16];
    let n = tokio::time::timeout(Duration::from_secs(2), upstream.read(&mut buf))
        .await
        .expect("the upstream was not closed after the client vanished");
    assert!(matches!(n, Ok(0) | Err(_)), "{n:?}");
    let (recording, _) = rec.finish().await;
    let partial = first_message(&recording);
    assert_eq!(partial.body.as_bytes(), vec![b'x'; 400].as_slice());
    assert!(partial.truncated);
    assert_eq!(partial.size, Some(1000));
    assert!(
        partial
            .note
            .as_deref()
            .unwrap()
            .contains("ended mid-message"),
        "{partial:?}"
    );
    let end = end_of(&recording);
    assert_eq!((end.how, end.by), (EndHow::Reset, Side::Client), "{end:?}");
}

#[tokio::test]
async fn a_half_closed_client_still_gets_the_upstreams_reply() {
    let up = RawUpstream::bind().await;
    let rec = Recorder::start(&up.url).await;
    let (client, (mut upstream, _)) = tokio::join!(raw_client(rec.addr(), "/", ""), up.accept(""));
    let (mut client, _) = client;
    let request = client_frame(5);
    client.write_all(&request).await.unwrap();
    client.shutdown().await.unwrap(); // FIN: the client sends no more, but still reads
    assert_eq!(read_exact(&mut upstream, request.len()).await, request);
    let mut rest = Vec::new();
    upstream.read_to_end(&mut rest).await.unwrap();
    assert!(rest.is_empty(), "the client's FIN reaches the upstream");
    let reply = wsreplay::record::frame::encode_frame(
        true,
        0,
        wsreplay::recording::Opcode::TEXT,
        None,
        b"reply after the client's FIN",
    );
    upstream.write_all(&reply).await.unwrap();
    drop(upstream);
    let mut got = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), client.read_to_end(&mut got))
        .await
        .expect("the client's connection was not closed")
        .unwrap();
    assert_eq!(got, reply);
    let (recording, _) = rec.finish().await;
    let texts: Vec<_> = traffic(&recording)
        .into_iter()
        .filter_map(|r| match r {
            Record::Message(m) => Some((m.dir, m.body.as_text().unwrap().to_string())),
            _ => None,
        })
        .collect();
    use wsreplay::recording::Dir;
    assert_eq!(
        texts,
        [
            (Dir::ClientToServer, "xxxxx".to_string()),
            (
                Dir::ServerToClient,
                "reply after the client's FIN".to_string()
            )
        ]
    );
    assert_eq!(end_of(&recording).how, EndHow::Eof);
}

#[tokio::test]
async fn a_handshake_trickling_in_byte_by_byte_gets_408_and_is_closed() {
    let up = RawUpstream::bind().await;
    let rec = Recorder::start_with(&up.url, |c| {
        c.handshake_timeout = Duration::from_millis(300);
    })
    .await;
    let stream = TcpStream::connect(rec.addr()).await.unwrap();
    let (mut read, mut write) = stream.into_split();
    let request = format!("GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n");
    let trickle = tokio::spawn(async move {
        for b in request.bytes() {
            if write.write_all(&[b]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(40)).await;
        }
    });
    let mut resp = String::new();
    tokio::time::timeout(Duration::from_secs(10), read.read_to_string(&mut resp))
        .await
        .expect("the recorder did not close a trickling handshake")
        .ok();
    trickle.abort();
    assert!(resp.starts_with("HTTP/1.1 408 Request Timeout"), "{resp}");
    assert!(
        tokio::time::timeout(Duration::from_millis(100), up.listener.accept())
            .await
            .is_err(),
        "nothing may reach the upstream"
    );
    rec.finish().await;
}

#[tokio::test]
async fn handshake_headers_over_64_kib_get_431() {
    let up = RawUpstream::bind().await;
    let rec = Recorder::start(&up.url).await;
    let mut s = TcpStream::connect(rec.addr()).await.unwrap();
    let big = "a".repeat(70 * 1024);
    let request = format!("GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {KEY}\r\nX-Big: {big}\r\n\r\n");
    // The recorder may answer and close before it has read everything we send.
    let _ = s.write_all(request.as_bytes()).await;
    let mut resp = Vec::new();
    let _ = s.read_to_end(&mut resp).await;
    let resp = String::from_utf8_lossy(&resp);
    assert!(
        resp.starts_with("HTTP/1.1 431 Request Header Fields Too Large"),
        "{resp}"
    );
    rec.finish().await;
}

/// Clients stalling inside huge frames cannot make the recorder hold more than its
/// budget for unfinished messages: beyond it a body is recorded truncated, with its
/// size and why, and every byte is still forwarded.
#[tokio::test]
async fn stalled_partial_frames_share_one_memory_budget() {
    use futures_util::{SinkExt, StreamExt};
    let upstream = echo_server().await;
    let budget = 64 << 10;
    let rec = Recorder::start_with(&upstream, |c| c.max_buffered_bytes = budget).await;
    // Two clients announce 1 MiB frames and stall after 30 KiB each (masked, mask 0).
    let mut stalled = Vec::new();
    for _ in 0..2 {
        let (mut s, head) = raw_client(rec.addr(), "/", "").await;
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        let mut frame = vec![0x82, 0x80 | 127];
        frame.extend_from_slice(&(1u64 << 20).to_be_bytes());
        frame.extend_from_slice(&[0, 0, 0, 0]);
        frame.extend(std::iter::repeat_n(b'x', 30 << 10));
        s.write_all(&frame).await.unwrap();
        stalled.push(s);
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    // A third client's 32 KiB message finds 4 KiB of the budget left.
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{}/", rec.addr()))
        .await
        .unwrap();
    let text = "y".repeat(32 << 10);
    ws.send(tokio_tungstenite::tungstenite::Message::text(text.clone()))
        .await
        .unwrap();
    let echo = guard(ws.next()).await.unwrap().unwrap();
    assert_eq!(echo.into_text().unwrap().as_str(), text, "forwarded whole");
    ws.close(None).await.unwrap();
    while guard(ws.next()).await.is_some() {}
    drop(stalled);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (recording, _) = rec.finish().await;
    let sent = recording
        .records
        .iter()
        .find_map(|r| match r {
            Record::Message(m)
                if m.dir == wsreplay::recording::Dir::ClientToServer
                    && !m.body.as_bytes().is_empty()
                    && m.body.as_bytes()[0] == b'y' =>
            {
                Some(m)
            }
            _ => None,
        })
        .expect("the third client's message");
    assert!(sent.truncated);
    assert_eq!(sent.size, Some(32 << 10));
    assert_eq!(sent.body.as_bytes().len(), (4 << 10));
    assert!(
        sent.note
            .as_deref()
            .unwrap_or_default()
            .contains("--max-buffered"),
        "{:?}",
        sent.note
    );
}
