//! How far behind each projection is, and waiting for one to pass a cursor.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use event_store::{checkpoint, reader, relay, Cursor, StoreError};
use serde::Serialize;
use sqlx::PgPool;

/// A reader of the log and how far behind the head it is.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Lag {
    pub name: String,
    #[schema(value_type = String)]
    pub checkpoint: Cursor,
    #[schema(value_type = String)]
    pub head: Cursor,
    /// Events after the checkpoint.
    pub behind_events: i64,
    /// Age of the oldest event after the checkpoint (0 when caught up).
    pub behind_seconds: f64,
}

/// The lag of the checkpoint `name`.
pub async fn lag(pool: &PgPool, name: &str) -> Result<Lag, StoreError> {
    let cp = checkpoint::load(pool, name).await?;
    let head = reader::head(pool).await?;
    let (count, oldest): (i64, Option<DateTime<Utc>>) = sqlx::query_as(
        "SELECT count(*), min(recorded_at) FROM events \
         WHERE (tx_id, global_position) > ($1::bigint::text::xid8, $2) \
           AND tx_id < pg_snapshot_xmin(pg_current_snapshot())",
    )
    .bind(cp.tx_id)
    .bind(cp.position)
    .fetch_one(pool)
    .await?;
    let behind_seconds = oldest
        .map(|t| (Utc::now() - t).num_milliseconds().max(0) as f64 / 1000.0)
        .unwrap_or(0.0);
    Ok(Lag {
        name: name.to_owned(),
        checkpoint: cp,
        head,
        behind_events: count,
        behind_seconds,
    })
}

/// The lag of the relay and of every projection.
pub async fn all(pool: &PgPool) -> Result<Vec<Lag>, StoreError> {
    let mut out = vec![lag(pool, relay::CHECKPOINT).await?];
    for p in crate::all() {
        out.push(lag(pool, p.name()).await?);
    }
    Ok(out)
}

/// Waits until checkpoint `name` is at or past `cursor`; false if `timeout` passed first.
pub async fn wait_for(
    pool: &PgPool,
    name: &str,
    cursor: Cursor,
    timeout: Duration,
) -> Result<bool, StoreError> {
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(1);
    loop {
        if checkpoint::load(pool, name).await? >= cursor {
            return Ok(true);
        }
        if Instant::now() >= deadline {
            return Ok(false);
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}
