//! maestro-operator: deliver Kubernetes manifests to fleets of remote
//! clusters through Maestro.
//!
//! The library holds everything the two binaries share:
//! - [`manifestwork`]: the Open Cluster Management `ManifestWork` types and
//!   the validation Maestro and its agent apply;
//! - [`maestro`]: the Maestro client: the CloudEvents codec, the gRPC source
//!   client (writes and the status stream), the REST client (reads), a
//!   ManifestWork-level facade over both and Maestro's error type;
//! - [`names`]: validated names and resource IDs;
//! - [`durations`]: durations as people write them;
//! - [`signals`]: SIGINT and SIGTERM, for both binaries;
//! - [`backoff`]: the jittered exponential backoff of every retry;
//! - [`telemetry`]: logging, traces and their set-up;
//! - [`controller`]: the `maestro-operator` controllers (MaestroApply and
//!   MaestroApplySet), their status, metrics and servers;
//! - [`cli`]: the `maestro-cli` commands.

pub mod backoff;
pub mod cli;
pub mod controller;
pub mod durations;
pub mod maestro;
pub mod malloc;
pub mod manifestwork;
pub mod names;
pub mod signals;
pub mod telemetry;
