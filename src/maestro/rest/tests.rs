use super::fake::{FakeServer, Recorded, Reply, gzip, read_consumer, rest_config};
use super::*;

const CONSUMER: &str = r#"{"id":"c1","kind":"Consumer","name":"cluster1"}"#;

fn client(url: &str) -> RestClient {
    RestClient::new(&rest_config(url)).unwrap()
}

#[tokio::test]
async fn token_is_sent_as_bearer_and_reread_for_each_request() {
    let server = FakeServer::start(|_: &Recorded| Reply::json(200, CONSUMER)).await;
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "first-token\n").unwrap();
    let mut cfg = rest_config(&server.url());
    cfg.token_file = Some(token.clone());
    // The fake serves plaintext; real deployments use TLS.
    cfg.allow_insecure_token = true;
    let c = RestClient::new(&cfg).unwrap();
    c.get_consumer("c1").await.unwrap();
    std::fs::write(&token, "second-token").unwrap();
    c.get_consumer("c1").await.unwrap();
    let auth: Vec<_> = server
        .requests()
        .iter()
        .map(|r| r.header("authorization").unwrap_or_default().to_string())
        .collect();
    assert_eq!(auth, ["Bearer first-token", "Bearer second-token"]);
    assert!(!format!("{c:?}").contains("second-token"));
}

#[tokio::test]
async fn no_token_file_sends_no_authorization() {
    let server = FakeServer::start(|_: &Recorded| Reply::json(200, CONSUMER)).await;
    client(&server.url()).get_consumer("c1").await.unwrap();
    assert_eq!(server.requests()[0].header("authorization"), None);
}

#[tokio::test]
async fn unreadable_token_file_fails_before_sending() {
    let server = FakeServer::start(|_: &Recorded| Reply::json(200, CONSUMER)).await;
    let mut cfg = rest_config(&server.url());
    cfg.token_file = Some("/nonexistent/token".into());
    // The fake serves plaintext; real deployments use TLS.
    cfg.allow_insecure_token = true;
    let e = read_consumer(&cfg).await.unwrap_err();
    assert!(
        matches!(e, Error::Config(ref m) if m.contains("/nonexistent/token")),
        "{e:?}"
    );
    assert!(server.requests().is_empty());
}

#[tokio::test]
async fn operation_id_is_sent_only_by_a_client_given_one() {
    let server = FakeServer::start(|_: &Recorded| Reply::json(200, CONSUMER)).await;
    let c = client(&server.url());
    c.with_operation_id("op-42")
        .unwrap()
        .get_consumer("c1")
        .await
        .unwrap();
    c.get_consumer("c1").await.unwrap();
    let ids: Vec<_> = server
        .requests()
        .iter()
        .map(|r| r.header("x-operation-id").map(str::to_string))
        .collect();
    assert_eq!(ids, [Some("op-42".to_string()), None]);
    assert!(c.with_operation_id("bad\nid").is_err());
}

#[tokio::test]
async fn gzip_answers_are_decoded() {
    let server = FakeServer::start(|r: &Recorded| {
        assert!(
            r.header("accept-encoding")
                .unwrap_or_default()
                .contains("gzip")
        );
        let mut reply = Reply::json(200, "");
        reply.body = gzip(CONSUMER.as_bytes());
        reply
            .headers
            .push(("Content-Encoding".into(), "gzip".into()));
        reply
    })
    .await;
    let consumer = client(&server.url()).get_consumer("c1").await.unwrap();
    assert_eq!(consumer.name, "cluster1");
}

#[tokio::test]
async fn an_answer_over_the_size_limit_is_refused_after_decompression() {
    let big = format!(r#"{{"name": "{}"}}"#, "x".repeat(64 * 1024));
    let gzipped = gzip(big.as_bytes());
    let server = FakeServer::start(move |_: &Recorded| {
        let mut reply = Reply::json(200, "");
        reply.body = gzipped.clone();
        reply
            .headers
            .push(("Content-Encoding".into(), "gzip".into()));
        reply
    })
    .await;
    let mut cfg = rest_config(&server.url());
    cfg.max_response_bytes = 16 * 1024;
    let e = read_consumer(&cfg).await.unwrap_err();
    let text = e.to_string();
    assert!(
        matches!(e, Error::Protocol(_)) && text.contains("larger than 16384 bytes"),
        "{text}"
    );
    assert!(text.contains("GET /api/maestro/v1/consumers/c1"), "{text}");
    // Within the limit, the same answer reads.
    cfg.max_response_bytes = 1024 * 1024;
    let c = read_consumer(&cfg).await;
    assert!(!matches!(c, Err(Error::Protocol(ref m)) if m.contains("larger than")));
}

#[tokio::test]
async fn slow_answer_is_a_timeout_naming_the_duration() {
    let server = FakeServer::start(|_: &Recorded| {
        let mut reply = Reply::json(200, CONSUMER);
        reply.delay = Duration::from_secs(10);
        reply
    })
    .await;
    let mut cfg = rest_config(&server.url());
    cfg.request_timeout = Duration::from_millis(300);
    let c = RestClient::new(&cfg).unwrap();
    let started = Instant::now();
    let e = tokio::time::timeout(Duration::from_secs(5), c.get_consumer("c1"))
        .await
        .expect("the client must give up on its own")
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(3));
    let Error::Timeout { what, after } = &e else {
        panic!("{e:?}")
    };
    assert_eq!(*after, Duration::from_millis(300));
    assert!(what.contains("GET /api/maestro/v1/consumers/c1"), "{what}");
    assert!(e.to_string().contains("timed out after 300ms"), "{e}");
}

