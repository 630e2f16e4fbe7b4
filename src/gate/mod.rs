//! The regression gate: `snapshot`, `check` and `diff`, their verdicts, the review of
//! pending snapshots, and the reports a gate writes (JUnit, Markdown, HTML).

pub mod check;
pub mod export;
pub mod result;
pub mod review;
pub mod verdict;

pub use result::CheckResult;
pub use verdict::{exit_code, Verdict};
