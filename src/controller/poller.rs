//! One shared status reader per consumer.
//!
//! Reading each object's bundle on its own would cost one REST request per
//! object per interval: 1,000 objects polled every 10 s is 100 requests a
//! second for mostly unchanged answers. Instead one task per consumer lists
//! that consumer's bundles (this source's, all pages) once per interval, the
//! shortest interval any object of the consumer currently wants, and keeps
//! them in a cache that reconciles read. When a poll finds an object's
//! bundle changed, it wakes that object's reconcile; unchanged objects cost
//! nothing. Requests per cycle therefore grow with consumers and pages,
//! never with objects.
//!
//! Maestro also pushes each agent report over the gRPC status stream
//! (see [`super::stream`]); [`Poller::apply_event`] folds those reports
//! into the same cache and wakes only the object concerned. While the
//! stream is healthy the polls are only a safety net (each object's
//! `interval`); while it is down they fall back to `pollInterval` at once,
//! for Ready objects too, whose changes the stream was reporting.

use parking_lot::Mutex;
use std::cmp::Ordering as CmpOrdering;
use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use kube::runtime::reflector::ObjectRef;
use tokio::sync::{Notify, mpsc, watch};
use tokio::time::Instant;
use tracing::{Instrument, debug, info, warn};

use super::MaestroHandle;
use super::crd::MaestroApply;
use super::metrics::Metrics;
use crate::maestro::rest::{MAX_PAGES, Page, follow_pages};
use crate::maestro::{AgentReport, HeldWork, StreamedReport};
use crate::names::{ConsumerName, ResourceId};

/// The page size of status lists, the REST client's.
pub use crate::maestro::rest::DEFAULT_PAGE_SIZE;

/// Whether an object still exists (in the operator's cache), so the
/// interest of one that vanished without a final reconcile (finalizer
/// removed by hand, moved out of this shard) is dropped.
pub type Liveness = Arc<dyn Fn(&ObjectRef<MaestroApply>) -> bool + Send + Sync>;

/// One page request of a status list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    pub consumer: ConsumerName,
    pub page: u32,
    pub size: u32,
}

/// Fetches one page of a consumer's bundles. A function rather than the
/// REST client itself so the request counting can be tested offline.
pub type PageFetcher = Arc<
    dyn Fn(PageRequest) -> BoxFuture<'static, crate::maestro::Result<Page<HeldWork>>> + Send + Sync,
>;

/// The fetcher that lists this source's bundles of one consumer, ordered
/// by id so paging is stable. Not filtered by the operator's labels: a
/// bundle another client of the source ID rewrote without them is still
/// under an object's resource ID, and the object must see it to judge it
/// (its own work drifted, or another client's).
pub fn maestro_fetcher(maestro: MaestroHandle) -> PageFetcher {
    Arc::new(move |req: PageRequest| {
        let client = maestro.get();
        Box::pin(async move { client.list_page(&req.consumer, req.page, req.size).await })
    })
}

/// Why the last poll of a consumer failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PollError {
    pub reason: &'static str,
    pub message: String,
    /// When polls started failing.
    pub since: DateTime<Utc>,
}

/// What a reconcile sees of its work in Maestro.
#[derive(Debug, Clone, Default)]
pub struct View {
    pub held: Option<Arc<HeldWork>>,
    /// At least one poll of the consumer succeeded: an absent bundle is
    /// really absent.
    pub synced: bool,
    /// The last poll failed; the bundle is the last one known.
    pub error: Option<PollError>,
}

/// What changes about a bundle that is worth a reconcile, hashed: every
/// watched object keeps one, so it is two words rather than the fields
/// themselves (a 64-bit collision would cost one missed wake, until the
/// next change or poll).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Fingerprint {
    /// What may change the object's verdict: the version, a deletion, the
    /// work-level conditions (type, status, generation) and a poll error.
    verdict: u64,
    /// Which report it is: feedback and messages change with it.
    report: u64,
}

