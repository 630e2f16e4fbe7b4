//! Recordings: the file format every command reads and writes, the single writer that
//! owns a recording file, and the summaries `wsreplay show` prints.

pub mod format;
pub mod sink;
pub mod summary;
