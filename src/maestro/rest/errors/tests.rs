use super::*;

fn classify(status: u16, body: &str) -> Error {
    from_response(
        &Method::GET,
        "/api/maestro/v1/resource-bundles/abc",
        StatusCode::from_u16(status).unwrap(),
        body.as_bytes(),
    )
}

fn body(code: u32, reason: &str) -> String {
    format!(
        r#"{{"code":"maestro-{code}","href":"/api/maestro/v1/errors/{code}","id":"{code}","kind":"Error","operation_id":"op-1","reason":"{reason}"}}"#
    )
}

#[test]
fn maestro_404_is_not_found_with_method_path_and_operation() {
    let e = classify(404, &body(7, "Resource with id='abc' not found"));
    let Error::NotFound(m) = &e else {
        panic!("{e:?}")
    };
    assert!(
        m.starts_with("maestro-7: Resource with id='abc' not found"),
        "{m}"
    );
    assert!(
        m.contains("GET /api/maestro/v1/resource-bundles/abc -> HTTP 404"),
        "{m}"
    );
    assert!(m.contains("operation op-1"), "{m}");
}

#[test]
fn router_404_with_type_key_points_at_the_endpoint() {
    let e = classify(
        404,
        r#"{"type":"Error","id":"404","href":"/api/maestro/v1/errors/404","code":"maestro-404","reason":"The requested resource '/x' doesn't exist"}"#,
    );
    let Error::Protocol(m) = &e else {
        panic!("{e:?}")
    };
    assert!(
        m.contains("maestro-404") && m.contains("endpoint may be wrong"),
        "{m}"
    );
}

#[test]
fn codes_map_to_their_variants() {
    assert!(matches!(
        classify(409, &body(6, "This Consumer already exists")),
        Error::Conflict(_)
    ));
    assert!(matches!(
        classify(400, &body(21, "bad order value 'x'")),
        Error::Rejected {
            code: MaestroCode(Some(21)),
            ..
        }
    ));
    assert!(matches!(
        classify(403, &body(4, "Unable to delete Consumer")),
        Error::Forbidden(_)
    ));
    assert!(matches!(
        classify(500, &body(9, "Unspecified error")),
        Error::Server {
            code: MaestroCode(Some(9)),
            ..
        }
    ));
    let lock = classify(500, &body(26, "Database advisory lock error"));
    assert!(lock.is_transient(), "{lock:?}");
}

#[test]
fn old_jwt_401_with_upper_case_code_is_unauthenticated() {
    let e = classify(
        401,
        r#"{"kind":"Error","id":"401","href":"/api/maestro/v1/errors/401","code":"MAESTRO-401","reason":"Request doesn't contain the 'Authorization' header"}"#,
    );
    assert!(matches!(e, Error::Unauthenticated(_)), "{e:?}");
}

#[test]
fn html_502_is_unavailable_with_a_short_excerpt() {
    let html = format!(
        "<html>\n<head><title>502 Bad Gateway</title></head>\n<body>maestro-7fd8 {}</body></html>",
        "x".repeat(1000)
    );
    let e = classify(502, &html);
    let Error::Unavailable(m) = &e else {
        panic!("{e:?}")
    };
    assert!(
        m.contains("HTTP 502: <html> <head><title>502 Bad Gateway"),
        "{m}"
    );
    assert!(m.chars().count() < 300, "{m}");
    assert!(m.ends_with('…'), "{m}");
}

#[test]
fn non_maestro_statuses_fall_back_on_the_status() {
    assert!(matches!(classify(404, "not found"), Error::Protocol(_)));
    assert!(matches!(classify(405, ""), Error::Protocol(_)));
    assert!(matches!(classify(503, "{}"), Error::Unavailable(_)));
    assert!(matches!(
        classify(500, "oops"),
        Error::Server {
            code: MaestroCode(None),
            ..
        }
    ));
    assert!(matches!(classify(401, ""), Error::Unauthenticated(_)));
    let empty = classify(405, "");
    assert!(empty.to_string().contains("(empty body)"), "{empty}");
}

#[test]
fn excerpt_keeps_short_bodies_whole() {
    assert_eq!(
        excerpt(b"  upstream\n connect error  "),
        "upstream connect error"
    );
}
