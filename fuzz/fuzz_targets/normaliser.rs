//! Any lines as the text messages of one connection: the normaliser, labels and secret
//! scan never panic, and the rendered structure parses back to itself with no diff.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wsreplay::recording::{Body, Dir, Opcode, Recording};
use wsreplay::redact::{RedactConfig, Redactor};
use wsreplay::structure::Structure;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let redactor = Redactor::with_key(&RedactConfig::default(), [2; 32]);
    let messages = text.lines().enumerate().map(|(i, line)| {
        let dir = if i % 2 == 0 { Dir::ClientToServer } else { Dir::ServerToClient };
        let body = Body::Text(redactor.text(line).unwrap_or_else(|| line.to_string()));
        let _ = wsreplay::protocol::label(Opcode::TEXT, &body);
        (dir, body)
    });
    let recording = Recording::single_connection("r", messages);
    let structure = Structure::of(&recording);
    let rendered = structure.render();
    let parsed = Structure::parse(&rendered).expect("a rendered structure parses");
    assert_eq!(parsed.render(), rendered);
    let diffs = wsreplay::structure::diff::compare(&structure, &parsed, &[]);
    assert!(diffs.iter().all(|d| d.same()), "a structure differs from itself");
});