impl Fingerprint {
    fn of(held: Option<&Arc<HeldWork>>, error: Option<&PollError>) -> Self {
        let report = held.and_then(|h| h.report.as_ref());
        let mut verdict = DefaultHasher::new();
        held.map(|h| (h.version, h.is_deleting()))
            .hash(&mut verdict);
        report
            .map_or(0, AgentReport::conditions_signature)
            .hash(&mut verdict);
        error.map(|e| e.reason).hash(&mut verdict);
        let mut which = DefaultHasher::new();
        report
            .map(|r| (r.observed_version, r.sequence))
            .hash(&mut which);
        Fingerprint {
            verdict: verdict.finish(),
            report: which.finish(),
        }
    }

    /// Whether going from `self` to `now` may change the object's verdict
    /// (a new spec, a deletion, a condition turning, a poll failing or
    /// recovering) rather than only its feedback: such a change is worth
    /// a status write at once, not at the end of the wake window.
    fn turns(&self, now: &Fingerprint) -> bool {
        self.verdict != now.verdict
    }
}

/// How often an object wants its bundle read, by the state of the status
/// stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pace {
    /// Without the stream (`--status-source=poll`): `pollInterval` until
    /// Ready, `interval` after.
    pub polled: Duration,
    /// While the stream is down: `pollInterval`, Ready or not, since the
    /// stream was what reported a Ready object's changes.
    pub stream_down: Duration,
    /// While the stream is healthy: `interval`, the safety net against a
    /// report the stream lost.
    pub stream_up: Duration,
}

impl Pace {
    /// The same interval whatever the stream does.
    pub fn every(interval: Duration) -> Pace {
        Pace {
            polled: interval,
            stream_down: interval,
            stream_up: interval,
        }
    }

    fn at_least(self, floor: Duration) -> Pace {
        Pace {
            polled: self.polled.max(floor),
            stream_down: self.stream_down.max(floor),
            stream_up: self.stream_up.max(floor),
        }
    }

    fn get(self, stream: StreamState) -> Duration {
        match stream {
            StreamState::Off => self.polled,
            StreamState::Down => self.stream_down,
            StreamState::Up => self.stream_up,
        }
    }
}

/// The status stream as the pollers see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StreamState {
    /// Not followed (`--status-source=poll`).
    Off = 0,
    Down = 1,
    Up = 2,
}

impl StreamState {
    fn load(cell: &AtomicU8) -> StreamState {
        match cell.load(Ordering::SeqCst) {
            1 => StreamState::Down,
            2 => StreamState::Up,
            _ => StreamState::Off,
        }
    }
}

struct Interest {
    resource_id: ResourceId,
    pace: Pace,
    /// What the object last saw (or was woken for).
    seen: Option<Fingerprint>,
    /// When the object was last woken, and whether a wake is held back
    /// until the wake window has passed (see [`Poller::set_wake_window`]).
    woken_at: Option<Instant>,
    held: bool,
}

/// Which path told the cache about a change, for the metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateSource {
    Stream,
    Poll,
}

impl UpdateSource {
    pub fn as_str(self) -> &'static str {
        match self {
            UpdateSource::Stream => "stream",
            UpdateSource::Poll => "poll",
        }
    }
}

/// What [`Poller::apply_event`] did with a status event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventOutcome {
    /// The report is newer than the cached one and replaced it.
    Applied,
    /// The cache already holds this report or a newer one.
    Stale,
    /// The bundle is not cached yet; the report is kept until it is.
    Early,
    /// No object of this operator wants the bundle.
    Ignored,
}

impl EventOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            EventOutcome::Applied => "applied",
            EventOutcome::Stale => "stale",
            EventOutcome::Early => "early",
            EventOutcome::Ignored => "ignored",
        }
    }
}

