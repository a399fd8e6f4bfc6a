use std::collections::HashMap;

use opentelemetry::trace::{Tracer, TracerProvider as _};

use super::*;

fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |name: &str| map.get(name).cloned()
}

#[test]
fn traces_are_off_without_an_endpoint_and_on_with_one() {
    assert!(!enabled(&env(&[])).unwrap());
    assert!(!enabled(&env(&[("OTEL_EXPORTER_OTLP_ENDPOINT", " ")])).unwrap());
    assert!(enabled(&env(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318")])).unwrap());
    assert!(
        enabled(&env(&[(
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            "http://c:4318"
        )]))
        .unwrap()
    );
}

#[test]
fn sdk_disabled_or_exporter_none_turns_traces_off() {
    let endpoint = ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318");
    assert!(!enabled(&env(&[endpoint, ("OTEL_SDK_DISABLED", "TRUE")])).unwrap());
    assert!(!enabled(&env(&[endpoint, ("OTEL_TRACES_EXPORTER", "none")])).unwrap());
    assert!(enabled(&env(&[endpoint, ("OTEL_TRACES_EXPORTER", "otlp")])).unwrap());
}

#[test]
fn an_unsupported_exporter_or_protocol_is_refused_naming_the_variable() {
    let endpoint = ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318");
    let e = enabled(&env(&[endpoint, ("OTEL_TRACES_EXPORTER", "zipkin")])).unwrap_err();
    assert!(
        e.to_string().starts_with("OTEL_TRACES_EXPORTER=\"zipkin\""),
        "{e}"
    );
    let e = enabled(&env(&[endpoint, ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")])).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("OTEL_EXPORTER_OTLP_PROTOCOL=\"grpc\""),
        "{e}"
    );
}

#[test]
fn queue_settings_follow_the_bsp_variables_and_refuse_bad_numbers() {
    let s = QueueSettings::from_env(&env(&[
        ("OTEL_BSP_MAX_QUEUE_SIZE", "8"),
        ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "64"),
        ("OTEL_BSP_SCHEDULE_DELAY", "200"),
    ]))
    .unwrap();
    assert_eq!(s.max_queue_size, 8);
    assert_eq!(s.max_export_batch_size, 8, "capped at the queue size");
    assert_eq!(s.schedule_delay, Duration::from_millis(200));
    assert_eq!(s.export_timeout, QueueSettings::default().export_timeout);
    let e = QueueSettings::from_env(&env(&[("OTEL_BSP_EXPORT_TIMEOUT", "soon")])).unwrap_err();
    assert!(e.to_string().contains("OTEL_BSP_EXPORT_TIMEOUT"), "{e}");
    let e = QueueSettings::from_env(&env(&[("OTEL_BSP_MAX_QUEUE_SIZE", "0")])).unwrap_err();
    assert!(e.to_string().contains("positive"), "{e}");
}

/// Nothing listens on the endpoint. On a current-thread runtime the
/// export task cannot run while the spans are ended, so ending them
/// would never finish if it waited for room in the queue; it drops the
/// overflow instead, and the failed export is counted too.
#[tokio::test(flavor = "current_thread")]
async fn an_unreachable_collector_never_holds_up_ending_spans_and_drops_are_counted() {
    crate::maestro::config::ensure_crypto_provider();
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(format!("http://127.0.0.1:{port}/v1/traces"))
        .build()
        .unwrap();
    let stats = TraceStats::default();
    let settings = QueueSettings {
        max_queue_size: 4,
        max_export_batch_size: 4,
        schedule_delay: Duration::from_secs(3600),
        export_timeout: Duration::from_secs(10),
    };
    let (processor, flush) = QueuedSpanProcessor::start(exporter, settings, stats.clone());
    let provider = SdkTracerProvider::builder()
        .with_span_processor(processor)
        .build();
    let tracer = provider.tracer("test");
    for _ in 0..100 {
        drop(tracer.start("reconcile"));
    }
    assert_eq!(stats.dropped(DROPPED_QUEUE_FULL), 96);

    let (ack, done) = oneshot::channel();
    flush.send(ack).await.unwrap();
    done.await.unwrap();
    assert_eq!(stats.dropped(DROPPED_EXPORT_FAILED), 4);
    assert_eq!(stats.exported.get(), 0);
}
