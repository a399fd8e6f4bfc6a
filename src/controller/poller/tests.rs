use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use serde_json::json;
use tokio::sync::Semaphore;

use super::*;
use crate::maestro::codec::StatusEvent;
use crate::maestro::held::from_json;
use crate::names::SourceId;

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
        let id = ResourceId::for_work(&SourceId::new("test").unwrap(), consumer, work);
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

fn poller(
    fake: &Arc<Fake>,
    page_size: u32,
) -> (
    Poller,
    mpsc::UnboundedReceiver<ObjectRef<MaestroApply>>,
    Arc<Metrics>,
) {
    let metrics = Arc::new(Metrics::new());
    let (p, rx) = Poller::new(
        fetcher(fake.clone()),
        page_size,
        Duration::from_secs(1),
        metrics.clone(),
    );
    (p, rx, metrics)
}

const TEN_S: Duration = Duration::from_secs(10);

#[tokio::test(start_paused = true)]
async fn requests_per_cycle_grow_with_consumers_and_pages_not_with_objects() {
    let fake = Arc::new(Fake::default());
    let west: Vec<_> = (0..25)
        .map(|i| fake.put("west", &format!("w{i}"), 1))
        .collect();
    let east: Vec<_> = (0..5)
        .map(|i| fake.put("east", &format!("e{i}"), 1))
        .collect();
    let (p, _rx, metrics) = poller(&fake, 10);

    // A few objects first: 3 pages for west (10+10+5), 1 for east.
    p.register(&key(0), &consumer("west"), west[0], Pace::every(TEN_S));
    p.register(&key(1), &consumer("east"), east[0], Pace::every(TEN_S));
    p.wait_polled(&consumer("west"), TEN_S).await;
    p.wait_polled(&consumer("east"), TEN_S).await;
    assert_eq!(fake.requests(), 4);

    // Now 1,000 objects over the same two consumers.
    for i in 2..1002 {
        let (c, id) = if i % 2 == 0 {
            ("west", west[i % 25])
        } else {
            ("east", east[i % 5])
        };
        p.register(&key(i), &consumer(c), id, Pace::every(TEN_S));
    }
    let before = fake.requests();
    tokio::time::sleep(TEN_S + Duration::from_millis(1)).await;
    assert_eq!(fake.requests() - before, 4, "one cycle is still 4 requests");
    assert_eq!(metrics.poll_requests(), fake.requests());
    assert_eq!(p.consumer_count(), 2);

    // Another consumer adds its pages.
    let north = fake.put("north", "n0", 1);
    p.register(&key(5000), &consumer("north"), north, Pace::every(TEN_S));
    p.wait_polled(&consumer("north"), TEN_S).await;
    let before = fake.requests();
    tokio::time::sleep(TEN_S + Duration::from_millis(1)).await;
    assert_eq!(fake.requests() - before, 5);
}

#[tokio::test(start_paused = true)]
async fn the_shortest_interval_any_object_wants_sets_the_pace() {
    let fake = Arc::new(Fake::default());
    let id = fake.put("west", "a", 1);
    let (p, _rx, _) = poller(&fake, 10);
    p.register(
        &key(0),
        &consumer("west"),
        id,
        Pace::every(Duration::from_secs(1800)),
    );
    p.wait_polled(&consumer("west"), TEN_S).await;
    assert_eq!(fake.requests(), 1);
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(
        fake.requests(),
        1,
        "a Ready object alone polls every 30 min"
    );
    // An object that is not Ready yet wants 10 s; the poller wakes for it.
    p.register(&key(1), &consumer("west"), id, Pace::every(TEN_S));
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(fake.requests(), 2, "the poll was already overdue for 10 s");
    tokio::time::sleep(Duration::from_secs(25)).await;
    assert_eq!(fake.requests(), 4);
    // Once it is gone the pace drops back.
    p.unregister(&key(1), &consumer("west"));
    tokio::time::sleep(Duration::from_secs(600)).await;
    assert_eq!(fake.requests(), 4);
}

