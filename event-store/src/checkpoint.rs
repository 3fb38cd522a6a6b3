//! Named cursors: where the relay and each projection have got to.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sqlx::{PgExecutor, PgPool};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::{Cursor, StoreError};

/// The stored cursor of `name` ([`Cursor::ZERO`] if it has none yet).
pub async fn load<'e>(db: impl PgExecutor<'e>, name: &str) -> Result<Cursor, StoreError> {
    let row: Option<(i64, i64)> =
        sqlx::query_as("SELECT tx_id, global_position FROM checkpoints WHERE name = $1")
            .bind(name)
            .fetch_optional(db)
            .await?;
    Ok(row.map_or(Cursor::ZERO, |(t, p)| Cursor::new(t, p)))
}

/// Locks and returns the cursor of `name` inside a transaction, creating it at zero.
///
/// Writers of one checkpoint serialize on this row lock, so two runners of the same
/// projection can never interleave their batches.
pub async fn lock(conn: &mut sqlx::PgConnection, name: &str) -> Result<Cursor, StoreError> {
    let select = "SELECT tx_id, global_position FROM checkpoints WHERE name = $1 FOR UPDATE";
    let row: Option<(i64, i64)> = sqlx::query_as(select)
        .bind(name)
        .fetch_optional(&mut *conn)
        .await?;
    let (t, p) = match row {
        Some(r) => r,
        None => {
            sqlx::query("INSERT INTO checkpoints (name) VALUES ($1) ON CONFLICT (name) DO NOTHING")
                .bind(name)
                .execute(&mut *conn)
                .await?;
            sqlx::query_as(select)
                .bind(name)
                .fetch_one(&mut *conn)
                .await?
        }
    };
    Ok(Cursor::new(t, p))
}

/// Moves `name` forward to `to`; never moves a checkpoint backwards.
pub async fn advance<'e>(
    db: impl PgExecutor<'e>,
    name: &str,
    to: Cursor,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO checkpoints (name, tx_id, global_position) VALUES ($1, $2, $3) \
         ON CONFLICT (name) DO UPDATE SET tx_id = EXCLUDED.tx_id, \
             global_position = EXCLUDED.global_position, updated_at = now() \
         WHERE (checkpoints.tx_id, checkpoints.global_position) < (EXCLUDED.tx_id, EXCLUDED.global_position)",
    )
    .bind(name)
    .bind(to.tx_id)
    .bind(to.position)
    .execute(db)
    .await?;
    Ok(())
}

/// Moves checkpoints over events their readers skip, every reader of the process together:
/// one statement every few milliseconds instead of one per reader and batch (a read model
/// that ignores a busy aggregate type otherwise writes its checkpoint about 50 times a
/// second). The caller goes on reading from the new cursor at once; the stored one follows
/// within [`Mover::EVERY`]. A move lost with the process only makes its reader skip the
/// same events again.
#[derive(Clone)]
pub struct Mover {
    inner: Arc<MoverInner>,
}

struct MoverInner {
    pending: Mutex<HashMap<String, Cursor>>,
    wake: Notify,
}

impl Mover {
    /// How long moves gather before they are written.
    pub const EVERY: Duration = Duration::from_millis(10);

