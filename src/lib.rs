//! wsreplay: record, replay and structurally diff WebSocket traffic between services.
//!
//! The binary is a thin layer over this library; Rust tests use the same API.
//!
//! | module | owns |
//! |---|---|
//! | [`recording`] | the recording file format, its single writer, and summaries |
//! | [`record`] | the recording proxy: accept loop, upgrade, byte tunnel, frame parser, deflate, tap, TLS |
//! | [`redact`] | keeping secrets out: named redaction and credentials recognised by their shape |
//! | [`protocol`] | what kind of message a message is, and which ids tie it to others |
//! | [`structure`] | the structure normaliser, snapshots, diffs, sequences and timing |
//! | [`replay`] | replaying recorded clients against a build, mocking its recorded peers |
//! | [`split`] | a long capture split into recordings for CI: by connection, user or session |
//! | [`gate`] | `snapshot`, `check`, `diff` and `review`: the regression gate and its reports |
//! | [`interop`] | HAR import, JSON Schema / AsyncAPI inference and validation |
//! | [`text`] | recorded text made safe to show: control and bidi characters escaped |
//! | [`files`] | output files written whole and never through a symlink; private recordings |
//! | [`config`] | validated routes and `wsreplay.toml` |
//! | [`demo`] | a small multi-service system used by the demo and the tests |
//! | [`measure`] | `bench` and `soak`: the performance figures and the no-loss soak |
//! | `commands` | the command line, one module per command (feature `cli`, on by default) |

#[cfg(feature = "cli")]
pub mod commands;
pub mod config;
pub mod demo;
pub mod files;
pub mod gate;
pub mod interop;
pub mod measure;
pub mod protocol;
pub mod record;
pub mod recording;
pub mod redact;
pub mod replay;
pub mod split;
pub mod structure;
pub mod text;

pub use gate::{Gate, Outcome, Verdict};
pub use recording::Recording;
