//! Logging and tracing set-up shared by the binaries.

use std::io::IsTerminal;

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::filter::Targets;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::{EnvFilter, fmt, prelude::*};

pub mod traces;

pub use traces::{TraceConfigError, Traces};

/// The target of the spans that are exported (this library's).
pub const SPAN_TARGET: &str = "maestro_operator";

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
/// Traces are exported over OTLP when the environment asks for them (see
/// [`traces::enabled`]), as `service`; the export runs on the current Tokio
/// runtime, so call this inside one. A traces set-up that cannot be honoured
/// is returned after logging is installed.
pub fn init(
    format: LogFormat,
    default_filter: &str,
    service: &'static str,
) -> Result<Option<Traces>, TraceConfigError> {
    let var = |name: &str| std::env::var(name).ok();
    let traces = match traces::enabled(&var) {
        Ok(true) => Some(traces::build(service, &var)),
        Ok(false) => None,
        Err(e) => Some(Err(e)),
    };
    let (traces, problem) = match traces {
        Some(Ok(t)) => (Some(t), None),
        Some(Err(e)) => (None, Some(e)),
        None => (None, None),
    };
    // The spans are this crate's INFO spans whatever the log level: RUST_LOG
    // (or the CLI's default of warnings only) filters the log lines alone.
    let otel = traces.as_ref().map(|t| {
        use opentelemetry::trace::TracerProvider as _;
        tracing_opentelemetry::layer()
            .with_tracer(t.provider.tracer(service))
            .with_filter(Targets::new().with_target(SPAN_TARGET, Level::INFO))
    });
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let registry = tracing_subscriber::registry().with(otel);
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
                    .with_writer(std::io::stderr)
                    .with_filter(filter),
            )
            .try_init(),
        LogFormat::Json => registry
            .with(
                fmt::layer()
                    .event_format(WithTraceIds(fmt::format().json()))
                    .fmt_fields(fmt::format::JsonFields::new())
                    .with_writer(std::io::stderr)
                    .with_filter(filter),
            )
            .try_init(),
    };
    match problem {
        Some(e) => Err(e),
        None => Ok(traces),
    }
}

/// Adds `trace_id` and `span_id` (of the current span, when traces are on)
/// to each JSON line, so a log line leads to its trace.
struct WithTraceIds<F>(F);

impl<S, N, F> FormatEvent<S, N> for WithTraceIds<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        let Some((trace_id, span_id)) = traces::current_ids() else {
            return self.0.format_event(ctx, writer, event);
        };
        let mut line = String::new();
        self.0.format_event(ctx, Writer::new(&mut line), event)?;
        write!(writer, "{}", with_ids(&line, &trace_id, &span_id))
    }
}

/// `line` (one JSON object and a newline) with the two IDs added as its
/// last members; any other text unchanged.
fn with_ids(line: &str, trace_id: &str, span_id: &str) -> String {
    let body = line.trim_end();
    match body.strip_suffix('}') {
        Some(head) if body.starts_with('{') => {
            let comma = if head.trim_end().ends_with('{') {
                ""
            } else {
                ","
            };
            format!(
                "{head}{comma}\"trace_id\":\"{trace_id}\",\"span_id\":\"{span_id}\"}}{}",
                &line[body.len()..]
            )
        }
        _ => line.to_string(),
    }
}

#[cfg(test)]
mod tests;
