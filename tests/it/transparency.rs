//! Byte transparency: whatever one side sends reaches the other side byte for byte,
//! and the recording describes it.

use flate2::{Compress, Compression, FlushCompress};
use tokio::io::AsyncWriteExt;
use wsreplay::record::frame::encode_frame;
use wsreplay::recording::{Body, Dir, Opcode, Record, Recording};

use crate::support::*;

const MASK: Option<[u8; 4]> = Some([0x37, 0xfa, 0x21, 0x3d]);

/// Sends `c2s` from a raw client and `s2c` from a raw upstream through the proxy,
/// asserts both arrive unchanged, and returns the recording.
async fn roundtrip_with(extra_response: &str, c2s: &[u8], s2c: &[u8]) -> Recording {
    let up = RawUpstream::bind().await;
    let rec = Recorder::start(&up.url).await;
    let (client, (upstream, _)) =
        tokio::join!(raw_client(rec.addr(), "/t", ""), up.accept(extra_response));
    let (mut client, head) = client;
    let mut upstream = upstream;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    let ((mut client_rx, mut client_tx), (mut up_rx, mut up_tx)) =
        (client.split(), upstream.split());
    let (sent_up, sent_down) = tokio::join!(
        async {
            let (_, got) =
                tokio::join!(client_tx.write_all(c2s), read_exact(&mut up_rx, c2s.len()));
            got
        },
        async {
            let (_, got) =
                tokio::join!(up_tx.write_all(s2c), read_exact(&mut client_rx, s2c.len()));
            got
        }
    );
    assert!(sent_up == c2s, "client→server bytes changed in transit");
    assert!(sent_down == s2c, "server→client bytes changed in transit");
    drop((client, upstream));
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    rec.finish().await.0
}

async fn roundtrip(c2s: &[u8], s2c: &[u8]) -> Recording {
    roundtrip_with("", c2s, s2c).await
}

fn message(r: &Record) -> &wsreplay::recording::Message {
    match r {
        Record::Message(m) => m,
        other => panic!("expected a message, got {other:?}"),
    }
}

#[tokio::test]
async fn fragmented_text_with_a_ping_between_fragments() {
    let mut c2s = encode_frame(false, 0, Opcode::TEXT, MASK, b"{\"type\":");
    c2s.extend(encode_frame(true, 0, Opcode::PING, MASK, b"are you there"));
    c2s.extend(encode_frame(
        false,
        0,
        Opcode::CONTINUATION,
        MASK,
        b"\"chat\"",
    ));
    c2s.extend(encode_frame(true, 0, Opcode::CONTINUATION, MASK, b"}"));
    let s2c = encode_frame(true, 0, Opcode::PONG, None, b"are you there");
    let rec = roundtrip(&c2s, &s2c).await;
    let t = traffic(&rec);
    assert!(
        matches!(t[0], Record::Ping(p) if p.dir == Dir::ClientToServer && p.body.as_bytes() == b"are you there")
    );
    let m = message(t[1]);
    assert_eq!(
        (m.op, m.frames, m.body.as_text()),
        (Opcode::TEXT, 3, Some("{\"type\":\"chat\"}"))
    );
    assert!(matches!(t[2], Record::Pong(p) if p.dir == Dir::ServerToClient));
    assert_eq!(t.len(), 3);
}

#[tokio::test]
async fn invalid_utf8_rsv_bits_and_unknown_opcodes_pass_and_are_described() {
    let mut c2s = encode_frame(true, 0, Opcode::TEXT, MASK, &[0x68, 0xff, 0xfe, 0x69]);
    c2s.extend(encode_frame(true, 0b011, Opcode::BINARY, MASK, b"rsv"));
    let mut s2c = encode_frame(true, 0, Opcode(0x3), None, b"reserved data");
    s2c.extend(encode_frame(
        true,
        0,
        Opcode(0xb),
        None,
        b"reserved control",
    ));
    s2c.extend(encode_frame(
        true,
        0b100,
        Opcode::TEXT,
        None,
        b"rsv1 without deflate",
    ));
    let rec = roundtrip(&c2s, &s2c).await;
    let t = traffic(&rec);
    let bad = message(t[0]);
    assert_eq!(bad.body, Body::Bytes(vec![0x68, 0xff, 0xfe, 0x69]));
    assert!(bad.note.as_deref().unwrap().contains("not valid UTF-8"));
    assert_eq!(message(t[1]).rsv, 0b011);
    assert_eq!(message(t[2]).op, Opcode(0x3));
    assert!(
        matches!(t[3], Record::Control(c) if c.op == Some(Opcode(0xb)) && c.body.as_bytes() == b"reserved control")
    );
    let rsv1 = message(t[4]);
    assert_eq!((rsv1.rsv, rsv1.compressed), (0b100, false));
}

