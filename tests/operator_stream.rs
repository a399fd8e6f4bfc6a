//! The operator following Maestro's status stream, on the real local
//! stack: status within seconds although REST polls are ten minutes apart,
//! the stream cut by a proxy (fallback polls, truthful conditions, the
//! changes made meanwhile shown after), and Maestro out of reach as in a
//! restart (resubscribe, resync, nothing missed). Reordered and duplicated
//! events are unit tests of the poller (`src/controller/poller/tests.rs`).

mod support;

use std::time::{Duration, Instant};

use kube::api::{Patch, PatchParams};
use maestro_operator::controller::crd::MaestroApply;
use serde_json::{Value, json};
use support::operator::*;

fn is_ready(obj: &MaestroApply) -> bool {
    obj.status
        .as_ref()
        .is_some_and(|s| s.is_ready() && s.observed_generation == obj.metadata.generation)
}

/// A spec for `name` on west with the given intervals.
fn west(ns: &TestNs, name: &str, value: &str, poll: &str, interval: &str) -> Value {
    let mut s = spec(
        WEST,
        vec![configmap(&ns.name, name, json!({"value": value}))],
    );
    s["pollInterval"] = json!(poll);
    s["interval"] = json!(interval);
    s
}

/// Edits the delivered ConfigMap on the cluster, as someone with access to
/// it would: the agent's feedback reports the new value.
async fn edit_delivered(ns: &TestNs, name: &str, value: &str) {
    let patch = json!({"data": {"value": value}});
    ns.configmaps()
        .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap_or_else(|e| panic!("edit ConfigMap {name}: {e}"));
}

