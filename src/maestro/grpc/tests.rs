use super::*;

#[test]
fn unknown_status_is_classified_by_maestro_code() {
    let s = Status::unknown(
        "failed to update resource: maestro-6: the resource version is not the latest, the latest version: 3",
    );
    assert!(matches!(
        classify_status(&s, "x"),
        Error::StaleVersion {
            latest: Some(3),
            ..
        }
    ));
}

#[test]
fn transport_codes_are_classified() {
    assert!(matches!(
        classify_status(&Status::unavailable("connection refused"), "x"),
        Error::Unavailable(_)
    ));
    assert!(matches!(
        classify_status(&Status::unauthenticated("invalid token"), "x"),
        Error::Unauthenticated(_)
    ));
    assert!(matches!(
        classify_status(
            &Status::unknown("unauthorized to publish the event from source s"),
            "x"
        ),
        Error::Forbidden(_)
    ));
}