#[derive(Default)]
struct State {
    interests: HashMap<ObjectRef<MaestroApply>, Interest>,
    bundles: HashMap<ResourceId, Arc<HeldWork>>,
    /// Bundles written by our own publishes, with the number of polls
    /// started when they were written: a poll already running then may
    /// have read before the write and must not overwrite it. Sequence
    /// numbers rather than instants, which can be equal.
    local_writes: HashMap<ResourceId, (u64, Option<Arc<HeldWork>>)>,
    /// Stream reports of bundles not cached yet (the agent answered a
    /// create before our own read-back was recorded), with the number of
    /// polls started when they came, merged once the bundle is.
    early: HashMap<ResourceId, (u64, AgentReport)>,
    /// Stream deletion confirmations of bundles not cached (a poll missed
    /// the row, or it was never listed), with the polls started when they
    /// came and the bundle version confirmed: a direct read or a poll that
    /// began before the confirmation must not bring the deleting bundle
    /// back, or a deletion waits for the next safety-net poll.
    gone: HashMap<ResourceId, (u64, i64)>,
    /// When the last poll started, for scheduling.
    last_started: Option<Instant>,
    /// Polls started and completed; they run one at a time, in order.
    started: u64,
    completed: u64,
    /// At least one poll succeeded.
    synced: bool,
    error: Option<PollError>,
    /// A forced refresh wants poll number N (one that starts after it).
    refresh_wanted: Option<u64>,
}

struct Consumer {
    name: ConsumerName,
    state: Mutex<State>,
    wake: Notify,
    /// Counts completed polls, for waiters.
    done: watch::Sender<u64>,
}

impl Consumer {
    fn state(&self) -> parking_lot::MutexGuard<'_, State> {
        // No code panics while holding the lock; if one did, the cache is
        // still a consistent (if stale) map.
        self.state.lock()
    }
}

struct Inner {
    fetch: PageFetcher,
    page_size: u32,
    /// No consumer is polled more often than this, whatever objects ask
    /// for, and forced refreshes (`reconcile-requested-at`) included: on a
    /// shared operator no tenant sets the pace of Maestro reads.
    min_interval: Duration,
    metrics: Arc<Metrics>,
    triggers: mpsc::UnboundedSender<ObjectRef<MaestroApply>>,
    consumers: Mutex<HashMap<ConsumerName, Arc<Consumer>>>,
    liveness: Mutex<Option<Liveness>>,
    on_recovery: Mutex<Option<Recovery>>,
    /// The status stream's [`StreamState`].
    stream: AtomicU8,
    /// The shortest gap between two wakes of one object.
    wake_window: Mutex<Duration>,
}

/// Called when a consumer's polls work again after failing.
pub type Recovery = Arc<dyn Fn() + Send + Sync>;

/// The shared pollers; cheap to clone.
#[derive(Clone)]
pub struct Poller {
    inner: Arc<Inner>,
}

impl Poller {
    /// The poller and the stream of objects whose bundle changed, for
    /// `Controller::reconcile_on`.
    pub fn new(
        fetch: PageFetcher,
        page_size: u32,
        min_interval: Duration,
        metrics: Arc<Metrics>,
    ) -> (Poller, mpsc::UnboundedReceiver<ObjectRef<MaestroApply>>) {
        let (triggers, rx) = mpsc::unbounded_channel();
        let poller = Poller {
            inner: Arc::new(Inner {
                fetch,
                page_size: page_size.max(1),
                min_interval,
                metrics,
                triggers,
                consumers: Mutex::new(HashMap::new()),
                liveness: Mutex::new(None),
                on_recovery: Mutex::new(None),
                stream: AtomicU8::new(StreamState::Off as u8),
                wake_window: Mutex::new(Duration::ZERO),
            }),
        };
        (poller, rx)
    }