/// Edits `name`'s delivered ConfigMap to `value` and waits until Maestro
/// holds the agent's report of it, reading Maestro directly (not through
/// the operator). The agent re-applies each work now and then (OCM's
/// resync, every 4 to 6 minutes), which puts the manifest's value back
/// before its next status sync may have seen the edit: then the edit is
/// made again, and said.
async fn edit_until_reported(ns: &TestNs, name: &str, value: &str) {
    edit_delivered(ns, name, value).await;
    let started = Instant::now();
    loop {
        let statuses: Vec<String> = bundles(&ns.source)
            .await
            .iter()
            .filter_map(|b| b.status.as_ref())
            .map(|s| serde_json::to_string(&s.resource_status).unwrap_or_default())
            .collect();
        if statuses.iter().any(|t| t.contains(value)) {
            eprintln!("the agent reported {value:?} after {:?}", started.elapsed());
            return;
        }
        let on_cluster = ns
            .configmaps()
            .get_opt(name)
            .await
            .expect("get ConfigMap")
            .and_then(|cm| cm.data?.get("value").cloned());
        assert!(
            started.elapsed() < DEADLINE,
            "the agent never reported {value:?} within {DEADLINE:?}; the ConfigMap holds {on_cluster:?}; \
             Maestro holds:\n{}",
            statuses.join("\n")
        );
        if on_cluster.as_deref() != Some(value) {
            eprintln!(
                "the ConfigMap holds {on_cluster:?}, not {value:?}: the agent re-applied it; editing again"
            );
            edit_delivered(ns, name, value).await;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn wait_metric(op: &Operator, sample: &str, what: &str, check: impl Fn(f64) -> bool) {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let value = metric_or_zero(op, sample).await;
        if check(value) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{sample} not {what} within {DEADLINE:?}: {value}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A sample's value, 0 while the operator has not recorded it yet.
async fn metric_or_zero(op: &Operator, sample: &str) -> f64 {
    op.metric_opt(sample).await.unwrap_or(0.0)
}

const STREAM_UP: &str = "maestro_operator_status_stream_up";
const POLLS: &str = "maestro_operator_maestro_polls_total";
const FROM_STREAM: &str = "maestro_operator_status_updates_total{source=\"stream\"}";
fn stream_events(outcome: &str) -> String {
    format!("maestro_operator_status_stream_events_total{{outcome=\"{outcome}\"}}")
}
const FROM_POLL: &str = "maestro_operator_status_updates_total{source=\"poll\"}";

/// Waits until `name`'s feedback reads `value`, checking every 100 ms;
/// returns how long that took. Fails if Ready was ever not True meanwhile.
async fn wait_feedback_staying_ready(ns: &TestNs, name: &str, value: &str) -> Duration {
    let started = Instant::now();
    loop {
        let obj = ns.get(name).await.expect("the object exists");
        assert!(
            is_ready(&obj),
            "{name} left Ready while waiting for feedback {value:?}:\n{}",
            serde_norway::to_string(&obj.status).unwrap_or_default()
        );
        if feedback(&obj, 0).as_deref() == Some(value) {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < DEADLINE,
            "{name} never reported feedback {value:?}; last {:?}",
            feedback(&obj, 0)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn status_arrives_through_the_stream_within_seconds_with_polls_ten_minutes_apart() {
    let ns = TestNs::new("op-stream").await;
    let op = ns.operator(&[]).await;
    wait_metric(&op, STREAM_UP, "1", |v| v == 1.0).await;

    let mut from_apply = Vec::new();
    let mut from_agent = Vec::new();
    for i in 0..5 {
        let name = format!("s{i}");
        let applied = Instant::now();
        ns.apply(&name, west(&ns, &name, "one", "10m", "30m")).await;
        // From outside the operator: when the agent's object appears, and
        // when the MaestroApply turns Ready.
        let mut delivered = None;
        loop {
            if delivered.is_none()
                && ns
                    .configmaps()
                    .get_opt(&name)
                    .await
                    .expect("get ConfigMap")
                    .is_some()
            {
                delivered = Some(Instant::now());
            }
            if ns.get(&name).await.as_ref().is_some_and(is_ready) {
                break;
            }
            assert!(
                applied.elapsed() < DEADLINE,
                "{name} not Ready within {DEADLINE:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let ready = Instant::now();
        from_apply.push(ready - applied);
        from_agent.push(ready - delivered.unwrap_or(ready));
    }
    eprintln!("apply → Ready: {from_apply:?}; agent's ConfigMap → Ready: {from_agent:?}");
    let slowest = from_apply.iter().max().copied().unwrap_or_default();
    // The next REST poll is 10 minutes away: only the stream can have
    // delivered these reports. "A couple of seconds", with room for a
    // loaded 2-core machine.
    assert!(
        slowest < Duration::from_secs(10),
        "slowest apply → Ready took {slowest:?}"
    );
    // Each object's reports came through the stream. Not every one wakes
    // its object (`status_updates`): a report that beats the operator's
    // read-back of its own publish is kept as early and folded in there.
    let applied = metric_or_zero(&op, &stream_events("applied")).await;
    let early = metric_or_zero(&op, &stream_events("early")).await;
    assert!(
        applied + early >= 5.0,
        "stream reports: {applied} applied, {early} early"
    );

    // An update: a new bundle version, applied and reported, again in
    // seconds.
    let changed = Instant::now();
    ns.apply("s0", west(&ns, "s0", "two", "10m", "30m")).await;
    ns.wait_until("s0", "Ready with feedback two", |o| {
        is_ready(o) && feedback(o, 0).as_deref() == Some("two")
    })
    .await;
    eprintln!(
        "update → Ready with the new feedback: {:?}",
        changed.elapsed()
    );
    ns.cleanup().await;
}

#[tokio::test]
async fn the_stream_cut_by_a_proxy_falls_back_to_polls_and_misses_nothing_when_restored() {
    let ns = TestNs::new("op-stream-cut").await;
    // Only gRPC (the stream, and publishes) goes through the proxy; REST
    // reads stay up, as when a load balancer drops long-lived streams.
    let grpc = Proxy::start(&grpc_endpoint()).await;
    let op = Operator::start_via(&ns.name, &ns.source, &grpc.url(), &http_endpoint(), &[]).await;
    wait_metric(&op, STREAM_UP, "1", |v| v == 1.0).await;
    ns.apply("a", west(&ns, "a", "one", "2s", "30m")).await;
    ns.wait_until("a", "Ready with feedback", |o| {
        is_ready(o) && feedback(o, 0).as_deref() == Some("one")
    })
    .await;

    // Healthy: the safety net is the 30 min interval, not pollInterval.
    let polls = metric_or_zero(&op, POLLS).await;
    tokio::time::sleep(Duration::from_secs(6)).await;
    let quiet = metric_or_zero(&op, POLLS).await - polls;
    assert!(quiet <= 1.0, "{quiet} polls in 6 s with the stream healthy");

    grpc.set_down(true);
    let cut = Instant::now();
    wait_metric(&op, STREAM_UP, "0", |v| v == 0.0).await;
    eprintln!("stream loss noticed after {:?}", cut.elapsed());
    let polls = metric_or_zero(&op, POLLS).await;
    let by_poll = metric_or_zero(&op, FROM_POLL).await;
    // A change on the cluster during the cut: the agent reports it to
    // Maestro, the stream cannot bring it, the fallback poll does, and
    // the object stays Ready all along (no flapping).
    edit_delivered(&ns, "a", "during-cut").await;
    let took = wait_feedback_staying_ready(&ns, "a", "during-cut").await;
    eprintln!("a change during the cut shown after {took:?} (agent feedback sync included)");
    assert!(metric_or_zero(&op, FROM_POLL).await > by_poll);
    // And the polls go on every pollInterval (2 s) while the cut lasts.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let polled = metric_or_zero(&op, POLLS).await - polls;
    eprintln!("{polled} polls in the first {:?} of the cut", cut.elapsed());
    assert!(polled >= 2.0, "only {polled} polls during the cut");

    // Changed just before the stream comes back: shown after, whichever
    // path brings it.
    edit_delivered(&ns, "a", "before-restore").await;
    grpc.set_down(false);
    wait_metric(&op, STREAM_UP, "1", |v| v == 1.0).await;
    let subscriptions =
        metric_or_zero(&op, "maestro_operator_status_stream_subscriptions_total").await;
    assert!(subscriptions >= 2.0, "{subscriptions} subscriptions");
    wait_feedback_staying_ready(&ns, "a", "before-restore").await;

    // And the stream delivers again.
    let by_stream = metric_or_zero(&op, FROM_STREAM).await;
    edit_delivered(&ns, "a", "after").await;
    let took = wait_feedback_staying_ready(&ns, "a", "after").await;
    eprintln!("a change after the restore shown after {took:?} (agent feedback sync included)");
    assert!(metric_or_zero(&op, FROM_STREAM).await > by_stream);
    // A spec change publishes over the restored connection.
    ns.apply("a", west(&ns, "a", "two", "2s", "30m")).await;
    ns.wait_until("a", "Ready with feedback two", |o| {
        is_ready(o) && feedback(o, 0).as_deref() == Some("two")
    })
    .await;
    ns.cleanup().await;
}

#[tokio::test]
async fn maestro_out_of_reach_as_in_a_restart_is_resubscribed_and_resynced() {
    let ns = TestNs::new("op-stream-restart").await;
    // Both of Maestro's ports behind proxies: taking both down is, to the
    // operator, Maestro restarting (connections cut, then refused), without
    // restarting the Maestro other tests share.
    let grpc = Proxy::start(&grpc_endpoint()).await;
    let http = Proxy::start(&http_endpoint()).await;
    let op = Operator::start_via(&ns.name, &ns.source, &grpc.url(), &http.url(), &[]).await;
    wait_metric(&op, STREAM_UP, "1", |v| v == 1.0).await;
    // Polls 10 minutes apart: only the resync after resubscribing can show
    // what changed while Maestro was away.
    ns.apply("r", west(&ns, "r", "one", "10m", "30m")).await;
    ns.wait_until("r", "Ready with feedback", |o| {
        is_ready(o) && feedback(o, 0).as_deref() == Some("one")
    })
    .await;

    grpc.set_down(true);
    http.set_down(true);
    wait_metric(&op, STREAM_UP, "0", |v| v == 0.0).await;
    // The agent (connected directly) reports to Maestro meanwhile.
    edit_until_reported(&ns, "r", "while-away").await;
    let obj = ns.get("r").await.expect("exists");
    assert_eq!(
        feedback(&obj, 0).as_deref(),
        Some("one"),
        "not seen while away"
    );

    grpc.set_down(false);
    http.set_down(false);
    let back = Instant::now();
    ns.wait_until("r", "showing the change made while away", |o| {
        feedback(o, 0).as_deref() == Some("while-away")
    })
    .await;
    let took = back.elapsed();
    eprintln!("resubscribed and resynced {took:?} after Maestro came back");
    assert!(is_ready(&ns.get("r").await.expect("exists")));
    // The gRPC client's backoff is at most a few seconds after a short
    // outage; the 10 min poll cannot have done it.
    assert!(took < Duration::from_secs(60), "{took:?}");
    assert!(metric_or_zero(&op, "maestro_operator_status_stream_subscriptions_total").await >= 2.0);

    // Nothing missed afterwards either: the stream delivers again.
    edit_delivered(&ns, "r", "after").await;
    ns.wait_until("r", "showing the change made after", |o| {
        feedback(o, 0).as_deref() == Some("after")
    })
    .await;
    ns.cleanup().await;
}
