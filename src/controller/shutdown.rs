//! A shutdown signal that many tasks can wait on: SIGTERM, Ctrl-C or a
//! lost leader lease all end the process the same way.

use tokio::sync::watch;

#[derive(Clone)]
pub struct Shutdown {
    rx: watch::Receiver<bool>,
}

/// Fires the [`Shutdown`]s made from it.
#[derive(Clone)]
pub struct Trigger {
    tx: std::sync::Arc<watch::Sender<bool>>,
}

pub fn channel() -> (Trigger, Shutdown) {
    let (tx, rx) = watch::channel(false);
    (
        Trigger {
            tx: std::sync::Arc::new(tx),
        },
        Shutdown { rx },
    )
}

impl Trigger {
    pub fn fire(&self) {
        self.tx.send_replace(true);
    }
}

impl Shutdown {
    /// Resolves once fired (or once every trigger is gone).
    pub async fn wait(mut self) {
        let _ = self.rx.wait_for(|fired| *fired).await;
    }

    pub fn is_fired(&self) -> bool {
        *self.rx.borrow()
    }
}

/// Fires `trigger` on SIGTERM or Ctrl-C.
pub fn on_signals(trigger: Trigger) {
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        {
            let mut term =
                match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot listen for SIGTERM; Ctrl-C only");
                        let _ = ctrl_c.await;
                        trigger.fire();
                        return;
                    }
                };
            tokio::select! {
                _ = ctrl_c => tracing::info!("interrupted; shutting down"),
                _ = term.recv() => tracing::info!("SIGTERM; shutting down"),
            }
        }
        #[cfg(not(unix))]
        {
            let _ = ctrl_c.await;
        }
        trigger.fire();
    });
}
