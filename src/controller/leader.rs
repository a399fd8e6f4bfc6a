//! Leader election on a `coordination.k8s.io` Lease, and the fence that
//! keeps a replica which may have lost it from writing to Maestro.
//!
//! Replicas race for the Lease; the holder renews it; a standby takes it
//! over once the record has not changed for the lease duration, measured
//! on its own monotonic clock from when it first saw that record (as
//! client-go does, so wall-clock skew between nodes does not matter).
//! Every write to the Lease is a merge patch carrying the resourceVersion
//! read, which the API server enforces as a precondition, so two replicas
//! can never both think they acquired it (and the RBAC needs only get,
//! create and patch).
//!
//! **Fencing.** The holder alone cannot learn that it lost the Lease when
//! it cannot reach the API server. So it counts for itself: each
//! successful renewal (or acquisition) opens the [`WriteFence`] until
//! `sent + duration - margin`, where `sent` is when that request left
//! (the standby's clock for the same record can only start later). The
//! WorkClient checks the fence right before sending each CloudEvent; once
//! the deadline passes, nothing goes out and the process steps down,
//! without waiting for the API server to answer. The margin, `max(2 s,
//! duration / 5)` but at most half the duration, covers clock-rate drift
//! between the nodes and a write that is still in flight at the deadline.
//!
//! Each Lease request has a timeout shorter than the renewal period, so a
//! hanging API server cannot stall renewals past the deadline unnoticed.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;
use kube::Client;
use kube::api::{Api, ObjectMeta, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::{debug, info, warn};

use super::{Error, Result};
use crate::maestro::fence::WriteFence;
use tokio_util::sync::CancellationToken;

/// The shortest lease: the Lease spec counts whole seconds, and below this
/// the margin would leave almost no time to renew.
const MIN_LEASE: Duration = Duration::from_secs(3);

/// How long a release may take before the process gives up on it: the
/// Lease then expires by itself.
const RELEASE_TIMEOUT: Duration = Duration::from_secs(5);

/// The clocks of one election, all derived from the lease duration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timings {
    /// How long a record stays valid without renewal (whole seconds).
    pub duration: Duration,
    /// How much earlier than a standby could take over the holder stops
    /// writing.
    pub margin: Duration,
    /// How often the holder renews and a standby looks; a quarter of the
    /// holder's window (`duration - margin`), so three renewals can fail
    /// before the fence closes.
    pub period: Duration,
    /// The limit on each Lease request; a failed renewal is retried after a
    /// quarter of `period`.
    pub request_timeout: Duration,
}

impl Timings {
    pub fn new(duration: Duration) -> Timings {
        let duration = Duration::from_secs(duration.as_secs()).max(MIN_LEASE);
        let margin = (duration / 5).max(Duration::from_secs(2)).min(duration / 2);
        let period = (duration - margin) / 4;
        Timings {
            duration,
            margin,
            period,
            request_timeout: period,
        }
    }

    /// Until when a renewal sent at `sent` lets this replica write.
    pub fn valid_until(&self, sent: Instant) -> Instant {
        sent + self.duration - self.margin
    }

    fn retry_after_failure(&self) -> Duration {
        self.period / 4
    }
}

/// A running election.
pub struct Election {
    leading: watch::Receiver<bool>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
    identity: String,
}

/// Joins the election for `lease` in `namespace` (the Lease is created if
/// missing). While this replica holds the Lease, `fence` is open until its
/// lease deadline; it is never opened otherwise.
pub async fn join(
    client: Client,
    namespace: &str,
    lease: &str,
    identity: &str,
    duration: Duration,
    fence: WriteFence,
) -> Result<Election> {
    let timings = Timings::new(duration);
    let api: Api<Lease> = Api::namespaced(client, namespace);
    let context =
        |e: String| Error::Config(format!("leader election on Lease {namespace}/{lease}: {e}"));
    ensure_lease(
        &api,
        lease,
        timings.request_timeout.max(Duration::from_secs(10)),
    )
    .await
    .map_err(context)?;
    let (leading_tx, leading) = watch::channel(false);
    let (stop, stop_rx) = watch::channel(false);
    let elector = Elector {
        api,
        name: lease.to_string(),
        identity: identity.to_string(),
        timings,
        fence,
        leading: leading_tx,
        stop: stop_rx,
    };
    let task = tokio::spawn(elector.run());
    info!(
        lease,
        namespace,
        identity,
        duration_s = timings.duration.as_secs(),
        margin_ms = timings.margin.as_millis() as u64,
        renew_every_ms = timings.period.as_millis() as u64,
        "joined the leader election"
    );
    Ok(Election {
        leading,
        stop,
        task,
        identity: identity.to_string(),
    })
}

