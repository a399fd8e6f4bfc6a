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

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
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

    fn ledgers(&self) -> std::sync::MutexGuard<'_, HashMap<ConsumerName, Ledger>> {
        // Nothing panics while holding the lock; the map stays consistent.
        self.consumers.lock().unwrap_or_else(|p| p.into_inner())
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
mod tests {
    use super::*;

    fn id(n: u128) -> ResourceId {
        ResourceId(uuid::Uuid::from_u128(n))
    }

    fn key(n: u128) -> ObjectRef<MaestroApply> {
        ObjectRef::new(&format!("o{n}")).within("ns")
    }

    fn west() -> ConsumerName {
        ConsumerName::new("cluster-west-1").unwrap()
    }

    fn deletions(limit: usize) -> Deletions {
        Deletions::new(limit, Arc::new(Metrics::new()))
    }

    #[test]
    fn deletions_past_the_limit_wait_in_arrival_order_and_a_confirmation_wakes_the_next() {
        let d = deletions(2);
        assert_eq!(d.admit(&west(), id(1), &key(1), &[]), Admission::Go);
        assert_eq!(d.admit(&west(), id(2), &key(2), &[]), Admission::Go);
        let queued = |position| Admission::Queued {
            position,
            unconfirmed: 2,
            limit: 2,
        };
        assert_eq!(d.admit(&west(), id(3), &key(3), &[]), queued(1));
        assert_eq!(d.admit(&west(), id(4), &key(4), &[]), queued(2));
        // Asking again keeps the place in line.
        assert_eq!(d.admit(&west(), id(4), &key(4), &[]), queued(2));

        assert_eq!(d.release(&west(), id(1)), vec![key(3)]);
        // The room is the woken one's; the one behind it still waits.
        assert_eq!(
            d.admit(&west(), id(4), &key(4), &[]),
            Admission::Queued {
                position: 2,
                unconfirmed: 1,
                limit: 2
            }
        );
        assert_eq!(d.admit(&west(), id(3), &key(3), &[]), Admission::Go);
        assert_eq!(d.admit(&west(), id(4), &key(4), &[]), queued(1));
    }

    #[test]
    fn an_admitted_deletion_asked_again_goes_without_taking_a_second_place() {
        let d = deletions(1);
        assert_eq!(d.admit(&west(), id(1), &key(1), &[]), Admission::Go);
        assert_eq!(d.admit(&west(), id(1), &key(1), &[id(1)]), Admission::Go);
        assert!(matches!(
            d.admit(&west(), id(2), &key(2), &[id(1)]),
            Admission::Queued { unconfirmed: 1, .. }
        ));
    }

    #[test]
    fn bundles_maestro_shows_deleting_count_after_a_restart() {
        let d = deletions(2);
        // A new process: its ledger is empty, Maestro has two deleting.
        let admission = d.admit(&west(), id(3), &key(3), &[id(1), id(2)]);
        assert_eq!(
            admission,
            Admission::Queued {
                position: 1,
                unconfirmed: 2,
                limit: 2
            }
        );
        d.awaiting(&west(), id(1));
        d.awaiting(&west(), id(2));
        assert_eq!(d.release(&west(), id(1)), vec![key(3)]);
        assert_eq!(d.admit(&west(), id(3), &key(3), &[id(2)]), Admission::Go);
    }

    #[test]
    fn consumers_have_separate_limits() {
        let d = deletions(1);
        let east = ConsumerName::new("cluster-east-2").unwrap();
        assert_eq!(d.admit(&west(), id(1), &key(1), &[]), Admission::Go);
        assert_eq!(d.admit(&east, id(2), &key(2), &[]), Admission::Go);
    }

    #[test]
    fn no_limit_admits_everything() {
        let d = deletions(0);
        for n in 0..500 {
            assert_eq!(d.admit(&west(), id(n), &key(n), &[]), Admission::Go);
        }
    }

    #[test]
    fn a_released_waiter_leaves_the_line() {
        let d = deletions(1);
        assert_eq!(d.admit(&west(), id(1), &key(1), &[]), Admission::Go);
        assert!(matches!(
            d.admit(&west(), id(2), &key(2), &[]),
            Admission::Queued { .. }
        ));
        // Object 2 was switched to Orphan while waiting.
        assert!(d.release(&west(), id(2)).is_empty());
        assert!(matches!(
            d.admit(&west(), id(3), &key(3), &[]),
            Admission::Queued { position: 1, .. }
        ));
    }
}
