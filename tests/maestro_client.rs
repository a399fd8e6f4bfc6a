//! The library against the real Maestro server of the local stack.

mod support;

use std::time::Duration;

use maestro_operator::maestro::Error;
use maestro_operator::maestro::grpc::SubscribeOptions;
use maestro_operator::maestro::rest::ListOptions;
use maestro_operator::maestro::work_client::{ApplyOutcome, DeleteOutcome, Detail, WatchEvent};
use maestro_operator::names::{ConsumerName, WorkName};
use serde_json::json;
use support::maestro::*;

fn name(n: &str) -> WorkName {
    WorkName::new(n).unwrap()
}

#[tokio::test]
async fn create_stores_the_bundle_with_our_id_metadata_and_spec() {
    let consumer = fresh_consumer("it-create").await;
    let client = client("it-create");
    let mut work = work(
        consumer.as_str(),
        "web",
        vec![configmap("web-config", json!({"color": "blue"}))],
    );
    work.metadata.labels = Some([("app".to_string(), "web".to_string())].into());
    work.spec.delete_option =
        Some(serde_json::from_value(json!({"propagationPolicy": "Orphan"})).unwrap());

    let outcome = client.apply(&work).await.unwrap();
    assert_eq!(outcome, ApplyOutcome::Created { version: 1 });

    // The row as Maestro stores it: the wire contract with other clients.
    let id = client.resource_id(&consumer, &name("web"));
    let bundle = rest().get_resource_bundle(&id).await.unwrap();
    assert_eq!(bundle.id, id.to_string());
    assert_eq!(bundle.consumer_name, consumer.as_str());
    assert_eq!(bundle.version, 1);
    assert!(!bundle.is_deleting());
    assert_eq!(bundle.metadata["name"], "web");
    assert_eq!(bundle.metadata["namespace"], consumer.as_str());
    assert_eq!(bundle.metadata["uid"], bundle.id.as_str());
    assert_eq!(bundle.metadata["labels"]["app"], "web");
    assert_eq!(
        bundle.manifests,
        vec![configmap("web-config", json!({"color": "blue"}))]
    );
    assert_eq!(bundle.delete_option["propagationPolicy"], "Orphan");

    let read_back = client.get(&consumer, &name("web")).await.unwrap().unwrap();
    assert_eq!(
        read_back.spec.workload.manifests,
        work.spec.workload.manifests
    );
    assert_eq!(read_back.metadata.generation, Some(1));
}

#[tokio::test]
async fn apply_is_a_noop_when_unchanged_and_bumps_the_version_when_changed() {
    let consumer = fresh_consumer("it-apply").await;
    let client = client("it-apply");
    let v1 = work(
        consumer.as_str(),
        "cfg",
        vec![configmap("c", json!({"k": "1"}))],
    );
    assert_eq!(
        client.apply(&v1).await.unwrap(),
        ApplyOutcome::Created { version: 1 }
    );
    assert_eq!(
        client.apply(&v1).await.unwrap(),
        ApplyOutcome::Unchanged { version: 1 }
    );

    let v2 = work(
        consumer.as_str(),
        "cfg",
        vec![configmap("c", json!({"k": "2"}))],
    );
    assert_eq!(
        client.apply(&v2).await.unwrap(),
        ApplyOutcome::Updated { from_version: 1 }
    );
    let bundle = client
        .get_held(&consumer, &name("cfg"), Detail::Work)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(bundle.version, 2);
    let stored = serde_json::to_value(&bundle.work.unwrap().spec.workload.manifests[0]).unwrap();
    assert_eq!(stored["data"]["k"], "2");
}

#[tokio::test]
async fn update_from_a_stale_version_is_a_conflict_naming_the_latest() {
    let consumer = fresh_consumer("it-stale").await;
    let client = client("it-stale");
    let v1 = work(
        consumer.as_str(),
        "w",
        vec![configmap("c", json!({"k": "1"}))],
    );
    client.apply(&v1).await.unwrap();
    let v2 = work(
        consumer.as_str(),
        "w",
        vec![configmap("c", json!({"k": "2"}))],
    );
    client.update(&v2, 1).await.unwrap();

    let v3 = work(
        consumer.as_str(),
        "w",
        vec![configmap("c", json!({"k": "3"}))],
    );
    let err = client.update(&v3, 1).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::StaleVersion {
                latest: Some(2),
                ..
            }
        ),
        "expected a stale-version conflict, got {err:?}"
    );
    // apply reads the current version first, so it succeeds.
    assert_eq!(
        client.apply(&v3).await.unwrap(),
        ApplyOutcome::Updated { from_version: 2 }
    );
}

