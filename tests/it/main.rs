//! Integration tests: one binary, shared helpers in `support`.

mod browser;
mod check;
mod cli;
mod cli_output;
mod credentials;
mod demo;
mod faults;
mod free_text;
mod hostile;
mod interop;
mod layout;
mod protocols;
mod replay;
mod replay_faults;
mod review;
mod secrets;
mod signals;
mod snapshots;
mod soak;
mod streams;
mod structure_changes;
mod support;
mod tls;
mod transparency;
