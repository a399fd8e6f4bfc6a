use super::*;

#[test]
fn durations_take_go_style_units() {
    let cases = [
        ("90", 90_000),
        ("90s", 90_000),
        ("5m", 300_000),
        ("1h30m", 5_400_000),
        ("500ms", 500),
        ("1.5s", 1_500),
    ];
    for (text, ms) in cases {
        assert_eq!(
            parse_duration(text).unwrap(),
            Duration::from_millis(ms),
            "{text}"
        );
    }
    for bad in [
        "", "5x", "m", "5 m", "-1s", "1s-1s", "1.5.5s", "NaNs", "1e400s",
    ] {
        assert!(parse_duration(bad).is_err(), "{bad}");
    }
    assert_eq!(
        parse_duration("40000000ms").unwrap(),
        Duration::from_secs(40_000)
    );
}

#[test]
fn overflowing_timeouts_are_refused_naming_the_flag_not_panicking() {
    for text in [
        "99999999999999999h",
        "18446744073709551615",
        "99999999999999999999999",
        "18446744073709551615s1s",
        "10000000000000000000s10000000000000000000s",
        "1000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000s",
        "8761h",
        "31536001",
        "525601m",
    ] {
        let e = parse_timeout(text).unwrap_err();
        assert!(
            e.contains("too large") && e.contains("--timeout") && e.contains("8760h"),
            "{text}: {e}"
        );
    }
    assert_eq!(parse_timeout("8760h").unwrap(), MAX_TIMEOUT);
}

#[test]
fn a_deadline_beyond_the_clock_saturates_instead_of_panicking() {
    let deadline = Deadline::after(Duration::MAX);
    assert!(deadline.end() > Instant::now());
    assert!(deadline.remaining() > Duration::from_secs(3600));
}

#[test]
fn timeouts_below_a_second_are_refused_with_the_minimum() {
    let e = parse_timeout("200ms").unwrap_err();
    assert!(e.contains("too small") && e.contains("1s"), "{e}");
    assert!(parse_timeout("0").is_err());
    assert_eq!(parse_timeout("1s").unwrap(), Duration::from_secs(1));
}

#[tokio::test(start_paused = true)]
async fn retry_retries_transient_errors_and_stops_at_permanent_ones() {
    let deadline = Deadline::after(Duration::from_secs(60));
    let mut calls = 0;
    let value = retry(&deadline, "get", async || {
        calls += 1;
        if calls < 3 {
            Err(Error::Unavailable("down".into()))
        } else {
            Ok(7)
        }
    })
    .await
    .unwrap();
    assert_eq!((value, calls), (7, 3));

    let mut calls = 0;
    let e = retry(&deadline, "get", async || -> Result<(), Error> {
        calls += 1;
        Err(Error::Conflict("taken".into()))
    })
    .await
    .unwrap_err();
    assert_eq!(calls, 1);
    assert!(e.to_string().starts_with("get: conflict"), "{e}");
}

#[tokio::test(start_paused = true)]
async fn retry_gives_up_at_the_deadline_with_the_last_error() {
    let deadline = Deadline::after(Duration::from_secs(3));
    let mut calls = 0;
    let e = retry(&deadline, "list", async || -> Result<(), Error> {
        calls += 1;
        Err(Error::Unavailable("connection refused".into()))
    })
    .await
    .unwrap_err();
    assert!(calls > 1, "{calls}");
    let m = e.to_string();
    assert!(
        m.contains("gave up after") && m.contains("connection refused"),
        "{m}"
    );
    assert_eq!(e.exit_status().code(), 1);
}
