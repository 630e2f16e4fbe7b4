//! The reports a gate writes for people and CI systems.

pub mod html;
