//! `WorkClient` against the in-process Maestro fake, for what the real
//! stack cannot be made to do on demand: a bundle changing owner between
//! two reads, a reply lost after the commit, a stale version on cue.

use std::time::Duration;

use serde_json::{Value, json};
use tonic::Status;

use super::*;
use crate::maestro::grpc::fake::{Answer, FakeMaestro, bundle_of, deleting};

const OWNER_UID_LABEL: &str = "maestro.hyperfleet.io/owner-uid";

/// A client of `maestro`.
fn client_of(maestro: &FakeMaestro) -> WorkClient {
    WorkClient::new(&maestro.config("fake-test")).unwrap()
}

fn names() -> (ConsumerName, WorkName) {
    (
        ConsumerName::new("cluster-west-1").unwrap(),
        WorkName::new("w").unwrap(),
    )
}

/// The work `w` on `cluster-west-1` this client publishes.
fn declared(data: &str) -> ManifestWork {
    serde_json::from_value(json!({
        "apiVersion": "work.open-cluster-management.io/v1",
        "kind": "ManifestWork",
        "metadata": {"name": "w", "namespace": "cluster-west-1",
                     "labels": {OWNER_UID_LABEL: "uid-mine"}},
        "spec": {"workload": {"manifests": [{
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "c", "namespace": "default"},
            "data": {"k": data}}]}}
    }))
    .unwrap()
}

/// The bundle of work `w` at version 3, labelled with `owner_uid`.
fn bundle_owned_by(owner_uid: &str) -> Value {
    let mut bundle = bundle_of(&declared("v1"), 3);
    bundle["metadata"]["labels"][OWNER_UID_LABEL] = json!(owner_uid);
    bundle
}

/// The operator's check: the bundle must carry our uid.
fn owned_by(uid: &str) -> impl FnOnce(&HeldWork) -> std::result::Result<(), Refusal> + '_ {
    move |held| {
        let found = held.labels.get(OWNER_UID_LABEL);
        if found == Some(uid) {
            Ok(())
        } else {
            Err(Refusal(format!("owned by {found:?}, not {uid}")))
        }
    }
}

#[tokio::test]
async fn delete_if_publishes_the_delete_when_the_fresh_read_passes_the_check() {
    let maestro = FakeMaestro::start(Some(bundle_owned_by("uid-mine")), [Answer::accept()]).await;
    let (consumer, name) = names();
    let outcome = client_of(&maestro)
        .delete_if(&consumer, &name, owned_by("uid-mine"))
        .await
        .unwrap();
    assert_eq!(outcome, DeleteOutcome::Deleting);
    assert_eq!(maestro.published(), ["delete"]);
    assert_eq!(maestro.reads(), 1, "one fresh read before the write");
}

#[tokio::test]
async fn delete_if_sends_nothing_when_the_bundle_now_belongs_to_another_owner() {
    let maestro = FakeMaestro::start(Some(bundle_owned_by("uid-other")), []).await;
    let (consumer, name) = names();
    let outcome = client_of(&maestro)
        .delete_if(&consumer, &name, owned_by("uid-mine"))
        .await
        .unwrap();
    let DeleteOutcome::Refused(refusal) = outcome else {
        panic!("{outcome:?}")
    };
    assert!(refusal.0.contains("uid-other"), "{refusal}");
    assert!(maestro.published().is_empty(), "nothing published");
}

#[tokio::test]
async fn delete_if_does_not_take_another_owners_deletion_for_its_own() {
    let maestro = FakeMaestro::start(Some(deleting(bundle_owned_by("uid-other"))), []).await;
    let (consumer, name) = names();
    let outcome = client_of(&maestro)
        .delete_if(&consumer, &name, owned_by("uid-mine"))
        .await
        .unwrap();
    assert!(matches!(outcome, DeleteOutcome::Refused(_)), "{outcome:?}");
    assert!(maestro.published().is_empty());
}

#[tokio::test]
async fn plain_delete_accepts_any_owner_and_a_missing_bundle_is_not_found() {
    let maestro = FakeMaestro::start(Some(bundle_owned_by("uid-other")), [Answer::accept()]).await;
    let (consumer, name) = names();
    assert_eq!(
        client_of(&maestro).delete(&consumer, &name).await.unwrap(),
        DeleteOutcome::Deleting
    );
    assert_eq!(maestro.published(), ["delete"]);

    let empty = FakeMaestro::start(None, []).await;
    assert_eq!(
        client_of(&empty)
            .delete_if(&consumer, &name, owned_by("uid-mine"))
            .await
            .unwrap(),
        DeleteOutcome::NotFound
    );
    assert!(empty.published().is_empty());
}

// A publish whose reply is lost after Maestro committed it, and a retry
// that meets its own earlier write.

/// A client that gives up on a publish's reply after half a second.
fn impatient_client_of(maestro: &FakeMaestro) -> WorkClient {
    let mut config = maestro.config("fake-test");
    config.request_timeout = Duration::from_millis(500);
    WorkClient::new(&config).unwrap()
}

#[tokio::test]
async fn a_create_whose_reply_is_lost_after_the_commit_is_reported_as_done() {
    let work = declared("v1");
    let committed = Answer::hang().holding(Some(bundle_of(&work, 1)));
    let maestro = FakeMaestro::start(None, [committed]).await;
    impatient_client_of(&maestro).create(&work).await.unwrap();
    assert_eq!(maestro.published().len(), 1, "one publish, no retry");
}

#[tokio::test]
async fn a_create_whose_reply_is_lost_without_a_commit_still_times_out() {
    let maestro = FakeMaestro::start(None, [Answer::hang()]).await;
    let e = impatient_client_of(&maestro)
        .create(&declared("v1"))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Timeout { .. }), "{e:?}");
}

