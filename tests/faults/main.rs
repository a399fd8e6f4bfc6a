//! The fault suite: the real stack's components fail one at a time while
//! the operator has work on both agent-served consumers, changes are made
//! during the fault, and after recovery every object must be Ready at its
//! generation, the delivered ConfigMaps must match the specs, exactly one
//! bundle per live object must exist and none for deleted ones, and no
//! finalizer may be left. Prints one row per fault; the README holds the
//! latest table.
//!
//! The faults run one after another in one test (they stop shared
//! components: PostgreSQL, Maestro, the API server, an agent), each in its
//! own namespace and, where it can, its own source ID.
//!
//!   eval "$(bash tests/stack/stack.sh env)" && cargo test --test faults -- --nocapture
//!   FAULTS=postgres,rest-503 cargo test --test faults   (a subset)

#[path = "../support/mod.rs"]
mod support;

mod world;

use std::time::Duration;

use world::{Row, World};

/// Faults by name, in the order they run.
const FAULTS: [&str; 10] = [
    "maestro-sigkill",
    "postgres-60s",
    "kube-apiserver-60s",
    "agent-3min",
    "grpc-cut",
    "rest-503-60s",
    "operator-sigkill",
    "leader-partition",
    "cert-rotation",
    "maestro-instance-killed",
];

#[tokio::test]
async fn every_fault_recovers_with_nothing_lost_duplicated_or_stuck() {
    let wanted: Vec<String> = std::env::var("FAULTS")
        .map(|f| f.split(',').map(str::to_string).collect())
        .unwrap_or_else(|_| FAULTS.iter().map(|s| s.to_string()).collect());
    let mut rows = Vec::new();
    for fault in FAULTS.iter().filter(|f| wanted.iter().any(|w| w == *f)) {
        eprintln!("==> fault {fault}");
        let row = match *fault {
            "maestro-sigkill" => faults::maestro_sigkill().await,
            "postgres-60s" => faults::postgres_down().await,
            "kube-apiserver-60s" => faults::kube_apiserver_down().await,
            "agent-3min" => faults::agent_down().await,
            "grpc-cut" => faults::grpc_cut().await,
            "rest-503-60s" => faults::rest_unavailable().await,
            "operator-sigkill" => faults::operator_sigkill().await,
            "leader-partition" => faults::leader_partition().await,
            "cert-rotation" => faults::cert_rotation().await,
            "maestro-instance-killed" => faults::maestro_instance_killed().await,
            other => panic!("unknown fault {other}"),
        };
        eprintln!("{}", row.line());
        rows.push(row);
    }
    let table = Row::table(&rows);
    println!("{table}");
    eprintln!("{table}");
    let failed: Vec<&Row> = rows.iter().filter(|r| !r.ok()).collect();
    assert!(
        failed.is_empty(),
        "faults that did not recover cleanly:\n{table}"
    );
}

mod faults {
    use super::*;
    use crate::support::operator::*;
    use world::{Stack, objects_said, reasons_during};

    /// How long a fault lasts where the issue does not say.
    const SHORT: Duration = Duration::from_secs(15);
    const MINUTE: Duration = Duration::from_secs(60);

    pub async fn maestro_sigkill() -> Row {
        let w = World::seeded("f-mkill", &[]).await;
        // A burst of creates, and Maestro dies in the middle of it.
        w.change_part_one().await;
        Stack::kill("maestro", "KILL");
        w.change_part_two().await;
        let said = objects_said(&w.ns, &["MaestroUnavailable"], SHORT).await;
        Stack::up().await;
        w.converge("maestro-sigkill", said).await
    }

    pub async fn postgres_down() -> Row {
        let w = World::seeded("f-pg", &[]).await;
        Stack::script("postgres", "down").await;
        let started = std::time::Instant::now();
        w.change().await;
        let said = objects_said(&w.ns, &["MaestroServerError", "MaestroUnavailable"], MINUTE).await;
        tokio::time::sleep(MINUTE.saturating_sub(started.elapsed())).await;
        Stack::up().await;
        w.converge("postgres-60s", said).await
    }