#[tokio::test(start_paused = true)]
async fn a_changed_bundle_wakes_only_the_objects_that_read_it() {
    let fake = Arc::new(Fake::default());
    let a = fake.put("west", "a", 1);
    let b = fake.put("west", "b", 1);
    let (p, mut rx, _) = poller(&fake, 10);
    let west = consumer("west");
    p.register(&key(0), &west, a, Pace::every(TEN_S));
    p.register(&key(1), &west, b, Pace::every(TEN_S));
    p.wait_polled(&west, TEN_S).await;
    assert_eq!(p.view(&key(0), &west, &a).held.unwrap().version, 1);
    assert_eq!(p.view(&key(1), &west, &b).held.unwrap().version, 1);

    tokio::time::sleep(TEN_S + Duration::from_millis(1)).await;
    assert!(rx.try_recv().is_err(), "nothing changed, nobody is woken");

    fake.put("west", "b", 2);
    tokio::time::sleep(TEN_S).await;
    assert_eq!(rx.try_recv().unwrap(), key(1));
    assert!(rx.try_recv().is_err());

    // Deleted behind our back: the owner is woken and sees it gone.
    fake.remove("west", a);
    tokio::time::sleep(TEN_S).await;
    assert_eq!(rx.try_recv().unwrap(), key(0));
    let view = p.view(&key(0), &west, &a);
    assert!(view.held.is_none() && view.synced);
}

#[tokio::test(start_paused = true)]
async fn a_failed_poll_keeps_the_last_bundles_reports_the_error_and_wakes_objects() {
    let fake = Arc::new(Fake::default());
    let a = fake.put("west", "a", 1);
    let (p, mut rx, metrics) = poller(&fake, 10);
    let west = consumer("west");
    p.register(&key(0), &west, a, Pace::every(TEN_S));
    p.wait_polled(&west, TEN_S).await;
    let _ = p.view(&key(0), &west, &a);

    fake.fail.store(true, Ordering::SeqCst);
    tokio::time::sleep(TEN_S + Duration::from_millis(1)).await;
    assert_eq!(rx.try_recv().unwrap(), key(0));
    let view = p.view(&key(0), &west, &a);
    let error = view.error.unwrap();
    assert_eq!(error.reason, "MaestroUnavailable");
    assert!(
        error.message.contains("connection refused"),
        "{}",
        error.message
    );
    assert_eq!(view.held.unwrap().version, 1, "last known bundle kept");
    assert!(
        metrics.encode().contains(
            "maestro_operator_maestro_poll_errors_total{reason=\"MaestroUnavailable\"} 1"
        )
    );

    fake.fail.store(false, Ordering::SeqCst);
    tokio::time::sleep(TEN_S).await;
    assert_eq!(rx.try_recv().unwrap(), key(0), "recovery wakes it again");
    assert!(p.view(&key(0), &west, &a).error.is_none());
}

#[tokio::test(start_paused = true)]
async fn concurrent_refreshes_share_one_poll() {
    let fake = Arc::new(Fake::default());
    let a = fake.put("west", "a", 1);
    let (p, _rx, _) = poller(&fake, 10);
    let west = consumer("west");
    for i in 0..50 {
        p.register(&key(i), &west, a, Pace::every(Duration::from_secs(1800)));
    }
    p.wait_polled(&west, TEN_S).await;
    assert_eq!(fake.requests(), 1);
    fake.put("west", "a", 2);
    let refreshes = (0..50).map(|_| p.refresh(&west, TEN_S));
    futures::future::join_all(refreshes).await;
    assert_eq!(fake.requests(), 2, "50 forced refreshes, one poll");
    assert_eq!(p.view(&key(0), &west, &a).held.unwrap().version, 2);
}

