use super::*;

#[test]
fn a_missing_client_certificate_is_named_with_the_flags_to_set() {
    let text = explain(AlertDescription::CertificateRequired);
    assert!(text.contains("--cert-file"), "{text}");
}

#[test]
fn an_untrusted_client_certificate_is_named() {
    let text = explain(AlertDescription::UnknownCA);
    assert!(text.contains("client certificate"), "{text}");
    assert!(text.contains("UnknownCA"), "{text}");
}

#[test]
fn a_certificate_alert_in_a_transport_error_is_explained() {
    let text = "transport error: connection error: received fatal alert: CertificateRequired";
    let why = explain_reported_alert(text).unwrap();
    assert!(why.contains("--cert-file"), "{why}");
    assert_eq!(
        explain_reported_alert("received fatal alert: HandshakeFailure"),
        None
    );
    assert_eq!(explain_reported_alert("connection refused"), None);
}

#[test]
fn only_received_alerts_count() {
    let received = io::Error::new(
        io::ErrorKind::InvalidData,
        rustls::Error::AlertReceived(AlertDescription::BadCertificate),
    );
    assert_eq!(alert_in(&received), Some(AlertDescription::BadCertificate));
    let ours = io::Error::new(
        io::ErrorKind::InvalidData,
        rustls::Error::General("x".into()),
    );
    assert_eq!(alert_in(&ours), None);
    assert_eq!(alert_in(&io::Error::from(io::ErrorKind::BrokenPipe)), None);
}

#[tokio::test]
async fn plaintext_endpoints_are_not_probed() {
    let config = MaestroConfig::new(
        "http://127.0.0.1:1",
        "http://127.0.0.1:1",
        crate::names::SourceId::new("s").unwrap(),
    )
    .unwrap();
    assert_eq!(refusal(&config).await, None);
}
