use super::*;

fn parse(args: &[&str]) -> std::result::Result<OperatorConfig, clap::Error> {
    let mut all = vec![
        "maestro-operator",
        "--maestro-grpc-endpoint",
        "127.0.0.1:8090",
        "--maestro-http-endpoint",
        "http://127.0.0.1:8000",
    ];
    all.extend_from_slice(args);
    OperatorConfig::try_parse_from(all)
}

#[test]
fn defaults_match_the_documentation() {
    let c = parse(&[]).unwrap();
    assert_eq!(c.source_id, "maestro-operator");
    assert_eq!(c.namespace, None);
    assert!(!c.leader_elect);
    assert_eq!(c.lease_duration, Duration::from_secs(15));
    assert_eq!(c.max_backoff, Duration::from_secs(300));
    assert_eq!(c.maestro_page_size, 400);
    assert_eq!(c.min_poll_interval, Duration::from_secs(5));
    assert_eq!(c.consumer_relist_interval, Duration::from_secs(30));
    assert_eq!(c.min_interval, Duration::from_secs(60));
    assert_eq!(c.status_source, StatusSource::Stream);
    assert_eq!(c.status_window, Duration::from_millis(250));
    assert_eq!((c.kube_qps, c.kube_burst), (200.0, 400));
    assert!(!c.allow_insecure_token);
    let m = c.maestro().unwrap();
    assert_eq!(m.source_id.as_str(), "maestro-operator");
}

#[test]
fn status_source_and_window_parse() {
    let c = parse(&["--status-source=poll", "--status-window=0"]).unwrap();
    assert_eq!(c.status_source, StatusSource::Poll);
    assert_eq!(c.status_window, Duration::ZERO);
    assert!(parse(&["--status-source=push"]).is_err());
    assert!(parse(&["--status-window=-1s"]).is_err());
}

#[test]
fn leader_election_is_a_switch_with_an_optional_value() {
    assert!(parse(&["--leader-elect"]).unwrap().leader_elect);
    assert!(!parse(&["--leader-elect=false"]).unwrap().leader_elect);
}

#[test]
fn bad_durations_and_source_ids_are_refused_by_name() {
    let e = parse(&["--max-backoff", "soon"]).unwrap_err().to_string();
    assert!(e.contains("--max-backoff"), "{e}");
    let c = parse(&["--source-id", "has space"]).unwrap();
    let e = c.maestro().unwrap_err().to_string();
    assert!(e.contains("--source-id"), "{e}");
}

#[test]
fn a_missing_token_file_is_reported_at_start_up() {
    let c = parse(&["--token-file", "/nonexistent/token"]).unwrap();
    let e = c.maestro().unwrap_err().to_string();
    assert!(e.contains("/nonexistent/token"), "{e}");
}

#[test]
fn metrics_are_secure_by_default_and_refuse_to_share_the_probe_port() {
    let c = parse(&[]).unwrap();
    assert!(c.metrics_secure);
    assert_eq!(
        c.metrics_serving().unwrap(),
        MetricsServing::Secure { cert: None }
    );
    let same = [
        "--metrics-address",
        "0.0.0.0:9000",
        "--health-address",
        "0.0.0.0:9000",
    ];
    let e = parse(&same)
        .unwrap()
        .metrics_serving()
        .unwrap_err()
        .to_string();
    assert!(e.contains("must differ"), "{e}");
    assert!(e.contains("--metrics-secure=false"), "{e}");
}

#[test]
fn metrics_secure_false_serves_plain_http_and_may_share_the_probe_port() {
    let c = parse(&[
        "--metrics-secure=false",
        "--metrics-address",
        "127.0.0.1:9000",
        "--health-address",
        "127.0.0.1:9000",
    ])
    .unwrap();
    assert!(!c.metrics_secure);
    assert_eq!(c.metrics_serving().unwrap(), MetricsServing::Plain);
    assert!(parse(&["--metrics-secure"]).unwrap().metrics_secure);
    assert!(parse(&["--metrics-secure", "maybe"]).is_err());
}

#[test]
fn ephemeral_ports_may_be_given_twice_when_secure() {
    let c = parse(&[
        "--metrics-address",
        "127.0.0.1:0",
        "--health-address",
        "127.0.0.1:0",
    ])
    .unwrap();
    assert_eq!(
        c.metrics_serving().unwrap(),
        MetricsServing::Secure { cert: None }
    );
}

#[test]
fn metrics_certificate_flags_come_in_pairs() {
    let c = parse(&["--metrics-cert-file", "/tls/tls.crt"]).unwrap();
    let e = c.metrics_serving().unwrap_err().to_string();
    assert!(
        e.contains("--metrics-cert-file and --metrics-key-file"),
        "{e}"
    );
    let c = parse(&["--metrics-key-file", "/tls/tls.key"]).unwrap();
    assert!(c.metrics_serving().is_err());
    let c = parse(&[
        "--metrics-cert-file",
        "/tls/tls.crt",
        "--metrics-key-file",
        "/tls/tls.key",
    ])
    .unwrap();
    assert_eq!(
        c.metrics_serving().unwrap(),
        MetricsServing::Secure {
            cert: Some(MetricsCertFiles {
                cert_file: "/tls/tls.crt".into(),
                key_file: "/tls/tls.key".into(),
            })
        }
    );
    let c = parse(&[
        "--metrics-secure=false",
        "--metrics-cert-file",
        "/tls/tls.crt",
        "--metrics-key-file",
        "/tls/tls.key",
    ])
    .unwrap();
    let e = c.metrics_serving().unwrap_err().to_string();
    assert!(e.contains("need --metrics-secure"), "{e}");
}
