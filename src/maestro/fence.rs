//! A write fence: [`WorkClient`](super::work_client::WorkClient) consults
//! it immediately before sending each CloudEvent, so a writer that lost
//! its right to write (a leader whose lease ran out) sends nothing, even
//! from work that was already under way when the right ended.
//!
//! The fence holds a deadline in monotonic time. Whoever grants the right
//! (the operator's leader election) moves it forward on every renewal;
//! once it has passed, or the fence was revoked, the fence stays closed:
//! a renewal that comes back late must not reopen it, because by then
//! another writer may already have taken over.

use std::sync::Arc;

use tokio::sync::watch;
use tokio::time::Instant;

use crate::error::{Error, Result};

/// Whether writes may be sent now. Cheap to clone; clones share state.
#[derive(Clone, Debug, Default)]
pub struct WriteFence {
    /// `None`: always open (no leader election, the CLI, tests).
    gate: Option<Arc<watch::Sender<Gate>>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Gate {
    /// Not granted yet.
    Closed,
    /// Open until this instant (exclusive).
    Until(Instant),
    /// Granted once, then ended; never opens again.
    Ended,
}

impl WriteFence {
    /// A fence that never closes.
    pub fn open() -> WriteFence {
        WriteFence::default()
    }

    /// A fence closed until [`WriteFence::extend_until`] grants a deadline.
    pub fn closed() -> WriteFence {
        let (tx, _) = watch::channel(Gate::Closed);
        WriteFence {
            gate: Some(Arc::new(tx)),
        }
    }

    /// Allows writes until `deadline`. Returns `false`, and changes nothing,
    /// once the fence has ended (revoked, or its deadline passed): a late
    /// renewal never reopens it. A deadline earlier than the current one is
    /// taken as is: the grantor knows best.
    pub fn extend_until(&self, deadline: Instant) -> bool {
        let Some(gate) = &self.gate else {
            return true;
        };
        let now = Instant::now();
        let mut granted = false;
        gate.send_if_modified(|g| match *g {
            Gate::Ended => false,
            Gate::Until(d) if d <= now => {
                *g = Gate::Ended;
                true
            }
            Gate::Closed | Gate::Until(_) if deadline <= now => {
                *g = Gate::Ended;
                true
            }
            Gate::Closed | Gate::Until(_) => {
                *g = Gate::Until(deadline);
                granted = true;
                true
            }
        });
        granted
    }

    /// Closes the fence for good.
    pub fn revoke(&self) {
        if let Some(gate) = &self.gate {
            gate.send_if_modified(|g| {
                let changed = *g != Gate::Ended;
                *g = Gate::Ended;
                changed
            });
        }
    }

    /// `Ok` while writes are allowed, else [`Error::Fenced`]: the caller
    /// must send nothing.
    pub fn check(&self) -> Result<()> {
        let Some(gate) = &self.gate else {
            return Ok(());
        };
        match *gate.borrow() {
            Gate::Until(d) if Instant::now() < d => Ok(()),
            Gate::Until(_) | Gate::Ended => Err(Error::Fenced(
                "the leader lease expired or was lost; this replica no longer writes to Maestro"
                    .into(),
            )),
            Gate::Closed => Err(Error::Fenced(
                "this replica does not hold the leader lease".into(),
            )),
        }
    }

    /// The instant writes stop being allowed, while a deadline is set and
    /// the fence has not ended.
    pub fn deadline(&self) -> Option<Instant> {
        match *self.gate.as_ref()?.borrow() {
            Gate::Until(d) => Some(d),
            Gate::Closed | Gate::Ended => None,
        }
    }

    /// Whether the fence was granted and has since ended (revoked, or its
    /// deadline passed).
    pub fn has_ended(&self) -> bool {
        match self.gate.as_ref().map(|g| *g.borrow()) {
            Some(Gate::Ended) => true,
            Some(Gate::Until(d)) => Instant::now() >= d,
            Some(Gate::Closed) | None => false,
        }
    }