impl Election {
    /// Waits until this replica leads; `false` if `shutdown` fires first or
    /// the election ends.
    pub async fn acquired(&mut self, shutdown: CancellationToken) -> bool {
        tokio::select! {
            result = self.leading.wait_for(|leading| *leading) => {
                if result.is_ok() {
                    info!(identity = %self.identity, "acquired the leader lease");
                    true
                } else {
                    warn!("the leader election ended unexpectedly");
                    false
                }
            }
            () = shutdown.cancelled() => false,
        }
    }

    /// Closes the fence, then gives the Lease up (if still held) so a
    /// standby need not wait for it to expire.
    pub async fn release(self) {
        let Election { stop, task, .. } = self;
        stop.send_replace(true);
        let mut task = task;
        match tokio::time::timeout(RELEASE_TIMEOUT, &mut task).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => warn!(error = %e, "the leader election task failed"),
            Err(_) => {
                task.abort();
                warn!("releasing the leader lease timed out; it expires by itself");
            }
        }
    }

    /// Stops taking part without touching the Lease: for a replica whose
    /// lease already ended, which has nothing left to release.
    pub fn abandon(self) {
        self.task.abort();
    }
}

async fn ensure_lease(api: &Api<Lease>, name: &str, timeout: Duration) -> Result<(), String> {
    let found = tokio::time::timeout(timeout, api.get_opt(name))
        .await
        .map_err(|_| format!("reading the Lease timed out after {timeout:?}"))?
        .map_err(|e| e.to_string())?;
    if found.is_some() {
        return Ok(());
    }
    let lease = Lease {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            ..ObjectMeta::default()
        },
        spec: Some(LeaseSpec::default()),
    };
    match tokio::time::timeout(timeout, api.create(&PostParams::default(), &lease)).await {
        Err(_) => Err(format!("creating the Lease timed out after {timeout:?}")),
        Ok(Ok(_)) => Ok(()),
        // Another replica created it first.
        Ok(Err(kube::Error::Api(s))) if s.code == 409 => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
    }
}

/// The election loop's state.
struct Elector {
    api: Api<Lease>,
    name: String,
    identity: String,
    timings: Timings,
    fence: WriteFence,
    leading: watch::Sender<bool>,
    stop: watch::Receiver<bool>,
}

/// A record a standby has seen, and since when (its own clock).
struct Observed {
    resource_version: Option<String>,
    since: Instant,
}

/// Why a standby may take the Lease.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    Take,
    Wait,
}

impl Elector {
    async fn run(mut self) {
        let mut observed: Option<Observed> = None;
        let mut held: Option<Lease> = None;
        loop {
            if *self.stop.borrow() {
                break;
            }
            let pause = match held.take() {
                None => match self.try_acquire(&mut observed).await {
                    Some(lease) => {
                        held = Some(lease);
                        self.timings.period
                    }
                    None => self.timings.period,
                },
                Some(lease) => match self.renew(lease).await {
                    Renewal::Renewed(lease) => {
                        held = Some(lease);
                        self.timings.period
                    }
                    Renewal::Failed(lease) => {
                        held = Some(lease);
                        self.timings.retry_after_failure()
                    }
                    Renewal::Lost => {
                        // The fence is closed; the process steps down.
                        self.fence.revoke();
                        self.leading.send_replace(false);
                        return;
                    }
                },
            };
            if held.is_some() && self.fence.has_ended() {
                // Renewals failed until the deadline: whatever the Lease
                // says now, a standby may already lead.
                self.fence.revoke();
                self.leading.send_replace(false);
                return;
            }
            tokio::select! {
                () = tokio::time::sleep(pause) => {}
                _ = self.stop.changed() => {}
            }
        }
        // Stopped: no more writes, then let the Lease go if still ours.
        self.fence.revoke();
        self.leading.send_replace(false);
        if let Some(lease) = held {
            self.release(lease).await;
        }
    }