#[tokio::test]
async fn close_without_code_and_with_an_invalid_code() {
    let c2s = encode_frame(true, 0, Opcode::CLOSE, MASK, b"");
    let mut payload = 999u16.to_be_bytes().to_vec();
    payload.extend_from_slice(b"nonsense");
    let s2c = encode_frame(true, 0, Opcode::CLOSE, None, &payload);
    let rec = roundtrip(&c2s, &s2c).await;
    let closes: Vec<_> = traffic(&rec)
        .into_iter()
        .map(|r| match r {
            Record::Close(c) => (c.dir, c.code, c.reason.clone()),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        closes,
        vec![
            (Dir::ClientToServer, None, String::new()),
            (Dir::ServerToClient, Some(999), "nonsense".into())
        ]
    );
}

#[tokio::test]
async fn a_16_mib_masked_frame_and_a_masked_server_frame() {
    let big: Vec<u8> = (0..16u32 << 20).map(|i| (i % 251) as u8).collect();
    let c2s = encode_frame(true, 0, Opcode::BINARY, MASK, &big);
    let s2c = encode_frame(true, 0, Opcode::TEXT, MASK, b"masked by the server");
    let rec = roundtrip(&c2s, &s2c).await;
    let t = traffic(&rec);
    let by_dir = |dir| {
        message(
            t.iter()
                .find(|r| matches!(r, Record::Message(m) if m.dir == dir))
                .unwrap(),
        )
    };
    let m = by_dir(Dir::ClientToServer);
    assert_eq!(
        (m.op, m.body.len(), m.truncated),
        (Opcode::BINARY, 16 << 20, false)
    );
    assert!(m.body.as_bytes() == big.as_slice());
    assert_eq!(
        by_dir(Dir::ServerToClient).body.as_text(),
        Some("masked by the server")
    );
}

/// Compresses like a permessage-deflate sender: raw deflate, sync flush, tail removed.
fn deflate(c: &mut Compress, msg: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(msg.len() + 64);
    c.compress_vec(msg, &mut out, FlushCompress::Sync).unwrap();
    out.truncate(out.len() - 4);
    out
}

#[tokio::test]
async fn permessage_deflate_is_inflated_in_the_recording_only() {
    let mut server = Compress::new(Compression::default(), false);
    let first = br#"{"type":"agent_started","payload":{"agent_name":"supervisor"}}"#;
    let second = br#"{"type":"agent_thinking","payload":{"agent_name":"supervisor"}}"#;
    let mut s2c = encode_frame(
        true,
        0b100,
        Opcode::TEXT,
        None,
        &deflate(&mut server, first),
    );
    // The second message reuses the window (context takeover) and comes in two frames.
    let z = deflate(&mut server, second);
    s2c.extend(encode_frame(
        false,
        0b100,
        Opcode::TEXT,
        None,
        &z[..z.len() / 2],
    ));
    s2c.extend(encode_frame(
        true,
        0,
        Opcode::CONTINUATION,
        None,
        &z[z.len() / 2..],
    ));
    let mut client = Compress::new(Compression::default(), false);
    let c2s = encode_frame(
        true,
        0b100,
        Opcode::TEXT,
        MASK,
        &deflate(&mut client, br#"{"type":"chat"}"#),
    );
    let rec = roundtrip_with(
        "Sec-WebSocket-Extensions: permessage-deflate; client_no_context_takeover; server_max_window_bits=12\r\n",
        &c2s,
        &s2c,
    )
    .await;
    let t = traffic(&rec);
    let texts: Vec<_> = t
        .iter()
        .map(|r| {
            (
                message(r).body.as_text().unwrap().to_string(),
                message(r).compressed,
                message(r).frames,
            )
        })
        .collect();
    assert_eq!(
        texts,
        vec![
            (r#"{"type":"chat"}"#.to_string(), true, 1),
            (String::from_utf8(first.to_vec()).unwrap(), true, 1),
            (String::from_utf8(second.to_vec()).unwrap(), true, 2),
        ]
    );
}

#[tokio::test]
async fn frames_sent_with_the_101_response_are_recorded() {
    let up = RawUpstream::bind().await;
    let rec = Recorder::start(&up.url).await;
    let greeting = encode_frame(true, 0, Opcode::TEXT, None, br#"{"type":"hello"}"#);
    let (client, upstream) = tokio::join!(
        raw_client(rec.addr(), "/", ""),
        up.accept_with("", &greeting)
    );
    let (mut client, _) = client;
    assert_eq!(read_exact(&mut client, greeting.len()).await, greeting);
    drop((client, upstream));
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let (rec, _) = rec.finish().await;
    assert_eq!(
        message(traffic(&rec)[0]).body.as_text(),
        Some(r#"{"type":"hello"}"#)
    );
}
