use super::*;

#[tokio::test(start_paused = true)]
async fn a_watch_failing_past_the_limit_breaks_liveness_and_a_success_resets_it() {
    let watch = WatchHealth::default();
    let health = Health::default();
    let shutdown = CancellationToken::new();
    let limit = Duration::from_secs(60);
    tokio::spawn(watch.clone().enforce(limit, health.clone(), shutdown));

    watch.observe::<(), _>(&Err("list refused"));
    tokio::time::sleep(Duration::from_secs(30)).await;
    watch.observe::<_, String>(&Ok(()));
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert!(!health.is_broken(), "a success in between resets the clock");

    watch.observe::<(), _>(&Err("forbidden"));
    tokio::time::sleep(Duration::from_secs(59)).await;
    assert!(!health.is_broken());
    tokio::time::sleep(Duration::from_secs(20)).await;
    assert!(health.is_broken());
    assert!(health.reason().contains("forbidden"), "{}", health.reason());
}
