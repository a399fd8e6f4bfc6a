//! maestro-cli (also the kubectl plugin `kubectl maestro` when run as
//! `kubectl-maestro`): parse the command line, run it, exit with its code.

use std::process::ExitCode;

use maestro_operator::cli::{self, ExitStatus, Invocation};
use maestro_operator::telemetry;

fn main() -> ExitCode {
    // Run as `kubectl-maestro` (kubectl's plugin), it presents itself as
    // `kubectl maestro`.
    let invocation = Invocation::from_argv0(std::env::args_os().next().as_deref());
    let cli = match invocation.parse(std::env::args_os()) {
        Ok(cli) => cli,
        Err(e) => return usage_error(&e),
    };
    // One thread is plenty for one request at a time, and starts faster.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(ExitStatus::Error.code());
        }
    };
    // The trace export runs on the runtime, so it is set up inside it.
    maestro_operator::maestro::config::ensure_crypto_provider();
    let traces = {
        let _entered = runtime.enter();
        match telemetry::init(cli.log_format, cli.log_filter(), "maestro-cli") {
            Ok(traces) => traces,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(ExitStatus::Usage.code());
            }
        }
    };
    // The root span of the command's trace (REST requests and publishes
    // are its children).
    let span = tracing::info_span!(target: telemetry::SPAN_TARGET, "maestro-cli");
    let outcome = runtime.block_on(tracing::Instrument::instrument(cli::run(cli), span));
    if let Some(traces) = traces {
        runtime.block_on(traces.shutdown(std::time::Duration::from_secs(5)));
    }
    if let Some(error) = &outcome.error {
        for line in error.to_string().lines() {
            eprintln!("error: {line}");
        }
    }
    ExitCode::from(outcome.status.code())
}

/// Prints clap's message (help and version go to standard output with 0)
/// and records a usage error in the results file, when one is named.
fn usage_error(e: &clap::Error) -> ExitCode {
    let _ = e.print();
    if !e.use_stderr() {
        return ExitCode::SUCCESS;
    }
    if let Err(write_error) = cli::record_usage_error(
        e,
        std::env::args_os(),
        std::env::var(cli::RESULTS_PATH_ENV).ok(),
    ) {
        eprintln!("error: {write_error}");
    }
    ExitCode::from(ExitStatus::Usage.code())
}
