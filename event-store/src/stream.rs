//! One stream read for a command, on the command's connection: its events in order with
//! their personal values revealed, and the stream's key (for an aggregate type that holds
//! personal data) read in the same statement and kept for the command's append
//! ([`crate::shred::with_key_memo`]), so a load and an append are two round trips in all.

use serde_json::Value;
use sqlx::types::Json;
use sqlx::PgConnection;

use crate::{shred, StoreError};

/// A stream's events (`(event_type, payload)` in order, as the aggregate's `apply` takes
/// them) and its version (the sequence of its last event; 0 for none).
#[derive(Debug, Default)]
pub struct Loaded {
    pub events: Vec<(String, Value)>,
    pub version: i64,
}

/// Stream `stream` of `aggregate_type`; see the module's documentation.
pub async fn load(
    conn: &mut PgConnection,
    aggregate_type: &str,
    stream: &str,
) -> Result<Loaded, StoreError> {
    /// An event (sequence, type, payload), or the stream's key row (`is_key`).
    type Row = (
        i64,
        Option<String>,
        Option<Json<Value>>,
        Option<Vec<u8>>,
        bool,
    );
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT sequence, event_type, payload, NULL::bytea, false FROM events \
         WHERE aggregate_type = $1 AND aggregate_id = $2 \
         UNION ALL \
         SELECT 0, NULL, NULL, wrapped_key, true FROM contact_keys WHERE $3 AND stream_id = $2",
    )
    .bind(aggregate_type)
    .bind(stream)
    .bind(shred::policy::covers(aggregate_type))
    .fetch_all(&mut *conn)
    .await?;
    let mut key: Option<Option<Vec<u8>>> = None;
    let mut events: Vec<(i64, String, Value)> = Vec::with_capacity(rows.len());
    for (sequence, event_type, payload, wrapped, is_key) in rows {
        if is_key {
            key = Some(wrapped);
            continue;
        }
        let (Some(event_type), Some(Json(payload))) = (event_type, payload) else {
            return Err(StoreError::Malformed(format!(
                "{stream}: an event row without type or payload"
            )));
        };
        events.push((sequence, event_type, payload));
    }
    events.sort_by_key(|(sequence, _, _)| *sequence);
    let version = events.last().map_or(0, |(s, _, _)| *s);
    let mut events: Vec<(String, Value)> = events.into_iter().map(|(_, t, p)| (t, p)).collect();
    shred::reveal_with_key(aggregate_type, stream, key, &mut events)?;
    Ok(Loaded { events, version })
}
