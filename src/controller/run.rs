//! The operator process: probes and metrics, optional leader election, the
//! controller, certificate reloads, graceful shutdown.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use kube::ResourceExt;
use kube::api::{Api, ListParams};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::{Controller, WatchStreamExt, controller, reflector, watcher};
use tokio::sync::mpsc::UnboundedReceiver;
use tokio_stream::wrappers::UnboundedReceiverStream;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use super::config::OperatorConfig;
use super::crd::MaestroApply;
use super::deletions::Deletions;
use super::metrics::Metrics;
use super::poller::{Poller, maestro_fetcher};
use super::ratelimit::RateLimiter;
use super::raw::{RawMaestroApply, raw_ref};
use super::reconcile::{error_policy, reconcile};
use super::server::{Health, Server};

use super::stream::StatusSource;
use super::watch_health::WatchHealth;
use super::{Context, Error, Failures, MaestroHandle, Result, leader};
use crate::maestro::fence::WriteFence;
use crate::maestro::grpc::SubscribeOptions;
use crate::maestro::work_client::WorkClient;

/// How long a replica whose lease ended lets the controller finish before
/// exiting anyway: its reconciles may hang on an API server it cannot
/// reach, and nothing they could still do would reach Maestro.
const STEP_DOWN_GRACE: Duration = Duration::from_secs(3);