    fn consumers(&self) -> parking_lot::MutexGuard<'_, HashMap<ConsumerName, Arc<Consumer>>> {
        self.inner.consumers.lock()
    }

    fn consumer(&self, name: &ConsumerName) -> Option<Arc<Consumer>> {
        self.consumers().get(name).cloned()
    }

    /// Declares (or renews) that `key` wants `resource_id` of `consumer`
    /// read at the `pace` the status stream's state asks for. Starts the
    /// consumer's poller if it is not running.
    pub fn register(
        &self,
        key: &ObjectRef<MaestroApply>,
        consumer: &ConsumerName,
        resource_id: ResourceId,
        pace: Pace,
    ) {
        let pace = pace.at_least(self.inner.min_interval);
        let stream = self.stream_state();
        let mut consumers = self.consumers();
        let entry = consumers.entry(consumer.clone()).or_insert_with(|| {
            let c = Arc::new(Consumer {
                name: consumer.clone(),
                state: Mutex::new(State::default()),
                wake: Notify::new(),
                done: watch::channel(0).0,
            });
            tokio::spawn(run_consumer(Arc::downgrade(&self.inner), c.clone()));
            debug!(%consumer, "started the consumer's status poller");
            c
        });
        let mut state = entry.state();
        let shortest_before = shortest_interval(&state, stream);
        state
            .interests
            .entry(key.clone())
            .and_modify(|i| {
                i.resource_id = resource_id;
                i.pace = pace;
            })
            .or_insert(Interest {
                resource_id,
                pace,
                seen: None,
                woken_at: None,
                held: false,
            });
        let wanted = pace.get(stream);
        if shortest_before.is_none_or(|s| wanted < s) {
            // The poller may be sleeping on a longer interval.
            entry.wake.notify_one();
        }
    }

    /// Forgets `key`; the consumer's poller stops with its last object.
    pub fn unregister(&self, key: &ObjectRef<MaestroApply>, consumer: &ConsumerName) {
        if let Some(c) = self.consumer(consumer) {
            c.state().interests.remove(key);
            c.wake.notify_one();
        }
    }

    /// Waits until the consumer has been polled once (successfully or not),
    /// at most `timeout`.
    pub async fn wait_polled(&self, consumer: &ConsumerName, timeout: Duration) {
        let Some(c) = self.consumer(consumer) else {
            return;
        };
        let mut rx = c.done.subscribe();
        let _ = tokio::time::timeout(timeout, async {
            while c.state().completed == 0 {
                if rx.changed().await.is_err() {
                    return;
                }
            }
        })
        .await;
    }

    /// Polls the consumer now, or once the minimum interval since the last
    /// poll has passed (sharing the poll with any other refresh asked for
    /// meanwhile), and waits for it, at most `timeout`.
    pub async fn refresh(&self, consumer: &ConsumerName, timeout: Duration) {
        let Some(c) = self.consumer(consumer) else {
            return;
        };
        let wanted = request_refresh(&mut c.state());
        c.wake.notify_one();
        let mut rx = c.done.subscribe();
        let _ = tokio::time::timeout(timeout, async {
            while c.state().completed < wanted {
                if rx.changed().await.is_err() {
                    return;
                }
            }
        })
        .await;
    }

    /// The cached bundle of `key`, remembered as seen by it.
    pub fn view(
        &self,
        key: &ObjectRef<MaestroApply>,
        consumer: &ConsumerName,
        resource_id: &ResourceId,
    ) -> View {
        let Some(c) = self.consumer(consumer) else {
            return View::default();
        };
        let mut state = c.state();
        let bundle = state.bundles.get(resource_id).cloned();
        let fingerprint = Fingerprint::of(bundle.as_ref(), state.error.as_ref());
        let view = View {
            held: bundle,
            synced: state.synced,
            error: state.error.clone(),
        };
        if let Some(interest) = state.interests.get_mut(key) {
            interest.seen = Some(fingerprint);
        }
        view
    }

    /// Bundles of `consumer` the cache shows being deleted.
    pub fn deleting(&self, consumer: &ConsumerName) -> Vec<ResourceId> {
        let Some(c) = self.consumer(consumer) else {
            return Vec::new();
        };
        let state = c.state();
        state
            .bundles
            .iter()
            .filter(|(_, b)| b.is_deleting())
            .map(|(id, _)| *id)
            .collect()
    }

    /// Records a bundle read right after our own publish (or `None` when
    /// it is known gone), so reconciles see it before the next poll.
    pub fn record(&self, consumer: &ConsumerName, id: ResourceId, bundle: Option<HeldWork>) {
        let Some(c) = self.consumer(consumer) else {
            return;
        };
        let mut state = c.state();
        // Kept, not taken: a second read may race the confirmation too.
        // Polls that start later drop it (they list the truth).
        let confirmed_gone = state.gone.get(&id).copied();
        let bundle = bundle
            .filter(|b| !superseded_by_deletion(b, confirmed_gone.map(|(_, v)| v)))
            .map(|b| {
                let known = state.bundles.get(&id).and_then(|k| k.report.clone());
                let early = state.early.remove(&id).map(|(_, s)| s);
                let merged = keep_newer_status(b.without_work(), known, false);
                Arc::new(keep_newer_status(merged, early, true))
            });
        match &bundle {
            Some(b) => state.bundles.insert(id, b.clone()),
            None => state.bundles.remove(&id),
        };
        let started = state.started;
        state.local_writes.insert(id, (started, bundle));
    }

    /// Tells the pollers how to check that an object still exists; until
    /// then no interest is dropped but by [`Poller::unregister`].
    pub fn set_liveness(&self, liveness: Liveness) {
        *self.inner.liveness.lock() = Some(liveness);
    }

    /// What to do when a consumer's polls work again after failures
    /// (wake the objects waiting in backoff).
    pub fn set_on_recovery(&self, hook: Recovery) {
        *self.inner.on_recovery.lock() = Some(hook);
    }

    /// Reconciles `key` now.
    pub fn wake(&self, key: ObjectRef<MaestroApply>) {
        let _ = self.inner.triggers.send(key);
    }

    /// Consumers with a running poller.
    pub fn consumer_count(&self) -> usize {
        self.consumers().len()
    }

    /// Holds back a second wake of one object until `window` has passed
    /// since its last, so a burst of reports costs one reconcile (and at
    /// most one status patch) per object per window. The first report of
    /// a burst still wakes the object at once.
    pub fn set_wake_window(&self, window: Duration) {
        *self.inner.wake_window.lock() = window;
    }

    /// Whether the status stream is subscribed.
    pub fn stream_healthy(&self) -> bool {
        self.stream_state() == StreamState::Up
    }

    fn stream_state(&self) -> StreamState {
        StreamState::load(&self.inner.stream)
    }

    /// The status stream is (again) subscribed. It has no replay, so every
    /// consumer is read once more over REST (as soon as the minimum
    /// interval allows); after that, polls are only the safety net.
    pub fn stream_up(&self) {
        self.inner
            .stream
            .store(StreamState::Up as u8, Ordering::SeqCst);
        for c in self.consumers().values() {
            request_refresh(&mut c.state());
            c.wake.notify_one();
        }
    }

    /// The status stream is not (or no longer) subscribed: every consumer
    /// goes to its objects' `pollInterval` at once (a consumer whose last
    /// poll is older than that is polled now). Objects' conditions do not
    /// change: the cache is as true as it was. Also how the stream is
    /// turned on, before its first subscription.
    pub fn stream_down(&self) {
        let before = self
            .inner
            .stream
            .swap(StreamState::Down as u8, Ordering::SeqCst);
        if before != StreamState::Down as u8 {
            for c in self.consumers().values() {
                c.wake.notify_one();
            }
        }
    }

    /// Folds one status event of the stream into the cache: a newer report
    /// replaces the cached one and wakes the objects of that bundle only;
    /// an older or repeated one changes nothing.
    pub fn apply_event(&self, event: &StreamedReport) -> EventOutcome {
        let Some(c) = event.consumer.as_ref().and_then(|name| self.consumer(name)) else {
            return EventOutcome::Ignored;
        };
        let id = event.id;
        let mut state = c.state();
        if !state.interests.values().any(|i| i.resource_id == id) {
            return EventOutcome::Ignored;
        }
        let report = event.report.clone();
        let outcome = match state.bundles.get(&id).cloned() {
            None => state.note_uncached(id, report, event.deleted),
            Some(cached) => {
                let observed = report.observed_version;
                let outcome = state.fold_report(id, &cached, report, event.deleted);
                if outcome == EventOutcome::Applied && observed > cached.version {
                    // Another client of the source updated the work
                    // (drift): read its spec, not only the report.
                    request_refresh(&mut state);
                    c.wake.notify_one();
                }
                outcome
            }
        };
        if outcome == EventOutcome::Applied {
            let window = self.wake_window();
            notify_changed(
                &self.inner,
                &c,
                &mut state,
                Some(id),
                UpdateSource::Stream,
                window,
            );
        }
        outcome
    }

    fn wake_window(&self) -> Duration {
        *self.inner.wake_window.lock()
    }
}

