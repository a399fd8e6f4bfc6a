//! How to reach Maestro: endpoints, TLS material and credentials.
//!
//! Certificates and tokens are given as file paths and read when a
//! connection is made (and the token on every request), so rotated files on
//! disk take effect without a restart.

use std::path::{Path, PathBuf};
use std::time::Duration;

use url::Url;

use crate::maestro::error::{Error, Result};
use crate::names::SourceId;

/// Everything a client needs to talk to one Maestro server.
#[derive(Debug, Clone)]
pub struct MaestroConfig {
    /// The gRPC source server (Maestro's `--grpc-server-bindport`, 8090 by
    /// default), e.g. `http://127.0.0.1:8090` or `https://maestro-grpc:8090`.
    pub grpc_endpoint: Url,
    /// The REST API base, e.g. `http://127.0.0.1:8000`.
    pub http_endpoint: Url,
    /// The CloudEvents source this client publishes as.
    pub source_id: SourceId,
    pub tls: TlsFiles,
    /// A file holding a bearer token, sent as `authorization: Bearer <token>`.
    pub token_file: Option<PathBuf>,
    /// Send the token over plaintext connections too (a service mesh or a
    /// loopback tunnel may protect them); refused by default.
    pub allow_insecure_token: bool,
    /// Per-request timeout for REST calls and gRPC publishes.
    pub request_timeout: Duration,
    /// How long to wait for a connection to be established.
    pub connect_timeout: Duration,
    /// The largest REST answer read, after decompression: a page of 400
    /// bundles near Maestro's size limit fits, a runaway or hostile answer
    /// (a gzip bomb) is cut off instead of filling memory.
    pub max_response_bytes: usize,
}

/// [`MaestroConfig::max_response_bytes`] by default.
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 256 * 1024 * 1024;

/// Paths of PEM files. With only `ca_file`, the client verifies the server;
/// with `cert_file` and `key_file` too, it also presents a client
/// certificate (mTLS).
#[derive(Debug, Clone, Default)]
pub struct TlsFiles {
    pub ca_file: Option<PathBuf>,
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
}

impl MaestroConfig {
    /// A configuration with default timeouts and no TLS or token.
    pub fn new(grpc_endpoint: &str, http_endpoint: &str, source_id: SourceId) -> Result<Self> {
        Ok(MaestroConfig {
            grpc_endpoint: parse_endpoint("gRPC endpoint", grpc_endpoint)?,
            http_endpoint: parse_endpoint("HTTP endpoint", http_endpoint)?,
            source_id,
            tls: TlsFiles::default(),
            token_file: None,
            allow_insecure_token: false,
            request_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
        })
    }

    /// Checks that the TLS and token settings fit together and that every
    /// named file exists, so a mistake is reported before any request.
    pub fn check(&self) -> Result<()> {
        let TlsFiles {
            ca_file,
            cert_file,
            key_file,
        } = &self.tls;
        if cert_file.is_some() != key_file.is_some() {
            return Err(Error::Config(
                "a client certificate needs both --cert-file and --key-file".into(),
            ));
        }
        for (what, path) in [
            ("CA file", ca_file),
            ("client certificate file", cert_file),
            ("client key file", key_file),
            ("token file", &self.token_file),
        ] {
            if let Some(path) = path
                && !path.is_file()
            {
                return Err(Error::Config(format!(
                    "{what} {} does not exist or is not a file",
                    path.display()
                )));
            }
        }
        Ok(())
    }

    /// Refuses a configuration that would send the bearer token over a
    /// plaintext connection to `endpoint` (the `what` endpoint), unless
    /// [`MaestroConfig::allow_insecure_token`]: anyone on the path could
    /// replay it against Maestro.
    pub fn check_token_transport(&self, what: &str, endpoint: &Url, tls: bool) -> Result<()> {
        if self.token_file.is_none() || tls || self.allow_insecure_token {
            return Ok(());
        }
        Err(Error::Config(format!(
            "refusing to send the bearer token (--token-file) over plaintext to the {what} \
             endpoint {endpoint}: use https://, or pass --allow-insecure-token when the \
             connection is protected otherwise (a service mesh, a local tunnel)"
        )))
    }

    /// Reads the bearer token, if one is configured. Called per request so
    /// a rotated token is picked up.
    pub fn read_token(&self) -> Result<Option<String>> {
        self.token_file.as_deref().map(read_token_file).transpose()
    }
}

/// Parses an endpoint, accepting `host:port` without a scheme as plaintext
/// `http://host:port`, as gRPC users commonly write it.
pub fn parse_endpoint(what: &str, value: &str) -> Result<Url> {
    let with_scheme = if value.contains("://") {
        value.to_string()
    } else {
        format!("http://{value}")
    };
    let url = Url::parse(&with_scheme)
        .map_err(|e| Error::Config(format!("{what} {value:?} is not a valid URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(Error::Config(format!(
            "{what} {value:?} must use http:// or https://, not {}://",
            url.scheme()
        )));
    }
    if url.host_str().is_none() {
        return Err(Error::Config(format!("{what} {value:?} has no host")));
    }
    Ok(url)
}

/// Makes ring the process-wide rustls provider unless one is installed.
///
/// reqwest, tonic and kube all use rustls; with a single provider compiled
/// in, none of them can pick the wrong one, and a TLS server in the same
/// process (tests) finds it too.
pub fn ensure_crypto_provider() {
    // Err means another provider was installed first, which is fine.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

pub fn read_token_file(path: &Path) -> Result<String> {
    let raw = std::fs::read_to_string(path)
        .map_err(|e| Error::Config(format!("cannot read token file {}: {e}", path.display())))?;
    let token = raw.trim();
    if token.is_empty() {
        return Err(Error::Config(format!(
            "token file {} is empty",
            path.display()
        )));
    }
    Ok(token.to_string())
}

pub fn read_file(what: &str, path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path)
        .map_err(|e| Error::Config(format!("cannot read {what} {}: {e}", path.display())))
}

#[cfg(test)]
mod tests;
