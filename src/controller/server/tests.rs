use super::*;

async fn get_text(address: SocketAddr, path: &str) -> (u16, String) {
    let response = reqwest::get(format!("http://{address}{path}"))
        .await
        .unwrap();
    let code = response.status().as_u16();
    (code, response.text().await.unwrap())
}

#[tokio::test]
async fn probes_and_metrics_answer_on_their_addresses() {
    crate::maestro::config::ensure_crypto_provider();
    let health = Health::default();
    let metrics = Arc::new(Metrics::new());
    let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let server = Server::bind(any, any, MetricsAccess::Open, metrics, health.clone())
        .await
        .unwrap();
    let address = server.addresses()[0];
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(server.run(shutdown.clone()));

    assert_eq!(get_text(address, "/healthz").await.0, 200);
    health.set_ready(false, "waiting for the leader lease");
    assert_eq!(
        get_text(address, "/readyz").await,
        (503, "waiting for the leader lease".into())
    );
    health.set_ready(true, "");
    assert_eq!(get_text(address, "/readyz").await.0, 200);
    let (code, text) = get_text(address, "/metrics").await;
    assert_eq!(code, 200);
    assert!(text.contains("maestro_operator_reconciles_total"), "{text}");
    health.set_broken("the controller stopped");
    assert_eq!(get_text(address, "/healthz").await.0, 503);

    shutdown.cancel();
    task.await.unwrap().unwrap();
}

fn secure_access() -> MetricsAccess {
    crate::maestro::config::ensure_crypto_provider();
    MetricsAccess::Secure {
        tls: tls::server_config(None).unwrap(),
        authorizer: Arc::new(Authorizer::new(
            Arc::new(auth::tests::FakeReviewer::default()),
            DecisionCache::new(),
        )),
    }
}

async fn scrape(address: SocketAddr, token: Option<&str>) -> (u16, String) {
    let client = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .build()
        .unwrap();
    let mut request = client.get(format!("https://{address}/metrics"));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let code = response.status().as_u16();
    (code, response.text().await.unwrap())
}

#[tokio::test]
async fn secure_metrics_are_https_and_need_an_authorized_token_while_probes_stay_plain() {
    let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let server = Server::bind(
        any,
        any,
        secure_access(),
        Arc::new(Metrics::new()),
        Health::default(),
    )
    .await
    .unwrap();
    let (metrics_at, health_at) = (server.addresses()[0], server.addresses()[1]);
    assert_ne!(metrics_at, health_at);
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(server.run(shutdown.clone()));

    assert_eq!(scrape(metrics_at, None).await.0, 401);
    assert_eq!(scrape(metrics_at, Some("forged")).await.0, 401);
    let (code, body) = scrape(metrics_at, Some("stranger")).await;
    assert_eq!(code, 403);
    assert!(
        body.contains("system:serviceaccount:monitoring:stranger")
            && body.contains("get on the non-resource URL /metrics"),
        "{body}"
    );
    assert_eq!(scrape(metrics_at, Some("down")).await.0, 503);
    let (code, text) = scrape(metrics_at, Some("reader")).await;
    assert_eq!(code, 200);
    assert!(text.contains("maestro_operator_reconciles_total"), "{text}");
    let plain = reqwest::get(format!("http://{metrics_at}/metrics")).await;
    assert!(
        plain.as_ref().map_or(true, |r| r.status() != 200),
        "plain HTTP on the HTTPS port gets no metrics: {plain:?}"
    );
    assert_eq!(get_text(health_at, "/healthz").await.0, 200);
    assert_eq!(get_text(health_at, "/metrics").await.0, 404);

    shutdown.cancel();
    task.await.unwrap().unwrap();
}

#[tokio::test]
async fn secure_metrics_refuse_to_share_the_probe_address() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken = listener.local_addr().unwrap();
    drop(listener);
    let e = Server::bind(
        taken,
        taken,
        secure_access(),
        Arc::new(Metrics::new()),
        Health::default(),
    )
    .await
    .err()
    .unwrap()
    .to_string();
    assert!(e.contains("--metrics-secure=false"), "{e}");
}