#[tokio::test(start_paused = true)]
async fn a_stream_of_forced_refreshes_costs_one_poll_per_minimum_interval() {
    let fake = Arc::new(Fake::default());
    let a = fake.put("west", "a", 1);
    let metrics = Arc::new(Metrics::new());
    let (p, _rx) = Poller::new(fetcher(fake.clone()), 10, Duration::from_secs(5), metrics);
    let west = consumer("west");
    p.register(&key(0), &west, a, Pace::every(Duration::from_secs(1800)));
    p.wait_polled(&west, TEN_S).await;
    assert_eq!(fake.requests(), 1);
    // A refresh asked for every 100 ms for 20 s (a tenant pulsing
    // reconcile-requested-at): one poll per 5 s, not one per request.
    let started = tokio::time::Instant::now();
    let mut refreshes = Vec::new();
    for _ in 0..200 {
        let p = p.clone();
        let west = west.clone();
        refreshes.push(tokio::spawn(async move { p.refresh(&west, TEN_S).await }));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    futures::future::join_all(refreshes).await;
    let polls = fake.requests() - 1;
    let elapsed = started.elapsed().as_secs();
    assert!(
        polls <= elapsed / 5 + 1,
        "{polls} polls in {elapsed} s of forced refreshes"
    );
    assert!(polls >= 4, "refreshes still poll: {polls}");
}

#[tokio::test(start_paused = true)]
async fn our_own_write_is_not_undone_by_a_poll_that_read_before_it() {
    let fake = Arc::new(Fake::default());
    let (p, _rx, _) = poller(&fake, 10);
    let west = consumer("west");
    let id = ResourceId::for_work(&SourceId::new("test").unwrap(), "west", "a");
    let gate = Arc::new(Semaphore::new(0));
    *fake.gate.lock() = Some(gate.clone());
    p.register(&key(0), &west, id, Pace::every(TEN_S));
    tokio::time::sleep(Duration::from_millis(10)).await;
    // The first poll is in flight and will answer "no bundle"; meanwhile
    // we publish and record what we created.
    let created = fake.put("west", "a", 1);
    let bundle = fake.bundles.lock()["west"][0].clone();
    fake.remove("west", created);
    p.record(&west, id, Some(bundle));
    gate.add_permits(1);
    p.wait_polled(&west, TEN_S).await;
    assert!(p.view(&key(0), &west, &id).held.is_some());
}

#[tokio::test(start_paused = true)]
async fn the_poller_stops_with_its_last_object() {
    let fake = Arc::new(Fake::default());
    let a = fake.put("west", "a", 1);
    let (p, _rx, _) = poller(&fake, 10);
    let west = consumer("west");
    p.register(&key(0), &west, a, Pace::every(TEN_S));
    p.wait_polled(&west, TEN_S).await;
    p.unregister(&key(0), &west);
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(p.consumer_count(), 0);
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(fake.requests(), 1);
}

#[tokio::test(start_paused = true)]
async fn an_object_that_no_longer_exists_is_forgotten() {
    let fake = Arc::new(Fake::default());
    let a = fake.put("west", "a", 1);
    let (p, _rx, _) = poller(&fake, 10);
    let west = consumer("west");
    p.register(&key(0), &west, a, Pace::every(TEN_S));
    p.register(&key(1), &west, a, Pace::every(Duration::from_secs(1)));
    p.wait_polled(&west, TEN_S).await;
    // key(1) was deleted without a final reconcile (its finalizer removed
    // by hand): only the cache knows.
    p.set_liveness(Arc::new(|k: &ObjectRef<MaestroApply>| *k != key(1)));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let before = fake.requests();
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(fake.requests(), before, "the 1 s pace went with key(1)");
    p.set_liveness(Arc::new(|_: &ObjectRef<MaestroApply>| false));
    tokio::time::sleep(TEN_S + Duration::from_millis(1)).await;
    assert_eq!(p.consumer_count(), 0);
}

#[tokio::test(start_paused = true)]
async fn the_cache_keeps_the_report_and_the_manifest_count_not_the_manifests() {
    let fake = Arc::new(Fake::default());
    let a = fake.put("west", "a", 1);
    let (p, _rx, _) = poller(&fake, 10);
    let west = consumer("west");
    p.register(&key(0), &west, a, Pace::every(TEN_S));
    p.wait_polled(&west, TEN_S).await;
    let mut big = p.view(&key(0), &west, &a).held.unwrap().as_ref().clone();
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
    p.record(&west, a, Some(big));
    let cached = p.view(&key(0), &west, &a).held.unwrap();
    assert_eq!(cached.manifest_count, 3, "the count stays");
    assert!(cached.work.is_none(), "the manifests are dropped");
    assert_eq!(cached.version, 1);
}

#[tokio::test(start_paused = true)]
async fn polls_working_again_call_the_recovery_hook_once() {
    let fake = Arc::new(Fake::default());
    let a = fake.put("west", "a", 1);
    let (p, _rx, _) = poller(&fake, 10);
    let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = calls.clone();
    p.set_on_recovery(Arc::new(move || {
        counter.fetch_add(1, Ordering::SeqCst);
    }));
    let west = consumer("west");
    fake.fail.store(true, Ordering::SeqCst);
    p.register(&key(0), &west, a, Pace::every(TEN_S));
    p.wait_polled(&west, TEN_S).await;
    tokio::time::sleep(TEN_S * 3).await;
    assert_eq!(calls.load(Ordering::SeqCst), 0, "still failing");
    fake.fail.store(false, Ordering::SeqCst);
    tokio::time::sleep(TEN_S * 3).await;
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "once, on the first good poll"
    );
}

