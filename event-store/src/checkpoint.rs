//! Named cursors: where the relay and each projection have got to.

use sqlx::PgExecutor;

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
