//! `/metrics`, `/healthz` and `/readyz`.
//!
//! The probes are plain HTTP for the kubelet. `/metrics` is, by default,
//! HTTPS and only for bearer tokens the API server authenticates and
//! authorizes to `get` the non-resource URL `/metrics` ([`auth`]), as
//! controller-runtime's secure metrics serving does; `--metrics-secure=false`
//! serves it as plain HTTP to anyone.

mod auth;
mod tls;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

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
        *self.inner.reason.lock().unwrap_or_else(|p| p.into_inner()) = reason.to_string();
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
        self.inner
            .reason
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
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
mod tests {
    use super::*;

    async fn get_text(address: SocketAddr, path: &str) -> (u16, String) {
        let response = reqwest::get(format!("http://{address}{path}"))
            .await
            .unwrap();
        let code = response.status().as_u16();
        (code, response.text().await.unwrap())
    }

    #[tokio::test]
    async fn probes_and_metrics_answer_on_their_addresses() {
        crate::maestro::config::ensure_crypto_provider();
        let health = Health::default();
        let metrics = Arc::new(Metrics::new());
        let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let server = Server::bind(any, any, MetricsAccess::Open, metrics, health.clone())
            .await
            .unwrap();
        let address = server.addresses()[0];
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(server.run(shutdown.clone()));

        assert_eq!(get_text(address, "/healthz").await.0, 200);
        health.set_ready(false, "waiting for the leader lease");
        assert_eq!(
            get_text(address, "/readyz").await,
            (503, "waiting for the leader lease".into())
        );
        health.set_ready(true, "");
        assert_eq!(get_text(address, "/readyz").await.0, 200);
        let (code, text) = get_text(address, "/metrics").await;
        assert_eq!(code, 200);
        assert!(text.contains("maestro_operator_reconciles_total"), "{text}");
        health.set_broken("the controller stopped");
        assert_eq!(get_text(address, "/healthz").await.0, 503);

        shutdown.cancel();
        task.await.unwrap().unwrap();
    }

    fn secure_access() -> MetricsAccess {
        crate::maestro::config::ensure_crypto_provider();
        MetricsAccess::Secure {
            tls: tls::server_config(None).unwrap(),
            authorizer: Arc::new(Authorizer::new(
                Arc::new(auth::tests::FakeReviewer::default()),
                DecisionCache::new(),
            )),
        }
    }

    async fn scrape(address: SocketAddr, token: Option<&str>) -> (u16, String) {
        let client = reqwest::Client::builder()
            .danger_accept_invalid_certs(true)
            .build()
            .unwrap();
        let mut request = client.get(format!("https://{address}/metrics"));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        let code = response.status().as_u16();
        (code, response.text().await.unwrap())
    }

    #[tokio::test]
    async fn secure_metrics_are_https_and_need_an_authorized_token_while_probes_stay_plain() {
        let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let server = Server::bind(
            any,
            any,
            secure_access(),
            Arc::new(Metrics::new()),
            Health::default(),
        )
        .await
        .unwrap();
        let (metrics_at, health_at) = (server.addresses()[0], server.addresses()[1]);
        assert_ne!(metrics_at, health_at);
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(server.run(shutdown.clone()));

        assert_eq!(scrape(metrics_at, None).await.0, 401);
        assert_eq!(scrape(metrics_at, Some("forged")).await.0, 401);
        let (code, body) = scrape(metrics_at, Some("stranger")).await;
        assert_eq!(code, 403);
        assert!(
            body.contains("system:serviceaccount:monitoring:stranger")
                && body.contains("get on the non-resource URL /metrics"),
            "{body}"
        );
        assert_eq!(scrape(metrics_at, Some("down")).await.0, 503);
        let (code, text) = scrape(metrics_at, Some("reader")).await;
        assert_eq!(code, 200);
        assert!(text.contains("maestro_operator_reconciles_total"), "{text}");
        let plain = reqwest::get(format!("http://{metrics_at}/metrics")).await;
        assert!(
            plain.as_ref().map_or(true, |r| r.status() != 200),
            "plain HTTP on the HTTPS port gets no metrics: {plain:?}"
        );
        assert_eq!(get_text(health_at, "/healthz").await.0, 200);
        assert_eq!(get_text(health_at, "/metrics").await.0, 404);

        shutdown.cancel();
        task.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn secure_metrics_refuse_to_share_the_probe_address() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let taken = listener.local_addr().unwrap();
        drop(listener);
        let e = Server::bind(
            taken,
            taken,
            secure_access(),
            Arc::new(Metrics::new()),
            Health::default(),
        )
        .await
        .err()
        .unwrap()
        .to_string();
        assert!(e.contains("--metrics-secure=false"), "{e}");
    }
}
