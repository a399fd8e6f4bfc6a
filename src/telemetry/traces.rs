//! OpenTelemetry traces over OTLP (HTTP/protobuf), turned on by the standard
//! `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`)
//! variable and off when it is unset.
//!
//! Spans go through [`QueuedSpanProcessor`] rather than the SDK's batch
//! processor: ending a span only tries to put it on a bounded queue, so a
//! missing, slow or unreachable collector never holds up the caller (a
//! reconcile), and every span that does not reach the collector is counted
//! in [`TraceStats`], which the operator serves on `/metrics`. The SDK's
//! batch processor drops silently and exports from its own thread, where the
//! async HTTP client has no runtime.

use std::sync::OnceLock;
use std::time::Duration;

use opentelemetry::trace::TraceContextExt;
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanData, SpanExporter, SpanProcessor};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use tokio::sync::{mpsc, oneshot};
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// Why a span did not reach the collector.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DropLabels {
    pub reason: String,
}

pub const DROPPED_QUEUE_FULL: &str = "queue_full";
pub const DROPPED_EXPORT_FAILED: &str = "export_failed";
pub const DROPPED_SHUTDOWN: &str = "shutdown";

/// Counts of the export pipeline. Process-wide: the operator's `/metrics`
/// registers clones (prometheus-client counters share their value).
#[derive(Clone, Debug, Default)]
pub struct TraceStats {
    pub exported: Counter,
    pub dropped: Family<DropLabels, Counter>,
}

impl TraceStats {
    fn drop_spans(&self, reason: &str, n: usize) {
        self.dropped
            .get_or_create(&DropLabels {
                reason: reason.to_string(),
            })
            .inc_by(n as u64);
    }

    pub fn dropped(&self, reason: &str) -> u64 {
        self.dropped
            .get_or_create(&DropLabels {
                reason: reason.to_string(),
            })
            .get()
    }
}

/// The process's trace counters (zero while tracing is off).
pub fn stats() -> &'static TraceStats {
    static STATS: OnceLock<TraceStats> = OnceLock::new();
    STATS.get_or_init(TraceStats::default)
}

/// A traces set-up the environment asks for and that cannot be honoured.
#[derive(Debug, thiserror::Error)]
pub enum TraceConfigError {
    #[error("{variable}={value:?}: {problem}")]
    Invalid {
        variable: &'static str,
        value: String,
        problem: String,
    },
    #[error("cannot build the OTLP exporter: {0}")]
    Exporter(String),
}

/// The queue and batching of the export, from the standard `OTEL_BSP_*`
/// variables (the OpenTelemetry defaults otherwise).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueSettings {
    pub max_queue_size: usize,
    pub max_export_batch_size: usize,
    pub schedule_delay: Duration,
    pub export_timeout: Duration,
}

impl Default for QueueSettings {
    fn default() -> Self {
        QueueSettings {
            max_queue_size: 2048,
            max_export_batch_size: 512,
            schedule_delay: Duration::from_millis(5000),
            export_timeout: Duration::from_millis(30000),
        }
    }
}

/// Whether the environment turns traces on: an OTLP endpoint is set, and
/// neither `OTEL_SDK_DISABLED=true` nor `OTEL_TRACES_EXPORTER=none` turns
/// them off. Other exporters and protocols are refused, naming the variable.
pub fn enabled(var: &dyn Fn(&str) -> Option<String>) -> Result<bool, TraceConfigError> {
    let set = |name: &str| var(name).filter(|v| !v.trim().is_empty());
    if set("OTEL_SDK_DISABLED").is_some_and(|v| v.trim().eq_ignore_ascii_case("true")) {
        return Ok(false);
    }
    if let Some(exporter) = set("OTEL_TRACES_EXPORTER") {
        match exporter.trim() {
            "none" => return Ok(false),
            "otlp" => {}
            other => {
                return Err(TraceConfigError::Invalid {
                    variable: "OTEL_TRACES_EXPORTER",
                    value: other.to_string(),
                    problem: "only \"otlp\" and \"none\" are supported".into(),
                });
            }
        }
    }
    for variable in [
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
        "OTEL_EXPORTER_OTLP_PROTOCOL",
    ] {
        if let Some(protocol) = set(variable)
            && protocol.trim() != "http/protobuf"
        {
            return Err(TraceConfigError::Invalid {
                variable,
                value: protocol,
                problem: "only \"http/protobuf\" is supported (OTLP over HTTP, port 4318)".into(),
            });
        }
    }
    Ok(set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").is_some()
        || set("OTEL_EXPORTER_OTLP_ENDPOINT").is_some())
}

