//! Upstreams that are down, refuse, or die mid-session; requests that are not upgrades.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use wsreplay::format::{EndHow, Record, Side};

use crate::support::*;

fn end_of(rec: &wsreplay::format::Recording) -> &wsreplay::format::End {
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

async fn upstream_dies(reset: bool) -> (wsreplay::format::Recording, Duration) {
    let up = RawUpstream::bind().await;
    let rec = Recorder::start(&up.url).await;
    let (client, (upstream, _)) = tokio::join!(raw_client(rec.addr(), "/", ""), up.accept(""));
    let (mut client, _) = client;
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
    (rec.finish().await.0, waited)
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
