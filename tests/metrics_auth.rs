//! Secure `/metrics` on the real local stack: the operator serves HTTPS and
//! asks the real API server who a bearer token is (TokenReview) and whether
//! it may `get` the non-resource URL `/metrics` (SubjectAccessReview); the
//! probes stay plain HTTP.

mod support;

use std::net::TcpListener;
use std::time::{Duration, Instant};

use support::operator::*;

/// ClusterRoles and bindings are cluster-wide: removed even when the test
/// fails.
struct ClusterObjects(Vec<String>);

impl Drop for ClusterObjects {
    fn drop(&mut self) {
        for object in &self.0 {
            let _ = std::process::Command::new(kubectl_path())
                .args(["delete", object, "--ignore-not-found", "--wait=false"])
                .env(
                    "KUBECONFIG",
                    std::env::var("KUBECONFIG").unwrap_or_default(),
                )
                .output();
        }
    }
}

async fn run_kubectl(args: &[&str], stdin: Option<&str>) -> String {
    let (ok, out, err) = kubectl(args, stdin).await;
    assert!(ok, "kubectl {args:?}: {err}");
    out
}

fn free_address() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("its address").to_string()
}

async fn scrape(address: &str, token: Option<&str>) -> (u16, String) {
    let client = reqwest::Client::builder()
        // The operator's certificate is self-signed, as a ServiceMonitor's
        // tlsConfig.insecureSkipVerify expects.
        .danger_accept_invalid_certs(true)
        .timeout(Duration::from_secs(30))
        .build()
        .expect("an HTTPS client");
    let mut request = client.get(format!("https://{address}/metrics"));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("an answer from /metrics");
    let code = response.status().as_u16();
    (code, response.text().await.unwrap_or_default())
}

#[tokio::test]
async fn metrics_need_a_token_allowed_to_get_metrics_and_probes_stay_plain_http() {
    let ns = TestNs::new("metrics-auth").await;
    let metrics_address = free_address();
    let op = ns
        .operator(&[
            "--metrics-secure=true",
            &format!("--metrics-address={metrics_address}"),
        ])
        .await;

    // Two ServiceAccounts: a reader bound to a ClusterRole with `get` on
    // /metrics (what Prometheus gets from the chart's metrics-reader role),
    // and a stranger with no grant.
    let role = format!("{}-metrics-reader", ns.name);
    let _cluster = ClusterObjects(vec![
        format!("clusterrolebinding/{role}"),
        format!("clusterrole/{role}"),
    ]);
    for sa in ["reader", "stranger"] {
        run_kubectl(&["create", "serviceaccount", sa, "-n", &ns.name], None).await;
    }
    run_kubectl(
        &[
            "create",
            "clusterrole",
            &role,
            "--verb=get",
            "--non-resource-url=/metrics",
        ],
        None,
    )
    .await;
    run_kubectl(
        &[
            "create",
            "clusterrolebinding",
            &role,
            &format!("--clusterrole={role}"),
            &format!("--serviceaccount={}:reader", ns.name),
        ],
        None,
    )
    .await;
    // The authorizer sees the binding within moments; wait for it so the
    // operator's first review already finds it.
    let reader = format!("system:serviceaccount:{}:reader", ns.name);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, out, _) =
            kubectl(&["auth", "can-i", "get", "/metrics", "--as", &reader], None).await;
        if out.trim() == "yes" {
            break;
        }
        assert!(Instant::now() < deadline, "the binding never took effect");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let token = |sa: &'static str| {
        let ns = ns.name.clone();
        async move {
            run_kubectl(&["create", "token", sa, "-n", &ns, "--duration=10m"], None)
                .await
                .trim()
                .to_string()
        }
    };
    let reader_token = token("reader").await;
    let stranger_token = token("stranger").await;

    // No token, or one the API server does not know: 401.
    let (code, body) = scrape(&metrics_address, None).await;
    assert_eq!(code, 401, "{body}");
    let (code, body) = scrape(&metrics_address, Some("not-a-real-token")).await;
    assert_eq!(code, 401, "{body}");

    // Authenticated, without the grant: 403 naming the user and the need.
    let (code, body) = scrape(&metrics_address, Some(&stranger_token)).await;
    assert_eq!(code, 403, "{body}");
    let stranger = format!("system:serviceaccount:{}:stranger", ns.name);
    assert!(body.contains(&stranger), "{body}");
    assert!(
        body.contains("get on the non-resource URL /metrics"),
        "{body}"
    );

    // Bound to the reader role: the metrics. A second scrape is answered
    // from the cache.
    for _ in 0..2 {
        let (code, body) = scrape(&metrics_address, Some(&reader_token)).await;
        assert_eq!(code, 200, "{body}");
        assert!(body.contains("maestro_operator_reconciles_total"), "{body}");
    }

    // Plain HTTP on the metrics port gets nothing; the probes are plain
    // HTTP, without a token, on their own port.
    let plain = reqwest::get(format!("http://{metrics_address}/metrics")).await;
    assert!(
        plain.as_ref().map_or(true, |r| r.status() != 200),
        "plain HTTP served the metrics: {plain:?}"
    );
    for probe in ["/healthz", "/readyz"] {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let status = reqwest::get(format!("http://{}{probe}", op.address))
                .await
                .map(|r| r.status().as_u16())
                .unwrap_or(0);
            if status == 200 {
                break;
            }
            assert!(Instant::now() < deadline, "{probe} answers {status}");
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }

    // The tokens are never written to the log.
    let log = op.log_text();
    assert!(
        !log.contains(&reader_token),
        "the reader's token is in the log"
    );
    assert!(!log.contains(&stranger_token), "a token is in the log");

    drop(op);
    ns.cleanup().await;
}

#[tokio::test]
async fn secure_metrics_on_the_probe_port_fail_start_up_with_a_clear_error() {
    // The operator checks the CRD before it binds its listeners.
    install_crd();
    let address = free_address();
    let out = operator_exit(&["--metrics-address", &address, "--health-address", &address]).await;
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("must differ"), "{err}");
    assert!(err.contains("--metrics-secure=false"), "{err}");
}
