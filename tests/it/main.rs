//! Integration tests: one binary, shared helpers in `support`.

mod cli;
mod demo;
mod faults;
mod secrets;
mod signals;
mod support;
mod tls;
mod transparency;
