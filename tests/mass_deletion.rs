//! A namespace of many MaestroApply objects deleted at once, on the real
//! stack: more than two pages of bundles per consumer (the status list is
//! paged by offset, and rows deleted between pages shift others past a
//! page boundary), so a finalizer removed on the cache's word would show.
//!
//! Checked: no object loses its finalizer while its bundle still exists
//! (an observer lists objects, then bundles, every half second: a bundle
//! is always gone before its object, so an object missing from the first
//! list whose bundle is in the second was let go early); at most
//! `--max-unconfirmed-deletions` deletions per consumer await an agent at
//! once (the operator's gauge); in the end no bundle, no delivered
//! ConfigMap, no AppliedManifestWork and no namespace is left.
//!
//!   eval "$(bash tests/stack/stack.sh env)" && cargo test --test mass_deletion -- --nocapture
//!   MASS_DELETION_OBJECTS=1000 ...   (the full proof; default 400, for CI's time)

mod support;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use maestro_operator::controller::crd::MaestroApply;
use serde_json::json;
use support::operator::*;

/// Status list pages of at most this many bundles.
const PAGE_SIZE: usize = 100;
const LIMIT: usize = 50;

fn objects() -> usize {
    std::env::var("MASS_DELETION_OBJECTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(400)
}

/// The unconfirmed-deletion gauge of every consumer, the largest one.
fn max_unconfirmed(metrics: &str) -> usize {
    metrics
        .lines()
        .filter(|l| l.starts_with("maestro_operator_unconfirmed_deletions{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .fold(0.0, f64::max) as usize
}

async fn names_of(api: &Api<MaestroApply>) -> Option<BTreeSet<String>> {
    let list = api.list(&ListParams::default()).await.ok()?;
    Some(
        list.items
            .into_iter()
            .filter_map(|o| o.metadata.name)
            .collect(),
    )
}

#[tokio::test]
async fn a_namespace_of_many_objects_deleted_at_once_leaves_nothing_and_no_finalizer_goes_early() {
    let n = objects();
    let ns = TestNs::new("mass").await;
    // The delivered ConfigMaps live apart, so that deleting the objects'
    // namespace cannot delete them behind the agents' backs.
    let delivered = format!("{}-delivered", ns.name);
    let namespaces = Api::<Namespace>::all(ns.client.clone());
    namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": delivered}})).unwrap(),
        )
        .await
        .expect("create the delivery namespace");
    let per_consumer = n.div_ceil(2);
    // More than two pages per consumer, however few objects a run asks for.
    let page_size = PAGE_SIZE.min(per_consumer.saturating_sub(1) / 2).max(1);
    let page = page_size.to_string();
    let limit = LIMIT.to_string();
    let op = ns
        .operator(&[
            "--maestro-page-size",
            &page,
            "--max-unconfirmed-deletions",
            &limit,
            "--maestro-qps",
            "100",
            "--maestro-burst",
            "100",
            "--concurrency",
            "32",
        ])
        .await;

    let started = Instant::now();
    let names: Vec<String> = (0..n).map(|i| format!("o{i:04}")).collect();
    for (i, name) in names.iter().enumerate() {
        let consumer = if i % 2 == 0 { WEST } else { EAST };
        let mut s = spec(
            consumer,
            vec![configmap(&delivered, name, json!({"value": name}))],
        );
        s["pollInterval"] = json!("5s");
        s["workName"] = json!(format!("{}-{name}", ns.name));
        ns.apply(name, s).await;
    }
    let ready = |o: &MaestroApply| o.status.as_ref().is_some_and(|s| s.is_ready());
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let list = ns
            .mapply()
            .list(&ListParams::default())
            .await
            .expect("list");
        let done = list.items.iter().filter(|o| ready(o)).count();
        if done == n {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "only {done} of {n} objects Ready after 600 s\n{}",
            op.log_text()
        );
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    assert!(
        per_consumer > 2 * page_size,
        "{per_consumer} bundles per consumer must span more than two pages of {page_size}"
    );
    eprintln!(
        "{n} objects Ready in {:.0?} ({per_consumer} bundles per consumer, pages of {page_size})",
        started.elapsed()
    );

    let ids: BTreeSet<String> = bundles(&ns.source)
        .await
        .iter()
        .map(|b| b.id.to_string())
        .collect();
    assert_eq!(ids.len(), n, "one bundle per object");

    // Delete the namespace; the namespace controller deletes every object.
    let deleting = Instant::now();
    namespaces
        .delete(&ns.name, &DeleteParams::default())
        .await
        .expect("delete the namespace");
    let mut early = Vec::new();
    let mut most_unconfirmed = 0;
    let deadline = Instant::now() + Duration::from_secs(900);
    loop {
        let Some(left) = names_of(&ns.mapply()).await else {
            tokio::time::sleep(Duration::from_millis(500)).await;
            continue;
        };
        let bundles = bundles(&ns.source).await;
        for b in &bundles {
            let name = b.work_name().unwrap_or_default();
            let object = name.strip_prefix(&format!("{}-", ns.name)).unwrap_or(name);
            if !left.contains(object) && !early.iter().any(|e: &String| e == object) {
                early.push(object.to_string());
            }
        }
        most_unconfirmed = most_unconfirmed.max(max_unconfirmed(&op.metrics().await));
        if left.is_empty() && bundles.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "after {:.0?}: {} objects and {} bundles left\n{}",
            deleting.elapsed(),
            left.len(),
            bundles.len(),
            op.log_text()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let took = deleting.elapsed();
    assert!(
        early.is_empty(),
        "finalizers removed while the bundle existed: {early:?}"
    );
    assert!(
        most_unconfirmed <= LIMIT,
        "{most_unconfirmed} unconfirmed deletions on one consumer, over the limit of {LIMIT}"
    );

    let configmaps = Api::<ConfigMap>::namespaced(ns.client.clone(), &delivered);
    let left = configmaps
        .list(&ListParams::default())
        .await
        .expect("list ConfigMaps")
        .items
        .into_iter()
        .filter(|c| c.metadata.name.as_deref() != Some("kube-root-ca.crt"))
        .count();
    assert_eq!(left, 0, "delivered ConfigMaps left on the cluster");
    // The agents name works by resource ID.
    let (ok, applied, err) = kubectl(
        &[
            "get",
            "appliedmanifestworks",
            "-o",
            "jsonpath={range .items[*]}{.spec.manifestWorkName}{\"\\n\"}{end}",
        ],
        None,
    )
    .await;
    assert!(ok, "{err}");
    let stale: Vec<&str> = applied.lines().filter(|id| ids.contains(*id)).collect();
    assert!(
        stale.is_empty(),
        "AppliedManifestWorks of this run left: {stale:?}"
    );
    let gone = Instant::now() + Duration::from_secs(120);
    while namespaces.get_opt(&ns.name).await.ok().flatten().is_some() {
        assert!(
            Instant::now() < gone,
            "namespace {} still Terminating",
            ns.name
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    eprintln!(
        "deleted {n} objects in {took:.0?}: no finalizer early, at most {most_unconfirmed} \
         unconfirmed deletions per consumer (limit {LIMIT}), nothing left"
    );
    let _ = namespaces
        .delete(&delivered, &DeleteParams::default())
        .await;
}