    /// Resolves when a granted fence ends: at its deadline unless extended
    /// first, or when revoked. Never resolves for an open fence, nor while
    /// the fence was never granted. Marks the fence ended, so what waits on
    /// it and what [`WriteFence::check`]s agree.
    pub async fn ended(&self) {
        let Some(gate) = &self.gate else {
            return std::future::pending().await;
        };
        let mut rx = gate.subscribe();
        loop {
            let current = *rx.borrow_and_update();
            match current {
                Gate::Ended => return,
                Gate::Closed => {
                    // The sender lives in `self`, so this cannot fail.
                    let _ = rx.changed().await;
                }
                Gate::Until(deadline) => {
                    tokio::select! {
                        () = tokio::time::sleep_until(deadline) => {
                            // Unless extended meanwhile, the deadline stands.
                            let mut ended = false;
                            gate.send_if_modified(|g| {
                                if *g == Gate::Until(deadline) {
                                    *g = Gate::Ended;
                                    ended = true;
                                }
                                ended
                            });
                            if ended {
                                return;
                            }
                        }
                        _ = rx.changed() => {}
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn an_open_fence_always_allows_writes_and_never_ends() {
        let fence = WriteFence::open();
        assert!(fence.check().is_ok());
        fence.revoke();
        assert!(fence.check().is_ok(), "an open fence has nothing to revoke");
        assert!(!fence.has_ended());
        assert_eq!(fence.deadline(), None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_closed_fence_refuses_until_granted_then_allows_until_the_deadline() {
        let fence = WriteFence::closed();
        let err = fence.check().unwrap_err();
        assert_eq!(err.reason(), "NotLeader");
        assert!(!fence.has_ended(), "never granted is not ended");

        assert!(fence.extend_until(Instant::now() + secs(4)));
        assert!(fence.check().is_ok());
        tokio::time::advance(Duration::from_millis(3999)).await;
        assert!(fence.check().is_ok(), "open just before the deadline");
        tokio::time::advance(Duration::from_millis(1)).await;
        assert!(fence.check().is_err(), "closed at the deadline itself");
        assert!(fence.has_ended());
    }

    #[tokio::test(start_paused = true)]
    async fn renewals_move_the_deadline_but_a_late_one_never_reopens_the_fence() {
        let fence = WriteFence::closed();
        assert!(fence.extend_until(Instant::now() + secs(4)));
        tokio::time::advance(secs(3)).await;
        assert!(
            fence.extend_until(Instant::now() + secs(4)),
            "renewed in time"
        );
        tokio::time::advance(secs(3)).await;
        assert!(fence.check().is_ok(), "6 s in, open thanks to the renewal");
        tokio::time::advance(secs(2)).await;
        assert!(fence.check().is_err());
        assert!(
            !fence.extend_until(Instant::now() + secs(4)),
            "a renewal after the deadline is refused"
        );
        assert!(fence.check().is_err());
        assert_eq!(fence.deadline(), None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_revoked_fence_stays_closed() {
        let fence = WriteFence::closed();
        assert!(fence.extend_until(Instant::now() + secs(10)));
        fence.revoke();
        assert!(fence.check().is_err());
        assert!(!fence.extend_until(Instant::now() + secs(10)));
        assert!(fence.check().is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn clones_share_the_fence() {
        let fence = WriteFence::closed();
        let held_by_a_client = fence.clone();
        assert!(fence.extend_until(Instant::now() + secs(1)));
        assert!(held_by_a_client.check().is_ok());
        fence.revoke();
        assert!(held_by_a_client.check().is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn ended_resolves_at_the_last_deadline_not_before() {
        let fence = WriteFence::closed();
        let start = Instant::now();
        let waiter = tokio::spawn({
            let fence = fence.clone();
            async move {
                fence.ended().await;
                Instant::now()
            }
        });
        // Never granted: nothing ends.
        tokio::time::sleep(secs(5)).await;
        assert!(!waiter.is_finished());

        assert!(fence.extend_until(start + secs(8)));
        tokio::time::sleep(secs(2)).await;
        assert!(fence.extend_until(start + secs(11)));
        let ended_at = waiter.await.unwrap();
        assert_eq!(ended_at - start, secs(11));
        assert!(fence.check().is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn ended_resolves_at_once_on_revoke() {
        let fence = WriteFence::closed();
        assert!(fence.extend_until(Instant::now() + secs(60)));
        let waiter = tokio::spawn({
            let fence = fence.clone();
            async move { fence.ended().await }
        });
        tokio::time::sleep(secs(1)).await;
        fence.revoke();
        tokio::time::timeout(secs(1), waiter)
            .await
            .expect("resolves on revoke")
            .unwrap();
    }
}
