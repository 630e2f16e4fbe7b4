//! The measuring tools: `wsreplay bench` (performance figures side by side) and
//! `wsreplay soak` (many connections through the recorder, nothing lost).

pub mod bench;
pub mod load;
pub mod soak;
