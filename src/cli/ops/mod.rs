//! Operations several commands share, between the commands and the
//! runtime: waiting for a condition, refusing works that are not ours to
//! change, and reading one work across many consumers.

pub mod fleet;
pub mod guard;
pub mod wait;