/// A status event of the stream: the agent's report of `id` at bundle
/// version `version` with sequence ID `seq`.
fn event(consumer: &str, id: ResourceId, version: i64, seq: u64, deleted: bool) -> StatusEvent {
    let condition = if deleted { "Deleted" } else { "Applied" };
    let work: crate::manifestwork::ManifestWork = serde_json::from_value(json!({
        "apiVersion": "work.open-cluster-management.io/v1",
        "kind": "ManifestWork",
        "metadata": {"namespace": consumer},
        "spec": {},
        "status": {"conditions": [{
            "type": condition, "status": "True", "reason": "Test", "message": format!("report {seq}"),
            "lastTransitionTime": "2026-01-01T00:00:00Z",
        }]},
    }))
    .unwrap();
    StatusEvent {
        resource_id: id,
        resource_version: version,
        sequence_id: Some(seq.to_string()),
        status_hash: None,
        cluster_name: Some(consumer.to_string()),
        deleted,
        work,
        time: None,
    }
}

fn sequence(p: &Poller, key: &ObjectRef<MaestroApply>, id: ResourceId) -> Option<u128> {
    let view = p.view(key, &consumer("west"), &id);
    view.held?.report.as_ref().and_then(|r| r.sequence)
}

fn woken(
    rx: &mut mpsc::UnboundedReceiver<ObjectRef<MaestroApply>>,
) -> Vec<ObjectRef<MaestroApply>> {
    std::iter::from_fn(|| rx.try_recv().ok()).collect()
}

#[tokio::test(start_paused = true)]
async fn a_stream_report_wakes_only_its_object_and_older_or_repeated_ones_change_nothing() {
    let fake = Arc::new(Fake::default());
    let a = fake.put("west", "a", 2);
    let b = fake.put("west", "b", 1);
    let (p, mut rx, metrics) = poller(&fake, 10);
    let west = consumer("west");
    p.register(&key(0), &west, a, Pace::every(TEN_S));
    p.register(&key(1), &west, b, Pace::every(TEN_S));
    p.wait_polled(&west, TEN_S).await;
    let _ = (sequence(&p, &key(0), a), sequence(&p, &key(1), b));

    // Reordered and duplicated: 120 arrives before 110, and twice; a report
    // of the older version 1 arrives last with the largest sequence ID.
    let outcomes: Vec<_> = [(2, 100), (2, 120), (2, 110), (2, 120), (2, 100), (1, 900)]
        .into_iter()
        .map(|(version, seq)| p.apply_event(&event("west", a, version, seq, false)))
        .collect();
    use EventOutcome::*;
    assert_eq!(outcomes, [Applied, Applied, Stale, Stale, Stale, Stale]);
    assert_eq!(sequence(&p, &key(0), a), Some(120));
    assert_eq!(
        woken(&mut rx),
        [key(0), key(0)],
        "only a's object, once per newer report"
    );
    assert_eq!(metrics.status_updates("stream"), 2);

    // Another consumer's report, and one of a bundle nobody wants.
    assert_eq!(p.apply_event(&event("east", a, 2, 200, false)), Ignored);
    let stranger = ResourceId::for_work(&SourceId::new("test").unwrap(), "west", "zz");
    assert_eq!(
        p.apply_event(&event("west", stranger, 1, 200, false)),
        Ignored
    );
    assert!(woken(&mut rx).is_empty());
}

/// Starts a poll of `consumer` and holds it at its first request until
/// the gate gets permits; the task ends with the poll.
async fn held_refresh(
    fake: &Fake,
    p: &Poller,
    consumer: &ConsumerName,
) -> (Arc<Semaphore>, tokio::task::JoinHandle<()>) {
    let gate = Arc::new(Semaphore::new(0));
    *fake.gate.lock() = Some(gate.clone());
    let refresh = tokio::spawn({
        let p = p.clone();
        let consumer = consumer.clone();
        async move { p.refresh(&consumer, TEN_S).await }
    });
    tokio::time::sleep(Duration::from_secs(2)).await;
    (gate, refresh)
}

