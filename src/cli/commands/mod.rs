//! The commands, one a file. Each parses nothing itself (clap has done
//! that), calls the shared operations and prints; no command uses another.

pub mod apply;
pub mod build;
pub mod consumers;
pub mod delete;
pub mod describe;
pub mod diff;
pub mod get;
pub mod list;
pub mod validate;
pub mod wait;
pub mod watch;
