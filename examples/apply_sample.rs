//! Applies a sample ManifestWork to a consumer of the local stack through
//! the library, then prints what Maestro stored and any status the agent
//! reported. `make demo` runs it until the operator takes over that job.
//!
//! Usage: apply_sample [WORK_FILE] [CONSUMER]

use std::time::Duration;

use anyhow::Context;
use maestro_operator::maestro::config::MaestroConfig;
use maestro_operator::maestro::work_client::{Detail, WorkClient};
use maestro_operator::manifestwork::ManifestWork;
use maestro_operator::names::{ConsumerName, SourceId, WorkName};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _traces = maestro_operator::telemetry::init(Default::default(), "info", "apply-sample")?;
    let mut args = std::env::args().skip(1);
    let file = args
        .next()
        .unwrap_or_else(|| "examples/sample-work.yaml".into());
    let consumer = ConsumerName::new(args.next().unwrap_or_else(|| "cluster-west-1".into()))?;

    let text = std::fs::read_to_string(&file).with_context(|| format!("reading {file}"))?;
    let mut work: ManifestWork =
        serde_norway::from_str(&text).with_context(|| format!("parsing {file}"))?;
    work.metadata.namespace = Some(consumer.to_string());
    let name = WorkName::new(work.metadata.name.clone().unwrap_or_default())
        .with_context(|| format!("{file}: metadata.name"))?;

    let env = |key: &str, default: &str| std::env::var(key).unwrap_or_else(|_| default.into());
    let config = MaestroConfig::new(
        &env("MAESTRO_GRPC_ENDPOINT", "http://127.0.0.1:18090"),
        &env("MAESTRO_HTTP_ENDPOINT", "http://127.0.0.1:18000"),
        SourceId::new(env("MAESTRO_SOURCE_ID", "maestro-operator-demo"))?,
    )?;
    let client = WorkClient::new(&config)?;

    let outcome = client.apply(&work).await?;
    println!("apply {consumer}/{name}: {outcome:?}");

    // Give an agent, if one serves the consumer, a moment to report.
    for _ in 0..10 {
        let held = client
            .get_held(&consumer, &name, Detail::Work)
            .await?
            .context("bundle vanished")?;
        if let (Some(_), Some(work)) = (&held.report, &held.work) {
            println!("{}", serde_json::to_string_pretty(work)?);
            return Ok(());
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let work = client
        .get(&consumer, &name)
        .await?
        .context("bundle vanished")?;
    println!("{}", serde_json::to_string_pretty(&work)?);
    println!("(no status reported yet: no agent serves {consumer})");
    Ok(())
}
