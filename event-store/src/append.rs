//! Appending to the log: one multi-row `INSERT … RETURNING` for any number of events of any
//! number of streams. Used by the cqrs-es repository for commands and, for bulk creation
//! (imports, fan-out), directly as the batch path.
//!
//! Every write passes here, so this is where personal fields are sealed
//! ([`crate::shred::seal`]: one key statement for the whole batch, before the insert).

use sqlx::PgConnection;

use crate::{Cursor, StoreError};

/// An event to append.
#[derive(Debug, Clone)]
pub struct NewEvent<'a> {
    pub aggregate_type: &'a str,
    pub aggregate_id: &'a str,
    pub sequence: i64,
    pub event_type: &'a str,
    pub event_version: &'a str,
    /// The payload's JSON text (bulk writers serialize events straight to text; the
    /// database parses it into `jsonb` once).
    pub payload: &'a str,
    pub metadata: &'a serde_json::Value,
}

/// Why an append did not happen.
#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    /// A stream already has an event at one of these sequence numbers: another writer won.
    #[error("a stream was appended to concurrently")]
    Conflict,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Appends `events` atomically (one statement) and returns the cursor of the last one.
/// `None` for an empty slice. Personal fields are sealed first (keys fetched or created in
/// one more statement, only when a batch holds personal values).
pub async fn append(
    conn: &mut PgConnection,
    events: &[NewEvent<'_>],
) -> Result<Option<Cursor>, AppendError> {
    if events.is_empty() {
        return Ok(None);
    }
    let sealed = crate::shred::seal(&mut *conn, events).await?;
    let n = events.len();
    let mut types = Vec::with_capacity(n);
    let mut ids = Vec::with_capacity(n);
    let mut seqs = Vec::with_capacity(n);
    let mut event_types = Vec::with_capacity(n);
    let mut versions = Vec::with_capacity(n);
    let mut payloads = Vec::with_capacity(n);
    // Batch writers give every event the same metadata: it is sent (and parsed) once per
    // run of equal values, and each event names its own by index (1-based, as SQL arrays are).
    let mut metadata: Vec<&serde_json::Value> = Vec::new();
    let mut which = Vec::with_capacity(n);
    for (e, sealed) in events.iter().zip(&sealed) {
        types.push(e.aggregate_type);
        ids.push(e.aggregate_id);
        seqs.push(e.sequence);
        event_types.push(e.event_type);
        versions.push(e.event_version);
        payloads.push(sealed.as_deref().unwrap_or(e.payload));
        // Compared with the previous event's only: runs of one value are what batches make.
        let same = metadata
            .last()
            .is_some_and(|m| std::ptr::eq(*m, e.metadata) || *m == e.metadata);
        if !same {
            metadata.push(e.metadata);
        }
        which.push(metadata.len() as i32);
    }
    let rows: Result<Vec<(i64, i64)>, sqlx::Error> = sqlx::query_as(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) \
         SELECT t, i, s, et, ev, p::jsonb, ($7::jsonb[])[m] \
         FROM UNNEST($1::text[], $2::text[], $3::bigint[], $4::text[], $5::text[], $6::text[], $8::int[]) AS u(t, i, s, et, ev, p, m) \
         RETURNING tx_id::text::bigint, global_position",
    )
    .bind(&types)
    .bind(&ids)
    .bind(&seqs)
    .bind(&event_types)
    .bind(&versions)
    .bind(&payloads)
    .bind(&metadata)
    .bind(&which)
    .fetch_all(&mut *conn)
    .await;
    match rows {
        Ok(rows) => Ok(rows.into_iter().map(|(t, p)| Cursor::new(t, p)).max()),
        Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("23505") => {
            Err(AppendError::Conflict)
        }
        Err(e) => Err(AppendError::Store(e.into())),
    }
}
