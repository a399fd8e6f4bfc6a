//! TLS and mTLS against a small rustls server, with the fixture CA and
//! certificates in tests/fixtures/rest/tls.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc;
use std::thread;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig, ServerConnection, StreamOwned};

use super::RestClient;
use super::fake::{read_consumer, rest_config};
use crate::maestro::error::Error;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/rest/tls")
        .join(name)
}

/// What the server saw of one connection.
#[derive(Debug)]
struct Seen {
    handshake_ok: bool,
    client_certificate: bool,
}

/// Serves `connections` TLS connections that demand a client certificate,
/// answering every request with a consumer.
fn start_server(connections: usize) -> (String, mpsc::Receiver<Seen>) {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_file(fixture("ca.pem")).unwrap())
        .unwrap();
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .unwrap();
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(
            vec![CertificateDer::from_pem_file(fixture("server.pem")).unwrap()],
            PrivateKeyDer::from_pem_file(fixture("server-key.pem")).unwrap(),
        )
        .unwrap();
    let config = Arc::new(config);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!(
        "https://localhost:{}",
        listener.local_addr().unwrap().port()
    );
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for _ in 0..connections {
            let Ok((tcp, _)) = listener.accept() else {
                return;
            };
            let mut tls = StreamOwned::new(ServerConnection::new(config.clone()).unwrap(), tcp);
            let mut head = Vec::new();
            let mut buf = [0u8; 1024];
            let handshake_ok = loop {
                match tls.read(&mut buf) {
                    Ok(0) | Err(_) => break false,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
                if head.windows(4).any(|w| w == b"\r\n\r\n") {
                    break true;
                }
            };
            let client_certificate = tls.conn.peer_certificates().is_some_and(|c| !c.is_empty());
            if handshake_ok {
                let body = r#"{"id":"c1","kind":"Consumer","name":"cluster1"}"#;
                let reply = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = tls.write_all(reply.as_bytes());
                tls.conn.send_close_notify();
                let _ = tls.flush();
            }
            let _ = tx.send(Seen {
                handshake_ok,
                client_certificate,
            });
        }
    });
    (url, rx)
}

#[tokio::test]
async fn mutual_tls_with_the_configured_ca_and_client_certificate() {
    let (url, seen) = start_server(1);
    let mut cfg = rest_config(&url);
    cfg.tls.ca_file = Some(fixture("ca.pem"));
    cfg.tls.cert_file = Some(fixture("client.pem"));
    cfg.tls.key_file = Some(fixture("client-key.pem"));
    let consumer = read_consumer(&cfg).await.unwrap();
    assert_eq!(consumer.name, "cluster1");
    let seen = seen.recv().unwrap();
    assert!(seen.handshake_ok && seen.client_certificate, "{seen:?}");
}

#[tokio::test]
async fn server_outside_the_configured_ca_is_a_config_error() {
    let (url, _seen) = start_server(1);
    let mut cfg = rest_config(&url);
    // The client certificate is no trust anchor for the server's chain.
    cfg.tls.ca_file = Some(fixture("client.pem"));
    let e = read_consumer(&cfg).await.unwrap_err();
    let Error::Config(m) = &e else {
        panic!("{e:?}")
    };
    assert!(m.contains(&url) && m.contains("UnknownIssuer"), "{m}");
    assert!(!e.is_transient());
}

#[tokio::test]
async fn missing_client_certificate_is_a_config_error() {
    let (url, seen) = start_server(1);
    let mut cfg = rest_config(&url);
    cfg.tls.ca_file = Some(fixture("ca.pem"));
    let e = read_consumer(&cfg).await.unwrap_err();
    assert!(
        matches!(e, Error::Config(ref m) if m.contains("CertificateRequired")),
        "{e:?}"
    );
    let seen = seen.recv().unwrap();
    assert!(!seen.handshake_ok && !seen.client_certificate, "{seen:?}");
}

#[test]
fn key_that_does_not_parse_is_a_config_error_naming_both_files() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("key.pem");
    std::fs::write(
        &key,
        "-----BEGIN PRIVATE KEY-----\nnot base64!\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    let mut cfg = rest_config("https://localhost:1");
    cfg.tls.cert_file = Some(fixture("client.pem"));
    cfg.tls.key_file = Some(key);
    let e = RestClient::new(&cfg).unwrap_err();
    let Error::Config(m) = &e else {
        panic!("{e:?}")
    };
    assert!(m.contains("client.pem") && m.contains("key.pem"), "{m}");
}