impl State {
    /// A report of a bundle not cached: a confirmed deletion is kept as a
    /// tombstone, any other report until a poll or our read-back brings
    /// the bundle.
    fn note_uncached(
        &mut self,
        id: ResourceId,
        report: AgentReport,
        deleted: bool,
    ) -> EventOutcome {
        let started = self.started;
        if deleted {
            // Already removed by this confirmation or our own read.
            if matches!(self.local_writes.get(&id), Some((_, None))) {
                return EventOutcome::Stale;
            }
            self.gone.insert(id, (started, report.observed_version));
            self.early.remove(&id);
            return EventOutcome::Early;
        }
        let newer = self
            .early
            .get(&id)
            .is_none_or(|(_, old)| report.compare(old) != Some(CmpOrdering::Less));
        if newer {
            self.early.insert(id, (started, report));
        }
        EventOutcome::Early
    }

    /// A report of a cached bundle: taken when newer than the cached one,
    /// or when the two cannot be ordered (no sequence IDs; the stream
    /// delivers in order).
    fn fold_report(
        &mut self,
        id: ResourceId,
        cached: &HeldWork,
        report: AgentReport,
        deleted: bool,
    ) -> EventOutcome {
        let order = cached
            .report
            .as_ref()
            .map_or(Some(CmpOrdering::Greater), |known| report.compare(known));
        if matches!(order, Some(CmpOrdering::Less | CmpOrdering::Equal)) {
            return EventOutcome::Stale;
        }
        let started = self.started;
        let updated = if deleted {
            self.bundles.remove(&id);
            // Maestro may still serve the row for a moment: a direct read
            // must not bring it back either.
            self.gone.insert(id, (started, report.observed_version));
            None
        } else {
            let b = Arc::new(cached.with_report(report));
            self.bundles.insert(id, b.clone());
            Some(b)
        };
        // A poll already running may have read before this report; it
        // must not put the older one back.
        self.local_writes.insert(id, (started, updated));
        EventOutcome::Applied
    }
}

