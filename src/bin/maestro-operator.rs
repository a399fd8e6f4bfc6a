//! The operator binary: configuration, logging and traces, then the
//! controller.

use std::time::Duration;

use clap::Parser;
use maestro_operator::controller::config::OperatorConfig;

fn main() -> anyhow::Result<()> {
    maestro_operator::malloc::tune()?;
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(operate())
}

async fn operate() -> anyhow::Result<()> {
    let config = OperatorConfig::parse();
    // Before the OTLP exporter builds its HTTP client.
    maestro_operator::maestro::config::ensure_crypto_provider();
    let traces = maestro_operator::telemetry::init(
        config.log_format,
        "info,maestro_operator=info,kube_runtime=warn",
        "maestro-operator",
    )?;
    let result = maestro_operator::controller::run(config).await;
    if let Some(traces) = traces {
        traces.shutdown(Duration::from_secs(5)).await;
    }
    result?;
    Ok(())
}
