//! The `work.open-cluster-management.io/v1` ManifestWork API and the
//! validation that Maestro's server and agent apply to it.

mod types;
mod validate;

#[cfg(test)]
mod schema_tests;

pub use types::*;
pub use validate::*;
