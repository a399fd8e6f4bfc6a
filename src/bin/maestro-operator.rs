//! The operator binary: configuration, logging, then the controller.

use clap::Parser;
use maestro_operator::controller::config::OperatorConfig;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = OperatorConfig::parse();
    maestro_operator::telemetry::init(
        config.log_format,
        "info,maestro_operator=info,kube_runtime=warn",
    );
    maestro_operator::maestro::config::ensure_crypto_provider();
    maestro_operator::controller::run(config).await?;
    Ok(())
}
