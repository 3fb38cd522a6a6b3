//! Reading and writing read-model rows as JSON, for read models whose rows are few and
//! wide (organizations, users, the audit log): one statement loads every touched row, one
//! writes them back (`jsonb_populate_recordset` over the target table's own row type, so a
//! rebuild's shadow table works the same).

use std::collections::HashMap;

use serde::de::DeserializeOwned;
use serde::Serialize;
use sqlx::PgConnection;
use uuid::Uuid;

use event_store::RecordedEvent;

use crate::{ProjectionError, Target};

fn encode(reason: impl ToString) -> ProjectionError {
    ProjectionError::Row(reason.to_string())
}

/// The rows of `table` with these `(tenant_id, id)` keys, by id.
pub async fn load<T: DeserializeOwned>(
    conn: &mut PgConnection,
    table: &str,
    keys: &[(Uuid, Uuid)],
) -> Result<HashMap<Uuid, T>, ProjectionError> {
    let (tenants, ids): (Vec<Uuid>, Vec<Uuid>) = keys.iter().copied().unzip();
    let rows: Vec<(Uuid, serde_json::Value)> = sqlx::query_as(&format!(
        "SELECT id, to_jsonb(t) FROM {table} t WHERE (tenant_id, id) IN \
         (SELECT * FROM UNNEST($1::uuid[], $2::uuid[]))"
    ))
    .bind(&tenants)
    .bind(&ids)
    .persistent(false)
    .fetch_all(&mut *conn)
    .await?;
    rows.into_iter()
        .map(|(id, v)| serde_json::from_value(v).map(|r| (id, r)).map_err(encode))
        .collect()
}

/// Inserts `rows` into `table`, replacing older versions (by `version`) of the same key.
/// `columns` are the columns an update rewrites.
pub async fn upsert<T: Serialize>(
    conn: &mut PgConnection,
    table: &str,
    rows: &[T],
    columns: &[&str],
) -> Result<(), ProjectionError> {
    upsert_by(conn, table, rows, columns, "version").await
}

/// [`upsert`] with the stream's sequence in column `guard` instead of `version`.
pub async fn upsert_by<T: Serialize>(
    conn: &mut PgConnection,
    table: &str,
    rows: &[T],
    columns: &[&str],
    guard: &str,
) -> Result<(), ProjectionError> {
    if rows.is_empty() {
        return Ok(());
    }
    let json = serde_json::to_value(rows).map_err(encode)?;
    let set: Vec<String> = columns
        .iter()
        .map(|c| format!("{c} = EXCLUDED.{c}"))
        .collect();
    sqlx::query(&format!(
        "INSERT INTO {table} SELECT * FROM jsonb_populate_recordset(NULL::{table}, $1) \
         ON CONFLICT (tenant_id, id) DO UPDATE SET {} WHERE {table}.{guard} < EXCLUDED.{guard}",
        set.join(", ")
    ))
    .bind(json)
    .persistent(false)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Inserts `rows` into `table`, leaving rows whose key exists as they are.
pub async fn insert_new<T: Serialize>(
    conn: &mut PgConnection,
    table: &str,
    rows: &[T],
) -> Result<(), ProjectionError> {
    if rows.is_empty() {
        return Ok(());
    }
    let json = serde_json::to_value(rows).map_err(encode)?;
    sqlx::query(&format!(
        "INSERT INTO {table} SELECT * FROM jsonb_populate_recordset(NULL::{table}, $1) \
         ON CONFLICT DO NOTHING"
    ))
    .bind(json)
    .persistent(false)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// How a row folds one event of its aggregate (`None` before the entity exists).
pub type Fold<R, E> = fn(Option<R>, &RecordedEvent, E, Uuid) -> Option<R>;

/// Applies the events of `aggregate_type` in `events` to one row per entity of
/// `target.table`: loads the touched rows, folds the events over them in memory, writes
/// each touched row back once (rewriting `columns`).
pub async fn fold_rows<R, E>(
    conn: &mut PgConnection,
    target: &Target,
    events: &[RecordedEvent],
    aggregate_type: &str,
    fold: Fold<R, E>,
    columns: &[&str],
) -> Result<(), ProjectionError>
where
    R: Serialize + DeserializeOwned,
    E: DeserializeOwned,
{
    let mine: Vec<(&RecordedEvent, Uuid)> = events
        .iter()
        .filter(|e| e.aggregate_type == aggregate_type)
        .filter_map(|e| e.entity_id().map(|id| (e, id)))
        .collect();
    if mine.is_empty() {
        return Ok(());
    }
    // An entity whose stream starts in this batch has no row yet (events already applied
    // never reach here): only the others are loaded.
    let born: std::collections::HashSet<Uuid> = mine
        .iter()
        .filter(|(e, _)| e.sequence == 1)
        .map(|(_, id)| *id)
        .collect();
    let mut keys: Vec<(Uuid, Uuid)> = mine
        .iter()
        .filter(|(_, id)| !born.contains(id))
        .map(|(e, id)| (e.tenant_id, *id))
        .collect();
    keys.sort_unstable();
    keys.dedup();
    let mut rows = if keys.is_empty() {
        HashMap::new()
    } else {
        load::<R>(conn, &target.table, &keys).await?
    };
    let mut touched = std::collections::BTreeSet::new();
    for (e, id) in mine {
        let event: E = crate::decode(e)?;
        if let Some(r) = fold(rows.remove(&id), e, event, id) {
            rows.insert(id, r);
            touched.insert(id);
        }
    }
    let out: Vec<R> = touched.iter().filter_map(|id| rows.remove(id)).collect();
    upsert(conn, &target.table, &out, columns).await
}