    pub async fn kube_apiserver_down() -> Row {
        let w = World::seeded("f-kube", &[]).await;
        // Changes go in just before: with the API server down none can be
        // made, and the operator may not have seen these yet.
        w.change().await;
        Stack::kill("kube-apiserver", "TERM");
        tokio::time::sleep(MINUTE).await;
        Stack::up().await;
        w.converge("kube-apiserver-60s", "(API server down)".into())
            .await
    }

    pub async fn agent_down() -> Row {
        let w = World::seeded("f-agent", &[]).await;
        // The watchdog would bring the agent back at once: it is the fault.
        Stack::kill("agents-watchdog", "TERM");
        Stack::kill(&format!("agent-{EAST}"), "TERM");
        let started = std::time::Instant::now();
        w.change().await;
        let said = objects_said(&w.ns, &["AwaitingAgent", "Progressing", "Deleting"], MINUTE).await;
        tokio::time::sleep((MINUTE * 3).saturating_sub(started.elapsed())).await;
        Stack::script("agents", "up").await;
        w.converge("agent-3min", said).await
    }

    pub async fn grpc_cut() -> Row {
        let grpc = Proxy::start(&grpc_endpoint()).await;
        let w = World::seeded_via("f-grpc", Some(&grpc.url()), None, &[]).await;
        w.change_part_one().await;
        grpc.set_down(true);
        w.change_part_two().await;
        let said = objects_said(&w.ns, &["MaestroUnavailable"], SHORT).await;
        tokio::time::sleep(SHORT).await;
        grpc.set_down(false);
        w.converge("grpc-cut", said).await
    }

    pub async fn rest_unavailable() -> Row {
        let http = Proxy::start(&http_endpoint()).await;
        let w = World::seeded_via("f-rest", None, Some(&http.url()), &[]).await;
        http.set_unavailable();
        let started = std::time::Instant::now();
        w.change().await;
        let said = objects_said(&w.ns, &["MaestroServerError", "MaestroUnavailable"], MINUTE).await;
        tokio::time::sleep(MINUTE.saturating_sub(started.elapsed())).await;
        http.set_down(false);
        w.converge("rest-503-60s", said).await
    }

    pub async fn operator_sigkill() -> Row {
        let mut w = World::seeded("f-opkill", &[]).await;
        w.change_part_one().await;
        w.op.kill().await;
        w.change_part_two().await;
        tokio::time::sleep(Duration::from_secs(5)).await;
        w.op.restart().await;
        w.converge("operator-sigkill", "(operator down)".into())
            .await
    }

    pub async fn leader_partition() -> Row {
        let lease = ["--leader-elect", "--lease-duration", "6s"];
        let ns = TestNs::new("f-leader").await;
        let mut lease_args: Vec<String> = lease.iter().map(|s| s.to_string()).collect();
        lease_args.extend(["--lease-namespace".to_string(), ns.name.clone()]);
        let args: Vec<&str> = lease_args.iter().map(String::as_str).collect();
        let (kubeconfig, api) = kubeconfig_through_proxy(&ns.name).await;
        let leader = Operator::start_with_kubeconfig(&ns.name, &ns.source, kubeconfig, &args).await;
        leader.wait_ready().await;
        // The leader first (it is ready once it leads or stands by; give it
        // the lease before the standby exists).
        tokio::time::sleep(Duration::from_secs(3)).await;
        let standby = ns.operator(&args).await;
        let w = World::seed_in(ns, standby).await;
        api.set_down(true);
        w.change().await;
        tokio::time::sleep(Duration::from_secs(30)).await;
        api.set_down(false);
        drop(leader);
        w.converge("leader-partition", "(leader cut off)".into())
            .await
    }

