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

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use kube::runtime::reflector::ObjectRef;
use tokio::sync::{Notify, mpsc, watch};
use tokio::time::Instant;
use tracing::{debug, info, warn};

use super::MaestroHandle;
use super::crd::MaestroApply;
use super::metrics::Metrics;
use crate::maestro::rest::{ListOptions, Page, ResourceBundle, Search};
use crate::names::{ConsumerName, ResourceId};

/// The page size of status lists, as the Go client uses.
pub const DEFAULT_PAGE_SIZE: u32 = 400;

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
    dyn Fn(PageRequest) -> BoxFuture<'static, crate::Result<Page<ResourceBundle>>> + Send + Sync,
>;

/// The fetcher that lists this source's bundles of one consumer, ordered
/// by id so paging is stable. Not filtered by the operator's labels: a
/// bundle another client of the source ID rewrote without them is still
/// under an object's resource ID, and the object must see it to judge it
/// (its own work drifted, or another client's).
pub fn maestro_fetcher(maestro: MaestroHandle) -> PageFetcher {
    Arc::new(move |req: PageRequest| {
        let client = maestro.get();
        Box::pin(async move {
            let search = Search::source(client.source())
                .consumer(&req.consumer)
                .build();
            let options = ListOptions {
                search: Some(search),
                page: Some(req.page),
                size: Some(req.size),
                order_by: Some("id".into()),
            };
            client.rest().list_resource_bundles_page(&options).await
        })
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

/// What a reconcile sees of its bundle.
#[derive(Debug, Clone, Default)]
pub struct View {
    pub bundle: Option<Arc<ResourceBundle>>,
    /// At least one poll of the consumer succeeded: an absent bundle is
    /// really absent.
    pub synced: bool,
    /// The last poll failed; the bundle is the last one known.
    pub error: Option<PollError>,
}

/// What changes about a bundle that is worth a reconcile.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Fingerprint {
    version: Option<i64>,
    deleting: bool,
    sequence: Option<String>,
    error: Option<&'static str>,
}

impl Fingerprint {
    fn of(bundle: Option<&Arc<ResourceBundle>>, error: Option<&PollError>) -> Self {
        Fingerprint {
            version: bundle.map(|b| b.version),
            deleting: bundle.is_some_and(|b| b.is_deleting()),
            sequence: bundle.and_then(|b| b.status.as_ref().map(|s| s.sequence_id.clone())),
            error: error.map(|e| e.reason),
        }
    }
}

struct Interest {
    resource_id: ResourceId,
    interval: Duration,
    /// What the object last saw (or was woken for).
    seen: Option<Fingerprint>,
}

#[derive(Default)]
struct State {
    interests: HashMap<ObjectRef<MaestroApply>, Interest>,
    bundles: HashMap<ResourceId, Arc<ResourceBundle>>,
    /// Bundles written by our own publishes, with the number of polls
    /// started when they were written: a poll already running then may
    /// have read before the write and must not overwrite it. Sequence
    /// numbers rather than instants, which can be equal.
    local_writes: HashMap<ResourceId, (u64, Option<Arc<ResourceBundle>>)>,
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
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // No code panics while holding the lock; if one did, the cache is
        // still a consistent (if stale) map.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
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
            }),
        };
        (poller, rx)
    }

    fn consumers(&self) -> std::sync::MutexGuard<'_, HashMap<ConsumerName, Arc<Consumer>>> {
        self.inner
            .consumers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    fn consumer(&self, name: &ConsumerName) -> Option<Arc<Consumer>> {
        self.consumers().get(name).cloned()
    }

    /// Declares (or renews) that `key` wants `resource_id` of `consumer`
    /// read at least every `interval`. Starts the consumer's poller if it
    /// is not running.
    pub fn register(
        &self,
        key: &ObjectRef<MaestroApply>,
        consumer: &ConsumerName,
        resource_id: ResourceId,
        interval: Duration,
    ) {
        let interval = interval.max(self.inner.min_interval);
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
        let shortest_before = shortest_interval(&state);
        state
            .interests
            .entry(key.clone())
            .and_modify(|i| {
                i.resource_id = resource_id;
                i.interval = interval;
            })
            .or_insert(Interest {
                resource_id,
                interval,
                seen: None,
            });
        if shortest_before.is_none_or(|s| interval < s) {
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
        let wanted = {
            let mut state = c.state();
            let next = state.started + 1;
            state.refresh_wanted = Some(state.refresh_wanted.map_or(next, |w| w.max(next)));
            next
        };
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
            bundle,
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
    pub fn record(&self, consumer: &ConsumerName, id: ResourceId, bundle: Option<ResourceBundle>) {
        let Some(c) = self.consumer(consumer) else {
            return;
        };
        let bundle = bundle.map(|b| Arc::new(status_only(b)));
        let mut state = c.state();
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
        *self
            .inner
            .liveness
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(liveness);
    }

    /// What to do when a consumer's polls work again after failures
    /// (wake the objects waiting in backoff).
    pub fn set_on_recovery(&self, hook: Recovery) {
        *self
            .inner
            .on_recovery
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(hook);
    }

    /// Reconciles `key` now.
    pub fn wake(&self, key: ObjectRef<MaestroApply>) {
        let _ = self.inner.triggers.send(key);
    }

    /// Consumers with a running poller.
    pub fn consumer_count(&self) -> usize {
        self.consumers().len()
    }
}

/// What the cache keeps of a bundle: everything status and publishing
/// decisions read (metadata, version, deletion, the agent's report), not
/// the manifests, which can be most of its size (Maestro's list would
/// project fields with `fields=`, but that parameter crashes the handler
/// at our pinned version). Each manifest leaves a `null` so its count,
/// which the status message reports, stays right.
fn status_only(mut bundle: ResourceBundle) -> ResourceBundle {
    for manifest in &mut bundle.manifests {
        *manifest = serde_json::Value::Null;
    }
    bundle.manifest_configs = Vec::new();
    bundle
}

fn shortest_interval(state: &State) -> Option<Duration> {
    state.interests.values().map(|i| i.interval).min()
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
            let mut consumers = strong.consumers.lock().unwrap_or_else(|p| p.into_inner());
            let mut state = consumer.state();
            let now = Instant::now();
            let liveness = strong
                .liveness
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone();
            if let Some(alive) = liveness {
                state.interests.retain(|key, _| alive(key));
            }
            let Some(interval) = shortest_interval(&state) else {
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

async fn poll_once(inner: &Inner, consumer: &Consumer) {
    let started = Instant::now();
    let number = {
        let mut state = consumer.state();
        state.started += 1;
        state.last_started = Some(started);
        state.started
    };
    let (result, pages) = list_all(inner, &consumer.name).await;
    inner.metrics.poll_finished(
        started.elapsed(),
        pages,
        result.as_ref().err().map(|e| e.reason()),
    );
    let mut state = consumer.state();
    let mut recovered = false;
    match result {
        Ok(bundles) => {
            let mut fresh: HashMap<ResourceId, Arc<ResourceBundle>> = bundles
                .into_iter()
                .filter_map(|b| b.resource_id().map(|id| (id, Arc::new(status_only(b)))))
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
    let error = state.error.clone();
    let State {
        interests, bundles, ..
    } = &mut *state;
    for (key, interest) in interests.iter_mut() {
        let now = Fingerprint::of(bundles.get(&interest.resource_id), error.as_ref());
        // An object that has not looked yet is about to; waking it would
        // only repeat that reconcile.
        if interest.seen.as_ref().is_some_and(|seen| *seen != now) {
            interest.seen = Some(now);
            let _ = inner.triggers.send(key.clone());
        }
    }
    let completed = state.completed;
    drop(state);
    consumer.done.send_replace(completed);
    if recovered {
        let hook = inner
            .on_recovery
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if let Some(hook) = hook {
            hook();
        }
    }
}

/// Every page of the consumer's bundles, and the number of requests made.
/// Stops at the first short page or once `total` rows are in, and drops
/// rows repeated across pages, as the REST client's own paging does.
async fn list_all(
    inner: &Inner,
    consumer: &ConsumerName,
) -> (crate::Result<Vec<ResourceBundle>>, u64) {
    let size = inner.page_size;
    let mut items = Vec::new();
    let mut seen = HashSet::new();
    let mut requests = 0;
    let mut received: u64 = 0;
    for page in 1..=10_000u32 {
        requests += 1;
        let result = (inner.fetch)(PageRequest {
            consumer: consumer.clone(),
            page,
            size,
        })
        .await;
        let page = match result {
            Ok(page) => page,
            Err(e) => return (Err(e), requests),
        };
        let count = page.items.len();
        received += count as u64;
        for item in page.items {
            if seen.insert(item.id.clone()) {
                items.push(item);
            }
        }
        let reached_total = u64::try_from(page.total).is_ok_and(|t| received >= t);
        if count < size as usize || reached_total {
            return (Ok(items), requests);
        }
    }
    (
        Err(crate::Error::Protocol(format!(
            "listing the bundles of {consumer} gave up after 10000 full pages"
        ))),
        requests,
    )
}

#[cfg(test)]
mod tests;
