//! The HTTPS side of `/metrics`: the certificate (from PEM files, re-read
//! when they change, or self-signed at start-up) and a listener that
//! completes TLS handshakes off the accept loop.

use parking_lot::Mutex;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use sha2::{Digest, Sha256};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tracing::{debug, info, warn};

use crate::controller::config::MetricsCertFiles;

/// A client that has not finished its handshake by then is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How often, at most, the certificate files are looked at again.
const RELOAD_CHECK: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    #[error("cannot read the metrics {what} {path}: {source}")]
    Read {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: rustls::pki_types::pem::Error,
    },
    #[error("the metrics certificate file {0} holds no certificate")]
    NoCertificate(PathBuf),
    #[error("the metrics certificate {cert} and key {key} do not fit together: {source}")]
    Key {
        cert: PathBuf,
        key: PathBuf,
        #[source]
        source: rustls::Error,
    },
    #[error("cannot make a self-signed metrics certificate: {0}")]
    SelfSigned(#[source] rcgen::Error),
    #[error("metrics TLS: {0}")]
    Rustls(#[source] rustls::Error),
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The server configuration of the metrics listener (HTTP/1.1 only, as
/// axum serves it here).
pub fn server_config(cert: Option<&MetricsCertFiles>) -> Result<Arc<ServerConfig>, TlsSetupError> {
    let provider = provider();
    let resolver: Arc<dyn ResolvesServerCert> = match cert {
        Some(files) => {
            let resolver = FileCert::load(files.clone(), provider.clone())?;
            info!(
                cert = %files.cert_file.display(),
                key = %files.key_file.display(),
                "metrics: serving HTTPS with the given certificate (re-read when it changes)"
            );
            Arc::new(resolver)
        }
        None => {
            let key = self_signed(&provider)?;
            info!("metrics: serving HTTPS with a self-signed certificate made at start-up");
            Arc::new(StaticCert(Arc::new(key)))
        }
    };
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(TlsSetupError::Rustls)?
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// A certificate for localhost and the loopback addresses; scrapers skip
/// verification of it (as with controller-runtime's self-signed one).
fn self_signed(provider: &CryptoProvider) -> Result<CertifiedKey, TlsSetupError> {
    let names = ["localhost", "127.0.0.1", "::1", "maestro-operator"]
        .map(String::from)
        .to_vec();
    let generated = rcgen::generate_simple_self_signed(names).map_err(TlsSetupError::SelfSigned)?;
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        generated.signing_key.serialize_der(),
    ));
    CertifiedKey::from_der(vec![generated.cert.der().clone()], key, provider)
        .map_err(TlsSetupError::Rustls)
}

#[derive(Debug)]
struct StaticCert(Arc<CertifiedKey>);

impl ResolvesServerCert for StaticCert {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }
}

/// The certificate from files, re-read during a handshake at most every
/// [`RELOAD_CHECK`] when their content changed (a rotated Secret needs no
/// restart). A pair that does not load (half-way through a rotation)
/// keeps the previous certificate in use.
#[derive(Debug)]
struct FileCert {
    files: MetricsCertFiles,
    provider: Arc<CryptoProvider>,
    state: Mutex<FileCertState>,
}

#[derive(Debug)]
struct FileCertState {
    key: Arc<CertifiedKey>,
    fingerprint: [u8; 32],
    checked: Instant,
}

impl FileCert {
    fn load(files: MetricsCertFiles, provider: Arc<CryptoProvider>) -> Result<Self, TlsSetupError> {
        let fingerprint = fingerprint(&files);
        let key = Arc::new(load_pair(&files, &provider)?);
        Ok(FileCert {
            files,
            provider,
            state: Mutex::new(FileCertState {
                key,
                fingerprint,
                checked: Instant::now(),
            }),
        })
    }

    fn current(&self, now: Instant) -> Arc<CertifiedKey> {
        let mut state = self.state.lock();
        if now.saturating_duration_since(state.checked) >= RELOAD_CHECK {
            state.checked = now;
            let fingerprint = fingerprint(&self.files);
            if fingerprint != state.fingerprint {
                match load_pair(&self.files, &self.provider) {
                    Ok(key) => {
                        info!(
                            cert = %self.files.cert_file.display(),
                            "metrics: certificate changed; reloaded"
                        );
                        state.key = Arc::new(key);
                        state.fingerprint = fingerprint;
                    }
                    Err(e) => {
                        warn!(
                            error = %e,
                            "metrics: the changed certificate does not load; keeping the previous one"
                        );
                    }
                }
            }
        }
        state.key.clone()
    }
}

impl ResolvesServerCert for FileCert {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current(Instant::now()))
    }
}

fn fingerprint(files: &MetricsCertFiles) -> [u8; 32] {
    let mut hasher = Sha256::new();
    for path in [&files.cert_file, &files.key_file] {
        match std::fs::read(path) {
            Ok(bytes) => hasher.update(&bytes),
            Err(_) => hasher.update(b"\0unreadable"),
        }
        hasher.update(b"\0");
    }
    hasher.finalize().into()
}

fn load_pair(
    files: &MetricsCertFiles,
    provider: &CryptoProvider,
) -> Result<CertifiedKey, TlsSetupError> {
    let read_error = |what: &'static str, path: &Path| {
        let path = path.to_path_buf();
        move |source| TlsSetupError::Read { what, path, source }
    };
    let chain = CertificateDer::pem_file_iter(&files.cert_file)
        .map_err(read_error("certificate", &files.cert_file))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(read_error("certificate", &files.cert_file))?;
    if chain.is_empty() {
        return Err(TlsSetupError::NoCertificate(files.cert_file.clone()));
    }
    let key = PrivateKeyDer::from_pem_file(&files.key_file)
        .map_err(read_error("key", &files.key_file))?;
    CertifiedKey::from_der(chain, key, provider).map_err(|source| TlsSetupError::Key {
        cert: files.cert_file.clone(),
        key: files.key_file.clone(),
        source,
    })
}

/// Ends the wrapped task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Accepts TCP connections and hands axum those whose TLS handshake
/// completed. Handshakes run in their own tasks, so a slow or silent
/// client holds up nobody else.
pub struct TlsListener {
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
    _acceptor: AbortOnDrop,
}

impl TlsListener {
    pub fn new(tcp: TcpListener, config: Arc<ServerConfig>) -> std::io::Result<TlsListener> {
        let local = tcp.local_addr()?;
        let (tx, ready) = mpsc::channel(64);
        let task = tokio::spawn(accept_loop(tcp, TlsAcceptor::from(config), tx));
        Ok(TlsListener {
            ready,
            local,
            _acceptor: AbortOnDrop(task),
        })
    }
}

async fn accept_loop(
    tcp: TcpListener,
    acceptor: TlsAcceptor,
    ready: mpsc::Sender<(TlsStream<TcpStream>, SocketAddr)>,
) {
    loop {
        let (stream, peer) = match tcp.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors and the like: pause, as axum does.
                warn!(error = %e, "metrics: accept failed");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        if ready.is_closed() {
            return;
        }
        let acceptor = acceptor.clone();
        let ready = ready.clone();
        tokio::spawn(async move {
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => {
                    let _ = ready.send((tls, peer)).await;
                }
                Ok(Err(e)) => debug!(%peer, error = %e, "metrics: TLS handshake failed"),
                Err(_) => debug!(%peer, "metrics: TLS handshake timed out"),
            }
        });
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(connection) => connection,
            // The accept loop is gone (only when this listener is dropped).
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}

#[cfg(test)]
mod tests;
