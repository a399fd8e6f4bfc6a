use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use serde_json::json;
use tokio::sync::Semaphore;
use tokio::time::sleep;

use super::EventOutcome::{Applied, Early, Ignored, Stale};
use super::*;
use crate::maestro::codec::StatusEvent;
use crate::maestro::held::from_json;
use crate::names::SourceId;

/// The ID of work `work` of `consumer` under the tests' source.
fn work_id(consumer: &str, work: &str) -> ResourceId {
    ResourceId::for_work(&SourceId::new("test").unwrap(), consumer, work)
}

/// An in-memory Maestro listing: bundles per consumer, every request
/// counted, optionally failing or held at a gate.
#[derive(Default)]
struct Fake {
    bundles: Mutex<HashMap<String, Vec<HeldWork>>>,
    requests: AtomicU64,
    fail: AtomicBool,
    /// When set, each request waits for a permit.
    gate: Mutex<Option<Arc<Semaphore>>>,
}

impl Fake {
    fn put(&self, consumer: &str, work: &str, version: i64) -> ResourceId {
        let id = work_id(consumer, work);
        let bundle = from_json(json!({
            "id": id.to_string(), "version": version, "consumer_name": consumer,
            "metadata": {"name": work},
        }))
        .unwrap();
        let mut all = self.bundles.lock();
        let list = all.entry(consumer.to_string()).or_default();
        list.retain(|b| b.id != bundle.id);
        list.push(bundle);
        list.sort_by_key(|b| b.id);
        id
    }

    fn remove(&self, consumer: &str, id: ResourceId) {
        let mut all = self.bundles.lock();
        if let Some(list) = all.get_mut(consumer) {
            list.retain(|b| b.id != id);
        }
    }

    fn set_failing(&self, failing: bool) {
        self.fail.store(failing, Ordering::SeqCst);
    }

    /// Holds every request from now on until the returned gate gets
    /// permits.
    fn hold(&self) -> Arc<Semaphore> {
        let gate = Arc::new(Semaphore::new(0));
        *self.gate.lock() = Some(gate.clone());
        gate
    }

    fn release(&self) {
        *self.gate.lock() = None;
    }

    fn requests(&self) -> u64 {
        self.requests.load(Ordering::SeqCst)
    }
}

fn fetcher(fake: Arc<Fake>) -> PageFetcher {
    Arc::new(move |req: PageRequest| {
        let fake = fake.clone();
        Box::pin(async move {
            let gate = fake.gate.lock().clone();
            if let Some(gate) = gate {
                gate.acquire().await.unwrap().forget();
            }
            fake.requests.fetch_add(1, Ordering::SeqCst);
            if fake.fail.load(Ordering::SeqCst) {
                return Err(crate::maestro::Error::Unavailable(
                    "connection refused".into(),
                ));
            }
            let all = fake.bundles.lock();
            let list = all.get(req.consumer.as_str()).cloned().unwrap_or_default();
            let start = ((req.page - 1) * req.size) as usize;
            let items: Vec<_> = list
                .iter()
                .skip(start)
                .take(req.size as usize)
                .cloned()
                .collect();
            Ok(Page {
                kind: "ResourceBundleList".into(),
                page: i64::from(req.page),
                size: items.len() as i64,
                total: list.len() as i64,
                items,
            })
        })
    })
}

fn consumer(name: &str) -> ConsumerName {
    ConsumerName::new(name).unwrap()
}

