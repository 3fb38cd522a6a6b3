//! Reads of the log. Every cross-stream read goes through [`read_after`], which is gap-safe.

use chrono::{DateTime, Utc};
use serde_json::value::RawValue;
use sqlx::postgres::PgRow;
use sqlx::types::Json;
use sqlx::{PgExecutor, Row};
use uuid::Uuid;

use crate::{Cursor, EventMetadata, RecordedEvent, StoreError};

const COLUMNS: &str = "tx_id::text::bigint AS tx, global_position, event_id, tenant_id, \
     aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata, recorded_at";

/// Which events a reader wants; `None` means any.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub tenant_id: Option<Uuid>,
    pub aggregate_type: Option<String>,
}

/// Up to `limit` events after `after` in cursor order, from transactions that have ended.
///
/// Only rows whose `tx_id` is below `pg_snapshot_xmin(pg_current_snapshot())` are returned:
/// every transaction below that horizon has committed or aborted, so no event can later
/// appear behind the returned ones. A transaction that stays open holds readers back (and
/// never lets them skip it).
#[tracing::instrument(level = "debug", skip_all, fields(after = %after, limit), err)]
pub async fn read_after<'e>(
    db: impl PgExecutor<'e>,
    after: Cursor,
    limit: i64,
    filter: &Filter,
) -> Result<Vec<RecordedEvent>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM events \
         WHERE (tx_id, global_position) > ($1::bigint::text::xid8, $2) \
           AND tx_id < pg_snapshot_xmin(pg_current_snapshot()) \
           AND ($4::uuid IS NULL OR tenant_id = $4) \
           AND ($5::text IS NULL OR aggregate_type = $5) \
         ORDER BY tx_id, global_position LIMIT $3"
    );
    let rows = sqlx::query(&sql)
        .bind(after.tx_id)
        .bind(after.position)
        .bind(limit)
        .bind(filter.tenant_id)
        .bind(filter.aggregate_type.as_deref())
        .fetch_all(db)
        .await?;
    rows.iter().map(decode).collect()
}

/// [`read_after`] for a reader that wants only events of `types`: up to `limit` of them, and
/// how far the log was read (`through`). Every event up to `through` that is not returned is
/// of another type, so the reader may move its checkpoint there: a read model that ignores a
/// busy aggregate type neither fetches nor decodes its events, yet keeps up with the head.
/// `through` is `None` when nothing follows `after`.
#[tracing::instrument(level = "debug", skip_all, fields(after = %after, limit), err)]
pub async fn read_types_after<'e>(
    db: impl PgExecutor<'e>,
    after: Cursor,
    limit: i64,
    types: &[String],
) -> Result<(Vec<RecordedEvent>, Option<Cursor>), StoreError> {
    // One statement (one snapshot). `seen` walks the cursor index from `after` over at most
    // `scan` events, reading only their type; the wanted ones are then fetched whole. (A
    // filter on `aggregate_type` alone would let the planner scan every event of the type.)
    let scan = limit.saturating_mul(5);
    let sql = format!(
        "WITH seen AS MATERIALIZED ( \
           SELECT tx_id, global_position, aggregate_type FROM events \
           WHERE (tx_id, global_position) > ($1::bigint::text::xid8, $2) \
             AND tx_id < pg_snapshot_xmin(pg_current_snapshot()) \
           ORDER BY tx_id, global_position LIMIT $5), \
         last AS ( \
           SELECT tx_id, global_position FROM seen \
           ORDER BY tx_id DESC, global_position DESC LIMIT 1), \
         picked AS ( \
           SELECT {COLUMNS} FROM events \
           WHERE (tx_id, global_position) IN ( \
             SELECT tx_id, global_position FROM seen WHERE aggregate_type = ANY($4) \
             ORDER BY tx_id, global_position LIMIT $3) \
           ORDER BY tx_id, global_position LIMIT $3) \
         SELECT last.tx_id::text::bigint AS last_tx, last.global_position AS last_position, \
                picked.* \
         FROM last LEFT JOIN picked ON true ORDER BY picked.tx, picked.global_position"
    );
    let rows = sqlx::query(&sql)
        .bind(after.tx_id)
        .bind(after.position)
        .bind(limit)
        .bind(types)
        .bind(scan)
        .fetch_all(db)
        .await?;
    let Some(first) = rows.first() else {
        return Ok((Vec::new(), None));
    };
    let last_seen = Cursor::new(first.try_get("last_tx")?, first.try_get("last_position")?);
    let mut events = Vec::with_capacity(rows.len());
    for row in &rows {
        if row.try_get::<Option<Uuid>, _>("event_id")?.is_some() {
            events.push(decode(row)?);
        }
    }
    // A full page of wanted events may stop short of what was seen.
    let through = match events.last() {
        Some(last) if events.len() as i64 >= limit => last.cursor,
        _ => last_seen,
    };
    Ok((events, Some(through)))
}

