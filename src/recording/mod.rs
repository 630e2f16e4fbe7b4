//! Recordings: the file format every command reads and writes, the single writer that
//! owns a recording file, and the summaries `wsreplay show` prints.

pub mod format;
pub mod read;
pub mod sink;
pub mod summary;
pub mod write;

pub use format::*;
pub use read::*;
pub use write::*;
