use std::convert::Infallible;

use tower::ServiceExt;

use super::*;

fn counter() -> impl Service<(), Response = (), Error = Infallible> {
    tower::service_fn(|()| async { Ok::<_, Infallible>(()) })
}

#[tokio::test(start_paused = true)]
async fn a_burst_goes_at_once_then_requests_keep_the_rate() {
    let mut svc = ThrottleLayer::new(10.0, 5).layer(counter());
    let start = Instant::now();
    for _ in 0..5 {
        svc.ready().await.unwrap().call(()).await.unwrap();
    }
    assert_eq!(start.elapsed(), Duration::ZERO, "the burst is free");
    for _ in 0..10 {
        svc.ready().await.unwrap().call(()).await.unwrap();
    }
    let elapsed = start.elapsed();
    assert!(
        elapsed >= Duration::from_millis(1000) && elapsed < Duration::from_millis(1100),
        "ten more at 10/s take a second, took {elapsed:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn zero_qps_is_no_limit() {
    let mut svc = ThrottleLayer::new(0.0, 1).layer(counter());
    let start = Instant::now();
    for _ in 0..1000 {
        svc.ready().await.unwrap().call(()).await.unwrap();
    }
    assert_eq!(start.elapsed(), Duration::ZERO);
}

#[tokio::test(start_paused = true)]
async fn readiness_polled_twice_takes_one_token() {
    // tower's buffer may poll readiness again before calling.
    let mut svc = ThrottleLayer::new(1.0, 1).layer(counter());
    svc.ready().await.unwrap();
    svc.ready().await.unwrap();
    svc.call(()).await.unwrap();
    let start = Instant::now();
    svc.ready().await.unwrap().call(()).await.unwrap();
    assert_eq!(start.elapsed(), Duration::from_secs(1));
}