    pub async fn cert_rotation() -> Row {
        let pki = world::Pki::copy("f-cert").await;
        let mut ns = TestNs::new("f-cert").await;
        ns.source = std::env::var("MAESTRO_SECURE_SOURCE_ID").expect("MAESTRO_SECURE_SOURCE_ID");
        let op = Operator::start_via(
            &ns.name,
            &ns.source,
            &std::env::var("MAESTRO_MTLS_GRPC_ENDPOINT").expect("MAESTRO_MTLS_GRPC_ENDPOINT"),
            &std::env::var("MAESTRO_MTLS_HTTP_ENDPOINT").expect("MAESTRO_MTLS_HTTP_ENDPOINT"),
            &[
                "--ca-file",
                &pki.ca,
                "--cert-file",
                &pki.cert,
                "--key-file",
                &pki.key,
                "--tls-reload-interval",
                "1s",
            ],
        )
        .await;
        let w = World::seed_in(ns, op).await;
        // A new key and certificate for the same identity, written over the
        // files the operator reads.
        pki.rotate().await;
        w.change().await;
        let mut row = w.converge("cert-rotation", String::new()).await;
        let reloads =
            w.op.log_text()
                .matches("Maestro connections rebuilt")
                .count();
        row.said = format!("{reloads} TLS reload(s)");
        if reloads == 0 {
            row.problems
                .push("the rotated certificate was never loaded".into());
        }
        row
    }
    /// Two Maestro instances on one database, the operator reaching both
    /// through round-robin proxies (gRPC and REST), and the one carrying
    /// its gRPC channel SIGKILLed in a burst of changes for a minute. The
    /// killed one is the stack's `maestro-peer`: the agents stay connected
    /// to the main instance's broker (killing that one is maestro-sigkill).
    pub async fn maestro_instance_killed() -> Row {
        let var = |name: &str| std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set"));
        let (peer_grpc, peer_http) = (
            var("MAESTRO_PEER_GRPC_ENDPOINT"),
            var("MAESTRO_PEER_HTTP_ENDPOINT"),
        );
        // The peer first: the operator's first connection through each
        // proxy, its gRPC channel among them, goes to the instance that dies.
        let grpc = RoundRobin::start(&[&peer_grpc, &grpc_endpoint()]).await;
        let http = RoundRobin::start(&[&peer_http, &http_endpoint()]).await;
        let w = World::seeded_via("f-inst", Some(&grpc.url()), Some(&http.url()), &[]).await;
        w.change_part_one().await;
        let on_peer = grpc.open(0);
        eprintln!(
            "    before the kill: gRPC {}; REST {}",
            grpc.summary(),
            http.summary()
        );
        Stack::kill("maestro-peer", "KILL");
        let started = std::time::Instant::now();
        w.change_part_two().await;
        let reasons = reasons_during(&w.ns, MINUTE.saturating_sub(started.elapsed())).await;
        eprintln!(
            "    while it was down: gRPC {}; REST {}",
            grpc.summary(),
            http.summary()
        );
        let unready: Vec<String> =
            w.ns.mapply()
                .list(&Default::default())
                .await
                .map(|l| l.items)
                .unwrap_or_default()
                .into_iter()
                .filter_map(|o| {
                    let c = o.status.as_ref()?.condition("Ready")?;
                    (c.status != "True")
                        .then(|| format!("{} {}", o.metadata.name.unwrap_or_default(), c.reason))
                })
                .collect();
        eprintln!("    not Ready as it comes back: {unready:?}");
        Stack::script("maestro", "up").await;
        let mut row = w.converge("maestro-instance-killed", String::new()).await;
        let failovers = grpc.failovers() + http.failovers();
        // What the changes say anyway (logged above) is not the fault's.
        let progress = ["Pending", "Progressing", "AwaitingAgent", "Deleting"];
        let said: Vec<&str> = reasons
            .iter()
            .map(String::as_str)
            .filter(|r| !progress.contains(r))
            .collect();
        row.said = if said.is_empty() {
            format!("nothing amiss ({failovers} proxy failover(s))")
        } else {
            format!("{} ({failovers} proxy failover(s))", said.join(", "))
        };
        if on_peer == 0 {
            row.problems
                .push("the operator had no gRPC connection to the killed instance".into());
        }
        row
    }
}
