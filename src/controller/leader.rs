//! Leader election on a `coordination.k8s.io` Lease, with
//! kube-lease-manager: replicas race for the Lease, the holder renews it,
//! and a standby takes it over once the holder stops renewing (dies, hangs
//! or is partitioned away) for the lease duration.

use std::time::Duration;

use kube::Client;
use kube_lease_manager::{LeaseManagerBuilder, LeaseManagerError};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{info, warn};

use super::shutdown::Shutdown;
use super::{Error, Result};

/// A running election.
pub struct Election {
    leader: watch::Receiver<bool>,
    task: JoinHandle<std::result::Result<kube_lease_manager::LeaseManager, LeaseManagerError>>,
    identity: String,
}

/// Joins the election for `lease` in `namespace` (the Lease is created if
/// missing). The holder renews a third of `duration` before it expires.
pub async fn join(
    client: Client,
    namespace: &str,
    lease: &str,
    identity: &str,
    duration: Duration,
) -> Result<Election> {
    let seconds = duration.as_secs().max(3);
    let manager = LeaseManagerBuilder::new(client, lease)
        .with_namespace(namespace)
        .with_identity(identity)
        .with_duration(seconds)
        .with_grace((seconds / 3).max(1))
        .with_field_manager(format!("maestro-operator-{identity}"))
        .build()
        .await
        .map_err(|e| Error::Config(format!("leader election on Lease {namespace}/{lease}: {e}")))?;
    let (leader, task) = manager.watch().await;
    info!(lease, namespace, identity, "joined the leader election");
    Ok(Election {
        leader,
        task,
        identity: identity.to_string(),
    })
}

impl Election {
    /// Waits until this replica leads; `false` if `shutdown` fires first or
    /// the election ends.
    pub async fn acquired(&mut self, shutdown: Shutdown) -> bool {
        tokio::select! {
            result = self.leader.wait_for(|leading| *leading) => {
                if result.is_ok() {
                    info!(identity = %self.identity, "acquired the leader lease");
                    true
                } else {
                    warn!("the leader election ended unexpectedly");
                    false
                }
            }
            _ = shutdown.wait() => false,
        }
    }

    /// A receiver of the leading state, to notice the loss of the lease.
    /// Drop it before [`Election::release`]: the release waits for every
    /// receiver to be gone.
    pub fn clone_watch(&self) -> watch::Receiver<bool> {
        self.leader.clone()
    }

    /// Gives the Lease up so a standby need not wait for it to expire.
    pub async fn release(self) {
        let Election { leader, task, .. } = self;
        // Closing the channel makes the manager release and return.
        drop(leader);
        match tokio::time::timeout(Duration::from_secs(5), task).await {
            Ok(Ok(Ok(_))) => info!("released the leader lease"),
            Ok(Ok(Err(e))) => {
                warn!(error = %e, "cannot release the leader lease; it expires by itself")
            }
            Ok(Err(e)) => warn!(error = %e, "the leader election task failed"),
            Err(_) => warn!("releasing the leader lease timed out; it expires by itself"),
        }
    }
}
