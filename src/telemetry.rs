//! Logging set-up shared by the binaries.

use std::io::IsTerminal;

use tracing_subscriber::{EnvFilter, fmt, prelude::*};

/// Output format of the logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// Installs the global subscriber. `default_filter` applies when `RUST_LOG`
/// is unset. Logs go to standard error so standard output stays for results.
pub fn init(format: LogFormat, default_filter: &str) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let registry = tracing_subscriber::registry().with(filter);
    // A second init (tests, embedding) keeps the first subscriber.
    let _ = match format {
        // Colour codes only for a person at a terminal: in files and log
        // collectors they are noise (NO_COLOR is honoured as well).
        LogFormat::Text => registry
            .with(
                fmt::layer()
                    .with_ansi(
                        std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
                    )
                    .with_writer(std::io::stderr),
            )
            .try_init(),
        LogFormat::Json => registry
            .with(fmt::layer().json().with_writer(std::io::stderr))
            .try_init(),
    };
}
