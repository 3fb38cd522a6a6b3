//! Applying batches and the run loop.

use std::sync::Arc;
use std::time::Duration;

use event_store::follow::{follow, Follower};
use event_store::source::{Batch, EventSource};
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

/// A projection following the log: each batch applied with its checkpoint in one
/// transaction; over events that do not concern it, its checkpoint is moved by `mover`, with
/// every other reader's.
pub struct Follow {
    pub pool: PgPool,
    pub projection: Arc<dyn Projection>,
    pub target: Target,
    pub mover: checkpoint::Mover,
}

impl Follower for Follow {
    type Error = ProjectionError;
    /// Events a projection applies in one transaction at most.
    const BATCH: usize = 2_000;
    const RETRY: Duration = Duration::from_millis(100);
    const MAX_RETRY: Duration = Duration::from_secs(10);

    fn checkpoint(&self) -> &str {
        &self.target.checkpoint
    }

    fn paces(&self, batch: &Batch) -> bool {
        self.concerned(batch)
    }

    async fn step(&mut self, at: Cursor, batch: &Batch) -> Result<Cursor, ProjectionError> {
        let mut at = at;
        let name = &self.target.checkpoint;
        if !self.concerned(batch) {
            if let Some(last) = batch.events.last() {
                self.mover.advance(name, last.cursor);
                at = at.max(last.cursor);
                crate::status::report(&self.pool, name, at);
            }
        } else {
            let applied = apply_batch(
                &self.pool,
                self.projection.as_ref(),
                &self.target,
                &batch.events,
            );
            at = at.max(applied.await?);
            crate::status::report(&self.pool, name, at);
        }
        // The source skipped events of other aggregate types up to here.
        if let Some(through) = batch.through.filter(|t| *t > at) {
            self.mover.advance(name, through);
            at = through;
            crate::status::report(&self.pool, name, at);
        }
        Ok(at)
    }
}

impl Follow {
    fn concerned(&self, batch: &Batch) -> bool {
        batch.events.iter().any(|e| self.projection.concerns(e))
    }
}

/// Feeds `projection` (writing `target`) from `source` until `cancel`.
pub async fn run(
    pool: PgPool,
    projection: Arc<dyn Projection>,
    target: Target,
    source: Box<dyn EventSource>,
    mover: checkpoint::Mover,
    cancel: CancellationToken,
) {
    let follower = Follow {
        pool: pool.clone(),
        projection,
        target,
        mover,
    };
    follow(pool, follower, source, cancel).await;
}
