//! The one way to follow the log from a checkpoint: a [`Follower`] says what a batch does
//! (its writes and its checkpoint's move, in one transaction), [`follow`] drives it — the
//! checkpoint read at start, batches from the source paced as wake-ups come, a failing
//! batch retried with backoff and never skipped, stopping when cancelled. Projections, the
//! segment evaluator and the journey trigger follower all run on it.

use std::future::Future;
use std::time::Duration;

use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::source::{Batch, EventSource, Pace};
use crate::{checkpoint, Cursor};

/// What one reader of the log does with each batch.
pub trait Follower: Send {
    type Error: std::fmt::Display + Send;

    /// Events per batch at most.
    const BATCH: usize = 1000;
    /// The first pause after a failed batch (doubling up to [`Self::MAX_RETRY`]).
    const RETRY: Duration = Duration::from_millis(20);
    const MAX_RETRY: Duration = Duration::from_secs(5);

    /// The checkpoint it keeps (what it has handled); also its name in log lines.
    fn checkpoint(&self) -> &str;

    /// Handles `batch`, which starts after `at`, and moves the checkpoint with its writes;
    /// returns the checkpoint after it. Run again on the same batch after a failure, so it
    /// must skip what a committed earlier attempt did (every follower checks its checkpoint
    /// in the transaction).
    fn step(
        &mut self,
        at: Cursor,
        batch: &Batch,
    ) -> impl Future<Output = Result<Cursor, Self::Error>> + Send;

    /// Whether handling `batch` is work that paces the next read (a batch it only skips
    /// is not).
    fn paces(&self, _batch: &Batch) -> bool {
        true
    }

    /// Whether a failure is part of normal work (a race it retries) rather than worth a
    /// warning.
    fn expected(_: &Self::Error) -> bool {
        false
    }
}

/// Feeds `follower` from `source` until `cancel`.
pub async fn follow<F: Follower>(
    pool: PgPool,
    mut follower: F,
    mut source: Box<dyn EventSource>,
    cancel: CancellationToken,
) {
    let name = follower.checkpoint().to_owned();
    let mut at = loop {
        match checkpoint::load(&pool, &name).await {
            Ok(c) => break c,
            Err(e) => {
                tracing::warn!(error = %e, follower = %name, "cannot read the checkpoint");
                if pause(&cancel, Duration::from_secs(1)).await {
                    return;
                }
            }
        }
    };
    tracing::info!(follower = %name, checkpoint = %at, "following the log");
    let mut pace = Pace::default();
    while !cancel.is_cancelled() {
        let batch = tokio::select! {
            _ = cancel.cancelled() => return,
            b = async {
                pace.ready().await;
                source.next_batch(at, F::BATCH).await
            } => b,
        };
        let batch = match batch {
            Ok(b) if b.is_empty() => continue,
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(error = %e, follower = %name, "the source failed");
                if pause(&cancel, Duration::from_secs(1)).await {
                    return;
                }
                continue;
            }
        };
        if follower.paces(&batch) {
            pace.began(batch.events.len(), F::BATCH);
        }
        let mut backoff = F::RETRY;
        loop {
            // A step waiting for read models (which stop with us) gives up when we stop;
            // its transaction, once begun, runs to its end.
            match follower.step(at, &batch).await {
                Ok(c) => {
                    at = at.max(c);
                    break;
                }
                Err(_) if cancel.is_cancelled() => return,
                Err(e) => {
                    if !F::expected(&e) {
                        tracing::warn!(error = %e, follower = %name, "batch failed; retrying");
                    }
                    if pause(&cancel, backoff).await {
                        return;
                    }
                    backoff = (backoff * 2).min(F::MAX_RETRY);
                }
            }
        }
    }
}

/// Sleeps; true if cancelled meanwhile.
pub async fn pause(cancel: &CancellationToken, d: Duration) -> bool {
    tokio::select! {
        _ = cancel.cancelled() => true,
        _ = tokio::time::sleep(d) => false,
    }
}