#[tokio::test(start_paused = true)]
async fn a_poll_that_read_before_a_stream_report_does_not_undo_it() {
    let fake = Arc::new(Fake::default());
    let a = fake.put("west", "a", 1);
    let (p, _rx, _) = poller(&fake, 10);
    let west = consumer("west");
    p.register(&key(0), &west, a, Pace::every(TEN_S));
    p.wait_polled(&west, TEN_S).await;
    assert_eq!(
        p.apply_event(&event("west", a, 1, 100, false)),
        EventOutcome::Applied
    );

    // A poll reads (the agent's report is not in the listing) and is held;
    // a newer report arrives meanwhile.
    let (gate, refresh) = held_refresh(&fake, &p, &west).await;
    assert_eq!(
        p.apply_event(&event("west", a, 1, 110, false)),
        EventOutcome::Applied
    );
    gate.add_permits(10);
    refresh.await.unwrap();
    assert_eq!(sequence(&p, &key(0), a), Some(110));

    // A later poll that lists an older report keeps the newer one too.
    *fake.gate.lock() = None;
    fake.bundles.lock().get_mut("west").unwrap()[0].report = Some(AgentReport {
        observed_version: 1,
        sequence: Some(105),
        ..AgentReport::default()
    });
    p.refresh(&west, TEN_S).await;
    assert_eq!(sequence(&p, &key(0), a), Some(110));
}

#[tokio::test(start_paused = true)]
async fn a_report_that_beats_our_read_back_is_kept_until_the_bundle_is_recorded() {
    let fake = Arc::new(Fake::default());
    let (p, _rx, _) = poller(&fake, 10);
    let west = consumer("west");
    let id = ResourceId::for_work(&SourceId::new("test").unwrap(), "west", "a");
    p.register(&key(0), &west, id, Pace::every(TEN_S));
    p.wait_polled(&west, TEN_S).await;
    // We create the work; the agent's report comes before our read-back.
    fake.put("west", "a", 1);
    assert_eq!(
        p.apply_event(&event("west", id, 1, 100, false)),
        EventOutcome::Early
    );
    let read_back = fake.bundles.lock()["west"][0].clone();
    p.record(&west, id, Some(read_back));
    assert_eq!(sequence(&p, &key(0), id), Some(100));
}

