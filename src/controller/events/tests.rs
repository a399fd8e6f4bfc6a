use super::*;

fn events() -> Arc<Events> {
    let (service, _handle) = tower_test::mock::pair::<
        http::Request<kube::client::Body>,
        http::Response<kube::client::Body>,
    >();
    let client = kube::Client::new(service, "default");
    Events::new(
        client,
        Reporter {
            controller: "test".into(),
            instance: None,
        },
    )
}

#[tokio::test]
async fn a_recorder_that_published_nothing_is_kept() {
    let events = events();
    assert!(!events.forget_if_quiet(Instant::now() + FORGET_AFTER * 10));
}

#[tokio::test]
async fn a_recorder_quiet_for_the_series_window_is_replaced_once() {
    let events = events();
    let published = Instant::now();
    events.current.lock().last = Some(published);
    let second = Duration::from_secs(1);
    assert!(!events.forget_if_quiet(published + FORGET_AFTER - second));
    assert!(events.forget_if_quiet(published + FORGET_AFTER));
    assert!(events.current.lock().last.is_none());
    assert!(!events.forget_if_quiet(published + FORGET_AFTER * 2));
}

#[tokio::test]
async fn a_recent_event_keeps_the_recorder() {
    let events = events();
    let start = Instant::now();
    events.current.lock().last = Some(start + FORGET_AFTER);
    assert!(!events.forget_if_quiet(start + FORGET_AFTER + Duration::from_secs(60)));
}
