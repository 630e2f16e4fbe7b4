//! The regression gate: `snapshot`, `check` and `diff`, their verdicts, snapshots
//! learned from replays of the clean build, the review of pending snapshots, the reports a gate writes (JUnit, Markdown, HTML), and the same
//! gate as a Rust test API ([`Gate`]).

pub mod check;
pub mod export;
pub mod harness;
pub mod learn;
pub mod result;
pub mod review;
pub mod runs;
pub mod verdict;

pub use check::CheckError;
pub use harness::{assert_all, Gate, Mocks, Outcome};
pub use result::{CheckResult, Flaky};
pub use verdict::{exit_code, Verdict};
