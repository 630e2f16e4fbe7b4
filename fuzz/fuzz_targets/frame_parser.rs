//! Any byte stream as one direction of a WebSocket connection: the passive parser never
//! panics, and splitting the stream anywhere yields exactly the same events (the proxy
//! sees the stream in arbitrary TCP chunks). Compressed messages go through inflation.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wsreplay::record::deflate::{Inflater, Negotiated};
use wsreplay::recording::Dir;
use wsreplay::record::frame::{Event, FrameParser};

fn events(chunks: &[&[u8]]) -> Vec<Event> {
    let mut parser = FrameParser::new(1 << 16);
    let mut out = Vec::new();
    for chunk in chunks {
        parser.feed(chunk, &mut |e| out.push(e));
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let Some((&split, stream)) = data.split_first() else {
        return;
    };
    let at = (split as usize).min(stream.len());
    let whole = events(&[stream]);
    let (a, b) = stream.split_at(at);
    assert_eq!(whole, events(&[a, b]), "events depend on where the stream was split");
    let negotiated = Negotiated::from_header("permessage-deflate").expect("valid offer");
    let mut inflater = Inflater::new(&negotiated, Dir::ClientToServer);
    for event in &whole {
        if let Event::Message(m) = event {
            if m.rsv & 4 != 0 {
                if let Ok(inflated) = inflater.inflate(&m.payload, 1 << 16) {
                    assert!(inflated.body.len() <= 1 << 16, "inflation limit ignored");
                }
            }
        }
    }
});
