//! TLS, mTLS and bearer tokens against real Maestro servers: the stack's two
//! secured instances (tests/stack/secure.sh), which authenticate with client
//! certificates or ServiceAccount tokens and authorize every Publish and
//! Subscribe with a SubjectAccessReview on the stack's kube-apiserver.
//!
//! Needs the whole stack and its environment (`make test` provides both):
//! MAESTRO_SECURE_DIR (certificates and tokens), MAESTRO_SECURE_SOURCE_ID
//! (the one source the grants name) and the MAESTRO_{MTLS,TOKEN}_*_ENDPOINT
//! variables.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use maestro_operator::maestro::Error;
use maestro_operator::maestro::config::{MaestroConfig, TlsFiles};
use maestro_operator::maestro::grpc::{StreamEvent, SubscribeOptions};
use maestro_operator::maestro::work_client::{ApplyOutcome, WatchEvent, WorkClient};
use maestro_operator::manifestwork::ManifestWork;
use maestro_operator::names::{ConsumerName, SourceId, WorkName};
use serde_json::json;
use support::maestro::{configmap, unique, work};

/// A consumer the stack's agents serve: a work published to a secured
/// instance must reach its agent through the main instance's broker.
const CONSUMER: &str = "cluster-west-1";
const DEADLINE: Duration = Duration::from_secs(90);

use support::stack_var as env;

fn secure_dir() -> PathBuf {
    PathBuf::from(env("MAESTRO_SECURE_DIR"))
}

fn pki(file: &str) -> PathBuf {
    secure_dir().join("pki").join(file)
}

fn token(file: &str) -> PathBuf {
    secure_dir().join("tokens").join(file)
}

fn granted_source() -> String {
    env("MAESTRO_SECURE_SOURCE_ID")
}

/// Which secured instance, and as whom.
enum Server {
    Mtls,
    Token,
}

fn config(server: Server, source: &str) -> MaestroConfig {
    let (grpc, http) = match server {
        Server::Mtls => ("MAESTRO_MTLS_GRPC_ENDPOINT", "MAESTRO_MTLS_HTTP_ENDPOINT"),
        Server::Token => ("MAESTRO_TOKEN_GRPC_ENDPOINT", "MAESTRO_TOKEN_HTTP_ENDPOINT"),
    };
    let mut config = MaestroConfig::new(
        &env(grpc),
        &env(http),
        SourceId::new(source).expect("valid source id"),
    )
    .expect("valid endpoints");
    config.request_timeout = Duration::from_secs(20);
    config.connect_timeout = Duration::from_secs(10);
    config.tls.ca_file = Some(pki("ca.crt"));
    config
}

fn with_client_cert(mut config: MaestroConfig, identity: &str) -> MaestroConfig {
    config.tls.cert_file = Some(pki(&format!("{identity}.crt")));
    config.tls.key_file = Some(pki(&format!("{identity}.key")));
    config
}

fn mtls(identity: &str, source: &str) -> WorkClient {
    WorkClient::new(&with_client_cert(config(Server::Mtls, source), identity)).expect("client")
}

fn token_client(token_file: &Path, source: &str) -> WorkClient {
    let mut config = config(Server::Token, source);
    config.token_file = Some(token_file.to_path_buf());
    WorkClient::new(&config).expect("client")
}

fn consumer() -> ConsumerName {
    ConsumerName::new(CONSUMER).expect("valid consumer")
}

fn a_work(name: &str) -> ManifestWork {
    work(
        CONSUMER,
        name,
        vec![configmap(
            &format!("{name}-cm"),
            json!({"delivered": "securely"}),
        )],
    )
}

/// Publishing a fresh work; the error when Maestro refuses it.
async fn publish(client: &WorkClient, name: &str) -> Result<ApplyOutcome, Error> {
    client.apply(&a_work(name)).await
}

/// The first status-stream outcome: opened, or refused with an error.
async fn first_stream_event(client: &WorkClient) -> StreamEvent {
    let mut stream = client.grpc().subscribe(SubscribeOptions {
        min_backoff: Duration::from_secs(30),
        ..SubscribeOptions::default()
    });
    tokio::time::timeout(DEADLINE, stream.recv())
        .await
        .expect("the status stream said nothing")
        .expect("the status stream ended without a word")
}

