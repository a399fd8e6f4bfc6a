//! Leader fencing on the real local stack: a leader cut off from the API
//! server while Maestro stays reachable must stop writing to Maestro by
//! its own lease deadline and step down, so the new leader's spec is the
//! only one published.
//!
//! Replica A reaches the API server through a TCP proxy (a kubeconfig copy
//! whose server is the proxy; the API server's certificate names
//! 127.0.0.1, so TLS passes through unchanged); replica B connects
//! directly. With A leading and the object Ready, the proxy goes down
//! (connections refused) or hangs (connections open, nothing passes), the
//! spec changes through the API server, and then: A exits non-zero
//! without waiting for the API server, B takes over and publishes the new
//! spec, and the bundle's version shows exactly one publish after the
//! partition, B's, for the next 30 s.

mod support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;
use support::operator::*;

const LEASE_DURATION: Duration = Duration::from_secs(6);
/// How long the bundle is watched after B's update for any other publish.
const WATCH: Duration = Duration::from_secs(30);

#[derive(Clone, Copy, Debug)]
enum Partition {
    /// Connections refused and cut.
    Refused,
    /// Connections open, nothing passes: requests hang.
    Hanging,
}

/// One sample of A's /metrics: leader gauge and publishes so far.
#[derive(Clone, Copy, Debug)]
struct Sample {
    at: Instant,
    leader: f64,
    publishes: f64,
}

fn parse_sample(text: &str) -> Option<(f64, f64)> {
    let value = |l: &str| l.rsplit(' ').next()?.trim().parse::<f64>().ok();
    let leader = text
        .lines()
        .find(|l| l.starts_with("maestro_operator_leader "))
        .and_then(value)?;
    let publishes = text
        .lines()
        .filter(|l| l.starts_with("maestro_operator_maestro_publishes_total"))
        .filter_map(value)
        .sum();
    Some((leader, publishes))
}

