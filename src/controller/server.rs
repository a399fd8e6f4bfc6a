//! `/metrics`, `/healthz` and `/readyz`.
//!
//! The probes are plain HTTP for the kubelet. `/metrics` is, by default,
//! HTTPS and only for bearer tokens the API server authenticates and
//! authorizes to `get` the non-resource URL `/metrics` ([`auth`]), as
//! controller-runtime's secure metrics serving does; `--metrics-secure=false`
//! serves it as plain HTTP to anyone.

mod auth;
mod tls;

use parking_lot::Mutex;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::info;

use super::config::MetricsServing;
use super::metrics::Metrics;
use super::{Error, Result};
pub use auth::{Authorizer, DecisionCache, KubeReviewer, Refusal, Reviewer};

/// What the probes report, set by the run loop.
#[derive(Clone, Default)]
pub struct Health {
    inner: Arc<HealthInner>,
}

#[derive(Default)]
struct HealthInner {
    broken: AtomicBool,
    ready: AtomicBool,
    reason: Mutex<String>,
}

impl Health {
    /// Ready (or not) to serve, with what is missing.
    pub fn set_ready(&self, ready: bool, reason: &str) {
        self.inner.ready.store(ready, Ordering::SeqCst);
        *self.inner.reason.lock() = reason.to_string();
    }

    /// The process cannot recover by itself; the liveness probe fails so
    /// the kubelet restarts it.
    pub fn set_broken(&self, reason: &str) {
        self.inner.broken.store(true, Ordering::SeqCst);
        self.set_ready(false, reason);
    }

    /// Whether liveness fails.
    pub fn is_broken(&self) -> bool {
        self.inner.broken.load(Ordering::SeqCst)
    }

    /// What is missing (readiness) or broken (liveness).
    pub fn reason(&self) -> String {
        self.inner.reason.lock().clone()
    }
}

/// Who may read `/metrics`, and over what.
pub enum MetricsAccess {
    /// Plain HTTP, no authentication (`--metrics-secure=false`).
    Open,
    /// HTTPS; each request authorized by `authorizer`.
    Secure {
        tls: Arc<rustls::ServerConfig>,
        authorizer: Arc<Authorizer>,
    },
}

impl MetricsAccess {
    /// From the checked flags; reviews go to the API server of `client`.
    pub fn new(serving: &MetricsServing, client: kube::Client) -> Result<MetricsAccess> {
        match serving {
            MetricsServing::Plain => Ok(MetricsAccess::Open),
            MetricsServing::Secure { cert } => {
                crate::maestro::config::ensure_crypto_provider();
                let tls =
                    tls::server_config(cert.as_ref()).map_err(|e| Error::Config(e.to_string()))?;
                let reviewer = Arc::new(KubeReviewer::new(client));
                Ok(MetricsAccess::Secure {
                    tls,
                    authorizer: Arc::new(Authorizer::new(reviewer, DecisionCache::new())),
                })
            }
        }
    }
}

#[derive(Clone)]
struct AppState {
    metrics: Arc<Metrics>,
    health: Health,
    /// `None`: anyone may read the metrics.
    authorizer: Option<Arc<Authorizer>>,
}

enum Listening {
    Plain(TcpListener),
    Tls(tls::TlsListener),
}

/// The bound listeners; serving starts with [`Server::run`].
pub struct Server {
    listeners: Vec<(Listening, Router)>,
    addresses: Vec<SocketAddr>,
}

impl Server {
    /// Binds now, so a taken port fails start-up rather than later. When
    /// both addresses are equal and the metrics are open, one listener
    /// serves every path; secure metrics need an address of their own
    /// (port 0 for both gives two ephemeral ports).
    pub async fn bind(
        metrics_address: SocketAddr,
        health_address: SocketAddr,
        access: MetricsAccess,
        metrics: Arc<Metrics>,
        health: Health,
    ) -> std::io::Result<Server> {
        let (tls, authorizer) = match access {
            MetricsAccess::Open => (None, None),
            MetricsAccess::Secure { tls, authorizer } => (Some(tls), Some(authorizer)),
        };
        let state = AppState {
            metrics,
            health,
            authorizer,
        };
        let metrics_routes = Router::new().route("/metrics", get(serve_metrics));
        let health_routes = Router::new()
            .route("/healthz", get(healthz))
            .route("/readyz", get(readyz));
        let same = metrics_address == health_address;
        // Port 0 twice is two ephemeral ports for secure metrics.
        if same && metrics_address.port() != 0 && tls.is_some() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!(
                    "secure metrics need an address of their own: --metrics-address and \
                     --health-address are both {metrics_address} (or pass --metrics-secure=false)"
                ),
            ));
        }
        let plan = if same && tls.is_none() {
            vec![(metrics_address, metrics_routes.merge(health_routes), None)]
        } else {
            vec![
                (metrics_address, metrics_routes, tls),
                (health_address, health_routes, None),
            ]
        };
        let mut listeners = Vec::new();
        let mut addresses = Vec::new();
        for (address, routes, tls) in plan {
            let listener = TcpListener::bind(address).await.map_err(|e| {
                std::io::Error::new(e.kind(), format!("cannot listen on {address}: {e}"))
            })?;
            let local = listener.local_addr()?;
            addresses.push(local);
            let listener = match tls {
                Some(config) => {
                    info!(
                        address = %local,
                        "metrics: HTTPS, bearer tokens reviewed by the API server"
                    );
                    Listening::Tls(tls::TlsListener::new(listener, config)?)
                }
                None => Listening::Plain(listener),
            };
            listeners.push((listener, routes.with_state(state.clone())));
        }
        if state.authorizer.is_none() {
            info!(
                address = %addresses[0],
                "metrics: plain HTTP without authentication (--metrics-secure=false)"
            );
        }
        Ok(Server {
            listeners,
            addresses,
        })
    }

    /// The bound addresses (metrics first).
    pub fn addresses(&self) -> &[SocketAddr] {
        &self.addresses
    }

    /// Serves until `shutdown` fires.
    pub async fn run(self, shutdown: CancellationToken) -> std::io::Result<()> {
        let serving = self.listeners.into_iter().map(|(listener, router)| {
            let shutdown = shutdown.clone();
            async move {
                let stop = shutdown.cancelled_owned();
                match listener {
                    Listening::Plain(l) => {
                        axum::serve(l, router).with_graceful_shutdown(stop).await
                    }
                    Listening::Tls(l) => axum::serve(l, router).with_graceful_shutdown(stop).await,
                }
            }
        });
        for result in futures::future::join_all(serving).await {
            result?;
        }
        Ok(())
    }
}

async fn serve_metrics(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(authorizer) = &state.authorizer
        && let Err(refusal) = authorizer.check(&headers).await
    {
        return refusal.into_response();
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.encode(),
    )
        .into_response()
}

async fn healthz(State(state): State<AppState>) -> impl IntoResponse {
    if state.health.inner.broken.load(Ordering::SeqCst) {
        (StatusCode::SERVICE_UNAVAILABLE, state.health.reason())
    } else {
        (StatusCode::OK, "ok".to_string())
    }
}

async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    if state.health.inner.ready.load(Ordering::SeqCst) {
        (StatusCode::OK, "ok".to_string())
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, state.health.reason())
    }
}

#[cfg(test)]
mod tests;
