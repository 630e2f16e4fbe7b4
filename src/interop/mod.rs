//! Working with other tools' formats: HAR captures in, JSON Schema and AsyncAPI
//! contracts out, and recordings validated against such a contract.

pub mod har;
pub mod schema;
pub mod validate;