#[tokio::test]
async fn refused_connection_is_unavailable_naming_the_endpoint() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let e = client(&url).get_consumer("c1").await.unwrap_err();
    let Error::Unavailable(m) = &e else {
        panic!("{e:?}")
    };
    assert!(m.contains(&url), "{m}");
    assert!(e.is_transient());
}

#[tokio::test]
async fn undecodable_success_is_a_protocol_error_naming_the_path() {
    let server = FakeServer::start(|_: &Recorded| Reply::json(200, r#"{"kind":"Consumer"}"#)).await;
    let e = client(&server.url()).get_consumer("c1").await.unwrap_err();
    let Error::Protocol(m) = &e else {
        panic!("{e:?}")
    };
    assert!(
        m.contains("GET /api/maestro/v1/consumers/c1") && m.contains("missing field `id`"),
        "{m}"
    );
}

#[tokio::test]
async fn error_bodies_map_to_variants_end_to_end() {
    let server = FakeServer::start(|r: &Recorded| match r.path.rsplit('/').next() {
            Some("bad-search") => Reply::json(
                400,
                r#"{"code":"maestro-21","href":"/api/maestro/v1/errors/21","id":"21","kind":"Error","operation_id":"o","reason":"Failed to parse search query: x"}"#,
            ),
            Some("broken") => Reply::json(
                500,
                r#"{"code":"maestro-9","href":"/api/maestro/v1/errors/9","id":"9","kind":"Error","operation_id":"o","reason":"Unspecified error"}"#,
            ),
            _ => {
                let mut reply = Reply::empty(502);
                reply.headers.push(("Content-Type".into(), "text/html".into()));
                reply.body = b"<html><body><h1>502 Bad Gateway</h1></body></html>".to_vec();
                reply
            }
        })
        .await;
    let c = client(&server.url());
    let e = c.get_consumer("bad-search").await.unwrap_err();
    assert!(
        matches!(
            e,
            Error::Rejected {
                code: crate::maestro::error::MaestroCode(Some(21)),
                ..
            }
        ),
        "{e:?}"
    );
    let e = c.get_consumer("broken").await.unwrap_err();
    assert!(matches!(e, Error::Server { .. }), "{e:?}");
    let e = c.get_consumer("proxy").await.unwrap_err();
    let Error::Unavailable(m) = &e else {
        panic!("{e:?}")
    };
    assert!(
        m.contains("502 Bad Gateway") && m.contains("GET /api/maestro/v1/consumers/proxy"),
        "{m}"
    );
}

#[tokio::test]
async fn endpoint_path_prefix_is_kept() {
    let server = FakeServer::start(|_: &Recorded| Reply::json(200, CONSUMER)).await;
    client(&format!("{}/maestro/", server.url()))
        .get_consumer("c 1/x")
        .await
        .unwrap();
    assert_eq!(
        server.requests()[0].path,
        "/maestro/api/maestro/v1/consumers/c%201%2Fx"
    );
}

#[test]
fn ca_file_without_certificates_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, "not a certificate").unwrap();
    let mut cfg = rest_config("https://maestro:8000");
    cfg.tls.ca_file = Some(ca);
    let e = RestClient::new(&cfg).unwrap_err();
    assert!(
        matches!(e, Error::Config(ref m) if m.contains("ca.pem")),
        "{e:?}"
    );
}

#[test]
fn half_a_client_certificate_is_refused() {
    let mut cfg = rest_config("https://maestro:8000");
    cfg.tls.key_file = Some("/tmp/key.pem".into());
    let e = RestClient::new(&cfg).unwrap_err();
    assert!(
        matches!(e, Error::Config(ref m) if m.contains("--cert-file")),
        "{e:?}"
    );
}