/// Asks for a poll that starts after now (shared with any other refresh
/// asked for meanwhile); returns its number. The caller wakes the poller.
fn request_refresh(state: &mut State) -> u64 {
    let next = state.started + 1;
    state.refresh_wanted = Some(state.refresh_wanted.map_or(next, |w| w.max(next)));
    next
}

/// `fresh` (a poll's or our read-back's copy), keeping `known`'s report
/// instead of its own when that one is newer: a read that started before
/// the stream delivered a report must not undo it. A `known` report of a
/// version `fresh` does not have belongs to a work since deleted and
/// created again, and is dropped. When `fresh` has no report at all,
/// `known` fills in only if `early` (a stream report that came before the
/// bundle was cached); a cached one would be a deleted work's.
fn keep_newer_status(mut fresh: HeldWork, known: Option<AgentReport>, early: bool) -> HeldWork {
    let Some(known) = known else {
        return fresh;
    };
    if known.observed_version > fresh.version {
        return fresh;
    }
    let newer = match &fresh.report {
        None => early,
        Some(own) => known.compare(own) == Some(CmpOrdering::Greater),
    };
    if newer {
        fresh.report = Some(known);
    }
    fresh
}

/// A deleting `bundle` read before the agent's confirmation of its
/// deletion at `confirmed` (a version at least as new) is already gone.
fn superseded_by_deletion(bundle: &HeldWork, confirmed: Option<i64>) -> bool {
    confirmed.is_some_and(|version| bundle.is_deleting() && bundle.version <= version)
}

/// How often the consumer must be read: the shortest interval any of its
/// objects wants in the stream's state.
fn shortest_interval(state: &State, stream: StreamState) -> Option<Duration> {
    state.interests.values().map(|i| i.pace.get(stream)).min()
}

