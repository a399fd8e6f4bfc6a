use super::*;

#[test]
fn stale_version_carries_the_latest_version() {
    let e = Error::from_maestro_text(
        "failed to update resource: maestro-6: the resource version is not the latest, the latest version: 2",
        None,
    );
    assert!(
        matches!(
            e,
            Error::StaleVersion {
                latest: Some(2),
                ..
            }
        ),
        "{e:?}"
    );
}

#[test]
fn already_exists_is_a_plain_conflict() {
    let e = Error::from_maestro_text(
        "failed to create resource: maestro-6: This Resource already exists",
        None,
    );
    assert!(matches!(e, Error::Conflict(_)), "{e:?}");
}

#[test]
fn missing_consumer_foreign_key_means_unknown_consumer() {
    let e = Error::from_maestro_text(
            "failed to create resource: maestro-9: Unable to create Resource: ERROR: insert or update on table \"resources\" violates foreign key constraint \"fk_resources_consumers\" (SQLSTATE 23503)",
            None,
        )
        .with_consumer("cluster-west-1");
    assert!(
        matches!(&e, Error::UnknownConsumer { consumer } if consumer == "cluster-west-1"),
        "{e:?}"
    );
}

#[test]
fn validation_codes_are_rejections_and_not_transient() {
    for text in [
        "failed to create resource: maestro-8: the manifest bundle in the resource is invalid, x",
        "maestro-21: bad order value 'x'",
    ] {
        let e = Error::from_maestro_text(text, Some(400));
        assert!(matches!(e, Error::Rejected { .. }), "{e:?}");
        assert!(!e.is_transient());
    }
}

#[test]
fn not_found_and_forbidden_follow_their_codes() {
    assert!(matches!(
        Error::from_maestro_text(
            "failed to get resource: maestro-7: Resource with id='x' not found",
            None
        ),
        Error::NotFound(_)
    ));
    assert!(matches!(
        Error::from_maestro_text("maestro-4: Unable to delete Consumer", Some(403)),
        Error::Forbidden(_)
    ));
}

#[test]
fn text_without_code_falls_back_to_http_status() {
    assert!(matches!(
        Error::from_maestro_text("bad gateway", Some(502)),
        Error::Unavailable(_)
    ));
    assert!(Error::from_maestro_text("bad gateway", Some(502)).is_transient());
    assert!(matches!(
        Error::from_maestro_text("unsupported action x", None),
        Error::Server {
            code: MaestroCode(None),
            ..
        }
    ));
}

#[test]
fn code_is_found_after_other_text() {
    assert_eq!(
        MaestroCode::find_in("x maestro-abc maestro-26: lock").0,
        Some(26)
    );
    assert_eq!(MaestroCode::find_in("nothing here").0, None);
}
