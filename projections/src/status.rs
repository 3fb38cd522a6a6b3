//! How far behind each projection is, and waiting for one to pass a cursor.

use std::time::{Duration, Instant};

use chrono::Utc;
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
    let (count, oldest) = reader::backlog(pool, cp).await?;
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

/// Where the checkpoints of this process's readers have got to, in memory, per database:
/// the runner reports every move as it makes it (after its commit; over skipped events even
/// before the mover writes them), so a waiter in the same process wakes at once instead of
/// polling the checkpoint table. A reader in another process is seen through the table.
mod local {
    use std::collections::HashMap;
    use std::sync::{LazyLock, Mutex};

    use event_store::Cursor;
    use sqlx::PgPool;
    use tokio::sync::watch;

    type Key = (String, u16, String, String);

    static MOVES: LazyLock<Mutex<HashMap<Key, watch::Sender<Cursor>>>> =
        LazyLock::new(Mutex::default);

    fn key(pool: &PgPool, name: &str) -> Key {
        let o = pool.connect_options();
        (
            o.get_host().to_owned(),
            o.get_port(),
            o.get_database().unwrap_or_default().to_owned(),
            name.to_owned(),
        )
    }

    /// The channel of checkpoint `name` of `pool`'s database.
    pub(super) fn channel(pool: &PgPool, name: &str) -> watch::Receiver<Cursor> {
        match MOVES.lock() {
            Ok(mut m) => m
                .entry(key(pool, name))
                .or_insert_with(|| watch::channel(Cursor::ZERO).0)
                .subscribe(),
            // Poisoned (a panic elsewhere): a channel nobody moves; waiters read the table.
            Err(_) => watch::channel(Cursor::ZERO).1,
        }
    }

    pub(super) fn report(pool: &PgPool, name: &str, at: Cursor) {
        if let Ok(mut m) = MOVES.lock() {
            m.entry(key(pool, name))
                .or_insert_with(|| watch::channel(Cursor::ZERO).0)
                .send_if_modified(|c| {
                    let moved = at > *c;
                    if moved {
                        *c = at;
                    }
                    moved
                });
        }
    }
}

/// Tells waiters of this process that checkpoint `name` of `pool`'s database is at `at`
/// (its read model holds every event up to there that concerns it).
pub fn report(pool: &PgPool, name: &str, at: Cursor) {
    local::report(pool, name, at);
}

/// How often a waiter reads the checkpoint table, for a reader in another process.
const TABLE_EVERY: Duration = Duration::from_millis(50);

/// [`wait_for`], given up (false) as soon as `stop` is cancelled: a worker stopping while
/// it waits for a read model (whose projector stops too) returns at once, without racing its
/// whole step against the stop (which could drop a transaction with its COMMIT in flight;
/// the driver then sends a ROLLBACK outside any transaction).
pub async fn wait_unless_stopped(
    pool: &PgPool,
    name: &str,
    cursor: Cursor,
    timeout: Duration,
    stop: &tokio_util::sync::CancellationToken,
) -> Result<bool, StoreError> {
    tokio::select! {
        _ = stop.cancelled() => Ok(false),
        r = wait_for(pool, name, cursor, timeout) => r,
    }
}

/// Waits until checkpoint `name` is at or past `cursor`; false if `timeout` passed first.
/// Woken by the reader's progress when it runs in this process ([`report`]); the table is
/// read first and then every [`TABLE_EVERY`], for a reader elsewhere.
pub async fn wait_for(
    pool: &PgPool,
    name: &str,
    cursor: Cursor,
    timeout: Duration,
) -> Result<bool, StoreError> {
    let deadline = Instant::now() + timeout;
    let mut moves = local::channel(pool, name);
    if *moves.borrow_and_update() >= cursor {
        return Ok(true);
    }
    loop {
        if checkpoint::load(pool, name).await? >= cursor {
            return Ok(true);
        }
        let next_read = (Instant::now() + TABLE_EVERY).min(deadline);
        loop {
            let now = Instant::now();
            if now >= next_read {
                break;
            }
            match tokio::time::timeout(next_read - now, moves.changed()).await {
                Ok(Ok(())) if *moves.borrow_and_update() >= cursor => return Ok(true),
                Ok(Ok(())) => {}
                // No local reader moves it (closed cannot happen: the map keeps the sender).
                Ok(Err(_)) | Err(_) => break,
            }
        }
        if Instant::now() >= deadline {
            return Ok(checkpoint::load(pool, name).await? >= cursor);
        }
    }
}