/// Wakes the objects (of `only` that bundle, or all) whose view changed
/// since they last looked, at most once per `window` each.
fn notify_changed(
    inner: &Inner,
    consumer: &Arc<Consumer>,
    state: &mut State,
    only: Option<ResourceId>,
    source: UpdateSource,
    window: Duration,
) {
    let error = state.error.clone();
    let State {
        interests, bundles, ..
    } = state;
    for (key, interest) in interests.iter_mut() {
        if only.is_some_and(|id| id != interest.resource_id) {
            continue;
        }
        let now = Fingerprint::of(bundles.get(&interest.resource_id), error.as_ref());
        // An object that has not looked yet is about to; waking it would
        // only repeat that reconcile.
        let Some(seen) = interest.seen.as_ref().filter(|seen| **seen != now) else {
            continue;
        };
        let window = if seen.turns(&now) {
            Duration::ZERO
        } else {
            window
        };
        interest.seen = Some(now);
        inner.metrics.status_updated(source.as_str());
        wake_within(inner, consumer, key, interest, window);
    }
}

/// Wakes `key` now, or, when it was woken less than `window` ago, once
/// the window has passed (one held wake covers any number of reports).
/// A zero window wakes now even beside a held wake, which still fires:
/// it covers what arrives after this one.
fn wake_within(
    inner: &Inner,
    consumer: &Arc<Consumer>,
    key: &ObjectRef<MaestroApply>,
    interest: &mut Interest,
    window: Duration,
) {
    let now = Instant::now();
    if window.is_zero() {
        interest.woken_at = Some(now);
        let _ = inner.triggers.send(key.clone());
        return;
    }
    if interest.held {
        return;
    }
    let due = interest
        .woken_at
        .map(|at| at + window)
        .filter(|due| *due > now);
    let Some(due) = due else {
        interest.woken_at = Some(now);
        let _ = inner.triggers.send(key.clone());
        return;
    };
    interest.held = true;
    let consumer = consumer.clone();
    let triggers = inner.triggers.clone();
    let key = key.clone();
    tokio::spawn(async move {
        tokio::time::sleep_until(due).await;
        let mut state = consumer.state();
        if let Some(interest) = state.interests.get_mut(&key) {
            interest.held = false;
            interest.woken_at = Some(Instant::now());
            let _ = triggers.send(key);
        }
    });
}

/// The loop of one consumer's poller: sleep until the shortest wanted
/// interval has passed since the last poll (or a refresh is asked for),
/// poll, wake the objects whose bundle changed. Ends when no object wants
/// the consumer any more, or the poller is dropped.
async fn run_consumer(inner: Weak<Inner>, consumer: Arc<Consumer>) {
    loop {
        let due = {
            let Some(strong) = inner.upgrade() else {
                return;
            };
            // Lock order: the consumer map, then the consumer's state (as
            // in `register`), so a registration cannot slip in between the
            // emptiness check and the removal.
            let mut consumers = strong.consumers.lock();
            let mut state = consumer.state();
            let now = Instant::now();
            let liveness = strong.liveness.lock().clone();
            if let Some(alive) = liveness {
                state.interests.retain(|key, _| alive(key));
            }
            let stream = StreamState::load(&strong.stream);
            let Some(interval) = shortest_interval(&state, stream) else {
                consumers.remove(&consumer.name);
                debug!(consumer = %consumer.name, "no object wants this consumer; poller stops");
                return;
            };
            match (state.refresh_wanted, state.last_started) {
                (_, None) => now,
                (Some(_), Some(last)) => now.max(last + strong.min_interval),
                (None, Some(last)) => last + interval,
            }
        };
        if due > Instant::now() {
            tokio::select! {
                _ = tokio::time::sleep_until(due) => {}
                _ = consumer.wake.notified() => continue,
            }
        }
        let Some(strong) = inner.upgrade() else {
            return;
        };
        poll_once(&strong, &consumer).await;
    }
}