    async fn get(&self) -> Result<Option<Lease>, String> {
        match tokio::time::timeout(self.timings.request_timeout, self.api.get_opt(&self.name)).await
        {
            Err(_) => Err(format!(
                "reading the Lease timed out after {:?}",
                self.timings.request_timeout
            )),
            Ok(result) => result.map_err(|e| e.to_string()),
        }
    }

    /// Merges `spec` into the Lease only if it is still at `lease`'s
    /// resourceVersion: `Ok(None)` on a conflict (someone else wrote
    /// first).
    async fn write(&self, lease: &Lease, spec: Value) -> Result<Option<Lease>, String> {
        let Some(version) = lease.metadata.resource_version.as_deref() else {
            return Err("the Lease read has no resourceVersion".into());
        };
        let patch = json!({
            "metadata": {"resourceVersion": version},
            "spec": spec,
        });
        let params = PatchParams {
            field_manager: Some(format!("maestro-operator-{}", self.identity)),
            ..PatchParams::default()
        };
        match tokio::time::timeout(
            self.timings.request_timeout,
            self.api.patch(&self.name, &params, &Patch::Merge(&patch)),
        )
        .await
        {
            Err(_) => Err(format!(
                "writing the Lease timed out after {:?}",
                self.timings.request_timeout
            )),
            Ok(Ok(written)) => Ok(Some(written)),
            Ok(Err(kube::Error::Api(s))) if s.code == 409 => Ok(None),
            Ok(Err(e)) => Err(e.to_string()),
        }
    }

    /// One standby round: read the Lease and take it if free or expired.
    async fn try_acquire(&mut self, observed: &mut Option<Observed>) -> Option<Lease> {
        let lease = match self.get().await {
            Ok(Some(lease)) => lease,
            Ok(None) => {
                if let Err(e) =
                    ensure_lease(&self.api, &self.name, self.timings.request_timeout).await
                {
                    warn!(error = %e, "cannot create the leader Lease");
                }
                return None;
            }
            Err(e) => {
                warn!(error = %e, "cannot read the leader Lease");
                return None;
            }
        };
        let now = Instant::now();
        let version = lease.metadata.resource_version.clone();
        let since = match observed {
            Some(o) if o.resource_version == version => o.since,
            _ => {
                *observed = Some(Observed {
                    resource_version: version,
                    since: now,
                });
                now
            }
        };
        let spec = lease.spec.clone().unwrap_or_default();
        if verdict(&spec, &self.identity, since, now, self.timings) == Verdict::Wait {
            debug!(
                holder = spec.holder_identity.as_deref().unwrap_or(""),
                "the leader Lease is held"
            );
            return None;
        }
        let previous = spec.holder_identity.clone().filter(|h| !h.is_empty());
        let taken = acquired(&spec, &self.identity, self.timings.duration);
        let sent = Instant::now();
        match self.write(&lease, taken).await {
            Ok(Some(written)) => {
                if !self.fence.extend_until(self.timings.valid_until(sent)) {
                    // Only a revoked fence refuses: the process is stopping.
                    return None;
                }
                info!(
                    previous = previous.as_deref().unwrap_or(""),
                    "took the leader Lease"
                );
                self.leading.send_replace(true);
                Some(written)
            }
            Ok(None) => {
                debug!("another replica took the leader Lease first");
                None
            }
            Err(e) => {
                warn!(error = %e, "cannot take the leader Lease");
                None
            }
        }
    }

