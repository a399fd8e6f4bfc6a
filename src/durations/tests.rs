use super::*;

#[test]
fn durations_read_as_they_are_written() {
    assert_eq!(format(Duration::from_secs(300)), "5m");
    assert_eq!(format(Duration::from_secs(600)), "10m");
    assert_eq!(format(Duration::from_secs(5430)), "1h30m30s");
    assert_eq!(format(Duration::from_secs(7200)), "2h");
    assert_eq!(format(Duration::from_millis(400)), "400ms");
}
