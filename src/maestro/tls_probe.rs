//! Names the cause when a TLS server hangs up on us.
//!
//! In TLS 1.3 the client finishes its handshake before the server has
//! checked the client's certificate. When the server refuses it (none
//! presented, or signed by a CA it does not trust), its alert arrives on
//! the client's first read, and inside gRPC that surfaces only as
//! "connection closed". A second, bare connection with the same settings
//! reads the alert itself, so the error can say which certificate was
//! refused instead of blaming the network.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{AlertDescription, ClientConfig, RootCertStore};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use super::config::MaestroConfig;

/// How long the probe waits for the server's first bytes (or its alert)
/// after the handshake.
const READ_TIMEOUT: Duration = Duration::from_secs(3);

/// The HTTP/2 client preface and an empty SETTINGS frame: what a gRPC
/// client sends first, so a healthy server answers with its own SETTINGS.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00";

/// Connects to the gRPC endpoint as the client would and returns why the
/// server refused the TLS session, when it did so with an alert. `None`
/// when the endpoint is not TLS, the server answers normally, or the
/// failure is not the server's refusal (unreachable, our own settings).
pub async fn refusal(config: &MaestroConfig) -> Option<String> {
    let url = &config.grpc_endpoint;
    if url.scheme() != "https" {
        return None;
    }
    let host = url.host_str()?.trim_matches(['[', ']']).to_string();
    let port = url.port_or_known_default()?;
    let tls = Arc::new(client_config(config)?);
    let name = ServerName::try_from(host.clone()).ok()?;

    let attempt = async {
        let tcp = TcpStream::connect((host.as_str(), port)).await?;
        let mut stream = TlsConnector::from(tls).connect(name, tcp).await?;
        stream.write_all(H2_PREFACE).await?;
        stream.flush().await?;
        let mut buf = [0u8; 64];
        tokio::time::timeout(READ_TIMEOUT, stream.read(&mut buf))
            .await
            .map_err(|_| io::Error::from(io::ErrorKind::TimedOut))?
            .map(|_| ())
    };
    let timeout = config.connect_timeout + READ_TIMEOUT;
    match tokio::time::timeout(timeout, attempt).await {
        Ok(Err(e)) => alert_in(&e).map(explain),
        Ok(Ok(())) | Err(_) => None,
    }
}

fn client_config(config: &MaestroConfig) -> Option<ClientConfig> {
    let mut roots = RootCertStore::empty();
    match &config.tls.ca_file {
        Some(ca) => {
            for cert in CertificateDer::pem_file_iter(ca).ok()? {
                roots.add(cert.ok()?).ok()?;
            }
        }
        None => {
            roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
        }
    }
    let builder = ClientConfig::builder().with_root_certificates(roots);
    let mut tls = match (&config.tls.cert_file, &config.tls.key_file) {
        (Some(cert), Some(key)) => {
            let chain = CertificateDer::pem_file_iter(cert)
                .ok()?
                .collect::<Result<Vec<_>, _>>()
                .ok()?;
            let key = PrivateKeyDer::from_pem_file(key).ok()?;
            builder.with_client_auth_cert(chain, key).ok()?
        }
        _ => builder.with_no_client_auth(),
    };
    tls.alpn_protocols = vec![b"h2".to_vec()];
    Some(tls)
}

/// The explanation of a TLS alert the transport already reported in its
/// error text ("received fatal alert: CertificateRequired"), as servers
/// that send the alert before closing produce.
pub fn explain_reported_alert(text: &str) -> Option<String> {
    const NAMED: [AlertDescription; 7] = [
        AlertDescription::CertificateRequired,
        AlertDescription::UnknownCA,
        AlertDescription::BadCertificate,
        AlertDescription::CertificateUnknown,
        AlertDescription::CertificateExpired,
        AlertDescription::CertificateRevoked,
        AlertDescription::UnsupportedCertificate,
    ];
    let name = text
        .split("received fatal alert: ")
        .nth(1)?
        .split(|c: char| !c.is_ascii_alphanumeric())
        .next()?;
    NAMED
        .into_iter()
        .find(|alert| format!("{alert:?}") == name)
        .map(explain)
}

fn alert_in(error: &io::Error) -> Option<AlertDescription> {
    match error.get_ref()?.downcast_ref::<rustls::Error>()? {
        rustls::Error::AlertReceived(alert) => Some(*alert),
        _ => None,
    }
}

fn explain(alert: AlertDescription) -> String {
    match alert {
        AlertDescription::CertificateRequired => {
            "the server requires a client certificate and none was presented \
             (set --cert-file and --key-file)"
                .to_string()
        }
        AlertDescription::UnknownCA
        | AlertDescription::BadCertificate
        | AlertDescription::CertificateUnknown
        | AlertDescription::CertificateExpired
        | AlertDescription::CertificateRevoked
        | AlertDescription::UnsupportedCertificate => format!(
            "the server refused our client certificate (TLS alert {alert:?}): it must be \
             valid and signed by a CA the server trusts"
        ),
        other => format!("the server ended the TLS session (TLS alert {other:?})"),
    }
}

#[cfg(test)]
mod tests;