/// How long the probe server may take to stop.
const SERVER_STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// How the operator process ends other than by a signal: a failed start,
/// a lost lease, a failed probe server. Apart from [`Error`], which a
/// reconcile can fail with too, since none of these is about one object.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Start(#[from] Error),

    #[error("cannot serve /metrics, /healthz and /readyz: {0}")]
    Bind(#[source] std::io::Error),

    #[error(
        "the leader lease ended (not renewed in time, or taken over); exiting so this replica \
         restarts as a standby"
    )]
    LeaseLost,

    #[error("the probe server failed: {0}")]
    ProbeServerFailed(#[source] std::io::Error),

    #[error("the probe server panicked: {0}")]
    ProbeServerPanicked(#[source] tokio::task::JoinError),

    #[error("the probe server did not stop within {}", crate::durations::format(*.0))]
    ProbeServerHung(Duration),
}

/// Runs until SIGTERM or Ctrl-C (`Ok`), or until leadership is lost
/// (`Err`, so the process exits non-zero and is restarted as a standby).
pub async fn run(config: OperatorConfig) -> std::result::Result<(), RunError> {
    let maestro_config = config.maestro()?;
    let client = super::kube_client::client(config.kube_qps, config.kube_burst).await?;
    check_crd(&client, config.namespace.as_deref()).await?;
    // With leader election, nothing may be written to Maestro before the
    // lease is held, nor after its deadline (see `leader`).
    let fence = if config.leader_elect {
        WriteFence::closed()
    } else {
        WriteFence::open()
    };
    let maestro = MaestroHandle::new(
        WorkClient::new(&maestro_config)
            .map_err(Error::Maestro)?
            .with_fence(fence.clone()),
    );
    let metrics = Arc::new(Metrics::new());
    let health = Health::default();
    health.set_ready(
        false,
        "waiting for the initial list of MaestroApply objects",
    );

    let shutdown = crate::signals::cancel_on_signal();
    let server_task = serve_probes(&config, &client, &metrics, &health, &shutdown).await?;
    tokio::spawn(super::tls_reload::reload_on_change(
        maestro_config.clone(),
        maestro.clone(),
        config.tls_reload_interval,
        shutdown.clone(),
    ));
    info!(
        source = %maestro_config.source_id,
        grpc = %maestro_config.grpc_endpoint,
        http = %maestro_config.http_endpoint,
        namespace = config.namespace.as_deref().unwrap_or("(all)"),
        selector = config.label_selector.as_deref().unwrap_or(""),
        "maestro-operator starting"
    );

    let election = match lead(&config, &fence, &metrics, &health, &shutdown).await? {
        Leadership::Alone => None,
        Leadership::Leading(e) => Some(e),
        Leadership::Stopped => return finish(server_task).await,
    };

    let controller = run_controller(
        &config,
        client,
        maestro,
        metrics.clone(),
        health.clone(),
        shutdown.clone(),
    );
    wait_stopped(controller, &config, &fence, &shutdown).await;
    stop(&config, &fence, &metrics, election, &shutdown, server_task).await
}

/// Binds the /metrics, /healthz and /readyz server and runs it until
/// shutdown.
async fn serve_probes(
    config: &OperatorConfig,
    client: &kube::Client,
    metrics: &Arc<Metrics>,
    health: &Health,
    shutdown: &CancellationToken,
) -> std::result::Result<ServerTask, RunError> {
    let server = Server::bind(
        config.metrics_address,
        config.health_address,
        super::server::MetricsAccess::new(&config.metrics_serving()?, client.clone())?,
        metrics.clone(),
        health.clone(),
    )
    .await
    .map_err(RunError::Bind)?;
    info!(addresses = ?server.addresses(), "serving /metrics, /healthz and /readyz");
    Ok(tokio::spawn(server.run(shutdown.clone())))
}

/// After the controller stopped: gives up the lease (or abandons it, when
/// it already ended), stops the probe server, and says how the process
/// ends.
async fn stop(
    config: &OperatorConfig,
    fence: &WriteFence,
    metrics: &Metrics,
    election: Option<leader::Election>,
    shutdown: &CancellationToken,
    server_task: ServerTask,
) -> std::result::Result<(), RunError> {
    let lost = config.leader_elect && fence.has_ended();
    metrics.set_leader(false);
    match election {
        // The lease is gone or about to be another's: nothing to release,
        // and the API server may be out of reach.
        Some(e) if lost => e.abandon(),
        Some(e) => e.release().await,
        None => {}
    }
    shutdown.cancel();
    let stopped = tokio::time::timeout(SERVER_STOP_TIMEOUT, finish(server_task)).await;
    if lost {
        return Err(RunError::LeaseLost);
    }
    match stopped {
        Ok(result) => result,
        Err(_) => Err(RunError::ProbeServerHung(SERVER_STOP_TIMEOUT)),
    }
}

/// The probe server's task.
type ServerTask = tokio::task::JoinHandle<std::io::Result<()>>;

/// Whether, and how, this replica goes on to run the controller.
enum Leadership {
    /// No leader election: it runs alone.
    Alone,
    Leading(leader::Election),
    /// Shut down while standing by.
    Stopped,
}

/// With `--leader-elect`, stands by until the lease is held (ready, serving
/// probes, so it can take over), then watches the fence to step down.
async fn lead(
    config: &OperatorConfig,
    fence: &WriteFence,
    metrics: &Arc<Metrics>,
    health: &Health,
    shutdown: &CancellationToken,
) -> Result<Leadership> {
    if !config.leader_elect {
        return Ok(Leadership::Alone);
    }
    // The lease gets a client of its own, outside the rate limit: a
    // renewal queued behind a burst of status patches would let the
    // lease expire (client-go's leader election has its own client
    // for the same reason). Renewals are a few requests a minute.
    let lease_client = super::kube_client::client(0.0, 1).await?;
    let mut e = leader::join(
        lease_client,
        &config.lease_namespace(),
        &config.lease_name,
        &config.identity(),
        config.lease_duration,
        fence.clone(),
    )
    .await?;
    // A standby is healthy and ready: it serves probes and takes over.
    health.set_ready(true, "");
    if !e.acquired(shutdown.clone()).await {
        e.release().await;
        return Ok(Leadership::Stopped);
    }
    metrics.set_leader(true);
    tokio::spawn(step_down_when_fenced(
        fence.clone(),
        metrics.clone(),
        health.clone(),
        shutdown.clone(),
    ));
    Ok(Leadership::Leading(e))
}

/// Runs `controller` until it stops, or for a bounded grace once shut
/// down or fenced.
async fn wait_stopped(
    controller: impl std::future::Future<Output = ()>,
    config: &OperatorConfig,
    fence: &WriteFence,
    shutdown: &CancellationToken,
) {
    // After SIGTERM in-flight reconciles may finish, for a bounded time
    // that fits the pod's termination grace period (the kubelet's SIGKILL
    // would otherwise cut them at a worse moment).
    let stopping_then_grace = async {
        shutdown.cancelled().await;
        tokio::time::sleep(config.shutdown_timeout).await;
    };
    // Once fenced, the controller gets a short grace to stop; the process
    // never waits for an API server it may not reach.
    let fenced_then_grace = async {
        fence.ended().await;
        tokio::time::sleep(STEP_DOWN_GRACE).await;
    };
    tokio::select! {
        () = controller => {}
        () = fenced_then_grace => {
            warn!(grace_ms = STEP_DOWN_GRACE.as_millis() as u64,
                  "the controller did not stop in time; exiting without it");
        }
        () = stopping_then_grace => {
            warn!(grace_ms = config.shutdown_timeout.as_millis() as u64,
                  "in-flight reconciles did not finish within --shutdown-timeout; exiting without them");
        }
    }
}

/// The moment the fence closes: writes to Maestro already stop there (the
/// WorkClient checks the fence); this makes the replica say so and go.
async fn step_down_when_fenced(
    fence: WriteFence,
    metrics: Arc<Metrics>,
    health: Health,
    shutdown: CancellationToken,
) {
    fence.ended().await;
    metrics.set_leader(false);
    health.set_ready(false, "the leader lease ended");
    error!(
        "the leader lease ended (not renewed before its deadline, or taken over); \
         writes to Maestro are fenced off; stopping so a standby takes over"
    );
    shutdown.cancel();
}

async fn finish(server: ServerTask) -> std::result::Result<(), RunError> {
    match server.await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(RunError::ProbeServerFailed(e)),
        Err(e) => Err(RunError::ProbeServerPanicked(e)),
    }
}