/// Scrapes `address` every 100 ms until it stops answering.
fn sample_metrics(address: std::net::SocketAddr) -> Arc<Mutex<Vec<Sample>>> {
    let samples = Arc::new(Mutex::new(Vec::new()));
    let out = samples.clone();
    tokio::spawn(async move {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_millis(500))
            .build()
            .unwrap();
        let mut failures = 0;
        while failures < 20 {
            let text = match http.get(format!("http://{address}/metrics")).send().await {
                Ok(r) => r.text().await.ok(),
                Err(_) => None,
            };
            match text.as_deref().and_then(parse_sample) {
                Some((leader, publishes)) => {
                    failures = 0;
                    out.lock().unwrap().push(Sample {
                        at: Instant::now(),
                        leader,
                        publishes,
                    });
                }
                None => failures += 1,
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    samples
}

async fn is_leader(op: &Operator) -> bool {
    op.metric("maestro_operator_leader").await == 1.0
}

async fn wait_until<F: std::future::Future<Output = bool>>(
    what: &str,
    within: Duration,
    mut check: impl FnMut() -> F,
) {
    let deadline = Instant::now() + within;
    while !check().await {
        assert!(Instant::now() < deadline, "{what}: not within {within:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn web_spec(ns: &str, value: &str) -> serde_json::Value {
    let mut s = spec(WEST, vec![configmap(ns, "web", json!({"value": value}))]);
    // A short resync: the cut-off leader of the issue republished its
    // cached spec on each one.
    s["interval"] = json!("10s");
    s
}

async fn the_bundle(ns: &TestNs) -> maestro_operator::maestro::rest::ResourceBundle {
    let live = ns.live_bundles().await;
    assert_eq!(live.len(), 1, "one bundle: {live:?}");
    live.into_iter().next().unwrap()
}

fn carries(bundle: &maestro_operator::maestro::rest::ResourceBundle, value: &str) -> bool {
    serde_json::to_string(&bundle.manifests)
        .unwrap_or_default()
        .contains(&format!("\"value\":\"{value}\""))
}

async fn cut_off_leader_steps_down_and_publishes_nothing(partition: Partition) {
    let ns = TestNs::new("op-fence").await;
    let lease = unique("lease");
    let duration = format!("{}s", LEASE_DURATION.as_secs());
    let args = ns.leader_election(&lease, &duration);
    let (kubeconfig, api_proxy) = kubeconfig_through_proxy(&ns.name).await;
    let mut a = Operator::start_with_kubeconfig(&ns.name, &ns.source, kubeconfig, &args).await;
    wait_until("A leads", Duration::from_secs(30), || is_leader(&a)).await;
    let b = ns.operator(&args).await;
    b.wait_ready().await;
    assert!(!is_leader(&b).await, "B is the standby");

    ns.apply("web", web_spec(&ns.name, "old-spec")).await;
    ns.wait_ready("web").await;
    let before = the_bundle(&ns).await;
    assert!(carries(&before, "old-spec"));
    assert_eq!(b.metric("maestro_operator_reconciles_total").await, 0.0);

    let samples = sample_metrics(a.address);
    tokio::time::sleep(Duration::from_millis(300)).await;
    match partition {
        Partition::Refused => api_proxy.set_down(true),
        Partition::Hanging => api_proxy.set_hanging(),
    }
    let cut = Instant::now();
    ns.apply("web", web_spec(&ns.name, "new-spec")).await;

    // A steps down by itself, long before the API server comes back (it
    // never does in this test).
    wait_until("A exits", Duration::from_secs(20), || {
        let exited = a.exit_status().is_some();
        async move { exited }
    })
    .await;
    let a_exited = cut.elapsed();
    let status = a.exit_status().unwrap();
    assert!(
        !status.success(),
        "A exits non-zero to restart as a standby: {status}"
    );
    let log = a.log_text();
    assert!(log.contains("the leader lease ended"), "A's log:\n{log}");

    wait_until("B leads", Duration::from_secs(30), || is_leader(&b)).await;
    let b_leads = cut.elapsed();
    let deadline = Instant::now() + Duration::from_secs(60);
    let after = loop {
        let bundle = the_bundle(&ns).await;
        if carries(&bundle, "new-spec") {
            break bundle;
        }
        assert!(
            Instant::now() < deadline,
            "B never published the new spec: {bundle:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let b_published = cut.elapsed();
    assert_eq!(
        after.version,
        before.version + 1,
        "exactly one publish since the cut (B's update)"
    );
    ns.wait_ready("web").await;

    // Whatever A still had cached, nothing of it reaches Maestro.
    let watch_until = Instant::now() + WATCH;
    while Instant::now() < watch_until {
        let bundle = the_bundle(&ns).await;
        assert_eq!(bundle.version, after.version, "another publish: {bundle:?}");
        assert!(carries(&bundle, "new-spec"), "{bundle:?}");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }

    let samples = samples.lock().unwrap().clone();
    let at_cut = samples
        .iter()
        .rev()
        .find(|s| s.at <= cut)
        .expect("A's metrics before the cut");
    assert_eq!(at_cut.leader, 1.0);
    let later: Vec<&Sample> = samples.iter().filter(|s| s.at > cut).collect();
    for s in &later {
        assert_eq!(
            s.publishes, at_cut.publishes,
            "A published after the cut: {samples:?}"
        );
    }
    let a_leader_off = later.iter().find(|s| s.leader == 0.0).map(|s| s.at - cut);
    eprintln!(
        "{partition:?}: A reported leader=0 after {a_leader_off:?}, exited {a_exited:?} after the cut; \
         B led after {b_leads:?} and published after {b_published:?}; \
         bundle version {} before, {} after, unchanged for {WATCH:?}; \
         A's publishes: {} at the cut, {} at its last sample",
        before.version,
        after.version,
        at_cut.publishes,
        later.last().map_or(at_cut.publishes, |s| s.publishes),
    );
    // The deadline is at most lease duration - margin (4 s) after the cut;
    // then a short grace for the controller to stop.
    assert!(
        a_exited < LEASE_DURATION + Duration::from_secs(4),
        "A took {a_exited:?} to exit"
    );
    ns.cleanup().await;
}

#[tokio::test]
async fn a_leader_refused_by_the_api_server_stops_publishing_at_its_lease_deadline() {
    cut_off_leader_steps_down_and_publishes_nothing(Partition::Refused).await;
}

#[tokio::test]
async fn a_leader_whose_api_server_hangs_stops_publishing_at_its_lease_deadline() {
    cut_off_leader_steps_down_and_publishes_nothing(Partition::Hanging).await;
}
