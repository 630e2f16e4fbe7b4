//! How a replay tells its caller how far it has got, without drawing anything itself:
//! the command line turns these calls into a progress bar, a test ignores them.

use std::fmt;
use std::sync::Arc;

/// Receives the progress of replays.
pub trait Progress: Send + Sync {
    /// A replay of `total` messages (sent and received) begins; the task returned is
    /// told as they pass.
    fn begin(&self, total: u64) -> Box<dyn ProgressTask>;
}

/// The progress of one replay.
pub trait ProgressTask: Send + Sync {
    /// `n` more messages were sent or received.
    fn advance(&self, n: u64);
    /// The replayed clients are done.
    fn finish(&self);
}

/// A [`Progress`] to hand to [`ReplayConfig`](super::ReplayConfig): shared by every
/// replay of a configuration; reports nothing by default.
#[derive(Clone)]
pub struct ProgressHandle(Arc<dyn Progress>);

impl ProgressHandle {
    pub fn new(progress: impl Progress + 'static) -> ProgressHandle {
        ProgressHandle(Arc::new(progress))
    }

    pub(crate) fn begin(&self, total: u64) -> Arc<dyn ProgressTask> {
        Arc::from(self.0.begin(total))
    }
}

impl Default for ProgressHandle {
    fn default() -> ProgressHandle {
        ProgressHandle::new(Silent)
    }
}

impl fmt::Debug for ProgressHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ProgressHandle")
    }
}

/// Reports nothing.
struct Silent;

impl Progress for Silent {
    fn begin(&self, _: u64) -> Box<dyn ProgressTask> {
        Box::new(Silent)
    }
}

impl ProgressTask for Silent {
    fn advance(&self, _: u64) {}
    fn finish(&self) {}
}