#[tokio::test]
async fn a_retried_update_that_meets_its_own_earlier_write_succeeds_not_stale() {
    // The earlier attempt at version 3 committed version 4 and lost its
    // reply; the retry at version 3 is refused as stale.
    let work = declared("v2");
    let maestro = FakeMaestro::start(Some(bundle_of(&work, 4)), [Answer::stale()]).await;
    client_of(&maestro).update(&work, 3).await.unwrap();
}

#[tokio::test]
async fn a_stale_version_against_another_writers_spec_stays_an_error() {
    let theirs = bundle_of(&declared("theirs"), 4);
    let maestro = FakeMaestro::start(Some(theirs), [Answer::stale()]).await;
    let e = client_of(&maestro)
        .update(&declared("v2"), 3)
        .await
        .unwrap_err();
    assert!(matches!(e, Error::StaleVersion { .. }), "{e:?}");
}

#[tokio::test]
async fn a_retried_create_that_meets_its_own_earlier_create_succeeds_not_conflict() {
    let work = declared("v1");
    let exists = Answer::refuse(Status::already_exists(
        "failed to create resource: maestro-6: resource already exists",
    ));
    let maestro = FakeMaestro::start(Some(bundle_of(&work, 1)), [exists]).await;
    client_of(&maestro).create(&work).await.unwrap();
}

// apply_with's read-decide-write loop against a Maestro that refuses
// publishes as stale.

#[tokio::test]
async fn apply_with_reads_and_decides_again_after_a_stale_version() {
    let theirs = bundle_of(&declared("theirs"), 3);
    let maestro = FakeMaestro::start(Some(theirs), [Answer::stale(), Answer::accept()]).await;
    let (consumer, name) = names();
    let mut seen = Vec::new();
    let applied = client_of(&maestro)
        .apply_with(&consumer, &name, Detail::Summary, |current| {
            seen.push(current.map(|b| b.version));
            Decision::<_, Refusal>::Publish(Box::new(declared("v2")), "mine")
        })
        .await
        .unwrap();
    assert!(
        matches!(
            applied,
            Applied::Updated {
                from_version: 3,
                note: "mine"
            }
        ),
        "{applied:?}"
    );
    assert_eq!(seen, [Some(3), Some(3)], "a fresh decision per read");
    assert_eq!(maestro.published(), ["update", "update"]);
    // Per attempt one read before the write, and one read back after the
    // stale answer to tell a landed write from a lost one.
    assert_eq!(maestro.reads(), 3);
}

#[tokio::test]
async fn apply_with_gives_up_with_the_stale_version_after_its_attempts() {
    let theirs = bundle_of(&declared("theirs"), 3);
    let always_stale = (0..APPLY_ATTEMPTS).map(|_| Answer::stale());
    let maestro = FakeMaestro::start(Some(theirs), always_stale).await;
    let (consumer, name) = names();
    let e = client_of(&maestro)
        .apply_with(&consumer, &name, Detail::Summary, |_| {
            Decision::<_, Refusal>::Publish(Box::new(declared("v2")), ())
        })
        .await
        .unwrap_err();
    assert!(matches!(e, Error::StaleVersion { .. }), "{e:?}");
    assert_eq!(maestro.published().len(), APPLY_ATTEMPTS as usize);
}

#[tokio::test]
async fn apply_with_sends_nothing_on_a_skip_or_a_refusal() {
    let maestro = FakeMaestro::start(Some(bundle_of(&declared("v1"), 3)), []).await;
    let client = client_of(&maestro);
    let (consumer, name) = names();
    let skipped = client
        .apply_with(&consumer, &name, Detail::Summary, |_| {
            Decision::<_, Refusal>::Skip(7)
        })
        .await
        .unwrap();
    assert!(
        matches!(&skipped, Applied::Skipped { note: 7, current: Some(b) } if b.version == 3),
        "{skipped:?}"
    );
    let refused = client
        .apply_with(&consumer, &name, Detail::Summary, |_| {
            Decision::<(), _>::Refuse(Refusal("not yours".into()))
        })
        .await
        .unwrap();
    assert!(matches!(refused, Applied::Refused(Refusal(r)) if r == "not yours"));
    assert!(maestro.published().is_empty());
}

#[tokio::test]
async fn apply_with_refuses_a_decision_to_publish_another_work() {
    let maestro = FakeMaestro::start(Some(bundle_of(&declared("v1"), 3)), []).await;
    let consumer = ConsumerName::new("cluster-east-2").unwrap();
    let name = WorkName::new("w").unwrap();
    let e = client_of(&maestro)
        .apply_with(&consumer, &name, Detail::Summary, |_| {
            Decision::<_, Refusal>::Publish(Box::new(declared("v2")), ())
        })
        .await
        .unwrap_err();
    assert!(
        matches!(e, Error::Config(ref m) if m.contains("cluster-east-2/w")),
        "{e:?}"
    );
    assert!(maestro.published().is_empty());
}

#[tokio::test]
async fn plain_apply_leaves_an_unchanged_work_and_refuses_one_being_deleted() {
    let work = declared("v1");
    let same = FakeMaestro::start(Some(bundle_of(&work, 3)), []).await;
    assert_eq!(
        client_of(&same).apply(&work).await.unwrap(),
        ApplyOutcome::Unchanged { version: 3 }
    );
    assert!(same.published().is_empty());

    let going = deleting(bundle_of(&declared("v0"), 3));
    let being_deleted = FakeMaestro::start(Some(going), []).await;
    let e = client_of(&being_deleted).apply(&work).await.unwrap_err();
    assert!(
        matches!(e, Error::Conflict(ref m) if m.contains("being deleted")),
        "{e:?}"
    );
    assert!(being_deleted.published().is_empty());
}