#[tokio::test(start_paused = true)]
async fn the_agents_deleted_report_removes_the_bundle_once() {
    let fake = Arc::new(Fake::default());
    let a = fake.put("west", "a", 1);
    let (p, mut rx, _) = poller(&fake, 10);
    let west = consumer("west");
    p.register(&key(0), &west, a, Pace::every(TEN_S));
    p.wait_polled(&west, TEN_S).await;
    let _ = p.view(&key(0), &west, &a);
    assert_eq!(
        p.apply_event(&event("west", a, 1, 100, true)),
        EventOutcome::Applied
    );
    assert_eq!(woken(&mut rx), [key(0)]);
    let view = p.view(&key(0), &west, &a);
    assert!(view.held.is_none() && view.synced);
    assert_eq!(
        p.apply_event(&event("west", a, 1, 100, true)),
        EventOutcome::Stale
    );
    assert!(woken(&mut rx).is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_burst_of_reports_wakes_an_object_once_per_window() {
    let fake = Arc::new(Fake::default());
    let a = fake.put("west", "a", 1);
    let (p, mut rx, _) = poller(&fake, 10);
    p.set_wake_window(Duration::from_millis(250));
    let west = consumer("west");
    p.register(&key(0), &west, a, Pace::every(TEN_S));
    p.wait_polled(&west, TEN_S).await;
    let _ = p.view(&key(0), &west, &a);
    for seq in 101..=120 {
        p.apply_event(&event("west", a, 1, seq, false));
        // The object reconciles at once when woken, as the controller does.
        if rx.try_recv().is_ok() {
            let _ = p.view(&key(0), &west, &a);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // The first report woke it at once; the nineteen after it, all within
    // its 250 ms window, cost one more wake when the window ends.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let later = woken(&mut rx).len();
    assert_eq!(later, 1, "one held wake covers the rest of the burst");
    assert_eq!(sequence(&p, &key(0), a), Some(120));
}

#[tokio::test(start_paused = true)]
async fn while_the_stream_is_healthy_polls_are_a_safety_net_and_its_loss_brings_them_back() {
    let fake = Arc::new(Fake::default());
    let a = fake.put("west", "a", 1);
    let (p, _rx, _) = poller(&fake, 10);
    let west = consumer("west");
    let pace = Pace {
        polled: TEN_S,
        stream_down: TEN_S,
        stream_up: Duration::from_secs(1800),
    };
    p.register(&key(0), &west, a, pace);
    p.stream_down();
    p.wait_polled(&west, TEN_S).await;
    assert_eq!(fake.requests(), 1);

    // Subscribed: one resync now, then nothing for the 30 min interval.
    p.stream_up();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(fake.requests(), 2, "the resync after subscribing");
    tokio::time::sleep(Duration::from_secs(600)).await;
    assert_eq!(fake.requests(), 2, "no pollInterval polls while healthy");

    // Lost: the pollInterval pace at once (the last poll is long past).
    p.stream_down();
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(fake.requests(), 3);
    tokio::time::sleep(TEN_S * 3).await;
    assert_eq!(fake.requests(), 6);

    // Back: resync, then quiet again.
    p.stream_up();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(fake.requests(), 7);
    tokio::time::sleep(Duration::from_secs(600)).await;
    assert_eq!(fake.requests(), 7);
}

/// A bundle as Maestro serves it once its deletion was requested.
fn deleting(fake: &Fake, consumer: &str, id: ResourceId) -> HeldWork {
    let mut all = fake.bundles.lock();
    let bundle = all
        .get_mut(consumer)
        .and_then(|list| list.iter_mut().find(|b| b.id == id))
        .unwrap();
    bundle.deleting_since = Some(Utc::now());
    bundle.clone()
}

#[tokio::test(start_paused = true)]
async fn a_deletion_confirmed_while_uncached_is_not_undone_by_an_earlier_read() {
    let fake = Arc::new(Fake::default());
    let (p, _rx, _) = poller(&fake, 10);
    let west = consumer("west");
    let id = ResourceId::for_work(&SourceId::new("test").unwrap(), "west", "a");
    // The poll's pages missed the row (rows deleted between pages shift it).
    p.register(&key(0), &west, id, Pace::every(TEN_S));
    p.wait_polled(&west, TEN_S).await;
    fake.put("west", "a", 3);
    let read = deleting(&fake, "west", id);
    // The agent confirms before our direct read is recorded.
    fake.remove("west", id);
    assert_eq!(
        p.apply_event(&event("west", id, 3, 100, true)),
        EventOutcome::Early
    );
    p.record(&west, id, Some(read));
    let view = p.view(&key(0), &west, &id);
    assert!(view.held.is_none(), "the confirmed deletion stands");
}

#[tokio::test(start_paused = true)]
async fn a_poll_that_read_a_deleting_bundle_before_its_confirmation_does_not_bring_it_back() {
    let fake = Arc::new(Fake::default());
    let (p, _rx, _) = poller(&fake, 10);
    let west = consumer("west");
    let id = ResourceId::for_work(&SourceId::new("test").unwrap(), "west", "a");
    p.register(&key(0), &west, id, Pace::every(TEN_S));
    p.wait_polled(&west, TEN_S).await;
    fake.put("west", "a", 3);
    deleting(&fake, "west", id);
    // A poll lists the deleting bundle and is held; the confirmation of a
    // bundle not cached yet arrives meanwhile.
    let (gate, refresh) = held_refresh(&fake, &p, &west).await;
    assert_eq!(
        p.apply_event(&event("west", id, 3, 100, true)),
        EventOutcome::Early
    );
    gate.add_permits(10);
    refresh.await.unwrap();
    assert!(p.view(&key(0), &west, &id).held.is_none());
}

#[tokio::test(start_paused = true)]
async fn a_work_created_again_after_a_confirmed_deletion_is_kept() {
    let fake = Arc::new(Fake::default());
    let (p, _rx, _) = poller(&fake, 10);
    let west = consumer("west");
    let id = ResourceId::for_work(&SourceId::new("test").unwrap(), "west", "a");
    p.register(&key(0), &west, id, Pace::every(TEN_S));
    p.wait_polled(&west, TEN_S).await;
    assert_eq!(
        p.apply_event(&event("west", id, 3, 100, true)),
        EventOutcome::Early
    );
    // Not deleting, so not the confirmed one: a new work under that ID.
    fake.put("west", "a", 1);
    let created = fake.bundles.lock()["west"][0].clone();
    p.record(&west, id, Some(created));
    assert!(p.view(&key(0), &west, &id).held.is_some());
}
