//! Wake-ups for tails of the log: one LISTEN connection per process, fanned out by a watch
//! channel. Tails also poll, so a lost notification only delays them.

use std::time::Duration;

use sqlx::postgres::PgListener;
use sqlx::PgPool;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// The channel the `events_appended` trigger notifies.
pub const CHANNEL: &str = "mauntic_events";

/// A handle that resolves when new events may have been appended.
#[derive(Clone)]
pub struct Wakeup {
    rx: watch::Receiver<u64>,
    /// Keeps a polling-only channel open (a closed channel would never wait).
    _keep: Option<std::sync::Arc<watch::Sender<u64>>>,
}

impl Wakeup {
    /// Starts listening on `pool`'s database until `cancel`.
    pub fn listen(pool: PgPool, cancel: CancellationToken) -> Self {
        let (tx, rx) = watch::channel(0u64);
        tokio::spawn(async move {
            let mut n = 0u64;
            while !cancel.is_cancelled() {
                match PgListener::connect_with(&pool).await {
                    Ok(mut listener) => {
                        if let Err(e) = listener.listen(CHANNEL).await {
                            tracing::warn!(error = %e, "LISTEN failed; polling only");
                        } else {
                            loop {
                                tokio::select! {
                                    _ = cancel.cancelled() => return,
                                    r = listener.recv() => match r {
                                        Ok(_) => { n += 1; tx.send_replace(n); }
                                        Err(e) => { tracing::warn!(error = %e, "LISTEN connection lost"); break; }
                                    }
                                }
                            }
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "cannot open LISTEN connection"),
                }
                // Wake everyone once: they may have missed notifications meanwhile.
                n += 1;
                tx.send_replace(n);
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
        });
        Self { rx, _keep: None }
    }

    /// A handle that only ever wakes by timeout (pure polling).
    pub fn polling() -> Self {
        let (tx, rx) = watch::channel(0u64);
        Self {
            rx,
            _keep: Some(std::sync::Arc::new(tx)),
        }
    }

    /// Waits for a notification or `timeout`, whichever comes first.
    pub async fn wait(&mut self, timeout: Duration) {
        let _ = tokio::time::timeout(timeout, self.rx.changed()).await;
    }
}