#[tokio::test]
async fn delete_marks_the_bundle_deleting_and_is_idempotent() {
    let consumer = fresh_consumer("it-delete").await;
    let client = client("it-delete");
    client
        .apply(&work(
            consumer.as_str(),
            "gone",
            vec![configmap("c", json!({}))],
        ))
        .await
        .unwrap();

    assert_eq!(
        client.delete(&consumer, &name("gone")).await.unwrap(),
        DeleteOutcome::Deleting
    );
    // No agent serves this consumer, so the bundle stays soft-deleted.
    let bundle = client
        .get_held(&consumer, &name("gone"), Detail::Work)
        .await
        .unwrap()
        .unwrap();
    assert!(
        bundle.is_deleting(),
        "bundle should carry deleted_at: {bundle:?}"
    );
    let stored = bundle.work.as_deref().unwrap();
    assert!(stored.metadata.deletion_timestamp.is_some());
    assert_eq!(
        client.delete(&consumer, &name("gone")).await.unwrap(),
        DeleteOutcome::Deleting
    );
    assert_eq!(
        client.delete(&consumer, &name("never")).await.unwrap(),
        DeleteOutcome::NotFound
    );

    let err = client
        .apply(&work(
            consumer.as_str(),
            "gone",
            vec![configmap("c", json!({"x": "y"}))],
        ))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Conflict(_)), "{err:?}");
}

#[tokio::test]
async fn list_filters_by_consumer_and_labels_and_follows_pages() {
    let consumer = fresh_consumer("it-list").await;
    let other = fresh_consumer("it-list-other").await;
    // A source of its own, so works of earlier runs do not count.
    let source = unique("it-list");
    let client = client(&source);
    for i in 0..5 {
        let mut w = work(
            consumer.as_str(),
            &format!("w{i}"),
            vec![configmap("c", json!({}))],
        );
        let tier = if i % 2 == 0 { "even" } else { "odd" };
        w.metadata.labels = Some([("tier".to_string(), tier.to_string())].into());
        client.apply(&w).await.unwrap();
    }
    client
        .apply(&work(
            other.as_str(),
            "elsewhere",
            vec![configmap("c", json!({}))],
        ))
        .await
        .unwrap();

    let all = client.list(Some(&consumer), None).await.unwrap();
    let mut names: Vec<_> = all.iter().filter_map(|w| w.metadata.name.clone()).collect();
    names.sort();
    assert_eq!(names, ["w0", "w1", "w2", "w3", "w4"]);

    assert_eq!(
        client
            .list(Some(&consumer), Some("tier=even"))
            .await
            .unwrap()
            .len(),
        3
    );
    assert_eq!(
        client
            .list(Some(&consumer), Some("tier!=even"))
            .await
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        client
            .list(Some(&consumer), Some("tier in (odd)"))
            .await
            .unwrap()
            .len(),
        2
    );
    assert_eq!(client.list(None, None).await.unwrap().len(), 6);

    let search = format!("source='{source}' and consumer_name='{consumer}'");
    let mut sizes = vec![];
    for page in 1..=3 {
        let options = ListOptions {
            search: Some(search.clone()),
            page: Some(page),
            size: Some(2),
            order_by: Some("created_at asc".into()),
        };
        let page = rest().list_resource_bundles_page(&options).await.unwrap();
        assert_eq!(page.total, 5);
        sizes.push(page.items.len());
    }
    assert_eq!(sizes, [2, 2, 1]);
    let all_pages = rest()
        .list_resource_bundles(&ListOptions {
            search: Some(search),
            size: Some(2),
            ..ListOptions::default()
        })
        .await
        .unwrap();
    assert_eq!(all_pages.len(), 5);
}

#[tokio::test]
async fn publishing_to_an_unknown_consumer_names_the_consumer() {
    let client = client("it-unknown");
    let missing = unique("no-such-cluster");
    let err = client
        .apply(&work(&missing, "w", vec![configmap("c", json!({}))]))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::UnknownConsumer { consumer } if consumer == &missing),
        "{err:?}"
    );
}

