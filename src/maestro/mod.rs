//! The Maestro client: gRPC CloudEvents for writes and the status stream,
//! REST for reads, and a ManifestWork-level facade over both. Every
//! failure of either transport is one [`Error`].

pub mod codec;
pub mod config;
pub mod error;
pub mod fence;
pub mod grpc;
pub mod held;
pub mod proto;
pub mod rest;
pub mod tls_probe;
pub mod work_client;

pub use error::{Error, Result};
pub use held::{AgentReport, HeldWork, StreamedReport};