async fn poll_once(inner: &Inner, consumer: &Arc<Consumer>) {
    let started = Instant::now();
    let number = {
        let mut state = consumer.state();
        state.started += 1;
        state.last_started = Some(started);
        state.started
    };
    let (result, pages) = list_all(inner, &consumer.name)
        .instrument(tracing::info_span!("status.read", consumer = %consumer.name))
        .await;
    inner.metrics.poll_finished(
        started.elapsed(),
        pages,
        result.as_ref().err().map(|e| e.reason()),
    );
    let mut state = consumer.state();
    let mut recovered = false;
    match result {
        Ok(bundles) => {
            let fresh = merge_listing(&mut state, bundles, number);
            if let Some(e) = state.error.take() {
                info!(consumer = %consumer.name, failing_since = %e.since, "status polls work again");
                recovered = true;
            }
            debug!(consumer = %consumer.name, bundles = fresh.len(), pages, "polled");
            state.bundles = fresh;
            state.synced = true;
        }
        Err(e) => {
            let since = state.error.as_ref().map_or_else(Utc::now, |old| old.since);
            if state.error.is_none() {
                warn!(consumer = %consumer.name, error = %e, "status poll failed; keeping the last known bundles");
            }
            state.error = Some(PollError {
                reason: e.reason(),
                message: e.to_string(),
                since,
            });
        }
    }
    state.completed = number;
    if state.refresh_wanted.is_some_and(|w| w <= number) {
        state.refresh_wanted = None;
    }
    let window = *inner.wake_window.lock();
    notify_changed(
        inner,
        consumer,
        &mut state,
        None,
        UpdateSource::Poll,
        window,
    );
    let completed = state.completed;
    drop(state);
    consumer.done.send_replace(completed);
    if recovered {
        let hook = inner.on_recovery.lock().clone();
        if let Some(hook) = hook {
            hook();
        }
    }
}

/// The bundles poll `number` listed, merged with what arrived while it was
/// reading: newer reports from the watch, the operator's own writes and
/// deletion confirmations all outrank the listing; what is older than the
/// poll is dropped from the state.
fn merge_listing(
    state: &mut State,
    bundles: Vec<HeldWork>,
    number: u64,
) -> HashMap<ResourceId, Arc<HeldWork>> {
    let early = std::mem::take(&mut state.early);
    let mut fresh: HashMap<ResourceId, Arc<HeldWork>> = bundles
        .into_iter()
        .map(|b| {
            let id = b.id;
            let known = state.bundles.get(&id).and_then(|k| k.report.clone());
            let early = early.get(&id).map(|(_, s)| s.clone());
            let merged = keep_newer_status(b.without_work(), known, false);
            let merged = keep_newer_status(merged, early, true);
            (id, Arc::new(merged))
        })
        .collect();
    // Reports of bundles still not listed wait for the next poll,
    // if they came after this one started reading.
    state.early = early
        .into_iter()
        .filter(|(id, (at, _))| *at >= number && !fresh.contains_key(id))
        .collect();
    for (id, (written, bundle)) in &state.local_writes {
        if *written >= number {
            match bundle {
                Some(b) => fresh.insert(*id, b.clone()),
                None => fresh.remove(id),
            };
        }
    }
    state
        .local_writes
        .retain(|_, (written, _)| *written >= number);
    // Confirmations that came after this poll began reading outrank
    // what it read; older ones it has seen for itself.
    state.gone.retain(|_, (at, _)| *at >= number);
    for (id, (_, version)) in &state.gone {
        if fresh
            .get(id)
            .is_some_and(|b| superseded_by_deletion(b, Some(*version)))
        {
            fresh.remove(id);
        }
    }
    fresh
}

/// Every page of the consumer's bundles, and the number of requests made.
async fn list_all(
    inner: &Inner,
    consumer: &ConsumerName,
) -> (crate::maestro::Result<Vec<HeldWork>>, u64) {
    let size = inner.page_size;
    let fetch = |page: u32| {
        (inner.fetch)(PageRequest {
            consumer: consumer.clone(),
            page,
            size,
        })
    };
    let what = format!("the bundles of {consumer}");
    let listed = follow_pages(&what, 1, size, MAX_PAGES, fetch).await;
    (listed.items, listed.requests)
}

#[cfg(test)]
mod tests;