impl QueueSettings {
    pub fn from_env(var: &dyn Fn(&str) -> Option<String>) -> Result<Self, TraceConfigError> {
        let d = QueueSettings::default();
        let number = |variable: &'static str, default: u64| -> Result<u64, TraceConfigError> {
            match var(variable).filter(|v| !v.trim().is_empty()) {
                None => Ok(default),
                Some(value) => match value.trim().parse::<u64>() {
                    Ok(n) if n > 0 => Ok(n),
                    _ => Err(TraceConfigError::Invalid {
                        variable,
                        value,
                        problem: "must be a positive whole number".into(),
                    }),
                },
            }
        };
        let max_queue_size = number("OTEL_BSP_MAX_QUEUE_SIZE", d.max_queue_size as u64)? as usize;
        let batch = number(
            "OTEL_BSP_MAX_EXPORT_BATCH_SIZE",
            d.max_export_batch_size as u64,
        )?;
        Ok(QueueSettings {
            max_queue_size,
            // The specification caps the batch at the queue size.
            max_export_batch_size: (batch as usize).min(max_queue_size),
            schedule_delay: Duration::from_millis(number(
                "OTEL_BSP_SCHEDULE_DELAY",
                d.schedule_delay.as_millis() as u64,
            )?),
            export_timeout: Duration::from_millis(number(
                "OTEL_BSP_EXPORT_TIMEOUT",
                d.export_timeout.as_millis() as u64,
            )?),
        })
    }
}

/// The installed pipeline; [`Traces::shutdown`] exports what is queued.
pub struct Traces {
    pub provider: SdkTracerProvider,
    flush: mpsc::Sender<oneshot::Sender<()>>,
}

impl Traces {
    /// Exports the queued spans, waiting at most `timeout`.
    pub async fn shutdown(self, timeout: Duration) {
        let (ack, done) = oneshot::channel();
        if self.flush.send(ack).await.is_ok() {
            let _ = tokio::time::timeout(timeout, done).await;
        }
        // Later spans (none expected) are dropped and counted.
        let _ = self.provider.shutdown();
    }
}

/// Builds the OTLP pipeline for `service`. Must run inside a Tokio runtime:
/// the export runs on it.
pub fn build(
    service: &'static str,
    var: &dyn Fn(&str) -> Option<String>,
) -> Result<Traces, TraceConfigError> {
    let settings = QueueSettings::from_env(var)?;
    let mut exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .build()
        .map_err(|e| TraceConfigError::Exporter(e.to_string()))?;
    // OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES win over the default.
    let mut resource = Resource::builder();
    if var("OTEL_SERVICE_NAME").is_none_or(|v| v.trim().is_empty()) {
        resource = resource.with_service_name(service);
    }
    let resource = resource.build();
    exporter.set_resource(&resource);
    let (processor, flush) = QueuedSpanProcessor::start(exporter, settings, stats().clone());
    let provider = SdkTracerProvider::builder()
        .with_resource(resource)
        .with_span_processor(processor)
        .build();
    Ok(Traces { provider, flush })
}

/// Hands ended spans to an export task through a bounded queue, never
/// waiting: a full queue drops the span and counts it.
#[derive(Debug)]
pub struct QueuedSpanProcessor {
    queue: mpsc::Sender<SpanData>,
    flush: mpsc::Sender<oneshot::Sender<()>>,
    stats: TraceStats,
}

impl QueuedSpanProcessor {
    /// Spawns the export task on the current Tokio runtime. Returns the
    /// processor and the sender that asks the task to export everything
    /// queued (answering on the given channel when done).
    pub fn start<E: SpanExporter + 'static>(
        exporter: E,
        settings: QueueSettings,
        stats: TraceStats,
    ) -> (Self, mpsc::Sender<oneshot::Sender<()>>) {
        let (queue, spans) = mpsc::channel(settings.max_queue_size.max(1));
        let (flush, flushes) = mpsc::channel(4);
        let worker = Exporter {
            exporter,
            settings,
            stats: stats.clone(),
            failing: false,
        };
        tokio::spawn(worker.run(spans, flushes));
        (
            QueuedSpanProcessor {
                queue,
                flush: flush.clone(),
                stats,
            },
            flush,
        )
    }
}