/// The cursor of the last event a reader can see now ([`Cursor::ZERO`] for an empty log).
pub async fn head<'e>(db: impl PgExecutor<'e>) -> Result<Cursor, StoreError> {
    let row: Option<(i64, i64)> = sqlx::query_as(
        "SELECT tx_id::text::bigint, global_position FROM events \
         WHERE tx_id < pg_snapshot_xmin(pg_current_snapshot()) \
         ORDER BY tx_id DESC, global_position DESC LIMIT 1",
    )
    .fetch_optional(db)
    .await?;
    Ok(row.map_or(Cursor::ZERO, |(t, p)| Cursor::new(t, p)))
}

/// The cursor of the last committed event, whether or not readers may see it yet (the
/// horizon may still hold it back): what "everything committed so far" means.
pub async fn committed_head<'e>(db: impl PgExecutor<'e>) -> Result<Cursor, StoreError> {
    let row: Option<(i64, i64)> = sqlx::query_as(
        "SELECT tx_id::text::bigint, global_position FROM events \
         ORDER BY tx_id DESC, global_position DESC LIMIT 1",
    )
    .fetch_optional(db)
    .await?;
    Ok(row.map_or(Cursor::ZERO, |(t, p)| Cursor::new(t, p)))
}

/// How far a stream is to be read for time travel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Until {
    End,
    Sequence(i64),
    Time(DateTime<Utc>),
}

/// The events of one stream, in order, up to `until`.
pub async fn load_stream<'e>(
    db: impl PgExecutor<'e>,
    aggregate_type: &str,
    aggregate_id: &str,
    until: Until,
) -> Result<Vec<RecordedEvent>, StoreError> {
    let (max_seq, max_time) = match until {
        Until::End => (None, None),
        Until::Sequence(s) => (Some(s), None),
        Until::Time(t) => (None, Some(t)),
    };
    let sql = format!(
        "SELECT {COLUMNS} FROM events \
         WHERE aggregate_type = $1 AND aggregate_id = $2 \
           AND ($3::bigint IS NULL OR sequence <= $3) \
           AND ($4::timestamptz IS NULL OR recorded_at <= $4) \
         ORDER BY sequence"
    );
    let rows = sqlx::query(&sql)
        .bind(aggregate_type)
        .bind(aggregate_id)
        .bind(max_seq)
        .bind(max_time)
        .fetch_all(db)
        .await?;
    rows.iter().map(decode).collect()
}

/// One event of [`load_streams`]: its stream, sequence and payload.
#[derive(Debug)]
pub struct StreamEvent {
    pub aggregate_id: String,
    pub sequence: i64,
    pub cursor: Cursor,
    pub payload: Box<RawValue>,
}

/// The events of many streams of one aggregate type in one query (bulk writers fold them
/// with the aggregate's own `apply`), ordered by stream and sequence.
pub async fn load_streams<'e>(
    db: impl PgExecutor<'e>,
    aggregate_type: &str,
    aggregate_ids: &[String],
) -> Result<Vec<StreamEvent>, StoreError> {
    if aggregate_ids.is_empty() {
        return Ok(Vec::new());
    }
    /// Stream, sequence, cursor (tx, position), payload.
    type Row = (String, i64, i64, i64, Json<Box<RawValue>>);
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT aggregate_id, sequence, tx_id::text::bigint, global_position, payload FROM events \
         WHERE aggregate_type = $1 AND aggregate_id = ANY($2) ORDER BY aggregate_id, sequence",
    )
    .bind(aggregate_type)
    .bind(aggregate_ids)
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(stream_event).collect())
}

/// Every event of every stream of `aggregate_type`, ordered by stream and sequence (a
/// worker that keeps every aggregate of a small type in memory folds them at start).
pub async fn load_type<'e>(
    db: impl PgExecutor<'e>,
    aggregate_type: &str,
) -> Result<Vec<StreamEvent>, StoreError> {
    /// Stream, sequence, cursor (tx, position), payload.
    type Row = (String, i64, i64, i64, Json<Box<RawValue>>);
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT aggregate_id, sequence, tx_id::text::bigint, global_position, payload FROM events \
         WHERE aggregate_type = $1 ORDER BY aggregate_id, sequence",
    )
    .bind(aggregate_type)
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(stream_event).collect())
}

fn stream_event(
    (aggregate_id, sequence, tx, position, payload): (String, i64, i64, i64, Json<Box<RawValue>>),
) -> StreamEvent {
    StreamEvent {
        aggregate_id,
        sequence,
        cursor: Cursor::new(tx, position),
        payload: payload.0,
    }
}

impl StreamEvent {
    /// The payload as the aggregate's event type.
    pub fn decode<T: serde::de::DeserializeOwned>(&self) -> Result<T, StoreError> {
        serde_json::from_str(self.payload.get()).map_err(|e| {
            StoreError::Malformed(format!("{} #{}: {e}", self.aggregate_id, self.sequence))
        })
    }
}

