//! The election loop against a small in-process Lease API, for what the
//! real API server cannot be made to do on demand: hang every request,
//! hand the Lease to someone else between two renewals.

use parking_lot::Mutex;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::Value;

use super::*;

const NAMESPACE: &str = "ns";
const LEASE: &str = "lease";

#[derive(Default)]
struct Store {
    /// The Lease's spec (JSON) and resourceVersion.
    spec: Value,
    version: u64,
    /// Every request waits forever, as behind a partition that drops
    /// packets.
    hang: bool,
    /// Successful patches, with who held the Lease after each.
    writes: Vec<(Instant, Option<String>)>,
}

type Shared = Arc<Mutex<Store>>;

fn lease_json(store: &Store) -> String {
    serde_json::json!({
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": LEASE, "namespace": NAMESPACE, "resourceVersion": store.version.to_string()},
        "spec": store.spec,
    })
    .to_string()
}

fn json(status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

async fn hang_if_asked(store: &Shared) {
    let hang = store.lock().hang;
    if hang {
        std::future::pending::<()>().await;
    }
}

async fn get_lease(State(store): State<Shared>) -> Response {
    hang_if_asked(&store).await;
    let s = store.lock();
    json(StatusCode::OK, lease_json(&s))
}

async fn patch_lease(State(store): State<Shared>, body: Bytes) -> Response {
    hang_if_asked(&store).await;
    let patch: Value = serde_json::from_slice(&body).unwrap();
    let mut s = store.lock();
    let wanted = patch["metadata"]["resourceVersion"].as_str().unwrap_or("");
    if wanted != s.version.to_string() {
        return json(
            StatusCode::CONFLICT,
            serde_json::json!({
                "kind": "Status", "apiVersion": "v1", "metadata": {},
                "status": "Failure", "reason": "Conflict", "code": 409,
                "message": "the object has been modified",
            })
            .to_string(),
        );
    }
    merge(&mut s.spec, &patch["spec"]);
    s.version += 1;
    let holder = s.spec["holderIdentity"].as_str().map(str::to_string);
    s.writes.push((Instant::now(), holder));
    json(StatusCode::OK, lease_json(&s))
}

/// RFC 7386 for one level, which is all the spec needs.
fn merge(spec: &mut Value, patch: &Value) {
    if !spec.is_object() {
        *spec = serde_json::json!({});
    }
    for (k, v) in patch.as_object().into_iter().flatten() {
        if v.is_null() {
            spec.as_object_mut().unwrap().remove(k);
        } else {
            spec[k] = v.clone();
        }
    }
}

async fn serve(spec: Value) -> (Client, Shared) {
    crate::maestro::config::ensure_crypto_provider();
    let store: Shared = Arc::new(Mutex::new(Store {
        spec,
        version: 1,
        ..Store::default()
    }));
    let app = Router::new()
        .route(
            &format!("/apis/coordination.k8s.io/v1/namespaces/{NAMESPACE}/leases/{LEASE}"),
            get(get_lease).patch(patch_lease),
        )
        .with_state(store.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let config = kube::Config::new(url.parse().unwrap());
    (Client::try_from(config).unwrap(), store)
}

fn holder_of(store: &Shared) -> Option<String> {
    store.lock().spec["holderIdentity"]
        .as_str()
        .map(str::to_string)
}

async fn lead(client: Client, identity: &str) -> (Election, WriteFence) {
    let fence = WriteFence::closed();
    let shutdown = tokio_util::sync::CancellationToken::new();
    let mut e = join(client, NAMESPACE, LEASE, identity, secs(3), fence.clone())
        .await
        .unwrap();
    let acquired = tokio::time::timeout(secs(10), e.acquired(shutdown))
        .await
        .expect("acquired in time");
    assert!(acquired);
    assert!(fence.check().is_ok(), "the leader may write");
    (e, fence)
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

#[tokio::test]
async fn a_leader_whose_api_server_hangs_stops_writing_at_its_deadline() {
    let (client, store) = serve(serde_json::json!({})).await;
    let (election, fence) = lead(client, "a").await;
    // Let a few renewals through, then cut the API server off.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let renewals = store.lock().writes.len();
    assert!(renewals >= 3, "acquired and renewed: {renewals} writes");
    store.lock().hang = true;
    let cut_at = Instant::now();
    let last_write = store.lock().writes.last().unwrap().0;

    tokio::time::timeout(secs(5), fence.ended())
        .await
        .expect("the fence closes although no request ever answers");
    let ended_at = Instant::now();
    let t = Timings::new(secs(3));
    // The deadline counts from when the last renewal was sent, which is
    // before the server saw it.
    assert!(
        ended_at <= last_write + t.duration - t.margin + Duration::from_millis(200),
        "ended {:?} after the last renewal",
        ended_at - last_write
    );
    assert!(
        ended_at - cut_at < t.duration - t.margin + Duration::from_millis(200),
        "ended {:?} after the cut",
        ended_at - cut_at
    );
    assert!(fence.check().is_err());
    // A standby could take over only a full duration after the last
    // renewal: the writes stopped at least the margin before.
    assert!(last_write + t.duration - ended_at >= t.margin - Duration::from_millis(200));
    election.abandon();
}

#[tokio::test]
async fn a_standby_waits_a_full_duration_of_an_unrenewed_record_then_takes_it() {
    let (client, store) = serve(serde_json::json!({
        "holderIdentity": "gone", "leaseDurationSeconds": 3,
    }))
    .await;
    let started = Instant::now();
    let (election, _fence) = lead(client, "b").await;
    let took = started.elapsed();
    assert!(took >= secs(3), "took over after {took:?}");
    assert!(took < secs(5), "took over after {took:?}");
    assert_eq!(holder_of(&store).as_deref(), Some("b"));
    assert_eq!(store.lock().spec["leaseTransitions"], 1);
    election.release().await;
}

#[tokio::test]
async fn a_lease_taken_by_another_replica_closes_the_fence_at_the_next_renewal() {
    let (client, store) = serve(serde_json::json!({})).await;
    let (election, fence) = lead(client, "a").await;
    {
        // Someone else holds it now (an operator forcing a hand-over).
        let mut s = store.lock();
        s.spec["holderIdentity"] = "z".into();
        s.version += 1;
    }
    tokio::time::timeout(secs(1), fence.ended())
        .await
        .expect("lost at the next renewal, well before the deadline");
    assert_eq!(holder_of(&store).as_deref(), Some("z"), "left as it was");
    // Nothing to release: the Lease is not ours.
    election.release().await;
    assert_eq!(holder_of(&store).as_deref(), Some("z"));
}

#[tokio::test]
async fn release_closes_the_fence_and_frees_the_lease() {
    let (client, store) = serve(serde_json::json!({})).await;
    let (election, fence) = lead(client, "a").await;
    election.release().await;
    assert!(fence.check().is_err());
    assert_eq!(holder_of(&store), None);
    assert!(store.lock().spec.get("renewTime").is_none());
}