impl SpanProcessor for QueuedSpanProcessor {
    fn on_start(&self, _span: &mut opentelemetry_sdk::trace::Span, _cx: &opentelemetry::Context) {}

    fn on_end(&self, span: SpanData) {
        match self.queue.try_send(span) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => self.stats.drop_spans(DROPPED_QUEUE_FULL, 1),
            Err(mpsc::error::TrySendError::Closed(_)) => self.stats.drop_spans(DROPPED_SHUTDOWN, 1),
        }
    }

    /// Asks for an export without waiting for it: a blocking wait here
    /// could stall the runtime the export runs on.
    fn force_flush(&self) -> OTelSdkResult {
        let (ack, _) = oneshot::channel();
        self.flush
            .try_send(ack)
            .map_err(|e| OTelSdkError::InternalFailure(e.to_string()))
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        Ok(())
    }
}

struct Exporter<E> {
    exporter: E,
    settings: QueueSettings,
    stats: TraceStats,
    /// Set while exports fail, so the failure is logged once, not per batch.
    failing: bool,
}

impl<E: SpanExporter> Exporter<E> {
    async fn run(
        mut self,
        mut spans: mpsc::Receiver<SpanData>,
        mut flushes: mpsc::Receiver<oneshot::Sender<()>>,
    ) {
        let mut batch = Vec::with_capacity(self.settings.max_export_batch_size);
        let mut tick = tokio::time::interval(self.settings.schedule_delay);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                span = spans.recv() => match span {
                    Some(span) => {
                        batch.push(span);
                        if batch.len() >= self.settings.max_export_batch_size {
                            self.export(&mut batch).await;
                        }
                    }
                    None => {
                        self.export(&mut batch).await;
                        return;
                    }
                },
                _ = tick.tick() => self.export(&mut batch).await,
                Some(ack) = flushes.recv() => {
                    while let Ok(span) = spans.try_recv() {
                        batch.push(span);
                        if batch.len() >= self.settings.max_export_batch_size {
                            self.export(&mut batch).await;
                        }
                    }
                    self.export(&mut batch).await;
                    let _ = ack.send(());
                }
            }
        }
    }

    async fn export(&mut self, batch: &mut Vec<SpanData>) {
        if batch.is_empty() {
            return;
        }
        let spans = std::mem::take(batch);
        let n = spans.len();
        let result =
            tokio::time::timeout(self.settings.export_timeout, self.exporter.export(spans)).await;
        let problem = match result {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(e.to_string()),
            Err(_) => Some(format!(
                "no answer within {:?} (OTEL_BSP_EXPORT_TIMEOUT)",
                self.settings.export_timeout
            )),
        };
        match problem {
            None => {
                self.stats.exported.inc_by(n as u64);
                if std::mem::take(&mut self.failing) {
                    tracing::info!("trace export recovered");
                }
            }
            Some(problem) => {
                self.stats.drop_spans(DROPPED_EXPORT_FAILED, n);
                if !std::mem::replace(&mut self.failing, true) {
                    tracing::warn!(
                        spans = n,
                        error = %problem,
                        "trace export failed; spans are dropped until the collector answers"
                    );
                }
            }
        }
    }
}

/// The W3C `traceparent` of the current span, when traces are on and the
/// span is sampled or recorded; `None` otherwise.
pub fn current_traceparent() -> Option<String> {
    let cx = tracing::Span::current().context();
    let span = cx.span();
    let sc = span.span_context();
    sc.is_valid().then(|| {
        format!(
            "00-{}-{}-{:02x}",
            sc.trace_id(),
            sc.span_id(),
            sc.trace_flags().to_u8()
        )
    })
}

/// The trace and span IDs of the current span, for the logs.
pub fn current_ids() -> Option<(String, String)> {
    let cx = tracing::Span::current().context();
    let span = cx.span();
    let sc = span.span_context();
    sc.is_valid()
        .then(|| (sc.trace_id().to_string(), sc.span_id().to_string()))
}

#[cfg(test)]
mod tests;
