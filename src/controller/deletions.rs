//! A bound on the deletions the operator has asked Maestro for on one
//! consumer that its agent has not confirmed yet.
//!
//! An agent works through deletions at its own pace (one API-server budget
//! and one publish path for all it does), and the pinned Maestro never
//! re-sends a delete. Asking for more at once does not make the agent
//! faster: it only ages deletions past their timeouts and grows what a
//! restarted agent must take in one resync, which at our pin can wedge it
//! for good (docs/deletion-stall.md). So past the limit a deletion waits,
//! first come first served, and each confirmation wakes the next one.
//!
//! The ledger is this process's memory; after a restart the poller's view
//! of bundles Maestro shows deleting counts too, so a new leader does not
//! flood an agent that is still working through the old leader's requests.

use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kube::runtime::reflector::ObjectRef;

use super::crd::MaestroApply;
use super::metrics::Metrics;
use crate::names::{ConsumerName, ResourceId};

/// Entries not renewed for this long are dropped: their objects went away
/// without the operator seeing the end (a finalizer removed by hand, a
/// spec switched to Orphan). Objects renew theirs at every reconcile,
/// which comes at least every minute while they wait.
const FORGET_AFTER: Duration = Duration::from_secs(300);

/// Whether a deletion may be requested now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    Go,
    /// Wait: `unconfirmed` deletions on the consumer are in the agent's
    /// hands, and this one is `position` in line (1 is next).
    Queued {
        position: usize,
        unconfirmed: usize,
        limit: usize,
    },
}

pub struct Deletions {
    /// `None`: no bound (the ledger still feeds the gauges).
    limit: Option<usize>,
    metrics: Arc<Metrics>,
    consumers: Mutex<HashMap<ConsumerName, Ledger>>,
}

#[derive(Default)]
struct Ledger {
    /// Requested and not confirmed, with when the object last said so.
    unconfirmed: HashMap<ResourceId, Instant>,
    /// Waiting for room, in arrival order.
    queue: Vec<Waiting>,
}

struct Waiting {
    id: ResourceId,
    key: ObjectRef<MaestroApply>,
    seen: Instant,
}

impl Ledger {
    fn prune(&mut self, now: Instant) {
        self.unconfirmed
            .retain(|_, seen| now.duration_since(*seen) < FORGET_AFTER);
        self.queue
            .retain(|w| now.duration_since(w.seen) < FORGET_AFTER);
    }
}

impl Deletions {
    /// `limit` 0 means no bound.
    pub fn new(limit: usize, metrics: Arc<Metrics>) -> Self {
        Deletions {
            limit: (limit > 0).then_some(limit),
            metrics,
            consumers: Mutex::new(HashMap::new()),
        }
    }

    fn ledgers(&self) -> parking_lot::MutexGuard<'_, HashMap<ConsumerName, Ledger>> {
        // Nothing panics while holding the lock; the map stays consistent.
        self.consumers.lock()
    }

    /// May the deletion of `id` be requested now? `also_deleting`: bundles
    /// Maestro shows being deleted on the consumer (the poller's view),
    /// which count whether or not this process asked for them.
    pub fn admit(
        &self,
        consumer: &ConsumerName,
        id: ResourceId,
        key: &ObjectRef<MaestroApply>,
        also_deleting: &[ResourceId],
    ) -> Admission {
        let now = Instant::now();
        let mut ledgers = self.ledgers();
        let ledger = ledgers.entry(consumer.clone()).or_default();
        ledger.prune(now);
        let admission = match self.limit {
            _ if ledger.unconfirmed.contains_key(&id) => Admission::Go,
            None => Admission::Go,
            Some(limit) => {
                let busy = ledger.unconfirmed.len()
                    + also_deleting
                        .iter()
                        .filter(|d| **d != id && !ledger.unconfirmed.contains_key(d))
                        .count();
                let index = match ledger.queue.iter().position(|w| w.id == id) {
                    Some(i) => {
                        ledger.queue[i].seen = now;
                        i
                    }
                    None => {
                        ledger.queue.push(Waiting {
                            id,
                            key: key.clone(),
                            seen: now,
                        });
                        ledger.queue.len() - 1
                    }
                };
                if index < limit.saturating_sub(busy) {
                    ledger.queue.remove(index);
                    Admission::Go
                } else {
                    Admission::Queued {
                        position: index + 1,
                        unconfirmed: busy,
                        limit,
                    }
                }
            }
        };
        if admission == Admission::Go {
            ledger.unconfirmed.insert(id, now);
        }
        self.report(consumer, ledger);
        admission
    }

    /// Maestro shows `id` being deleted: it holds a place until confirmed.
    pub fn awaiting(&self, consumer: &ConsumerName, id: ResourceId) {
        let mut ledgers = self.ledgers();
        let ledger = ledgers.entry(consumer.clone()).or_default();
        ledger.queue.retain(|w| w.id != id);
        ledger.unconfirmed.insert(id, Instant::now());
        self.report(consumer, ledger);
    }

    /// `id` is done with (confirmed gone, left in place, or given up on):
    /// its place goes to the next in line, whose objects to wake are
    /// returned.
    pub fn release(&self, consumer: &ConsumerName, id: ResourceId) -> Vec<ObjectRef<MaestroApply>> {
        let mut ledgers = self.ledgers();
        let Some(ledger) = ledgers.get_mut(consumer) else {
            return Vec::new();
        };
        ledger.unconfirmed.remove(&id);
        ledger.queue.retain(|w| w.id != id);
        let room = self
            .limit
            .map_or(0, |l| l.saturating_sub(ledger.unconfirmed.len()));
        let next = ledger
            .queue
            .iter()
            .take(room)
            .map(|w| w.key.clone())
            .collect();
        self.report(consumer, ledger);
        next
    }

    fn report(&self, consumer: &ConsumerName, ledger: &Ledger) {
        self.metrics.set_deletions(
            consumer.as_str(),
            ledger.unconfirmed.len(),
            ledger.queue.len(),
        );
    }
}

#[cfg(test)]
mod tests;
