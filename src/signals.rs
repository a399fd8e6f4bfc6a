//! Process signals. SIGINT and SIGTERM (a pod being stopped) end the
//! operator and interrupt the CLI; both learn of them here.

use tokio_util::sync::CancellationToken;

/// Resolves on the first SIGINT or SIGTERM, naming it. Where SIGTERM
/// cannot be listened for, SIGINT alone ends the wait.
pub async fn signalled() -> &'static str {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => tokio::select! {
                _ = tokio::signal::ctrl_c() => "SIGINT",
                _ = term.recv() => "SIGTERM",
            },
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM; SIGINT only");
                let _ = tokio::signal::ctrl_c().await;
                "SIGINT"
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        "SIGINT"
    }
}

/// A token cancelled on the first SIGINT or SIGTERM, which is logged.
/// Its clones may be cancelled for other reasons too (the operator's lost
/// lease); whoever waits on it stops the same way.
pub fn cancel_on_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let cancel = token.clone();
    tokio::spawn(async move {
        let signal = signalled().await;
        tracing::info!(signal, "signalled; shutting down");
        cancel.cancel();
    });
    token
}