    /// Starts writing moves to `pool` until `cancel` (moves still pending then are written).
    pub fn start(pool: PgPool, cancel: CancellationToken) -> Self {
        let mover = Self {
            inner: Arc::new(MoverInner {
                pending: Mutex::new(HashMap::new()),
                wake: Notify::new(),
            }),
        };
        let m = mover.clone();
        tokio::spawn(async move {
            loop {
                let stop = tokio::select! {
                    _ = cancel.cancelled() => true,
                    _ = m.inner.wake.notified() => false,
                };
                if !stop {
                    tokio::time::sleep(Self::EVERY).await;
                }
                let moves: Vec<(String, Cursor)> = match m.inner.pending.lock() {
                    Ok(mut p) => p.drain().collect(),
                    Err(_) => return,
                };
                if !moves.is_empty() {
                    match advance_all(&pool, moves.clone()).await {
                        // Rows busy now: again at the next round.
                        Ok(busy) => {
                            for (name, to) in busy {
                                m.advance(&name, to);
                            }
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "checkpoints: moving failed; retrying");
                            for (name, to) in moves {
                                m.advance(&name, to);
                            }
                            tokio::time::sleep(Duration::from_millis(500)).await;
                        }
                    }
                }
                if stop {
                    return;
                }
            }
        });
        mover
    }

    /// Moves `name` forward to `to` soon (never backwards).
    pub fn advance(&self, name: &str, to: Cursor) {
        if let Ok(mut p) = self.inner.pending.lock() {
            let at = p.entry(name.to_owned()).or_insert(to);
            *at = (*at).max(to);
        }
        self.inner.wake.notify_one();
    }
}

/// [`advance`] for many checkpoints in one statement; returns the moves it could not make
/// now. A checkpoint whose row another transaction holds (its projection applying a batch,
/// which moves it further itself) is skipped, not waited for: one busy projection never holds
/// back every other one's moves. Rows are locked in name order, so two processes' movers
/// cannot deadlock.
async fn advance_all(
    pool: &PgPool,
    mut moves: Vec<(String, Cursor)>,
) -> Result<Vec<(String, Cursor)>, StoreError> {
    moves.sort_by(|a, b| a.0.cmp(&b.0));
    let names: Vec<&str> = moves.iter().map(|(n, _)| n.as_str()).collect();
    let txs: Vec<i64> = moves.iter().map(|(_, c)| c.tx_id).collect();
    let positions: Vec<i64> = moves.iter().map(|(_, c)| c.position).collect();
    let done: Vec<String> = sqlx::query_scalar(
        "WITH m AS (SELECT * FROM UNNEST($1::text[], $2::bigint[], $3::bigint[]) AS m(name, tx, pos)), \
         created AS ( \
           INSERT INTO checkpoints (name, tx_id, global_position) \
           SELECT name, tx, pos FROM m \
           WHERE NOT EXISTS (SELECT 1 FROM checkpoints c WHERE c.name = m.name) \
           ON CONFLICT (name) DO NOTHING RETURNING name), \
         free AS ( \
           SELECT c.name FROM checkpoints c WHERE c.name = ANY($1) \
           ORDER BY c.name FOR UPDATE SKIP LOCKED), \
         moved AS ( \
           UPDATE checkpoints c SET tx_id = m.tx, global_position = m.pos, updated_at = now() \
           FROM m JOIN free USING (name) \
           WHERE c.name = m.name AND (c.tx_id, c.global_position) < (m.tx, m.pos) \
           RETURNING c.name) \
         SELECT name FROM free UNION SELECT name FROM created",
    )
    .bind(&names)
    .bind(&txs)
    .bind(&positions)
    .fetch_all(pool)
    .await?;
    Ok(moves
        .into_iter()
        .filter(|(name, _)| !done.contains(name))
        .collect())
}

/// Sets `name` to exactly `to` (used when a rebuilt read model is swapped in).
pub async fn set<'e>(db: impl PgExecutor<'e>, name: &str, to: Cursor) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO checkpoints (name, tx_id, global_position) VALUES ($1, $2, $3) \
         ON CONFLICT (name) DO UPDATE SET tx_id = EXCLUDED.tx_id, \
             global_position = EXCLUDED.global_position, updated_at = now()",
    )
    .bind(name)
    .bind(to.tx_id)
    .bind(to.position)
    .execute(db)
    .await?;
    Ok(())
}

/// Removes `name` (a finished or abandoned rebuild).
pub async fn remove<'e>(db: impl PgExecutor<'e>, name: &str) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM checkpoints WHERE name = $1")
        .bind(name)
        .execute(db)
        .await?;
    Ok(())
}
