use super::*;

fn source() -> SourceId {
    SourceId::new("test").unwrap()
}

#[test]
fn endpoints_without_scheme_are_plaintext() {
    let c = MaestroConfig::new("127.0.0.1:8090", "localhost:8000", source()).unwrap();
    assert_eq!(c.grpc_endpoint.as_str(), "http://127.0.0.1:8090/");
    assert_eq!(c.http_endpoint.port(), Some(8000));
}

#[test]
fn endpoint_with_foreign_scheme_is_refused_with_its_name() {
    let err = MaestroConfig::new("ftp://x:1", "http://x:2", source()).unwrap_err();
    assert!(err.to_string().contains("gRPC endpoint"), "{err}");
}

#[test]
fn half_a_client_certificate_is_refused() {
    let mut c = MaestroConfig::new("x:1", "x:2", source()).unwrap();
    c.tls.cert_file = Some("/nonexistent/cert.pem".into());
    assert!(c.check().unwrap_err().to_string().contains("--key-file"));
}

#[test]
fn missing_token_file_is_named() {
    let mut c = MaestroConfig::new("x:1", "x:2", source()).unwrap();
    c.token_file = Some("/nonexistent/token".into());
    let err = c.check().unwrap_err().to_string();
    assert!(err.contains("/nonexistent/token"), "{err}");
}

#[test]
fn a_token_over_plaintext_is_refused_unless_allowed() {
    let mut c = MaestroConfig::new("x:1", "http://x:2", source()).unwrap();
    let plain = c.http_endpoint.clone();
    assert!(
        c.check_token_transport("REST", &plain, false).is_ok(),
        "no token"
    );
    c.token_file = Some("/t".into());
    let err = c.check_token_transport("REST", &plain, false).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("REST endpoint http://x:2/"), "{text}");
    assert!(text.contains("--allow-insecure-token"), "{text}");
    assert!(c.check_token_transport("REST", &plain, true).is_ok(), "TLS");
    c.allow_insecure_token = true;
    assert!(c.check_token_transport("REST", &plain, false).is_ok());
}

#[test]
fn token_is_trimmed_and_empty_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("token");
    std::fs::write(&path, "abc\n").unwrap();
    assert_eq!(read_token_file(&path).unwrap(), "abc");
    std::fs::write(&path, " \n").unwrap();
    assert!(read_token_file(&path).is_err());
}
