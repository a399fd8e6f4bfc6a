//! The operator: a kube-runtime controller that keeps each `MaestroApply`
//! object's ManifestWork published through Maestro and mirrors the agent's
//! report into the object's status.
//!
//! - [`crd`]: the custom resource;
//! - [`reconcile`]: finalizer, publish and delete;
//! - [`poller`]: one shared status cache per consumer, read over REST per
//!   consumer and page, not per object;
//! - [`stream`]: Maestro's status stream feeding that cache, so reports
//!   arrive in milliseconds and polls are only a safety net;
//! - [`status`]: bundle → status mapping (pure);
//! - [`deletions`]: the bound on deletions an agent has not confirmed;
//! - [`applyset`]: `MaestroApplySet`, one template rolled out to many
//!   consumers through child MaestroApplies;
//! - [`config`], [`metrics`], [`server`], [`leader`], [`run`]: the process.

pub mod applyset;
pub mod config;
pub mod crd;
mod delete;
pub mod deletions;
pub mod events;
pub mod kube_client;
pub mod leader;
pub mod metrics;
mod pacing;
pub mod poller;
mod publish;
pub mod ratelimit;
pub mod raw;
pub mod reconcile;
mod report;
pub mod run;
pub mod server;
pub mod status;
pub mod stream;
pub mod target;
pub mod tls_reload;
pub mod watch_health;

use parking_lot::{Mutex, RwLock};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use kube::runtime::reflector::ObjectRef;

pub use crd::{MaestroApply, MaestroApplySpec, MaestroApplyStatus};
pub use run::run;

use crate::maestro::config::MaestroConfig;
use crate::maestro::work_client::WorkClient;

/// The finalizer that keeps an object until its ManifestWork is deleted
/// (or orphaned).
pub const FINALIZER: &str = "maestro.hyperfleet.io/finalizer";

/// The field manager of status patches and the reporting component of
/// events.
pub const MANAGER: &str = "maestro-operator";

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything a reconcile can fail with. Maestro errors keep the library's
/// classification so conditions and metrics use the same reasons.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Maestro(#[from] crate::maestro::Error),

    #[error("Kubernetes API: {0}")]
    Kube(#[source] kube::Error),

    #[error("finalizer: {0}")]
    Finalizer(#[source] Box<kube::runtime::finalizer::Error<Error>>),

    /// The object cannot be acted on until its spec changes.
    #[error("{0}")]
    InvalidSpec(String),

    #[error("configuration: {0}")]
    Config(String),
}

impl Error {
    /// A CamelCase reason for conditions, events and metric labels.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::Maestro(e) => e.reason(),
            Error::Kube(_) => "KubernetesError",
            Error::Finalizer(e) => match e.as_ref() {
                kube::runtime::finalizer::Error::ApplyFailed(e)
                | kube::runtime::finalizer::Error::CleanupFailed(e) => e.reason(),
                _ => "FinalizerError",
            },
            Error::InvalidSpec(_) => "InvalidSpec",
            Error::Config(_) => "ConfigError",
        }
    }
}

impl From<kube::Error> for Error {
    fn from(e: kube::Error) -> Self {
        Error::Kube(e)
    }
}

/// The recorder of both controllers' events: one reporting component,
/// this replica as its instance.
pub fn recorder(client: kube::Client, config: &config::OperatorConfig) -> Arc<events::Events> {
    events::Events::new(
        client,
        kube::runtime::events::Reporter {
            controller: MANAGER.into(),
            instance: config.identity.clone(),
        },
    )
}

/// The Maestro client, swapped when TLS files change on disk so rotated
/// certificates need no restart.
#[derive(Clone)]
pub struct MaestroHandle {
    client: Arc<RwLock<WorkClient>>,
    reloads: Arc<AtomicU64>,
}

impl MaestroHandle {
    pub fn new(client: WorkClient) -> Self {
        MaestroHandle {
            client: Arc::new(RwLock::new(client)),
            reloads: Arc::new(AtomicU64::new(0)),
        }
    }

    /// How many times the client was rebuilt.
    pub fn reloads(&self) -> u64 {
        self.reloads.load(Ordering::SeqCst)
    }