fn condition_true(work: &ManifestWork, type_: &str) -> bool {
    work.status.as_ref().is_some_and(|s| {
        s.conditions
            .iter()
            .any(|c| c.type_ == type_ && c.status == "True")
    })
}

/// Publishes a work through `client`, sees the agent's Applied status come
/// back on the same instance's status stream, then deletes it and sees the
/// deletion confirmed: the whole loop through a secured instance.
async fn deliver_and_remove(client: &WorkClient) {
    let name = unique("secure");
    let mut events = client.watch(Some(consumer()), None, SubscribeOptions::default());
    wait_for(&mut events, "the watch's initial sync", |e| {
        matches!(e, WatchEvent::Synced)
    })
    .await;

    let outcome = publish(client, &name).await.expect("publish");
    assert_eq!(outcome, ApplyOutcome::Created { version: 1 });
    let resource_id = client
        .resource_id(&consumer(), &WorkName::new(&name).unwrap())
        .to_string();
    let is_ours = |w: &ManifestWork| w.metadata.uid.as_deref() == Some(resource_id.as_str());
    wait_for(
        &mut events,
        "Applied=True from the agent",
        |e| matches!(e, WatchEvent::Modified(w) if is_ours(w) && condition_true(w, "Applied")),
    )
    .await;

    client
        .delete(&consumer(), &WorkName::new(&name).unwrap())
        .await
        .expect("delete");
    wait_for(
        &mut events,
        "the agent's deletion",
        |e| matches!(e, WatchEvent::Deleted(w) if is_ours(w)),
    )
    .await;
}

async fn wait_for(
    events: &mut tokio::sync::mpsc::Receiver<maestro_operator::maestro::Result<WatchEvent>>,
    what: &str,
    accept: impl Fn(&WatchEvent) -> bool,
) {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    let mut last = "no event".to_string();
    loop {
        match tokio::time::timeout_at(deadline, events.recv()).await {
            Err(_) => panic!("waited {DEADLINE:?} for {what}; last event: {last}"),
            Ok(None) => panic!("the watch ended while waiting for {what}; last: {last}"),
            Ok(Some(Err(e))) => last = format!("error: {e}"),
            Ok(Some(Ok(event))) if accept(&event) => return,
            Ok(Some(Ok(event))) => last = format!("{event:?}"),
        }
    }
}

fn assert_refused(result: Result<ApplyOutcome, Error>, want: &str, says: &str) {
    match result {
        Ok(outcome) => panic!("Maestro accepted the publish ({outcome:?}); wanted {want}"),
        Err(e) => {
            assert_eq!(e.reason(), want, "wrong classification of: {e}");
            assert!(e.to_string().contains(says), "{e} does not say {says:?}");
        }
    }
}

// --------------------------------------------------------------- mTLS

#[tokio::test]
async fn a_granted_client_certificate_delivers_a_work_and_follows_its_status() {
    deliver_and_remove(&mtls("hyperfleet-client", &granted_source())).await;
}

#[tokio::test]
async fn a_connection_without_a_client_certificate_is_refused() {
    let client = WorkClient::new(&config(Server::Mtls, &granted_source())).unwrap();
    let err = publish(&client, &unique("nocert")).await.unwrap_err();
    assert_eq!(err.reason(), "Unauthenticated", "{err}");
    assert!(err.to_string().contains("--cert-file"), "{err}");
    assert!(!err.is_transient(), "retrying cannot help: {err}");
}

#[tokio::test]
async fn a_client_certificate_from_an_untrusted_ca_is_refused() {
    let err = publish(&mtls("rogue-client", &granted_source()), &unique("rogue"))
        .await
        .unwrap_err();
    assert_eq!(err.reason(), "Unauthenticated", "{err}");
    assert!(
        err.to_string().contains("refused our client certificate"),
        "{err}"
    );
    assert!(!err.is_transient(), "{err}");
}

#[tokio::test]
async fn a_certificate_whose_identity_has_no_grant_cannot_publish() {
    let result = publish(&mtls("stranger-client", &granted_source()), &unique("str")).await;
    assert_refused(result, "Forbidden", "unauthorized to publish");
}

