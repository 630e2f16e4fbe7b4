//! wsreplay: record, replay and structurally diff WebSocket traffic between services.
//!
//! The binary is a thin layer over this library; Rust tests use the same API.
//!
//! | module | owns |
//! |---|---|
//! | [`format`] | the recording file format (JSON Lines), its reader and writer |
//! | [`accept`] | the accept loop every listener shares |
//! | [`proxy`] | the recording proxy: listeners, upgrade forwarding, one tunnel per connection |
//! | [`tunnel`] | the byte pump that forwards a connection unchanged |
//! | [`tap`] | turning a copy of the forwarded bytes into records |
//! | [`frame`] | the passive WebSocket frame parser |
//! | [`deflate`] | permessage-deflate inflation for the recording |
//! | [`handshake`] | reading and rewriting the HTTP upgrade |
//! | [`sink`] | the single writer thread that owns a recording file |
//! | [`replay`] | replaying recorded clients against a build, mocking its recorded peers |
//! | [`redact`] | keeping secrets out of recordings |
//! | [`secrets`] | credentials recognised by their shape; `show --secrets` |
//! | [`tls`] | rustls for `wss://` upstreams |
//! | [`config`] | validated routes and `wsreplay.toml` |
//! | [`kind`] | naming a message by its discriminator (`type`, ...) |
//! | [`structure`] | the structure normaliser: messages reduced to key paths, types and formats |
//! | [`review`] | `wsreplay review`: accepting or rejecting pending snapshots |
//! | [`snapshot`] | structure snapshots as insta `.snap` files |
//! | [`diff`] | unified diffs and the semantic summary of a structure change |
//! | [`show`] | `wsreplay show`: summaries and timelines |
//! | [`sequence`] | a recording as a sequence diagram across hops; Mermaid output |
//! | [`demo`] | a small multi-service system used by the demo and the tests |
//! | [`timing`] | timing envelopes: time to first message and gaps against the recording |
//! | [`report`] | the self-contained HTML report (`check --html`) with inline SVG sequence diagrams |
//! | [`check`] | `snapshot`, `check` and `diff`: the regression gate, JUnit and Markdown outputs |
//! | [`bench`] | `wsreplay bench`: the performance figures, side by side |
//! | [`soak`] | `wsreplay soak`: many connections through the recorder, nothing lost |
//! | [`har`] | `wsreplay import har`: browser and mitmproxy captures as recordings |
//! | [`schema`] | `wsreplay schema`: JSON Schema and AsyncAPI documents inferred from recordings |
//! | [`validate`] | `wsreplay validate`: recorded messages checked against a JSON Schema or AsyncAPI document |
//! | [`cli`] | command-line definitions and exit codes |

pub mod accept;
pub mod bench;
pub mod check;
pub mod cli;
pub mod config;
pub mod deflate;
pub mod demo;
pub mod diff;
pub mod format;
pub mod frame;
pub mod handshake;
pub mod har;
pub mod kind;
pub mod proxy;
pub mod redact;
pub mod replay;
pub mod report;
pub mod review;
pub mod schema;
pub mod secrets;
pub mod sequence;
pub mod show;
pub mod sink;
pub mod snapshot;
pub mod soak;
pub mod structure;
pub mod tap;
pub mod timing;
pub mod tls;
pub mod tunnel;
pub mod validate;
