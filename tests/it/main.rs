//! Integration tests: one binary, shared helpers in `support`.

mod cli;
mod demo;
mod faults;
mod replay;
mod secrets;
mod signals;
mod support;
mod tls;
mod transparency;
