//! Recordings: the file format every command reads and writes, the single writer that
//! owns a recording file, and the summaries `wsreplay show` prints.

pub mod filter;
pub mod format;
pub mod merge;
pub mod read;
pub mod rotate;
pub mod sink;
pub mod source;
pub mod summary;
pub mod write;

pub use format::*;
pub use read::*;
pub use source::{is_recording_name, stem_of, Source};
pub use write::*;
