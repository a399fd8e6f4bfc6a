use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use serde_json::json;
use tokio::sync::Semaphore;

use super::*;
use crate::names::SourceId;

/// An in-memory Maestro listing: bundles per consumer, every request
/// counted, optionally failing or held at a gate.
#[derive(Default)]
struct Fake {
    bundles: Mutex<HashMap<String, Vec<ResourceBundle>>>,
    requests: AtomicU64,
    fail: AtomicBool,
    /// When set, each request waits for a permit.
    gate: Mutex<Option<Arc<Semaphore>>>,
}

impl Fake {
    fn put(&self, consumer: &str, work: &str, version: i64) -> ResourceId {
        let id = ResourceId::for_work(&SourceId::new("test").unwrap(), consumer, work);
        let bundle: ResourceBundle = serde_json::from_value(json!({
            "id": id.to_string(), "version": version, "consumer_name": consumer,
            "metadata": {"name": work},
        }))
        .unwrap();
        let mut all = self.bundles.lock().unwrap();
        let list = all.entry(consumer.to_string()).or_default();
        list.retain(|b| b.id != bundle.id);
        list.push(bundle);
        list.sort_by(|a, b| a.id.cmp(&b.id));
        id
    }

    fn remove(&self, consumer: &str, id: ResourceId) {
        let mut all = self.bundles.lock().unwrap();
        if let Some(list) = all.get_mut(consumer) {
            list.retain(|b| b.id != id.to_string());
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
            let gate = fake.gate.lock().unwrap().clone();
            if let Some(gate) = gate {
                gate.acquire().await.unwrap().forget();
            }
            fake.requests.fetch_add(1, Ordering::SeqCst);
            if fake.fail.load(Ordering::SeqCst) {
                return Err(crate::Error::Unavailable("connection refused".into()));
            }
            let all = fake.bundles.lock().unwrap();
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
    p.register(&key(0), &consumer("west"), west[0], TEN_S);
    p.register(&key(1), &consumer("east"), east[0], TEN_S);
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
        p.register(&key(i), &consumer(c), id, TEN_S);
    }
    let before = fake.requests();
    tokio::time::sleep(TEN_S + Duration::from_millis(1)).await;
    assert_eq!(fake.requests() - before, 4, "one cycle is still 4 requests");
    assert_eq!(metrics.poll_requests(), fake.requests());
    assert_eq!(p.consumer_count(), 2);

    // Another consumer adds its pages.
    let north = fake.put("north", "n0", 1);
    p.register(&key(5000), &consumer("north"), north, TEN_S);
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
    p.register(&key(0), &consumer("west"), id, Duration::from_secs(1800));
    p.wait_polled(&consumer("west"), TEN_S).await;
    assert_eq!(fake.requests(), 1);
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(
        fake.requests(),
        1,
        "a Ready object alone polls every 30 min"
    );
    // An object that is not Ready yet wants 10 s; the poller wakes for it.
    p.register(&key(1), &consumer("west"), id, TEN_S);
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
    p.register(&key(0), &west, a, TEN_S);
    p.register(&key(1), &west, b, TEN_S);
    p.wait_polled(&west, TEN_S).await;
    assert_eq!(p.view(&key(0), &west, &a).bundle.unwrap().version, 1);
    assert_eq!(p.view(&key(1), &west, &b).bundle.unwrap().version, 1);

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
    assert!(view.bundle.is_none() && view.synced);
}

#[tokio::test(start_paused = true)]
async fn a_failed_poll_keeps_the_last_bundles_reports_the_error_and_wakes_objects() {
    let fake = Arc::new(Fake::default());
    let a = fake.put("west", "a", 1);
    let (p, mut rx, metrics) = poller(&fake, 10);
    let west = consumer("west");
    p.register(&key(0), &west, a, TEN_S);
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
    assert_eq!(view.bundle.unwrap().version, 1, "last known bundle kept");
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
        p.register(&key(i), &west, a, Duration::from_secs(1800));
    }
    p.wait_polled(&west, TEN_S).await;
    assert_eq!(fake.requests(), 1);
    fake.put("west", "a", 2);
    let refreshes = (0..50).map(|_| p.refresh(&west, TEN_S));
    futures::future::join_all(refreshes).await;
    assert_eq!(fake.requests(), 2, "50 forced refreshes, one poll");
    assert_eq!(p.view(&key(0), &west, &a).bundle.unwrap().version, 2);
}

#[tokio::test(start_paused = true)]
async fn a_stream_of_forced_refreshes_costs_one_poll_per_minimum_interval() {
    let fake = Arc::new(Fake::default());
    let a = fake.put("west", "a", 1);
    let metrics = Arc::new(Metrics::new());
    let (p, _rx) = Poller::new(fetcher(fake.clone()), 10, Duration::from_secs(5), metrics);
    let west = consumer("west");
    p.register(&key(0), &west, a, Duration::from_secs(1800));
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
    *fake.gate.lock().unwrap() = Some(gate.clone());
    p.register(&key(0), &west, id, TEN_S);
    tokio::time::sleep(Duration::from_millis(10)).await;
    // The first poll is in flight and will answer "no bundle"; meanwhile
    // we publish and record what we created.
    let created = fake.put("west", "a", 1);
    let bundle = fake.bundles.lock().unwrap()["west"][0].clone();
    fake.remove("west", created);
    p.record(&west, id, Some(bundle));
    gate.add_permits(1);
    p.wait_polled(&west, TEN_S).await;
    assert!(p.view(&key(0), &west, &id).bundle.is_some());
}

#[tokio::test(start_paused = true)]
async fn the_poller_stops_with_its_last_object() {
    let fake = Arc::new(Fake::default());
    let a = fake.put("west", "a", 1);
    let (p, _rx, _) = poller(&fake, 10);
    let west = consumer("west");
    p.register(&key(0), &west, a, TEN_S);
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
    p.register(&key(0), &west, a, TEN_S);
    p.register(&key(1), &west, a, Duration::from_secs(1));
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
    p.register(&key(0), &west, a, TEN_S);
    p.wait_polled(&west, TEN_S).await;
    let mut big = p.view(&key(0), &west, &a).bundle.unwrap().as_ref().clone();
    big.manifests = vec![serde_json::json!({"data": "x".repeat(100_000)}); 3];
    p.record(&west, a, Some(big));
    let cached = p.view(&key(0), &west, &a).bundle.unwrap();
    assert_eq!(cached.manifests.len(), 3, "the count stays");
    assert!(cached.manifests.iter().all(serde_json::Value::is_null));
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
    p.register(&key(0), &west, a, TEN_S);
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
