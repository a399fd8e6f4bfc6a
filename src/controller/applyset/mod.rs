//! Fleet rollouts: the `MaestroApplySet` controller.
//!
//! Design: a set never talks to Maestro's write path. It selects consumers
//! (Maestro's REST consumers API, read again every
//! `--consumer-relist-interval` since Maestro has no consumer watch) and
//! keeps one child `MaestroApply` per consumer, owned by the set; the
//! MaestroApply reconciler does every delivery, so each consumer keeps the
//! single-object guarantees (status, deletion policies, tenancy, fencing).
//! The set only chooses which child is on which template revision:
//! revisions are digests of the template, stored as ControllerRevisions
//! for rollback, and [`rollout::decide`] (pure) picks the moves from the
//! children's health and the strategy. Children and status are written by
//! server-side apply under [`reconcile::SET_MANAGER`]. It runs beside the
//! MaestroApply controller in the leader only, and stops writing once the
//! leader's fence has ended.
//!
//! - [`crd`]: the custom resource and its schema;
//! - [`rollout`]: the decision (pure);
//! - [`children`]: names, labels, revisions, a child's health, selectors;
//! - [`status`]: conditions and counts (pure);
//! - [`reconcile`]: the reads and writes.

pub mod children;
pub mod crd;
pub mod reconcile;
pub mod rollout;
pub mod status;

use std::sync::Arc;

use futures::StreamExt;
use kube::api::{Api, ListParams};
use kube::core::PartialObjectMeta;
use kube::runtime::{Controller, WatchStreamExt, controller, watcher};
use tracing::{debug, info, warn};

pub use crd::{MaestroApplySet, MaestroApplySetSpec, MaestroApplySetStatus};

use super::MaestroHandle;
use super::config::OperatorConfig;
use super::crd::MaestroApply;
use super::metrics::Metrics;
use tokio_util::sync::CancellationToken;

/// Runs the set controller until `shutdown`. Without the CRD (an install
/// that predates it) it says so and returns: MaestroApply delivery goes on.
pub async fn run(
    config: &OperatorConfig,
    client: kube::Client,
    maestro: MaestroHandle,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) {
    let (sets, children): (Api<MaestroApplySet>, Api<PartialObjectMeta<MaestroApply>>) =
        match &config.namespace {
            Some(ns) => (
                Api::namespaced(client.clone(), ns),
                Api::namespaced(client.clone(), ns),
            ),
            None => (Api::all(client.clone()), Api::all(client.clone())),
        };
    if let Err(e) = sets.list(&ListParams::default().limit(1)).await {
        warn!(error = %e, "cannot list MaestroApplySet objects (is crds/maestroapplyset.yaml installed?); fleet rollouts are off");
        return;
    }
    let ctx = Arc::new(reconcile::SetContext {
        recorder: super::recorder(client.clone(), config),
        client,
        maestro,
        relist: config.consumer_relist_interval,
        min_backoff: config.settings().min_backoff,
        metrics: metrics.clone(),
    });
    // Children's metadata only: every status write changes their
    // resourceVersion, which is what wakes the set, and a child that does
    // not decode must not stop the watch.
    let child_events = watcher(
        children,
        watcher::Config::default().labels(children::SET_LABEL),
    )
    .default_backoff()
    .touched_objects();
    info!(
        relist_s = config.consumer_relist_interval.as_secs(),
        "MaestroApplySet controller starting"
    );
    let controller = Controller::new(sets, watcher::Config::default().any_semantic());
    let store = controller.store();
    controller
        .owns_stream(child_events)
        .with_config(controller::Config::default().concurrency(config.concurrency))
        .graceful_shutdown_on(shutdown.cancelled_owned())
        .run(reconcile::reconcile, reconcile::error_policy, ctx)
        .for_each(|result| {
            // From the watch cache after every reconcile, so it follows
            // the statuses written and deletions (a deleted set's
            // reconcile ends in ObjectNotFound and lands here too).
            let samples: Vec<_> = store
                .state()
                .iter()
                .map(|s| status::metrics_sample(s.status.as_ref()))
                .collect();
            metrics.set_applysets(&samples);
            async move {
                match result {
                    Ok((object, _)) => debug!(object = %object, "set reconciled"),
                    Err(controller::Error::ReconcilerFailed(..)) => {}
                    Err(e) => warn!(error = %e, "set controller"),
                }
            }
        })
        .await;
    info!("MaestroApplySet controller stopped");
}
