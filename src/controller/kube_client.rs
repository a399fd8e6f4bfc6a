//! The operator's Kubernetes client, with a client-side request rate limit
//! (`--kube-qps`, `--kube-burst`) as client-go has: kube-rs has none, and
//! a restart over thousands of objects (or a burst of status reports)
//! would otherwise send as many requests as the reconciles can make.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use kube::client::ClientBuilder;
use tokio::time::{Instant, Sleep};
use tower::{Layer, Service};

use super::ratelimit::{period_of, reserve};
use super::{Error, Result};

/// A client from the usual configuration (in-cluster, or the kubeconfig),
/// sending at most `qps` requests a second on average and `burst` at once
/// (`qps` of 0 disables the limit). Watches count as one request each, at
/// their start.
pub async fn client(qps: f64, burst: u32) -> Result<kube::Client> {
    let config = kube::Config::infer()
        .await
        .map_err(|e| Error::Config(format!("cannot configure the Kubernetes client: {e}")))?;
    let builder = ClientBuilder::try_from(config)
        .map_err(|e| Error::Config(format!("cannot configure the Kubernetes client: {e}")))?;
    Ok(builder.with_layer(&ThrottleLayer::new(qps, burst)).build())
}

/// Adds [`Throttle`] to a service stack.
#[derive(Debug, Clone, Copy)]
pub struct ThrottleLayer {
    period: Duration,
    window: Duration,
}

impl ThrottleLayer {
    pub fn new(qps: f64, burst: u32) -> Self {
        let period = period_of(qps);
        ThrottleLayer {
            period,
            window: period.saturating_mul(burst.max(1)),
        }
    }
}

impl<S> Layer<S> for ThrottleLayer {
    type Service = Throttle<S>;

    fn layer(&self, inner: S) -> Throttle<S> {
        Throttle {
            inner,
            period: self.period,
            window: self.window,
            next_free: Instant::now(),
            wait: None,
            granted: false,
        }
    }
}

/// Makes `poll_ready` wait for a token. kube's client drives its service
/// through a buffer that polls readiness before each request, so waiting
/// there delays requests without holding them in memory twice.
pub struct Throttle<S> {
    inner: S,
    period: Duration,
    window: Duration,
    next_free: Instant,
    /// The token reserved and not yet due.
    wait: Option<Pin<Box<Sleep>>>,
    /// A token is held for the next call.
    granted: bool,
}

impl<S, R> Service<R> for Throttle<S>
where
    S: Service<R>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<std::result::Result<(), S::Error>> {
        if !self.granted && !self.period.is_zero() {
            if self.wait.is_none() {
                let due = reserve(
                    &mut self.next_free,
                    Instant::now(),
                    self.period,
                    self.window,
                );
                self.wait = due.map(|at| Box::pin(tokio::time::sleep_until(at)));
            }
            if let Some(wait) = self.wait.as_mut() {
                if wait.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                self.wait = None;
            }
            self.granted = true;
        }
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: R) -> S::Future {
        self.granted = false;
        self.inner.call(request)
    }
}

#[cfg(test)]
mod tests;