fn key(i: usize) -> ObjectRef<MaestroApply> {
    ObjectRef::new(&format!("obj-{i}")).within("ns")
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

const TEN_S: Duration = Duration::from_secs(10);
const HALF_HOUR: Duration = Duration::from_secs(1800);
/// Long enough for one more poll at a 10 s pace.
const JUST_OVER_TEN_S: Duration = Duration::from_millis(10_001);

/// A poller (pages of 10) over a [`Fake`], the objects it wakes and its
/// metrics. Objects are `key(i)`; the helpers speak of consumer "west".
struct Rig {
    fake: Arc<Fake>,
    poller: Poller,
    wakes: mpsc::UnboundedReceiver<ObjectRef<MaestroApply>>,
    metrics: Arc<Metrics>,
    west: ConsumerName,
}

/// A poll of "west" held at its first request.
struct HeldPoll {
    gate: Arc<Semaphore>,
    refresh: tokio::task::JoinHandle<()>,
}

impl HeldPoll {
    /// Lets the poll go on and waits for it to end.
    async fn finish(self) {
        self.gate.add_permits(10);
        self.refresh.await.unwrap();
    }
}

impl Rig {
    /// Polling a consumer at most once a second.
    fn new() -> Rig {
        Rig::polling_at_most_every(secs(1))
    }

    fn polling_at_most_every(min_interval: Duration) -> Rig {
        let fake = Arc::new(Fake::default());
        let metrics = Arc::new(Metrics::new());
        let (poller, wakes) = Poller::new(fetcher(fake.clone()), 10, min_interval, metrics.clone());
        Rig {
            fake,
            poller,
            wakes,
            metrics,
            west: consumer("west"),
        }
    }

    fn put(&self, work: &str, version: i64) -> ResourceId {
        self.fake.put("west", work, version)
    }

    fn remove(&self, id: ResourceId) {
        self.fake.remove("west", id);
    }

    /// The `index`-th bundle of "west" as a listing returns it now.
    fn listed(&self, index: usize) -> HeldWork {
        self.fake.bundles.lock()["west"][index].clone()
    }

    /// Marks the bundle deleting, as Maestro serves it once its deletion
    /// was requested, and returns it.
    fn mark_deleting(&self, id: ResourceId) -> HeldWork {
        let mut all = self.fake.bundles.lock();
        let bundle = all
            .get_mut("west")
            .and_then(|list| list.iter_mut().find(|b| b.id == id))
            .unwrap();
        bundle.deleting_since = Some(Utc::now());
        bundle.clone()
    }

    /// `key(i)` wants `id` read every `interval`.
    fn watch(&self, i: usize, id: ResourceId, interval: Duration) {
        self.poller
            .register(&key(i), &self.west, id, Pace::every(interval));
    }

    fn unwatch(&self, i: usize) {
        self.poller.unregister(&key(i), &self.west);
    }

    async fn first_poll(&self) {
        self.poller.wait_polled(&self.west, TEN_S).await;
    }

    async fn refresh(&self) {
        self.poller.refresh(&self.west, TEN_S).await;
    }

    fn spawn_refresh(&self) -> tokio::task::JoinHandle<()> {
        let (poller, west) = (self.poller.clone(), self.west.clone());
        tokio::spawn(async move { poller.refresh(&west, TEN_S).await })
    }

    /// Starts a poll and holds it at its first request.
    async fn hold_a_poll(&self) -> HeldPoll {
        let gate = self.fake.hold();
        let refresh = self.spawn_refresh();
        sleep(secs(2)).await;
        HeldPoll { gate, refresh }
    }

    fn record(&self, id: ResourceId, bundle: HeldWork) {
        self.poller.record(&self.west, id, Some(bundle));
    }

    fn view(&self, i: usize, id: ResourceId) -> View {
        self.poller.view(&key(i), &self.west, &id)
    }

    /// `key(i)` reconciles: it reads its bundle, which marks it seen.
    fn sees(&self, i: usize, id: ResourceId) {
        let _ = self.view(i, id);
    }

    fn held(&self, i: usize, id: ResourceId) -> Option<Arc<HeldWork>> {
        self.view(i, id).held
    }

    /// Whether `key(i)` sees its bundle gone, from a complete listing.
    fn sees_it_gone(&self, i: usize, id: ResourceId) -> bool {
        let view = self.view(i, id);
        view.held.is_none() && view.synced
    }

    /// The sequence ID of the agent report cached for `key(i)`.
    fn sequence(&self, i: usize, id: ResourceId) -> Option<u128> {
        self.held(i, id)?.report.as_ref().and_then(|r| r.sequence)
    }

    /// The stream brings the agent's Applied report of `id`.
    fn report(&self, id: ResourceId, version: i64, seq: u64) -> EventOutcome {
        self.poller
            .apply_event(&event("west", id, version, seq, false))
    }

    /// The stream brings a report of `id` whose `conditions` are all True.
    fn report_conditions(&self, id: ResourceId, seq: u64, conditions: &[&str]) -> EventOutcome {
        self.poller
            .apply_event(&event_with("west", id, 1, seq, false, conditions))
    }

    /// The stream brings the agent's report that `id` is deleted.
    fn confirm_deleted(&self, id: ResourceId, version: i64, seq: u64) -> EventOutcome {
        self.poller
            .apply_event(&event("west", id, version, seq, true))
    }

    fn next_woken(&mut self) -> Option<ObjectRef<MaestroApply>> {
        self.wakes.try_recv().ok()
    }

    /// Every object woken and not yet taken.
    fn woken(&mut self) -> Vec<ObjectRef<MaestroApply>> {
        std::iter::from_fn(|| self.next_woken()).collect()
    }

    fn requests(&self) -> u64 {
        self.fake.requests()
    }

    /// The requests so far, after `wait` more.
    async fn requests_after(&self, wait: Duration) -> u64 {
        sleep(wait).await;
        self.requests()
    }

    /// The requests made during the next `wait`.
    async fn requests_during(&self, wait: Duration) -> u64 {
        let before = self.requests();
        sleep(wait).await;
        self.requests() - before
    }
}

/// `works` (name and version) on "west", `key(i)` wanting the i-th every
/// 10 s, after the first poll.
async fn watching<const N: usize>(works: [(&str, i64); N]) -> (Rig, [ResourceId; N]) {
    let rig = Rig::new();
    let ids = works.map(|(work, version)| rig.put(work, version));
    for (i, id) in ids.iter().enumerate() {
        rig.watch(i, *id, TEN_S);
    }
    rig.first_poll().await;
    (rig, ids)
}

/// `key(0)` wanting work "a" of "west" every 10 s before Maestro holds
/// it, after the first poll.
async fn watching_absent() -> (Rig, ResourceId) {
    let rig = Rig::new();
    let id = work_id("west", "a");
    rig.watch(0, id, TEN_S);
    rig.first_poll().await;
    (rig, id)
}

/// A status event of the stream: the agent's report of `id` at bundle
/// version `version` with sequence ID `seq`.
fn event(consumer: &str, id: ResourceId, version: i64, seq: u64, deleted: bool) -> StreamedReport {
    let condition = if deleted { "Deleted" } else { "Applied" };
    event_with(consumer, id, version, seq, deleted, &[condition])
}

/// A report whose work-level `conditions` are all True.
fn event_with(
    consumer: &str,
    id: ResourceId,
    version: i64,
    seq: u64,
    deleted: bool,
    conditions: &[&str],
) -> StreamedReport {
    let conditions: Vec<_> = conditions
        .iter()
        .map(|type_| {
            json!({
                "type": type_, "status": "True", "reason": "Test", "message": format!("report {seq}"),
                "lastTransitionTime": "2026-01-01T00:00:00Z",
            })
        })
        .collect();
    let work: crate::manifestwork::ManifestWork = serde_json::from_value(json!({
        "apiVersion": "work.open-cluster-management.io/v1",
        "kind": "ManifestWork",
        "metadata": {"namespace": consumer},
        "spec": {},
        "status": {"conditions": conditions},
    }))
    .unwrap();
    StreamedReport::of_event(&StatusEvent {
        resource_id: id,
        resource_version: version,
        sequence_id: Some(seq.to_string()),
        status_hash: None,
        cluster_name: Some(consumer.to_string()),
        deleted,
        work,
        time: None,
    })
}

#[tokio::test(start_paused = true)]
async fn requests_per_cycle_grow_with_consumers_and_pages_not_with_objects() {
    let rig = Rig::new();
    let west: Vec<_> = (0..25)
        .map(|i| rig.fake.put("west", &format!("w{i}"), 1))
        .collect();
    let east: Vec<_> = (0..5)
        .map(|i| rig.fake.put("east", &format!("e{i}"), 1))
        .collect();
    let watch = |i, c: &str, id| {
        rig.poller
            .register(&key(i), &consumer(c), id, Pace::every(TEN_S))
    };

    // A few objects first: 3 pages for west (10+10+5), 1 for east.
    watch(0, "west", west[0]);
    watch(1, "east", east[0]);
    rig.poller.wait_polled(&consumer("west"), TEN_S).await;
    rig.poller.wait_polled(&consumer("east"), TEN_S).await;
    assert_eq!(rig.requests(), 4);

    // Now 1,000 objects over the same two consumers.
    for i in 2..1002 {
        if i % 2 == 0 {
            watch(i, "west", west[i % 25]);
        } else {
            watch(i, "east", east[i % 5]);
        }
    }
    let cycle = rig.requests_during(JUST_OVER_TEN_S).await;
    assert_eq!(cycle, 4, "one cycle is still 4 requests");
    assert_eq!(rig.metrics.poll_requests(), rig.requests());
    assert_eq!(rig.poller.consumer_count(), 2);

    // Another consumer adds its pages.
    watch(5000, "north", rig.fake.put("north", "n0", 1));
    rig.poller.wait_polled(&consumer("north"), TEN_S).await;
    assert_eq!(rig.requests_during(JUST_OVER_TEN_S).await, 5);
}

#[tokio::test(start_paused = true)]
async fn the_shortest_interval_any_object_wants_sets_the_pace() {
    let rig = Rig::new();
    let a = rig.put("a", 1);
    rig.watch(0, a, HALF_HOUR);
    rig.first_poll().await;
    assert_eq!(rig.requests(), 1);
    let later = rig.requests_after(secs(60)).await;
    assert_eq!(later, 1, "a Ready object alone polls every 30 min");
    // An object that is not Ready yet wants 10 s; the poller wakes for it.
    rig.watch(1, a, TEN_S);
    let soon = rig.requests_after(ms(10)).await;
    assert_eq!(soon, 2, "the poll was already overdue for 10 s");
    assert_eq!(rig.requests_after(secs(25)).await, 4);
    // Once it is gone the pace drops back.
    rig.unwatch(1);
    assert_eq!(rig.requests_after(secs(600)).await, 4);
}

#[tokio::test(start_paused = true)]
async fn a_changed_bundle_wakes_only_the_objects_that_read_it() {
    let (mut rig, [a, b]) = watching([("a", 1), ("b", 1)]).await;
    assert_eq!(rig.held(0, a).unwrap().version, 1);
    assert_eq!(rig.held(1, b).unwrap().version, 1);

    sleep(JUST_OVER_TEN_S).await;
    assert_eq!(rig.next_woken(), None, "nothing changed, nobody is woken");

    rig.put("b", 2);
    sleep(TEN_S).await;
    assert_eq!(rig.next_woken(), Some(key(1)));
    assert_eq!(rig.next_woken(), None);

    // Deleted behind our back: the owner is woken and sees it gone.
    rig.remove(a);
    sleep(TEN_S).await;
    assert_eq!(rig.next_woken(), Some(key(0)));
    assert!(rig.sees_it_gone(0, a));
}

#[tokio::test(start_paused = true)]
async fn a_failed_poll_keeps_the_last_bundles_reports_the_error_and_wakes_objects() {
    let (mut rig, [a]) = watching([("a", 1)]).await;
    rig.sees(0, a);

    rig.fake.set_failing(true);
    sleep(JUST_OVER_TEN_S).await;
    assert_eq!(rig.next_woken(), Some(key(0)));
    let view = rig.view(0, a);
    let error = view.error.unwrap();
    assert_eq!(error.reason, "MaestroUnavailable");
    let message = &error.message;
    assert!(message.contains("connection refused"), "{message}");
    assert_eq!(view.held.unwrap().version, 1, "last known bundle kept");
    let errors = "maestro_operator_maestro_poll_errors_total{reason=\"MaestroUnavailable\"} 1";
    assert!(rig.metrics.encode().contains(errors));

    rig.fake.set_failing(false);
    sleep(TEN_S).await;
    assert_eq!(rig.next_woken(), Some(key(0)), "recovery wakes it again");
    assert!(rig.view(0, a).error.is_none());
}

#[tokio::test(start_paused = true)]
async fn concurrent_refreshes_share_one_poll() {
    let rig = Rig::new();
    let a = rig.put("a", 1);
    for i in 0..50 {
        rig.watch(i, a, HALF_HOUR);
    }
    rig.first_poll().await;
    assert_eq!(rig.requests(), 1);
    rig.put("a", 2);
    futures::future::join_all((0..50).map(|_| rig.refresh())).await;
    assert_eq!(rig.requests(), 2, "50 forced refreshes, one poll");
    assert_eq!(rig.held(0, a).unwrap().version, 2);
}

#[tokio::test(start_paused = true)]
async fn a_stream_of_forced_refreshes_costs_one_poll_per_minimum_interval() {
    let rig = Rig::polling_at_most_every(secs(5));
    let a = rig.put("a", 1);
    rig.watch(0, a, HALF_HOUR);
    rig.first_poll().await;
    assert_eq!(rig.requests(), 1);
    // A refresh asked for every 100 ms for 20 s (a tenant pulsing
    // reconcile-requested-at): one poll per 5 s, not one per request.
    let started = tokio::time::Instant::now();
    let mut refreshes = Vec::new();
    for _ in 0..200 {
        refreshes.push(rig.spawn_refresh());
        sleep(ms(100)).await;
    }
    futures::future::join_all(refreshes).await;
    let polls = rig.requests() - 1;
    let elapsed = started.elapsed().as_secs();
    assert!(
        polls <= elapsed / 5 + 1,
        "{polls} polls in {elapsed} s of forced refreshes"
    );
    assert!(polls >= 4, "refreshes still poll: {polls}");
}

#[tokio::test(start_paused = true)]
async fn our_own_write_is_not_undone_by_a_poll_that_read_before_it() {
    let rig = Rig::new();
    let id = work_id("west", "a");
    let gate = rig.fake.hold();
    rig.watch(0, id, TEN_S);
    sleep(ms(10)).await;
    // The first poll is in flight and will answer "no bundle"; meanwhile
    // we publish and record what we created.
    rig.put("a", 1);
    let created = rig.listed(0);
    rig.remove(id);
    rig.record(id, created);
    gate.add_permits(1);
    rig.first_poll().await;
    assert!(rig.held(0, id).is_some());
}

#[tokio::test(start_paused = true)]
async fn the_poller_stops_with_its_last_object() {
    let (rig, _) = watching([("a", 1)]).await;
    rig.unwatch(0);
    sleep(ms(10)).await;
    assert_eq!(rig.poller.consumer_count(), 0);
    assert_eq!(rig.requests_after(secs(60)).await, 1);
}

#[tokio::test(start_paused = true)]
async fn an_object_that_no_longer_exists_is_forgotten() {
    let rig = Rig::new();
    let a = rig.put("a", 1);
    rig.watch(0, a, TEN_S);
    rig.watch(1, a, secs(1));
    rig.first_poll().await;
    // key(1) was deleted without a final reconcile (its finalizer removed
    // by hand): only the cache knows.
    rig.poller
        .set_liveness(Arc::new(|k: &ObjectRef<MaestroApply>| *k != key(1)));
    sleep(ms(1500)).await;
    let quiet = rig.requests_during(secs(5)).await;
    assert_eq!(quiet, 0, "the 1 s pace went with key(1)");
    rig.poller
        .set_liveness(Arc::new(|_: &ObjectRef<MaestroApply>| false));
    sleep(JUST_OVER_TEN_S).await;
    assert_eq!(rig.poller.consumer_count(), 0);
}

#[tokio::test(start_paused = true)]
async fn the_cache_keeps_the_report_and_the_manifest_count_not_the_manifests() {
    let (rig, [a]) = watching([("a", 1)]).await;
    let mut big = rig.held(0, a).unwrap().as_ref().clone();
    let manifest = crate::manifestwork::Manifest::from_value(
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"},
               "data": {"x": "x".repeat(100_000)}}),
    )
    .unwrap();
    big.work = Some(Box::new(crate::manifestwork::ManifestWork::for_consumer(
        "west",
        "a",
        vec![manifest; 3],
    )));
    big.manifest_count = 3;
    rig.record(a, big);
    let cached = rig.held(0, a).unwrap();
    assert_eq!(cached.manifest_count, 3, "the count stays");
    assert!(cached.work.is_none(), "the manifests are dropped");
    assert_eq!(cached.version, 1);
}

