use super::*;
use crate::manifestwork::Manifest;

fn work(labels: &[(&str, &str)]) -> ManifestWork {
    let manifest: Manifest = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "c", "namespace": "default"},
        "data": {"k": "v"}
    }))
    .unwrap();
    let mut w: ManifestWork = serde_json::from_value(serde_json::json!({
        "apiVersion": "work.open-cluster-management.io/v1",
        "kind": "ManifestWork",
        "metadata": {"name": "w", "namespace": "cluster-west-1"},
        "spec": {"workload": {"manifests": [manifest]}}
    }))
    .unwrap();
    w.metadata.labels = Some(
        labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    );
    w
}

#[test]
fn spec_hash_ignores_its_own_annotation_and_key_order() {
    let mut a = work(&[("x", "1"), ("y", "2")]);
    let b = work(&[("y", "2"), ("x", "1")]);
    a.metadata
        .annotations
        .get_or_insert_with(BTreeMap::new)
        .insert(SPEC_HASH_ANNOTATION.into(), "old".into());
    assert_eq!(spec_hash_of_work(&a), spec_hash_of_work(&b));
}

#[test]
fn spec_hash_changes_with_manifests_and_labels() {
    let a = work(&[("x", "1")]);
    let b = work(&[("x", "2")]);
    assert_ne!(spec_hash_of_work(&a), spec_hash_of_work(&b));
    let mut c = work(&[("x", "1")]);
    c.spec.workload.manifests.clear();
    assert_ne!(spec_hash_of_work(&a), spec_hash_of_work(&c));
}

#[test]
fn label_filter_matches_every_selector_form() {
    let w = work(&[("env", "prod"), ("tier", "web")]);
    for (selector, expected) in [
        ("env=prod", true),
        ("env==prod,tier=web", true),
        ("env!=prod", false),
        ("tier", true),
        ("missing", false),
        ("env in (dev,prod)", true),
        ("env notin (prod)", false),
        ("missing notin (x)", true),
        ("!missing", true),
        ("!env", false),
    ] {
        let f = LabelFilter::parse(selector).unwrap();
        assert_eq!(f.matches(&w), expected, "{selector}");
    }
}

/// A client whose Maestro is a closed port: any request that went out
/// would fail as unavailable, so `Fenced` proves nothing was sent.
fn unreachable_client(fence: WriteFence) -> WorkClient {
    crate::maestro::config::ensure_crypto_provider();
    let config = MaestroConfig::new(
        "http://127.0.0.1:1",
        "http://127.0.0.1:1",
        SourceId::new("fence-test").unwrap(),
    )
    .unwrap();
    WorkClient::new(&config).unwrap().with_fence(fence)
}

#[tokio::test]
async fn listing_over_no_consumers_is_refused_before_any_request() {
    let client = unreachable_client(WriteFence::open());
    let err = client.list_held_on(&[], None).await.unwrap_err();
    assert!(matches!(err, Error::Config(_)), "{err:?}");
}

#[tokio::test]
async fn a_closed_fence_refuses_every_write_before_any_request() {
    let client = unreachable_client(WriteFence::closed());
    let w = work(&[]);
    let consumer = ConsumerName::new("cluster-west-1").unwrap();
    let name = WorkName::new("w").unwrap();
    let results = [
        client.create(&w).await.map(|_| ()),
        client.apply(&w).await.map(|_| ()),
        client.update(&w, 3).await,
        client.delete(&consumer, &name).await.map(|_| ()),
    ];
    for result in results {
        let err = result.unwrap_err();
        assert!(matches!(err, Error::Fenced(_)), "{err:?}");
        assert_eq!(err.reason(), "NotLeader");
        assert!(!err.is_transient());
    }
}

#[tokio::test(start_paused = true)]
async fn the_fence_is_checked_again_just_before_the_event_is_sent() {
    // The fence closes between the caller's checks and the send, as
    // when the lease runs out during the read that precedes an update.
    let fence = WriteFence::closed();
    assert!(fence.extend_until(tokio::time::Instant::now() + Duration::from_secs(1)));
    let client = unreachable_client(fence);
    let w = work(&[]);
    let (prepared, consumer) = client.prepare(&w).unwrap();
    tokio::time::advance(Duration::from_secs(1)).await;
    let err = client
        .publish(SpecAction::Update, &prepared, 3, &consumer)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Fenced(_)), "{err:?}");
}

#[tokio::test]
async fn an_open_fence_lets_writes_go_out() {
    let client = unreachable_client(WriteFence::open());
    let err = client.create(&work(&[])).await.unwrap_err();
    assert!(!matches!(err, Error::Fenced(_)), "{err:?}");
}

#[test]
fn resync_reports_vanished_works_as_deleted_and_ends_with_synced() {
    let mut a = work(&[]);
    a.metadata.uid = Some("55c61e54-a3f6-563d-9fec-b1fe297bdfdb".into());
    let mut b = work(&[]);
    b.metadata.uid = Some("0f3c2c35-9a4a-5b0e-8f5f-2d7b6f0b3a11".into());
    let mut known = HashMap::new();
    let first = resync(&mut known, vec![a.clone(), b.clone()]);
    assert_eq!(first.len(), 3);
    let second = resync(&mut known, vec![a]);
    let kinds: Vec<_> = second
        .iter()
        .map(|e| match e {
            Ok(WatchEvent::Modified(_)) => "modified",
            Ok(WatchEvent::Deleted(_)) => "deleted",
            Ok(WatchEvent::Synced) => "synced",
            _ => "other",
        })
        .collect();
    assert_eq!(kinds, ["modified", "deleted", "synced"]);
}
