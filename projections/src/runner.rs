//! Applying batches and the run loop.

use std::sync::Arc;
use std::time::Duration;

use event_store::source::{EventSource, Pace};
use event_store::{checkpoint, Cursor, RecordedEvent};
use sqlx::{PgConnection, PgPool};
use tokio_util::sync::CancellationToken;

use crate::{Projection, ProjectionError, Target};

/// Applies `events` to `target` and moves its checkpoint, in one transaction.
///
/// Events at or below the checkpoint are skipped, so a redelivered batch changes nothing.
/// Returns the checkpoint after the batch.
#[tracing::instrument(level = "debug", skip_all, fields(projection = projection.name(), table = %target.table, n = events.len()), err)]
pub async fn apply_batch(
    pool: &PgPool,
    projection: &dyn Projection,
    target: &Target,
    events: &[RecordedEvent],
) -> Result<Cursor, ProjectionError> {
    if !events.iter().any(|e| projection.concerns(e)) {
        // Nothing to write: move the checkpoint alone (monotonic, so a redelivery or a
        // concurrent runner cannot move it back).
        let Some(last) = events.last().map(|e| e.cursor) else {
            return checkpoint::load(pool, &target.checkpoint)
                .await
                .map_err(Into::into);
        };
        checkpoint::advance(pool, &target.checkpoint, last).await?;
        return Ok(last);
    }
    let mut tx = pool.begin().await?;
    let at = apply_in(&mut tx, projection, target, events).await?;
    tx.commit().await?;
    Ok(at)
}

/// [`apply_batch`] inside a transaction the caller owns (and commits).
pub async fn apply_in(
    conn: &mut PgConnection,
    projection: &dyn Projection,
    target: &Target,
    events: &[RecordedEvent],
) -> Result<Cursor, ProjectionError> {
    let at = checkpoint::lock(conn, &target.checkpoint).await?;
    let start = events.partition_point(|e| e.cursor <= at);
    let fresh = &events[start..];
    let Some(last) = fresh.last().map(|e| e.cursor) else {
        return Ok(at);
    };
    // Personal fields in clear (or erased), one key query for the batch, for the projections
    // that show them; both sources and rebuilds pass here.
    let revealed = if projection.needs_personal_data() {
        event_store::shred::reveal(&mut *conn, fresh, |e| projection.concerns(e)).await?
    } else {
        None
    };
    projection
        .apply(conn, target, revealed.as_deref().unwrap_or(fresh))
        .await?;
    checkpoint::advance(&mut *conn, &target.checkpoint, last).await?;
    Ok(last)
}

/// Events a projection applies in one transaction at most.
const BATCH: usize = 2_000;

/// Feeds `projection` (writing `target`) from `source` until `cancel`. A failing batch is
/// retried (with backoff) and never skipped. Over events that do not concern the projection, its checkpoint is moved by
/// `mover`, with every other reader's.
pub async fn run(
    pool: PgPool,
    projection: Arc<dyn Projection>,
    target: Target,
    mut source: Box<dyn EventSource>,
    mover: checkpoint::Mover,
    cancel: CancellationToken,
) {
    let mut at = loop {
        match checkpoint::load(&pool, &target.checkpoint).await {
            Ok(c) => break c,
            Err(e) => {
                tracing::warn!(error = %e, "projection: cannot read checkpoint");
                if sleep_or_cancel(&cancel, Duration::from_secs(1)).await {
                    return;
                }
            }
        }
    };
    tracing::info!(projection = projection.name(), checkpoint = %at, "projection running");
    let mut pace = Pace::default();
    while !cancel.is_cancelled() {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = pace.ready() => {}
        }
        let batch = tokio::select! {
            _ = cancel.cancelled() => return,
            b = source.next_batch(at, BATCH) => b,
        };
        let batch = match batch {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(error = %e, projection = projection.name(), "projection: source failed");
                if sleep_or_cancel(&cancel, Duration::from_secs(1)).await {
                    return;
                }
                continue;
            }
        };
        if batch.is_empty() {
            continue;
        }
        let mut backoff = Duration::from_millis(100);
        if !batch.events.iter().any(|e| projection.concerns(e)) {
            if let Some(last) = batch.events.last() {
                mover.advance(&target.checkpoint, last.cursor);
                at = at.max(last.cursor);
                crate::status::report(&pool, &target.checkpoint, at);
            }
        } else {
            pace.began(batch.events.len(), BATCH);
            loop {
                match apply_batch(&pool, projection.as_ref(), &target, &batch.events).await {
                    Ok(c) => {
                        at = at.max(c);
                        crate::status::report(&pool, &target.checkpoint, at);
                        break;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, projection = projection.name(), "projection: batch failed; retrying");
                        if sleep_or_cancel(&cancel, backoff).await {
                            return;
                        }
                        backoff = (backoff * 2).min(Duration::from_secs(10));
                    }
                }
            }
        }
        // The source skipped events of other aggregate types up to here.
        if let Some(through) = batch.through.filter(|t| *t > at) {
            mover.advance(&target.checkpoint, through);
            at = through;
            crate::status::report(&pool, &target.checkpoint, at);
        }
    }
}

/// Sleeps; true if cancelled meanwhile.
async fn sleep_or_cancel(cancel: &CancellationToken, d: Duration) -> bool {
    tokio::select! {
        _ = cancel.cancelled() => true,
        _ = tokio::time::sleep(d) => false,
    }
}