    async fn renew(&mut self, lease: Lease) -> Renewal {
        let renewed = json!({
            "renewTime": micro_now(),
            "leaseDurationSeconds": self.timings.duration.as_secs(),
        });
        let sent = Instant::now();
        match self.write(&lease, renewed).await {
            Ok(Some(written)) => {
                if self.fence.extend_until(self.timings.valid_until(sent)) {
                    debug!("renewed the leader Lease");
                    Renewal::Renewed(written)
                } else {
                    warn!("the leader Lease was renewed only after this replica's deadline");
                    Renewal::Lost
                }
            }
            Ok(None) => {
                // Someone else wrote the Lease. Still ours (an edit of
                // another field)? Then renew from the fresh copy next time.
                match self.get().await {
                    Ok(Some(fresh)) if holder(&fresh) == Some(self.identity.as_str()) => {
                        Renewal::Failed(fresh)
                    }
                    Ok(fresh) => {
                        warn!(
                            holder = fresh.as_ref().and_then(holder).unwrap_or(""),
                            "another replica holds the leader Lease now"
                        );
                        Renewal::Lost
                    }
                    Err(e) => {
                        warn!(error = %e, "cannot read the leader Lease after a conflict");
                        Renewal::Failed(lease)
                    }
                }
            }
            Err(e) => {
                let left = self
                    .fence
                    .deadline()
                    .map(|d| d.saturating_duration_since(Instant::now()));
                warn!(error = %e, writes_allowed_for_ms = left.map(|l| l.as_millis() as u64),
                      "cannot renew the leader Lease; retrying");
                Renewal::Failed(lease)
            }
        }
    }

    /// Clears the holder, at the version last written, so nobody else's
    /// Lease is cleared.
    async fn release(&self, lease: Lease) {
        // As kube-lease-manager releases, so replicas of the previous
        // release read it as free during an upgrade.
        let cleared = json!({
            "holderIdentity": null,
            "acquireTime": null,
            "renewTime": null,
            "leaseDurationSeconds": null,
        });
        match self.write(&lease, cleared).await {
            Ok(Some(_)) => info!("released the leader lease"),
            Ok(None) => info!("the leader Lease changed meanwhile; nothing to release"),
            Err(e) => warn!(error = %e, "cannot release the leader lease; it expires by itself"),
        }
    }
}

enum Renewal {
    Renewed(Lease),
    /// Not renewed this time; retry with this copy.
    Failed(Lease),
    Lost,
}

fn holder(lease: &Lease) -> Option<&str> {
    lease
        .spec
        .as_ref()?
        .holder_identity
        .as_deref()
        .filter(|h| !h.is_empty())
}

/// Whether a standby that has seen the record `spec` unchanged since
/// `since` may take it at `now`: when nobody holds it, when it names this
/// replica (a restart under the same identity), or when it went unrenewed
/// for the holder's lease duration.
fn verdict(spec: &LeaseSpec, identity: &str, since: Instant, now: Instant, t: Timings) -> Verdict {
    let holder = spec.holder_identity.as_deref().filter(|h| !h.is_empty());
    match holder {
        None => Verdict::Take,
        Some(h) if h == identity => Verdict::Take,
        Some(_) => {
            let duration = spec
                .lease_duration_seconds
                .and_then(|s| u64::try_from(s).ok())
                .filter(|s| *s > 0)
                .map_or(t.duration, Duration::from_secs);
            if now.saturating_duration_since(since) >= duration {
                Verdict::Take
            } else {
                Verdict::Wait
            }
        }
    }
}

fn micro_now() -> Value {
    serde_json::to_value(MicroTime(Timestamp::now())).unwrap_or(Value::Null)
}

/// The spec fields that record this replica taking the Lease.
fn acquired(previous: &LeaseSpec, identity: &str, duration: Duration) -> Value {
    let now = micro_now();
    let changed_hands = previous.holder_identity.as_deref() != Some(identity);
    json!({
        "holderIdentity": identity,
        "leaseDurationSeconds": duration.as_secs(),
        "acquireTime": now,
        "renewTime": now,
        "leaseTransitions": previous.lease_transitions.unwrap_or(0) + i32::from(changed_hands),
    })
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod fake_tests;