    /// The current client (a cheap clone).
    pub fn get(&self) -> WorkClient {
        self.client.read().clone()
    }

    /// Rebuilds the client from `config`, reading the TLS files again. The
    /// write fence carries over: a reload must not reopen it.
    pub fn reload(&self, config: &MaestroConfig) -> crate::maestro::Result<()> {
        let fresh = WorkClient::new(config)?.with_fence(self.get().fence().clone());
        *self.client.write() = fresh;
        self.reloads.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

/// Per-object consecutive failure counts for [`reconcile::error_policy`].
#[derive(Default)]
pub struct Failures {
    counts: Mutex<HashMap<ObjectRef<MaestroApply>, u32>>,
}

impl Failures {
    /// Counts one more failure and returns the new count.
    pub fn bump(&self, key: &ObjectRef<MaestroApply>) -> u32 {
        let mut counts = self.counts.lock();
        let n = counts.entry(key.clone()).or_insert(0);
        *n = n.saturating_add(1);
        *n
    }

    pub fn reset(&self, key: &ObjectRef<MaestroApply>) {
        self.counts.lock().remove(key);
    }

    /// The objects waiting in backoff.
    pub fn keys(&self) -> Vec<ObjectRef<MaestroApply>> {
        self.counts.lock().keys().cloned().collect()
    }
}

/// Tunables of the reconciler, from [`config::OperatorConfig`].
#[derive(Debug, Clone)]
pub struct Settings {
    /// First retry delay after a failed reconcile; doubles per failure.
    pub min_backoff: Duration,
    /// Longest retry delay after failures.
    pub max_backoff: Duration,
    /// How long a reconcile waits for the consumer's first (or a forced)
    /// status read before reporting with what it has.
    pub sync_wait: Duration,
    /// Lower bounds on the objects' intervals.
    pub floors: crd::Floors,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            min_backoff: Duration::from_secs(2),
            max_backoff: Duration::from_secs(300),
            sync_wait: Duration::from_secs(30),
            floors: crd::Floors::default(),
        }
    }
}

/// State shared by every reconcile.
pub struct Context {
    /// Whether the last publish failed for want of Maestro (unreachable,
    /// timing out, answering 5xx): the next success is a recovery.
    pub maestro_failing: std::sync::atomic::AtomicBool,
    pub client: kube::Client,
    pub maestro: MaestroHandle,
    pub poller: poller::Poller,
    pub recorder: Arc<events::Events>,
    pub metrics: Arc<metrics::Metrics>,
    pub limiter: ratelimit::RateLimiter,
    pub failures: Failures,
    pub deletions: deletions::Deletions,
    pub settings: Settings,
}

impl Context {
    /// Records a write to Maestro (create, update, adopt, delete). A write
    /// the fence stopped sent nothing and is not counted. The first success
    /// after outage failures wakes every object waiting in backoff, so the
    /// fleet converges within a poll of Maestro's return instead of at each
    /// object's grown retry delay.
    pub fn publish_finished(
        &self,
        action: &str,
        started: std::time::Instant,
        result: std::result::Result<(), &crate::maestro::Error>,
    ) {
        if matches!(result, Err(crate::maestro::Error::Fenced(_))) {
            return;
        }
        self.metrics.publish_finished(
            action,
            started.elapsed(),
            result.err().map(crate::maestro::Error::reason),
        );
        match result {
            Err(e) if e.is_transient() => self.maestro_failing.store(true, Ordering::SeqCst),
            Err(_) => {}
            Ok(()) => {
                if self.maestro_failing.swap(false, Ordering::SeqCst) {
                    self.wake_backed_off("publishes to Maestro work again");
                }
            }
        }
    }

    /// Reconciles every object waiting in backoff now.
    pub fn wake_backed_off(&self, why: &str) {
        let keys = self.failures.keys();
        if !keys.is_empty() {
            tracing::info!(
                objects = keys.len(),
                why,
                "waking the objects waiting to retry"
            );
        }
        for key in keys {
            self.poller.wake(key);
        }
    }
}