#[tokio::test]
async fn invalid_work_is_refused_before_anything_is_sent() {
    let consumer = fresh_consumer("it-invalid").await;
    let client = client("it-invalid");
    let bad = work(
        consumer.as_str(),
        "bad",
        vec![json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"generateName": "x-"}})],
    );
    let err = client.apply(&bad).await.unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, Error::InvalidWork(_)), "{err:?}");
    assert!(text.contains("manifests[0]"), "{text}");
    assert!(
        client
            .get_held(&consumer, &name("bad"), Detail::Summary)
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn server_not_running_fails_fast_with_a_clear_error() {
    let mut config = config("it-down");
    // Port 9 (discard) is not served on the test machine.
    config.grpc_endpoint = "http://127.0.0.1:9".parse().unwrap();
    config.http_endpoint = "http://127.0.0.1:9".parse().unwrap();
    config.connect_timeout = Duration::from_secs(2);
    let client = maestro_operator::maestro::work_client::WorkClient::new(&config).unwrap();
    let consumer = ConsumerName::new("cluster-west-1").unwrap();

    let started = std::time::Instant::now();
    let result =
        tokio::time::timeout(Duration::from_secs(15), client.get(&consumer, &name("x"))).await;
    let err = result.expect("no hang").unwrap_err();
    assert!(matches!(err, Error::Unavailable(_)), "{err:?}");
    assert!(err.to_string().contains("127.0.0.1:9"), "{err}");

    let publish = tokio::time::timeout(
        Duration::from_secs(15),
        client.create(&work(
            "cluster-west-1",
            "x",
            vec![configmap("c", json!({}))],
        )),
    )
    .await
    .expect("no hang")
    .unwrap_err();
    assert!(matches!(publish, Error::Unavailable(_)), "{publish:?}");
    assert!(started.elapsed() < Duration::from_secs(30));
}

#[tokio::test]
async fn watch_starts_with_the_current_works_then_reports_synced() {
    let consumer = fresh_consumer("it-watch").await;
    let client = client("it-watch");
    client
        .apply(&work(
            consumer.as_str(),
            "seen",
            vec![configmap("c", json!({}))],
        ))
        .await
        .unwrap();

    let mut events = client.watch(Some(consumer.clone()), None, SubscribeOptions::default());
    let mut modified = vec![];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let event = tokio::time::timeout_at(deadline, events.recv())
            .await
            .expect("watch answered in time")
            .expect("watch open")
            .unwrap();
        match event {
            WatchEvent::Modified(w) => modified.push(w.metadata.name.clone().unwrap()),
            WatchEvent::Synced => break,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(modified, ["seen"]);
}

#[tokio::test]
async fn consumers_can_be_created_found_relabelled_and_deleted() {
    let rest = rest();
    let name = ConsumerName::new(unique("it-consumer")).unwrap();
    let created = rest
        .create_consumer(&name, &[("env".to_string(), "test".to_string())].into())
        .await
        .unwrap();
    assert_eq!(created.name, name.as_str());
    let found = rest.find_consumer_by_name(&name).await.unwrap().unwrap();
    assert_eq!(found.id, created.id);
    let patched = rest
        .patch_consumer_labels(
            &created.id,
            &[("env".to_string(), "prod".to_string())].into(),
        )
        .await
        .unwrap();
    assert_eq!(patched.labels.get("env").map(String::as_str), Some("prod"));

    let dup = rest
        .create_consumer(&name, &Default::default())
        .await
        .unwrap_err();
    assert!(matches!(dup, Error::Conflict(_)), "{dup:?}");

    rest.delete_consumer(&created.id).await.unwrap();
    assert!(rest.find_consumer_by_name(&name).await.unwrap().is_none());
}

#[tokio::test]
async fn a_consumer_with_bundles_cannot_be_deleted() {
    let consumer = fresh_consumer("it-busy").await;
    client("it-busy")
        .apply(&work(
            consumer.as_str(),
            "w",
            vec![configmap("c", json!({}))],
        ))
        .await
        .unwrap();
    let rest = rest();
    let found = rest
        .find_consumer_by_name(&consumer)
        .await
        .unwrap()
        .unwrap();
    let err = rest.delete_consumer(&found.id).await.unwrap_err();
    assert!(matches!(err, Error::Forbidden(_)), "{err:?}");
}
