//! The regression gate: `snapshot`, `check` and `diff`, the review of pending
//! snapshots, and the reports a gate writes (JUnit, Markdown, HTML).

pub mod check;
pub mod export;
pub mod review;
