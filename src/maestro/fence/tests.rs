use super::*;
use std::time::Duration;

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

#[test]
fn an_open_fence_always_allows_writes_and_never_ends() {
    let fence = WriteFence::open();
    assert!(fence.check().is_ok());
    fence.revoke();
    assert!(fence.check().is_ok(), "an open fence has nothing to revoke");
    assert!(!fence.has_ended());
    assert_eq!(fence.deadline(), None);
}

#[tokio::test(start_paused = true)]
async fn a_closed_fence_refuses_until_granted_then_allows_until_the_deadline() {
    let fence = WriteFence::closed();
    let err = fence.check().unwrap_err();
    assert_eq!(err.reason(), "NotLeader");
    assert!(!fence.has_ended(), "never granted is not ended");

    assert!(fence.extend_until(Instant::now() + secs(4)));
    assert!(fence.check().is_ok());
    tokio::time::advance(Duration::from_millis(3999)).await;
    assert!(fence.check().is_ok(), "open just before the deadline");
    tokio::time::advance(Duration::from_millis(1)).await;
    assert!(fence.check().is_err(), "closed at the deadline itself");
    assert!(fence.has_ended());
}

#[tokio::test(start_paused = true)]
async fn renewals_move_the_deadline_but_a_late_one_never_reopens_the_fence() {
    let fence = WriteFence::closed();
    assert!(fence.extend_until(Instant::now() + secs(4)));
    tokio::time::advance(secs(3)).await;
    assert!(
        fence.extend_until(Instant::now() + secs(4)),
        "renewed in time"
    );
    tokio::time::advance(secs(3)).await;
    assert!(fence.check().is_ok(), "6 s in, open thanks to the renewal");
    tokio::time::advance(secs(2)).await;
    assert!(fence.check().is_err());
    assert!(
        !fence.extend_until(Instant::now() + secs(4)),
        "a renewal after the deadline is refused"
    );
    assert!(fence.check().is_err());
    assert_eq!(fence.deadline(), None);
}

#[tokio::test(start_paused = true)]
async fn a_revoked_fence_stays_closed() {
    let fence = WriteFence::closed();
    assert!(fence.extend_until(Instant::now() + secs(10)));
    fence.revoke();
    assert!(fence.check().is_err());
    assert!(!fence.extend_until(Instant::now() + secs(10)));
    assert!(fence.check().is_err());
}

#[tokio::test(start_paused = true)]
async fn clones_share_the_fence() {
    let fence = WriteFence::closed();
    let held_by_a_client = fence.clone();
    assert!(fence.extend_until(Instant::now() + secs(1)));
    assert!(held_by_a_client.check().is_ok());
    fence.revoke();
    assert!(held_by_a_client.check().is_err());
}

#[tokio::test(start_paused = true)]
async fn ended_resolves_at_the_last_deadline_not_before() {
    let fence = WriteFence::closed();
    let start = Instant::now();
    let waiter = tokio::spawn({
        let fence = fence.clone();
        async move {
            fence.ended().await;
            Instant::now()
        }
    });
    // Never granted: nothing ends.
    tokio::time::sleep(secs(5)).await;
    assert!(!waiter.is_finished());

    assert!(fence.extend_until(start + secs(8)));
    tokio::time::sleep(secs(2)).await;
    assert!(fence.extend_until(start + secs(11)));
    let ended_at = waiter.await.unwrap();
    assert_eq!(ended_at - start, secs(11));
    assert!(fence.check().is_err());
}

#[tokio::test(start_paused = true)]
async fn ended_resolves_at_once_on_revoke() {
    let fence = WriteFence::closed();
    assert!(fence.extend_until(Instant::now() + secs(60)));
    let waiter = tokio::spawn({
        let fence = fence.clone();
        async move { fence.ended().await }
    });
    tokio::time::sleep(secs(1)).await;
    fence.revoke();
    tokio::time::timeout(secs(1), waiter)
        .await
        .expect("resolves on revoke")
        .unwrap();
}