/// The events of stream `aggregate_id` after sequence `after` (a cache folding what is new
/// since it last looked).
pub async fn stream_since<'e>(
    db: impl PgExecutor<'e>,
    aggregate_type: &str,
    aggregate_id: &str,
    after: i64,
) -> Result<Vec<StreamEvent>, StoreError> {
    type Row = (String, i64, i64, i64, Json<Box<RawValue>>);
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT aggregate_id, sequence, tx_id::text::bigint, global_position, payload FROM events \
         WHERE aggregate_type = $1 AND aggregate_id = $2 AND sequence > $3 ORDER BY sequence",
    )
    .bind(aggregate_type)
    .bind(aggregate_id)
    .bind(after)
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(stream_event).collect())
}

/// The version (last sequence) of each of `aggregate_ids` that has events.
pub async fn stream_versions<'e>(
    db: impl PgExecutor<'e>,
    aggregate_type: &str,
    aggregate_ids: &[String],
) -> Result<std::collections::HashMap<String, i64>, StoreError> {
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "SELECT aggregate_id, max(sequence) FROM events \
         WHERE aggregate_type = $1 AND aggregate_id = ANY($2) GROUP BY aggregate_id",
    )
    .bind(aggregate_type)
    .bind(aggregate_ids)
    .persistent(false)
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().collect())
}

/// The type of the last event of each of `aggregate_ids` that has events.
pub async fn last_event_types<'e>(
    db: impl PgExecutor<'e>,
    aggregate_type: &str,
    aggregate_ids: &[String],
) -> Result<Vec<(String, String)>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT DISTINCT ON (aggregate_id) aggregate_id, event_type FROM events \
         WHERE aggregate_type = $1 AND aggregate_id = ANY($2) \
         ORDER BY aggregate_id, sequence DESC",
    )
    .bind(aggregate_type)
    .bind(aggregate_ids)
    .fetch_all(db)
    .await?)
}

/// How many committed events follow `after`, and when the oldest of them was recorded (a
/// reader's backlog).
pub async fn backlog<'e>(
    db: impl PgExecutor<'e>,
    after: Cursor,
) -> Result<(i64, Option<DateTime<Utc>>), StoreError> {
    Ok(sqlx::query_as(
        "SELECT count(*), min(recorded_at) FROM events \
         WHERE (tx_id, global_position) > ($1::bigint::text::xid8, $2) \
           AND tx_id < pg_snapshot_xmin(pg_current_snapshot())",
    )
    .bind(after.tx_id)
    .bind(after.position)
    .fetch_one(db)
    .await?)
}

/// The tenants that have a stream of `aggregate_type` for entity `entity` (an id given
/// without its tenant, as an operator types it).
pub async fn tenants_of<'e>(
    db: impl PgExecutor<'e>,
    aggregate_type: &str,
    entity: Uuid,
) -> Result<Vec<Uuid>, StoreError> {
    let rows: Vec<(Uuid,)> = sqlx::query_as(
        "SELECT DISTINCT tenant_id FROM events \
         WHERE aggregate_type = $1 AND aggregate_id LIKE '%:' || $2",
    )
    .bind(aggregate_type)
    .bind(entity.to_string())
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(|(t,)| t).collect())
}

/// Which of `aggregate_ids` (streams of one aggregate type) have any event.
pub async fn existing_streams<'e>(
    db: impl PgExecutor<'e>,
    aggregate_type: &str,
    aggregate_ids: &[String],
) -> Result<std::collections::BTreeSet<String>, StoreError> {
    if aggregate_ids.is_empty() {
        return Ok(Default::default());
    }
    let rows: Vec<(String,)> = sqlx::query_as(
        "SELECT aggregate_id FROM events WHERE aggregate_type = $1 AND aggregate_id = ANY($2) \
         AND sequence = 1",
    )
    .bind(aggregate_type)
    .bind(aggregate_ids)
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(|(id,)| id).collect())
}

/// The cursor of a stream's last event (what a command answers with).
pub async fn stream_cursor<'e>(
    db: impl PgExecutor<'e>,
    aggregate_type: &str,
    aggregate_id: &str,
) -> Result<Option<Cursor>, StoreError> {
    let row: Option<(i64, i64)> = sqlx::query_as(
        "SELECT tx_id::text::bigint, global_position FROM events \
         WHERE aggregate_type = $1 AND aggregate_id = $2 ORDER BY sequence DESC LIMIT 1",
    )
    .bind(aggregate_type)
    .bind(aggregate_id)
    .fetch_optional(db)
    .await?;
    Ok(row.map(|(t, p)| Cursor::new(t, p)))
}

fn decode(row: &PgRow) -> Result<RecordedEvent, StoreError> {
    let payload: Json<Box<RawValue>> = row.try_get("payload")?;
    let metadata: Json<EventMetadata> = row.try_get("metadata")?;
    Ok(RecordedEvent {
        cursor: Cursor::new(row.try_get("tx")?, row.try_get("global_position")?),
        event_id: row.try_get("event_id")?,
        tenant_id: row.try_get("tenant_id")?,
        aggregate_type: row.try_get("aggregate_type")?,
        aggregate_id: row.try_get("aggregate_id")?,
        sequence: row.try_get("sequence")?,
        event_type: row.try_get("event_type")?,
        event_version: row.try_get("event_version")?,
        payload: payload.0,
        metadata: metadata.0,
        recorded_at: row.try_get("recorded_at")?,
    })
}
