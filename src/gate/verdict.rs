//! Verdicts and the exit codes they map to: the one place a process exit code is decided.

/// The documented exit codes of every `wsreplay` command.
pub mod exit_code {
    /// Success: same structure, replayed with no problems, every message valid.
    pub const OK: i32 = 0;
    /// The structure differs from the snapshot (or the replay reported problems, or
    /// messages violate the schema).
    pub const DIFFERS: i32 = 1;
    /// wsreplay could not do its job: bad input, unreachable target, incomplete recording.
    pub const ERROR: i32 = 2;
    /// `check --timing`: the structure is the same, but the build is slower than the
    /// timing envelope allows.
    pub const SLOW: i32 = 3;
    /// `check --confirm N`: a difference did not reproduce (some confirm run was the
    /// same as the snapshot), and no recording differs for real.
    pub const FLAKY: i32 = 4;
}

/// How a recording fared, from best to worst.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verdict {
    Same,
    /// Same structure, but slower than the timing envelope allows (`--timing`).
    Slow,
    /// Differed once, then was the same in a confirm run (`--confirm`).
    Flaky,
    Differs,
    /// Could not be checked (bad input, unreachable target, ...).
    Error,
}

impl Verdict {
    /// The process exit code for this verdict (0, 3, 4, 1, 2).
    pub fn exit_code(self) -> i32 {
        match self {
            Verdict::Same => exit_code::OK,
            Verdict::Slow => exit_code::SLOW,
            Verdict::Flaky => exit_code::FLAKY,
            Verdict::Differs => exit_code::DIFFERS,
            Verdict::Error => exit_code::ERROR,
        }
    }
}