#[tokio::test]
async fn a_granted_identity_cannot_publish_as_another_source() {
    let result = publish(
        &mtls("hyperfleet-client", "not-granted-source"),
        &unique("src"),
    )
    .await;
    assert_refused(result, "Forbidden", "not-granted-source");
}

#[tokio::test]
async fn a_certificate_whose_identity_has_no_grant_cannot_subscribe() {
    let client = mtls("stranger-client", &granted_source());
    match first_stream_event(&client).await {
        StreamEvent::Disconnected { error, .. } => {
            assert_eq!(error.reason(), "Forbidden", "{error}");
            assert!(
                error.to_string().contains("unauthorized to subscribe"),
                "{error}"
            );
        }
        other => panic!("the stream opened for an identity without a grant: {other:?}"),
    }
}

// -------------------------------------------------------------- token

#[tokio::test]
async fn a_granted_service_account_token_delivers_a_work_and_follows_its_status() {
    deliver_and_remove(&token_client(
        &token("hyperfleet-adapter.token"),
        &granted_source(),
    ))
    .await;
}

#[tokio::test]
async fn a_request_without_a_token_is_unauthenticated() {
    let client = WorkClient::new(&config(Server::Token, &granted_source())).unwrap();
    let result = publish(&client, &unique("notoken")).await;
    assert_refused(result, "Unauthenticated", "token");
}

#[tokio::test]
async fn a_token_the_api_server_does_not_know_is_unauthenticated() {
    let dir = tempfile::tempdir().unwrap();
    let forged = dir.path().join("token");
    std::fs::write(&forged, "not-a-real-token\n").unwrap();
    let result = publish(&token_client(&forged, &granted_source()), &unique("forged")).await;
    assert_refused(result, "Unauthenticated", "token not authenticated");
}

#[tokio::test]
async fn a_service_account_without_a_grant_cannot_publish() {
    let client = token_client(&token("stranger.token"), &granted_source());
    let result = publish(&client, &unique("sa")).await;
    assert_refused(result, "Forbidden", "unauthorized to publish");
}

#[tokio::test]
async fn a_rotated_token_file_takes_effect_without_a_new_client() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("token");
    std::fs::copy(token("stranger.token"), &file).unwrap();
    let client = token_client(&file, &granted_source());
    let name = unique("rotate");
    assert_refused(
        publish(&client, &name).await,
        "Forbidden",
        "unauthorized to publish",
    );

    std::fs::copy(token("hyperfleet-adapter.token"), &file).unwrap();
    assert_eq!(
        publish(&client, &name)
            .await
            .expect("publish with the new token"),
        ApplyOutcome::Created { version: 1 }
    );
    client
        .delete(&consumer(), &WorkName::new(&name).unwrap())
        .await
        .unwrap();
}

// --------------------------------------------------------- server TLS

#[tokio::test]
async fn a_server_certificate_from_a_ca_we_do_not_trust_is_refused() {
    let mut config = config(Server::Token, &granted_source());
    config.tls = TlsFiles {
        ca_file: Some(pki("rogue-ca.crt")),
        ..TlsFiles::default()
    };
    config.token_file = Some(token("hyperfleet-adapter.token"));
    let client = WorkClient::new(&config).unwrap();
    let err = publish(&client, &unique("ca")).await.unwrap_err();
    assert_eq!(err.reason(), "ConfigError", "{err}");
    assert!(err.to_string().contains("UnknownIssuer"), "{err}");
    assert!(err.to_string().contains("--ca-file"), "{err}");
    assert!(!err.is_transient(), "retrying cannot help: {err}");
}

#[tokio::test]
async fn plaintext_to_a_tls_port_fails_without_hanging() {
    let mut config = config(Server::Token, &granted_source());
    config.grpc_endpoint.set_scheme("http").unwrap();
    config.tls = TlsFiles::default();
    // Reads from the plaintext instance (same database): the publish is
    // what goes in plaintext to the TLS port.
    config.http_endpoint = env("MAESTRO_HTTP_ENDPOINT").parse().unwrap();
    let client = WorkClient::new(&config).unwrap();
    let started = std::time::Instant::now();
    let err = publish(&client, &unique("plain")).await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(25),
        "took {:?}: {err}",
        started.elapsed()
    );
    assert_eq!(err.reason(), "MaestroUnavailable", "{err}");
}

