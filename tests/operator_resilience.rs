//! The operator under failure, on the real local stack: Maestro out of
//! reach for a minute, the operator killed in the middle of a deletion,
//! leader election with the leader killed, graceful shutdown, and what
//! status reads cost.

mod support;

use std::time::{Duration, Instant};

use maestro_operator::controller::crd::MaestroApply;
use serde_json::json;
use support::operator::*;

fn ready_at(o: &MaestroApply, version: i64) -> bool {
    o.status
        .as_ref()
        .is_some_and(|s| s.is_ready() && s.bundle_version == Some(version))
}

#[tokio::test]
async fn maestro_out_of_reach_for_a_minute_is_reported_then_everything_converges() {
    let ns = TestNs::new("op-outage").await;
    let grpc = Proxy::start(&grpc_endpoint()).await;
    let http = Proxy::start(&http_endpoint()).await;
    let op = Operator::start_via(&ns.name, &ns.source, &grpc.url(), &http.url(), &[]).await;
    let fast = |value: &str, name: &str| {
        let mut s = spec(
            WEST,
            vec![configmap(&ns.name, name, json!({"value": value}))],
        );
        s["interval"] = json!("2s");
        s
    };
    ns.apply("a", fast("one", "a")).await;
    ns.apply("b", fast("one", "b")).await;
    ns.wait_ready("a").await;
    ns.wait_ready("b").await;

    grpc.set_down(true);
    http.set_down(true);
    let down_since = Instant::now();
    let obj = ns
        .wait_condition("b", "Ready", "Unknown", "MaestroUnavailable")
        .await;
    let ready = obj.status.as_ref().unwrap().condition("Ready").unwrap();
    assert!(
        ready
            .message
            .contains("cannot read the status from Maestro"),
        "{}",
        ready.message
    );
    // A change meanwhile cannot be published; the condition says why.
    ns.apply("a", fast("two", "a")).await;
    let obj = ns
        .wait_condition("a", "Ready", "False", "MaestroUnavailable")
        .await;
    let status = obj.status.unwrap();
    assert_eq!(
        status.condition("Reconciling").unwrap().reason,
        "MaestroUnavailable"
    );
    assert_eq!(status.observed_generation, Some(2));

    let publish_errors = |text: &str| -> f64 {
        text.lines()
            .filter(|l| l.starts_with("maestro_operator_maestro_publish_errors_total{"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    let errors_early = publish_errors(&op.metrics().await);
    tokio::time::sleep(Duration::from_secs(60).saturating_sub(down_since.elapsed())).await;
    let errors_late = publish_errors(&op.metrics().await);
    // Backoff per object: a handful of retries in a minute, not a loop.
    assert!(
        errors_late - errors_early <= 10.0,
        "{} failed publishes in a minute",
        errors_late - errors_early
    );

    grpc.set_down(false);
    http.set_down(false);
    let back = Instant::now();
    let a = ns
        .wait_until("a", "updated after the outage", |o| ready_at(o, 2))
        .await;
    // Objects in backoff (grown to tens of seconds over the minute) are
    // woken by the first poll that works again: the change is delivered
    // within a couple of poll intervals of Maestro's return, plus the
    // agent's apply and report, not at each object's next retry.
    let converged = back.elapsed();
    eprintln!("converged {converged:?} after Maestro came back");
    assert!(
        converged < Duration::from_secs(20),
        "converged only {converged:?} after Maestro came back"
    );
    assert_eq!(
        a.status.unwrap().condition("Ready").unwrap().reason,
        "Available"
    );
    ns.wait_until("b", "ready again", |o| ready_at(o, 1)).await;
    ns.wait_configmap("a", "updated", |cm| {
        cm.and_then(|c| c.data.as_ref()?.get("value").cloned())
            .as_deref()
            == Some("two")
    })
    .await;
    // Exactly one bundle per object: nothing lost, nothing duplicated.
    let live = ns.live_bundles().await;
    let mut names: Vec<_> = live.iter().filter_map(|b| b.work_name()).collect();
    names.sort();
    assert_eq!(names, ["a", "b"]);
    ns.cleanup().await;
}

#[tokio::test]
async fn a_deletion_interrupted_by_killing_the_operator_completes_after_restart() {
    let ns = TestNs::new("op-killdel").await;
    let mut op = ns.operator(&[]).await;
    ns.apply(
        "web",
        spec(WEST, vec![configmap(&ns.name, "cm", json!({"value": "x"}))]),
    )
    .await;
    ns.wait_ready("web").await;

    op.kill().await;
    ns.delete("web").await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let stuck = ns.get("web").await.expect("the finalizer holds the object");
    assert!(stuck.metadata.deletion_timestamp.is_some());
    assert_eq!(
        ns.live_bundles().await.len(),
        1,
        "nobody deleted the bundle yet"
    );

    op.restart().await;
    ns.wait_gone("web").await;
    assert!(bundles(&ns.source).await.is_empty());
    ns.wait_configmap("cm", "removed", |cm| cm.is_none()).await;
    ns.cleanup().await;
}

async fn leader_of(ops: &[&Operator]) -> Vec<usize> {
    let mut leaders = Vec::new();
    for (i, op) in ops.iter().enumerate() {
        if op.metric("maestro_operator_leader").await == 1.0 {
            leaders.push(i);
        }
    }
    leaders
}

async fn wait_leader(ops: &[&Operator], within: Duration) -> usize {
    let deadline = Instant::now() + within;
    loop {
        let leaders = leader_of(ops).await;
        assert!(leaders.len() <= 1, "two leaders at once: {leaders:?}");
        if let [one] = leaders[..] {
            return one;
        }
        assert!(Instant::now() < deadline, "no leader within {within:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn with_two_replicas_only_the_leader_reconciles_and_the_other_takes_over() {
    let ns = TestNs::new("op-leader").await;
    let lease = unique("lease");
    let args = ns.leader_election(&lease, "6s");
    let mut first = ns.operator(&args).await;
    let mut second = ns.operator(&args).await;
    first.wait_ready().await;
    second.wait_ready().await;
    let leader = wait_leader(&[&first, &second], Duration::from_secs(30)).await;
    ns.apply(
        "one",
        spec(
            WEST,
            vec![configmap(&ns.name, "one", json!({"value": "x"}))],
        ),
    )
    .await;
    ns.wait_ready("one").await;
    let (leading, standby) = if leader == 0 {
        (&mut first, &mut second)
    } else {
        (&mut second, &mut first)
    };
    assert_eq!(
        standby.metric("maestro_operator_reconciles_total").await,
        0.0
    );

    // The leader dies without releasing the Lease: the standby waits for it
    // to expire (6 s), then leads.
    leading.kill().await;
    let killed_at = Instant::now();
    wait_leader(&[&*standby], Duration::from_secs(30)).await;
    let takeover = killed_at.elapsed();
    ns.apply(
        "two",
        spec(
            WEST,
            vec![configmap(&ns.name, "two", json!({"value": "y"}))],
        ),
    )
    .await;
    ns.wait_ready("two").await;
    assert!(standby.metric("maestro_operator_reconciles_total").await > 0.0);
    eprintln!("standby took over {takeover:?} after the leader was killed");

    // A graceful stop releases the Lease: the restarted replica takes over
    // well before the lease would expire.
    leading.restart().await;
    leading.wait_ready().await;
    assert_eq!(leading.metric("maestro_operator_leader").await, 0.0);
    let status = standby.terminate().await;
    assert!(status.success(), "SIGTERM exits cleanly: {status}");
    let stopped_at = Instant::now();
    wait_leader(&[&*leading], Duration::from_secs(30)).await;
    assert!(
        stopped_at.elapsed() < Duration::from_secs(6),
        "took {:?}: the Lease was not released",
        stopped_at.elapsed()
    );
    ns.cleanup().await;
}

#[tokio::test]
async fn sigterm_stops_the_operator_cleanly() {
    let ns = TestNs::new("op-sigterm").await;
    let mut op = ns.operator(&[]).await;
    op.wait_ready().await;
    let status = op.terminate().await;
    assert!(status.success(), "{status}");
    assert!(
        op.log_text().contains("controller stopped"),
        "{}",
        op.log_text()
    );
    ns.cleanup().await;
}

#[tokio::test]
async fn status_reads_cost_requests_per_consumer_and_page_not_per_object() {
    let ns = TestNs::new("op-cost").await;
    // Five bundles per page: 12 objects on west take 3 pages, 3 on east 1.
    let op = ns.operator(&["--maestro-page-size", "5"]).await;
    let fast = |consumer: &str, name: &str| {
        let mut s = spec(
            consumer,
            vec![configmap(&ns.name, name, json!({"value": "x"}))],
        );
        s["interval"] = json!("2s");
        s
    };
    let mut names = Vec::new();
    for i in 0..15 {
        let name = format!("obj-{i}");
        ns.apply(&name, fast(if i < 12 { WEST } else { EAST }, &name))
            .await;
        names.push(name);
    }
    for name in &names {
        ns.wait_ready(name).await;
    }
    let polls = op.metric("maestro_operator_maestro_polls_total").await;
    let requests = op
        .metric("maestro_operator_maestro_poll_requests_total")
        .await;
    tokio::time::sleep(Duration::from_secs(10)).await;
    let polls = op.metric("maestro_operator_maestro_polls_total").await - polls;
    let requests = op
        .metric("maestro_operator_maestro_poll_requests_total")
        .await
        - requests;
    eprintln!("10 s: {polls} polls, {requests} REST requests for 15 objects on 2 consumers");
    // Every 2 s each consumer is polled once: about 5 polls each.
    assert!((8.0..=12.0).contains(&polls), "{polls} polls");
    // West costs 3 requests, east 1: 2 on average, whatever the objects.
    let per_poll = requests / polls;
    assert!(
        (1.6..=2.4).contains(&per_poll),
        "{per_poll} requests per poll"
    );
    ns.cleanup().await;
}

#[tokio::test]
async fn a_watch_failing_past_its_limit_fails_liveness() {
    let ns = TestNs::new("op-watchfail").await;
    let (kubeconfig, api) = kubeconfig_through_proxy(&ns.name).await;
    let op = Operator::start_with_kubeconfig(
        &ns.name,
        &ns.source,
        kubeconfig,
        &["--watch-failure-limit=5s"],
    )
    .await;
    op.wait_ready().await;
    let healthz = || async {
        reqwest::get(format!("http://{}/healthz", op.address))
            .await
            .map(|r| r.status().as_u16())
            .unwrap_or(0)
    };
    assert_eq!(healthz().await, 200);
    // The watch cannot reach the API server from now on.
    api.set_down(true);
    let deadline = Instant::now() + Duration::from_secs(60);
    while healthz().await != 503 {
        assert!(
            Instant::now() < deadline,
            "/healthz still answers 200 a minute into the watch failing; log:\n{}",
            op.log_text()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let text = reqwest::get(format!("http://{}/healthz", op.address))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.contains("watch has been failing"), "{text}");
    api.set_down(false);
    ns.cleanup().await;
}
