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

use crate::maestro::error::{Error, Result};

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
mod tests;