// ---------------------------------------------------------- the CLI

fn cli(args: &[&str], envs: &[(&str, &Path)]) -> std::process::Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_maestro-cli"));
    cmd.args(args)
        .env("MAESTRO_SOURCE_ID", granted_source())
        .env_remove("MAESTRO_TOKEN_FILE")
        .env_remove("MAESTRO_CERT_FILE")
        .env_remove("MAESTRO_KEY_FILE");
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.output().expect("run maestro-cli")
}

fn manifest_file(dir: &Path, name: &str) -> PathBuf {
    let path = dir.join("work.json");
    std::fs::write(&path, serde_json::to_vec(&a_work(name)).unwrap()).unwrap();
    path
}

fn text(out: &std::process::Output) -> String {
    format!(
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn the_cli_applies_and_waits_over_mtls_with_certificate_flags() {
    let dir = tempfile::tempdir().unwrap();
    let name = unique("cli-mtls");
    let file = manifest_file(dir.path(), &name);
    let (ca, cert, key) = (
        pki("ca.crt"),
        pki("hyperfleet-client.crt"),
        pki("hyperfleet-client.key"),
    );
    let connection = [
        "--grpc-endpoint",
        &env("MAESTRO_MTLS_GRPC_ENDPOINT"),
        "--http-endpoint",
        &env("MAESTRO_MTLS_HTTP_ENDPOINT"),
        "--ca-file",
        ca.to_str().unwrap(),
        "--cert-file",
        cert.to_str().unwrap(),
        "--key-file",
        key.to_str().unwrap(),
    ];
    let file_arg = file.to_str().unwrap();
    let mut apply = vec!["apply", "--manifest-file", file_arg, "--consumer", CONSUMER];
    apply.extend(["--watch", "--condition", "Applied", "--timeout", "90s"]);
    apply.extend(connection);
    let out = cli(&apply, &[]);
    assert!(out.status.success(), "{}", text(&out));

    let mut delete = vec!["delete", "--name", &name, "--consumer", CONSUMER, "--watch"];
    // The pinned agent can sit on a deletion until the stack's watchdog
    // restarts it (pending 30 s, then 60 s more; docs/deletion-stall.md):
    // room for that, since this test is about mTLS, not deletion speed.
    delete.extend(["--timeout", "180s"]);
    delete.extend(connection);
    let out = cli(&delete, &[]);
    assert!(out.status.success(), "{}", text(&out));

    let mut stranger = vec!["apply", "--manifest-file", file_arg, "--consumer", CONSUMER];
    stranger.extend(connection);
    let (cert, key) = (pki("stranger-client.crt"), pki("stranger-client.key"));
    let n = stranger.len();
    stranger[n - 3] = cert.to_str().unwrap();
    stranger[n - 1] = key.to_str().unwrap();
    let out = cli(&stranger, &[]);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("unauthorized to publish"),
        "{}",
        text(&out)
    );
}

#[test]
fn the_cli_reads_its_token_file_from_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let name = unique("cli-token");
    let file = manifest_file(dir.path(), &name);
    let grpc = env("MAESTRO_TOKEN_GRPC_ENDPOINT");
    let http = env("MAESTRO_TOKEN_HTTP_ENDPOINT");
    let args = |verb: &'static str| -> Vec<String> {
        let mut a: Vec<String> = vec![verb.into()];
        if verb == "apply" {
            a.extend(["--manifest-file".into(), file.display().to_string()]);
        } else {
            a.extend(["--name".into(), name.clone()]);
        }
        a.extend(["--consumer".into(), CONSUMER.into()]);
        a.extend([
            "--grpc-endpoint".into(),
            grpc.clone(),
            "--http-endpoint".into(),
        ]);
        a.push(http.clone());
        a
    };
    let run = |verb: &'static str| {
        let a = args(verb);
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        cli(
            &a,
            &[
                ("MAESTRO_CA_FILE", &pki("ca.crt")),
                ("MAESTRO_TOKEN_FILE", &token("hyperfleet-adapter.token")),
            ],
        )
    };
    let out = run("apply");
    assert!(out.status.success(), "{}", text(&out));
    let out = run("delete");
    assert!(out.status.success(), "{}", text(&out));
}
