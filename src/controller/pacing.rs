//! How often an object's bundle is read, from its intervals and state.

use std::time::Duration;

use super::crd::Intervals;
use super::poller::Pace;

/// How often the object's bundle is read: without the stream, every
/// `pollInterval` until Ready and every `interval` after; with it, every
/// `interval` (a safety net), and every `pollInterval` while it is down.
pub(super) fn of(intervals: &Intervals, ready: bool) -> Pace {
    Pace {
        polled: if ready {
            intervals.resync
        } else {
            intervals.poll
        },
        stream_down: intervals.poll,
        stream_up: intervals.resync,
    }
}

/// Waiting for the agent's confirmation of a deletion is like waiting to
/// be Ready, except that polls stay at `pollInterval` while the stream is
/// up too: a confirmation the stream delivered while the bundle was not
/// cached (a poll's page missed it) is otherwise seen only at `interval`.
/// `None` (intervals that do not parse): every ten seconds.
pub(super) fn awaiting_deletion(intervals: Option<&Intervals>) -> Pace {
    intervals.map_or(Pace::every(Duration::from_secs(10)), |i| {
        Pace::every(i.poll)
    })
}
