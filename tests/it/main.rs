//! Integration tests: one binary, shared helpers in `support`.

mod check;
mod cli;
mod demo;
mod faults;
mod interop;
mod replay;
mod secrets;
mod signals;
mod snapshots;
mod soak;
mod structure_changes;
mod support;
mod tls;
mod transparency;
