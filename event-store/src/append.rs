//! Appending to the log: one multi-row `INSERT … RETURNING` for any number of events of any
//! number of streams. Used by the cqrs-es repository for commands and, for bulk creation
//! (imports, fan-out), directly as the batch path.
//!
//! Every write passes here, so this is where personal fields are sealed
//! ([`crate::shred::seal`]: one key statement for the whole batch, before the insert).
//!
//! [`append_with`] also writes, in the same statement, the keys of new streams whose events
//! the caller sealed itself ([`crate::shred::FreshKey`]) and claims of unique values
//! ([`crate::reservation`]): a command that creates a contact is one round trip.

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

/// A unique value claimed with the events: written only if every claim is won.
#[derive(Debug, Clone, Copy)]
pub struct Claim<'a> {
    pub scope: crate::reservation::Scope,
    pub value: &'a str,
    pub holder: crate::reservation::Holder,
}

/// What [`append_with`] writes beside the events, in the same statement.
#[derive(Debug, Default)]
pub struct Beside<'a> {
    /// Keys of new streams (`stream id`, wrapped key) whose events are sealed already; a
    /// stream that has a key answers `Conflict` (it exists, or was erased).
    pub keys: Vec<(&'a str, &'a [u8])>,
    /// Values to reserve; if any is held by another owner, nothing is written ([`Taken`]).
    pub claims: Vec<Claim<'a>>,
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
    // Without claims, nothing can be taken.
    append_with(conn, events, &Beside::default())
        .await
        .map(|r| r.unwrap_or(None))
}

/// A value claimed with the events is held by another owner: nothing was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Taken;

/// [`append`], writing `beside` in the same statement: all of it or nothing (`Ok(Err(Taken))`
/// when a claim is held by another owner).
pub async fn append_with(
    conn: &mut PgConnection,
    events: &[NewEvent<'_>],
    beside: &Beside<'_>,
) -> Result<Result<Option<Cursor>, Taken>, AppendError> {
    if events.is_empty() {
        return Ok(Ok(None));
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
    let sql = statement(!beside.keys.is_empty(), !beside.claims.is_empty());
    let key_streams: Vec<&str> = beside.keys.iter().map(|(s, _)| *s).collect();
    let key_values: Vec<&[u8]> = beside.keys.iter().map(|(_, k)| *k).collect();
    let scopes: Vec<&str> = beside.claims.iter().map(|c| c.scope.as_str()).collect();
    let values: Vec<&str> = beside.claims.iter().map(|c| c.value).collect();
    let tenants: Vec<uuid::Uuid> = beside.claims.iter().map(|c| c.holder.tenant_id).collect();
    let owners: Vec<uuid::Uuid> = beside.claims.iter().map(|c| c.holder.owner_id).collect();
    let mut q = sqlx::query_as(sql)
        .bind(&types)
        .bind(&ids)
        .bind(&seqs)
        .bind(&event_types)
        .bind(&versions)
        .bind(&payloads)
        .bind(&metadata)
        .bind(&which);
    if !beside.keys.is_empty() {
        q = q.bind(&key_streams).bind(&key_values);
    }
    if !beside.claims.is_empty() {
        q = q.bind(&scopes).bind(&values).bind(&tenants).bind(&owners);
    }
    let rows: Result<Vec<(i64, i64)>, sqlx::Error> = q.fetch_all(&mut *conn).await;
    match rows {
        Ok(rows) => Ok(Ok(rows.into_iter().map(|(t, p)| Cursor::new(t, p)).max())),
        Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("23505") => {
            Err(AppendError::Conflict)
        }
        Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some(CLAIM_TAKEN) => Ok(Err(Taken)),
        Err(e) => Err(AppendError::Store(e.into())),
    }
}

/// The SQLSTATE of `mauntic_claim_taken()` (migration 0029).
const CLAIM_TAKEN: &str = "MC409";

/// The append statement, with keys (`$9`, `$10`) and claims (after the keys) beside it.
/// Data-modifying CTEs run whether or not they are read; the events are inserted only if
/// every claim inserted its row, else the statement fails whole (no claim is left behind).
fn statement(keys: bool, claims: bool) -> &'static str {
    match (keys, claims) {
        (false, false) => concat!(
            "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) ",
            "SELECT t, i, s, et, ev, p::jsonb, ($7::jsonb[])[m] ",
            "FROM UNNEST($1::text[], $2::text[], $3::bigint[], $4::text[], $5::text[], $6::text[], $8::int[]) AS u(t, i, s, et, ev, p, m) ",
            "RETURNING tx_id::text::bigint, global_position"
        ),
        (true, false) => concat!(
            "WITH k AS (INSERT INTO contact_keys (stream_id, wrapped_key) ",
            "SELECT * FROM UNNEST($9::text[], $10::bytea[])) ",
            "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) ",
            "SELECT t, i, s, et, ev, p::jsonb, ($7::jsonb[])[m] ",
            "FROM UNNEST($1::text[], $2::text[], $3::bigint[], $4::text[], $5::text[], $6::text[], $8::int[]) AS u(t, i, s, et, ev, p, m) ",
            "RETURNING tx_id::text::bigint, global_position"
        ),
        (false, true) => concat!(
            "WITH c AS (INSERT INTO reservations (scope, value, tenant_id, owner_id) ",
            "SELECT * FROM UNNEST($9::text[], $10::text[], $11::uuid[], $12::uuid[]) ",
            "ON CONFLICT DO NOTHING RETURNING 1) ",
            "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) ",
            "SELECT t, i, s, et, ev, p::jsonb, ($7::jsonb[])[m] ",
            "FROM UNNEST($1::text[], $2::text[], $3::bigint[], $4::text[], $5::text[], $6::text[], $8::int[]) AS u(t, i, s, et, ev, p, m) ",
            "WHERE CASE WHEN (SELECT count(*) FROM c) = cardinality($9::text[]) THEN true ELSE mauntic_claim_taken() END ",
            "RETURNING tx_id::text::bigint, global_position"
        ),
        (true, true) => concat!(
            "WITH k AS (INSERT INTO contact_keys (stream_id, wrapped_key) ",
            "SELECT * FROM UNNEST($9::text[], $10::bytea[])), ",
            "c AS (INSERT INTO reservations (scope, value, tenant_id, owner_id) ",
            "SELECT * FROM UNNEST($11::text[], $12::text[], $13::uuid[], $14::uuid[]) ",
            "ON CONFLICT DO NOTHING RETURNING 1) ",
            "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) ",
            "SELECT t, i, s, et, ev, p::jsonb, ($7::jsonb[])[m] ",
            "FROM UNNEST($1::text[], $2::text[], $3::bigint[], $4::text[], $5::text[], $6::text[], $8::int[]) AS u(t, i, s, et, ev, p, m) ",
            "WHERE CASE WHEN (SELECT count(*) FROM c) = cardinality($11::text[]) THEN true ELSE mauntic_claim_taken() END ",
            "RETURNING tx_id::text::bigint, global_position"
        ),
    }
}