/// Fails early, with a hint, when the CRD is missing. Lists only where the
/// operator watches: with one namespace its Role grants nothing wider.
async fn check_crd(client: &kube::Client, namespace: Option<&str>) -> Result<()> {
    // Raw: one undecodable object must not stop start-up.
    let api: Api<RawMaestroApply> = match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    api.list(&ListParams::default().limit(1))
        .await
        .map_err(|e| {
            Error::Config(format!(
                "cannot list MaestroApply objects ({e}); is the CRD installed? \
             (kubectl apply -f crds/maestroapply.yaml)"
            ))
        })?;
    Ok(())
}

async fn run_controller(
    config: &OperatorConfig,
    client: kube::Client,
    maestro: MaestroHandle,
    metrics: Arc<Metrics>,
    health: Health,
    shutdown: CancellationToken,
) {
    let (reader, writer) = reflector::store();
    let watch_health = WatchHealth::default();
    tokio::spawn(watch_health.clone().enforce(
        config.watch_failure_limit,
        health.clone(),
        shutdown.clone(),
    ));
    let stream = watch(config, &client, writer, watch_health);
    let (ctx, triggers) = context(config, client, maestro, metrics, &shutdown);
    ready_when_listed(&ctx, reader.clone(), health.clone());

    let sets = super::applyset::run(
        config,
        ctx.client.clone(),
        ctx.maestro.clone(),
        ctx.metrics.clone(),
        shutdown.clone(),
    );
    let applies = Controller::for_stream(stream, reader)
        .with_config(controller::Config::default().concurrency(config.concurrency))
        .reconcile_on(UnboundedReceiverStream::new(triggers).map(|key| raw_ref(&key)))
        .graceful_shutdown_on(shutdown.cancelled_owned())
        .run(reconcile, error_policy, ctx)
        .for_each(|result| async move {
            match result {
                Ok((object, _)) => debug!(object = %object, "reconciled"),
                // Reconcile errors are logged by error_policy.
                Err(controller::Error::ReconcilerFailed(..)) => {}
                Err(e) => warn!(error = %e, "controller"),
            }
        });
    tokio::join!(applies, sets);
    info!("controller stopped");
}