#[tokio::test(start_paused = true)]
async fn polls_working_again_call_the_recovery_hook_once() {
    let rig = Rig::new();
    let a = rig.put("a", 1);
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    rig.poller.set_on_recovery(Arc::new(move || {
        counter.fetch_add(1, Ordering::SeqCst);
    }));
    rig.fake.set_failing(true);
    rig.watch(0, a, TEN_S);
    rig.first_poll().await;
    sleep(TEN_S * 3).await;
    assert_eq!(calls.load(Ordering::SeqCst), 0, "still failing");
    rig.fake.set_failing(false);
    sleep(TEN_S * 3).await;
    let once = calls.load(Ordering::SeqCst);
    assert_eq!(once, 1, "once, on the first good poll");
}

#[tokio::test(start_paused = true)]
async fn a_stream_report_wakes_only_its_object_and_older_or_repeated_ones_change_nothing() {
    let (mut rig, [a, b]) = watching([("a", 2), ("b", 1)]).await;
    rig.sees(0, a);
    rig.sees(1, b);

    // Reordered and duplicated: 120 arrives before 110, and twice; a report
    // of the older version 1 arrives last with the largest sequence ID.
    let outcomes: Vec<_> = [(2, 100), (2, 120), (2, 110), (2, 120), (2, 100), (1, 900)]
        .into_iter()
        .map(|(version, seq)| rig.report(a, version, seq))
        .collect();
    assert_eq!(outcomes, [Applied, Applied, Stale, Stale, Stale, Stale]);
    assert_eq!(rig.sequence(0, a), Some(120));
    let woken = rig.woken();
    assert_eq!(
        woken,
        [key(0), key(0)],
        "only a's object, once per newer report"
    );
    assert_eq!(rig.metrics.status_updates("stream"), 2);

    // Another consumer's report, and one of a bundle nobody wants.
    let east = event("east", a, 2, 200, false);
    assert_eq!(rig.poller.apply_event(&east), Ignored);
    assert_eq!(rig.report(work_id("west", "zz"), 1, 200), Ignored);
    assert!(rig.woken().is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_poll_that_read_before_a_stream_report_does_not_undo_it() {
    let (rig, [a]) = watching([("a", 1)]).await;
    assert_eq!(rig.report(a, 1, 100), Applied);

    // A poll reads (the agent's report is not in the listing) and is held;
    // a newer report arrives meanwhile.
    let poll = rig.hold_a_poll().await;
    assert_eq!(rig.report(a, 1, 110), Applied);
    poll.finish().await;
    assert_eq!(rig.sequence(0, a), Some(110));

    // A later poll that lists an older report keeps the newer one too.
    rig.fake.release();
    rig.fake.bundles.lock().get_mut("west").unwrap()[0].report = Some(AgentReport {
        observed_version: 1,
        sequence: Some(105),
        ..AgentReport::default()
    });
    rig.refresh().await;
    assert_eq!(rig.sequence(0, a), Some(110));
}

#[tokio::test(start_paused = true)]
async fn a_report_that_beats_our_read_back_is_kept_until_the_bundle_is_recorded() {
    let (rig, id) = watching_absent().await;
    // We create the work; the agent's report comes before our read-back.
    rig.put("a", 1);
    assert_eq!(rig.report(id, 1, 100), Early);
    rig.record(id, rig.listed(0));
    assert_eq!(rig.sequence(0, id), Some(100));
}

#[tokio::test(start_paused = true)]
async fn the_agents_deleted_report_removes_the_bundle_once() {
    let (mut rig, [a]) = watching([("a", 1)]).await;
    rig.sees(0, a);
    assert_eq!(rig.confirm_deleted(a, 1, 100), Applied);
    assert_eq!(rig.woken(), [key(0)]);
    assert!(rig.sees_it_gone(0, a));
    assert_eq!(rig.confirm_deleted(a, 1, 100), Stale);
    assert!(rig.woken().is_empty());
}

/// One object, polled and seen, whose wakes have a 250 ms window.
async fn watched_with_a_window() -> (Rig, ResourceId) {
    let rig = Rig::new();
    let a = rig.put("a", 1);
    rig.poller.set_wake_window(ms(250));
    rig.watch(0, a, TEN_S);
    rig.first_poll().await;
    rig.sees(0, a);
    (rig, a)
}

#[tokio::test(start_paused = true)]
async fn a_burst_of_reports_wakes_an_object_once_per_window() {
    let (mut rig, a) = watched_with_a_window().await;
    for seq in 101..=120 {
        rig.report(a, 1, seq);
        // The object reconciles at once when woken, as the controller does.
        if rig.next_woken().is_some() {
            rig.sees(0, a);
        }
        sleep(ms(10)).await;
    }
    // The first report woke it at once; the nineteen after it, all within
    // its 250 ms window, cost one more wake when the window ends.
    sleep(secs(1)).await;
    let later = rig.woken().len();
    assert_eq!(later, 1, "one held wake covers the rest of the burst");
    assert_eq!(rig.sequence(0, a), Some(120));
}

#[tokio::test(start_paused = true)]
async fn a_report_that_turns_a_condition_wakes_at_once_inside_the_window() {
    let (mut rig, a) = watched_with_a_window().await;
    // Applied: woken at once, the first report of the window.
    assert_eq!(rig.report_conditions(a, 101, &["Applied"]), Applied);
    assert_eq!(rig.woken(), [key(0)]);
    rig.sees(0, a);
    sleep(ms(20)).await;
    // The same conditions again (new feedback, say): held for the window.
    assert_eq!(rig.report_conditions(a, 102, &["Applied"]), Applied);
    assert!(rig.woken().is_empty());
    // Available turns True: that decides Ready, so it is not held.
    sleep(ms(20)).await;
    assert_eq!(
        rig.report_conditions(a, 103, &["Applied", "Available"]),
        Applied
    );
    assert_eq!(rig.woken(), [key(0)]);
    rig.sees(0, a);
    // The held wake still comes at the window's end, covering later reports.
    sleep(secs(1)).await;
    assert_eq!(rig.woken(), [key(0)]);
    assert_eq!(rig.sequence(0, a), Some(103));
}

#[tokio::test(start_paused = true)]
async fn while_the_stream_is_healthy_polls_are_a_safety_net_and_its_loss_brings_them_back() {
    let rig = Rig::new();
    let a = rig.put("a", 1);
    let pace = Pace {
        polled: TEN_S,
        stream_down: TEN_S,
        stream_up: HALF_HOUR,
    };
    rig.poller.register(&key(0), &rig.west, a, pace);
    rig.poller.stream_down();
    rig.first_poll().await;
    assert_eq!(rig.requests(), 1);

    // Subscribed: one resync now, then nothing for the 30 min interval.
    rig.poller.stream_up();
    let resynced = rig.requests_after(secs(2)).await;
    assert_eq!(resynced, 2, "the resync after subscribing");
    let healthy = rig.requests_after(secs(600)).await;
    assert_eq!(healthy, 2, "no pollInterval polls while healthy");

    // Lost: the pollInterval pace at once (the last poll is long past).
    rig.poller.stream_down();
    assert_eq!(rig.requests_after(ms(10)).await, 3);
    assert_eq!(rig.requests_after(TEN_S * 3).await, 6);

    // Back: resync, then quiet again.
    rig.poller.stream_up();
    assert_eq!(rig.requests_after(secs(2)).await, 7);
    assert_eq!(rig.requests_after(secs(600)).await, 7);
}

#[tokio::test(start_paused = true)]
async fn a_deletion_confirmed_while_uncached_is_not_undone_by_an_earlier_read() {
    // The poll's pages missed the row (rows deleted between pages shift it).
    let (rig, id) = watching_absent().await;
    rig.put("a", 3);
    let read = rig.mark_deleting(id);
    // The agent confirms before our direct read is recorded.
    rig.remove(id);
    assert_eq!(rig.confirm_deleted(id, 3, 100), Early);
    rig.record(id, read);
    assert!(rig.held(0, id).is_none(), "the confirmed deletion stands");
}

#[tokio::test(start_paused = true)]
async fn a_direct_read_that_races_the_confirmation_of_a_cached_deletion_does_not_bring_it_back() {
    let (rig, [a]) = watching([("a", 1)]).await;
    // The deletion is requested; the cache holds the deleting bundle.
    let deleting = rig.mark_deleting(a);
    rig.record(a, deleting.clone());
    assert!(rig.held(0, a).is_some_and(|b| b.is_deleting()));
    // The agent confirms through the stream, while Maestro still serves
    // the row to a direct read (twice, from two reconciles).
    assert_eq!(rig.confirm_deleted(a, 1, 100), Applied);
    rig.record(a, deleting.clone());
    rig.record(a, deleting);
    assert!(rig.held(0, a).is_none(), "the confirmed deletion stands");
    // A work of that name created again is cached as usual.
    rig.remove(a);
    let again = rig.put("a", 2);
    rig.record(again, rig.listed(0));
    assert_eq!(rig.held(0, again).map(|b| b.version), Some(2));
}

#[tokio::test(start_paused = true)]
async fn a_poll_that_read_a_deleting_bundle_before_its_confirmation_does_not_bring_it_back() {
    let (rig, id) = watching_absent().await;
    rig.put("a", 3);
    rig.mark_deleting(id);
    // A poll lists the deleting bundle and is held; the confirmation of a
    // bundle not cached yet arrives meanwhile.
    let poll = rig.hold_a_poll().await;
    assert_eq!(rig.confirm_deleted(id, 3, 100), Early);
    poll.finish().await;
    assert!(rig.held(0, id).is_none());
}

#[tokio::test(start_paused = true)]
async fn a_work_created_again_after_a_confirmed_deletion_is_kept() {
    let (rig, id) = watching_absent().await;
    assert_eq!(rig.confirm_deleted(id, 3, 100), Early);
    // Not deleting, so not the confirmed one: a new work under that ID.
    rig.put("a", 1);
    rig.record(id, rig.listed(0));
    assert!(rig.held(0, id).is_some());
}
