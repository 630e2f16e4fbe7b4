//! Any bytes as a recording file: the reader returns records or an error naming the
//! line, and whatever it accepts, `show` and the normaliser digest without panicking.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use wsreplay::recording::Recording;

fuzz_target!(|data: &[u8]| {
    match Recording::from_reader(Path::new("fuzz.jsonl"), data) {
        Ok(recording) => {
            let _ = wsreplay::recording::summary::render(&recording);
            let _ = wsreplay::recording::summary::render_timeline(&recording);
            let _ = wsreplay::redact::secrets::Inventory::of(&recording).render();
            let _ = wsreplay::structure::Structure::of(&recording).render();
        }
        Err(e) => assert!(e.to_string().starts_with("fuzz.jsonl"), "{e}"),
    }
});
