//! Any bytes as an upgrade request head: parsed or refused with a reason, and what is
//! parsed can be rewritten for the upstream and redacted without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wsreplay::record::handshake::parse_request;
use wsreplay::redact::{RedactConfig, Redactor};

fuzz_target!(|data: &[u8]| {
    let Ok(head) = parse_request(data) else {
        return;
    };
    let _ = head.is_websocket_upgrade();
    let _ = head.for_upstream("/prefix", "upstream.example:443");
    let redactor = Redactor::with_key(&RedactConfig::default(), [1; 32]);
    let line = redactor.target(&head.request_line());
    let mut headers = head.headers.clone();
    redactor.headers(&mut headers);
    assert!(!line.is_empty());
});
