//! The operator binary: configuration, logging and traces, then the
//! controller.

use std::time::Duration;

use clap::Parser;
use maestro_operator::controller::config::OperatorConfig;

fn main() -> anyhow::Result<()> {
    bound_malloc_arenas();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(operate())
}

/// glibc gives each thread that allocates under contention an arena of its
/// own, up to eight per core, and memory freed in one arena is not reused
/// by another. With the caches' many small objects, two arenas cut the
/// operator's RSS by 14 % (2,000 objects: 44.9 to 38.4 MiB, README,
/// "Memory"); one was no better, and jemalloc and mimalloc were worse.
/// Set before the runtime starts any thread; MALLOC_ARENA_MAX, when set,
/// wins.
fn bound_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt only sets a tunable of the allocator; no thread
        // but this one exists yet.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 2);
        }
    }
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
