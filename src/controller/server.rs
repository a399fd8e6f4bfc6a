//! `/metrics`, `/healthz` and `/readyz`.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use super::shutdown::Shutdown;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use tokio::net::TcpListener;

use super::metrics::Metrics;

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

    fn reason(&self) -> String {
        self.inner
            .reason
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

#[derive(Clone)]
struct AppState {
    metrics: Arc<Metrics>,
    health: Health,
}

/// The bound listeners; serving starts with [`Server::run`].
pub struct Server {
    listeners: Vec<(TcpListener, Router)>,
    addresses: Vec<SocketAddr>,
}

impl Server {
    /// Binds now, so a taken port fails start-up rather than later. When
    /// both addresses are equal, one listener serves every path.
    pub async fn bind(
        metrics_address: SocketAddr,
        health_address: SocketAddr,
        metrics: Arc<Metrics>,
        health: Health,
    ) -> std::io::Result<Server> {
        let state = AppState { metrics, health };
        let metrics_routes = Router::new().route("/metrics", get(serve_metrics));
        let health_routes = Router::new()
            .route("/healthz", get(healthz))
            .route("/readyz", get(readyz));
        let plan = if metrics_address == health_address {
            vec![(metrics_address, metrics_routes.merge(health_routes))]
        } else {
            vec![
                (metrics_address, metrics_routes),
                (health_address, health_routes),
            ]
        };
        let mut listeners = Vec::new();
        let mut addresses = Vec::new();
        for (address, routes) in plan {
            let listener = TcpListener::bind(address).await.map_err(|e| {
                std::io::Error::new(e.kind(), format!("cannot listen on {address}: {e}"))
            })?;
            addresses.push(listener.local_addr()?);
            listeners.push((listener, routes.with_state(state.clone())));
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
    pub async fn run(self, shutdown: Shutdown) -> std::io::Result<()> {
        let serving = self.listeners.into_iter().map(|(listener, router)| {
            let shutdown = shutdown.clone();
            async move {
                axum::serve(listener, router)
                    .with_graceful_shutdown(async move { shutdown.wait().await })
                    .await
            }
        });
        for result in futures::future::join_all(serving).await {
            result?;
        }
        Ok(())
    }
}

async fn serve_metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.encode(),
    )
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
        let server = Server::bind(any, any, metrics, health.clone())
            .await
            .unwrap();
        let address = server.addresses()[0];
        let (trigger, shutdown) = super::super::shutdown::channel();
        let task = tokio::spawn(server.run(shutdown));

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

        trigger.fire();
        task.await.unwrap().unwrap();
    }
}