/// The reconciles' shared state, with the status poller (and the status
/// stream feeding it) started, and the poller's stream of objects to
/// reconcile.
fn context(
    config: &OperatorConfig,
    client: kube::Client,
    maestro: MaestroHandle,
    metrics: Arc<Metrics>,
    shutdown: &CancellationToken,
) -> (Arc<Context>, UnboundedReceiver<ObjectRef<MaestroApply>>) {
    let (poller, triggers) = Poller::new(
        maestro_fetcher(maestro.clone()),
        config.maestro_page_size,
        config.min_poll_interval,
        metrics.clone(),
    );
    let deletions = Deletions::new(config.max_unconfirmed_deletions, metrics.clone());
    poller.set_wake_window(config.status_window);
    match config.status_source {
        StatusSource::Stream => {
            // Until the first subscription, polls keep pollInterval.
            poller.stream_down();
            tokio::spawn(super::stream::follow(
                poller.clone(),
                maestro.clone(),
                metrics.clone(),
                SubscribeOptions::default(),
                shutdown.clone(),
            ));
        }
        StatusSource::Poll => info!("status from REST polls only (--status-source=poll)"),
    }
    let ctx = Arc::new(Context {
        recorder: super::recorder(client.clone(), config),
        client,
        maestro,
        poller,
        metrics,
        limiter: RateLimiter::new(config.maestro_qps, config.maestro_burst),
        failures: Failures::default(),
        deletions,
        settings: config.settings(),
        maestro_failing: AtomicBool::new(false),
    });
    ctx.poller.set_on_recovery(Arc::new({
        let ctx = Arc::downgrade(&ctx);
        move || {
            if let Some(ctx) = ctx.upgrade() {
                ctx.wake_backed_off("status polls work again");
            }
        }
    }));
    (ctx, triggers)
}

/// Until the first list is in, the store is empty, not authoritative:
/// the poller treats every object as live, and the replica is not ready.
fn ready_when_listed(ctx: &Context, reader: reflector::Store<RawMaestroApply>, health: Health) {
    let listed = Arc::new(AtomicBool::new(false));
    ctx.poller.set_liveness(Arc::new({
        let reader = reader.clone();
        let listed = listed.clone();
        move |key| !listed.load(Ordering::SeqCst) || reader.get(&raw_ref(key)).is_some()
    }));
    tokio::spawn(async move {
        // Polled in rounds: the store's ready signal wakes only its most
        // recent waiter, and the controller itself waits on it too.
        loop {
            let wait = reader.wait_until_ready();
            match tokio::time::timeout(std::time::Duration::from_secs(1), wait).await {
                Ok(Ok(())) => break,
                Ok(Err(_)) => return,
                Err(_) => {}
            }
        }
        listed.store(true, Ordering::SeqCst);
        health.set_ready(true, "");
        info!(objects = reader.len(), "initial list done; reconciling");
    });
}

/// The objects' watch, kept in `writer`'s store (slimmed: see below),
/// yielding the changes worth a reconcile.
fn watch(
    config: &OperatorConfig,
    client: &kube::Client,
    writer: reflector::store::Writer<RawMaestroApply>,
    watch_health: WatchHealth,
) -> impl futures::Stream<Item = std::result::Result<RawMaestroApply, watcher::Error>> + Send + use<>
{
    let api: Api<RawMaestroApply> = match &config.namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    let mut watch_config = watcher::Config::default().any_semantic();
    if let Some(selector) = &config.label_selector {
        watch_config = watch_config.labels(selector);
    }
    let cache = writer.as_reader();
    watcher(api, watch_config)
        .default_backoff()
        .inspect(move |item| watch_health.observe(item))
        // managedFields, and kubectl's client-side apply copy of the whole
        // object, can be larger than the rest of it and are never read
        // here; spec and status are kept deflated until a reconcile.
        .modify(move |o: &mut RawMaestroApply| {
            o.managed_fields_mut().clear();
            o.annotations_mut().remove(LAST_APPLIED_ANNOTATION);
            o.pack();
            // Compared with the copy in the cache, which the object is
            // about to replace (during a relist too: the cache changes only
            // once the list is complete). Unlike kube's predicate filter,
            // this keeps no map of its own beside the cache.
            let before = cache.get(&ObjectRef::from_obj(o));
            o.note_changes(before.as_deref());
        })
        .reflect(writer)
        .applied_objects()
        .try_filter(|o| std::future::ready(o.wakes()))
}

/// Where `kubectl apply` (client-side) keeps the object as last applied.
const LAST_APPLIED_ANNOTATION: &str = "kubectl.kubernetes.io/last-applied-configuration";
