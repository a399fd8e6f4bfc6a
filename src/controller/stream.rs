//! Follows Maestro's status stream for the operator's source ID and feeds
//! each report to the shared status cache ([`Poller::apply_event`]), so an
//! agent's report reaches the object in milliseconds instead of at the
//! next poll.
//!
//! One Subscribe stream per operator: Maestro sends every consumer's
//! reports of the source on it. After every (re)subscription the consumers
//! are read again over REST, because Maestro does not replay what the
//! stream missed; while it is down, polls fall back to `pollInterval`.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use super::MaestroHandle;
use super::metrics::Metrics;
use super::poller::{EventOutcome, Poller};
use crate::maestro::StreamedReport;
use crate::maestro::grpc::{StreamEvent, SubscribeOptions};
use tokio_util::sync::CancellationToken;

/// How often to check whether the Maestro client was rebuilt (rotated TLS
/// files): the stream must then move to the new connection.
const RELOAD_CHECK: Duration = Duration::from_secs(5);

/// Where the operator learns about agents' reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StatusSource {
    /// The gRPC status stream, with REST polls as the safety net.
    Stream,
    /// REST polls only, every `pollInterval` (for Maestro deployments that
    /// forbid Subscribe, and for comparison).
    Poll,
}

/// Follows the stream until `shutdown`.
pub async fn follow(
    poller: Poller,
    maestro: MaestroHandle,
    metrics: Arc<Metrics>,
    options: SubscribeOptions,
    shutdown: CancellationToken,
) {
    let stop = shutdown.cancelled();
    tokio::pin!(stop);
    loop {
        let reloads = maestro.reloads();
        let events = maestro.get().grpc().subscribe(options.clone());
        let ended = tokio::select! {
            () = &mut stop => true,
            () = follow_one(&poller, &metrics, events, &maestro, reloads) => false,
        };
        // Whatever ended the subscription, the reports it carried stop
        // coming: back to pollInterval until the next one is up.
        poller.stream_down();
        metrics.set_stream_up(false);
        if ended {
            debug!("status stream stopped");
            return;
        }
    }
}

/// Reads one subscription (with the reconnects the gRPC client makes by
/// itself) until the Maestro client is rebuilt or the subscriber ends.
async fn follow_one(
    poller: &Poller,
    metrics: &Metrics,
    mut events: mpsc::Receiver<StreamEvent>,
    maestro: &MaestroHandle,
    reloads: u64,
) {
    let mut reload_check = tokio::time::interval(RELOAD_CHECK);
    loop {
        tokio::select! {
            event = events.recv() => match event {
                Some(event) => handle(poller, metrics, event),
                None => {
                    warn!("the status subscriber ended; subscribing again");
                    return;
                }
            },
            _ = reload_check.tick() => {
                if maestro.reloads() != reloads {
                    info!("the Maestro client was rebuilt (TLS files changed); subscribing on the new connection");
                    return;
                }
            }
        }
    }
}

fn handle(poller: &Poller, metrics: &Metrics, event: StreamEvent) {
    match event {
        StreamEvent::Subscribed { subscription_id } => {
            info!(
                subscription_id = subscription_id.as_deref().unwrap_or(""),
                "status stream up; resyncing every consumer over REST"
            );
            metrics.set_stream_up(true);
            poller.stream_up();
        }
        StreamEvent::Status(status) => {
            let _span = tracing::info_span!(
                "status.event",
                resource_id = %status.resource_id,
                version = status.resource_version,
                deleted = status.deleted,
            )
            .entered();
            let outcome = poller.apply_event(&StreamedReport::of_event(&status));
            metrics.status_event(outcome.as_str());
            if outcome != EventOutcome::Ignored {
                debug!(resource_id = %status.resource_id, version = status.resource_version,
                       sequence_id = status.sequence_id.as_deref().unwrap_or(""),
                       deleted = status.deleted, outcome = outcome.as_str(), "status event");
            }
        }
        StreamEvent::Undecodable(error) => {
            // The gRPC client already logged the event; the next poll
            // reads the bundle it was about.
            metrics.status_event("undecodable");
            debug!(error = %error, "skipped an undecodable status event");
        }
        StreamEvent::Disconnected { error, retry_in } => {
            warn!(error = %error, retry_in_ms = retry_in.as_millis() as u64,
                  "status stream down; polling every pollInterval until it is back");
            metrics.set_stream_up(false);
            poller.stream_down();
        }
    }
}
