//! The `contact_keys` table: one wrapped key per contact stream, outside the log. Every
//! function handles a whole batch of streams in one statement.

use std::collections::HashMap;

use sqlx::{PgConnection, PgPool};

use super::cipher::{open_bytes, seal_bytes, DataKey};
use super::keyring::Keyring;
use crate::StoreError;

/// A stream's key for writing: the key, or `Erased` (tombstone: no key will ever be made).
pub enum WriteKey {
    Key(DataKey),
    Erased,
}

/// The keys of `streams` for writing, creating the missing ones: one statement (two when a
/// concurrent writer created a key between our snapshot and our insert).
pub async fn for_write(
    conn: &mut PgConnection,
    streams: &[&str],
) -> Result<HashMap<String, WriteKey>, StoreError> {
    let mut fresh = Vec::with_capacity(streams.len());
    let mut made = HashMap::with_capacity(streams.len());
    for s in streams {
        let (key, wrapped) = DataKey::generate(s)?;
        fresh.push(wrapped);
        made.insert((*s).to_owned(), key);
    }
    let rows: Vec<(String, Option<Vec<u8>>, bool)> = sqlx::query_as(
        "WITH input AS (SELECT * FROM UNNEST($1::text[], $2::bytea[]) AS i(stream_id, wrapped)), \
              made AS (INSERT INTO contact_keys (stream_id, wrapped_key) \
                       SELECT stream_id, wrapped FROM input ON CONFLICT (stream_id) DO NOTHING \
                       RETURNING stream_id) \
         SELECT stream_id, NULL::bytea, true FROM made \
         UNION ALL \
         SELECT k.stream_id, k.wrapped_key, false FROM contact_keys k JOIN input USING (stream_id)",
    )
    .bind(streams)
    .bind(&fresh)
    .fetch_all(&mut *conn)
    .await?;
    let mut out = HashMap::with_capacity(streams.len());
    for (stream, wrapped, created) in rows {
        let key = if created {
            match made.remove(&stream) {
                Some(k) => WriteKey::Key(k),
                None => continue,
            }
        } else {
            match wrapped {
                Some(w) => WriteKey::Key(DataKey::unwrap(&stream, &w)?),
                None => WriteKey::Erased,
            }
        };
        out.insert(stream, key);
    }
    let missing: Vec<&str> = streams
        .iter()
        .copied()
        .filter(|s| !out.contains_key(*s))
        .collect();
    if !missing.is_empty() {
        // Created by a concurrent writer after this statement's snapshot: read them now.
        for (stream, key) in stored(conn, &missing).await? {
            out.insert(
                stream,
                match key {
                    Some(k) => WriteKey::Key(k),
                    None => WriteKey::Erased,
                },
            );
        }
        if let Some(s) = streams.iter().find(|s| !out.contains_key(**s)) {
            return Err(StoreError::Crypto(format!("no key could be made for {s}")));
        }
    }
    Ok(out)
}

/// Inserts new keys (wrapped) for `streams`, which must have none: a stream that has one
/// fails the statement with a unique violation.
pub async fn insert(
    conn: &mut PgConnection,
    streams: &[&str],
    wrapped: &[&[u8]],
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO contact_keys (stream_id, wrapped_key) \
         SELECT * FROM UNNEST($1::text[], $2::bytea[])",
    )
    .bind(streams)
    .bind(wrapped)
    .execute(&mut *conn)
    .await
    .map(|_| ())
}

/// The keys of `streams` for reading; erased and unknown streams are absent.
pub async fn for_read(
    conn: &mut PgConnection,
    streams: &[&str],
) -> Result<HashMap<String, DataKey>, StoreError> {
    Ok(stored(conn, streams)
        .await?
        .into_iter()
        .filter_map(|(s, k)| k.map(|k| (s, k)))
        .collect())
}

async fn stored(
    conn: &mut PgConnection,
    streams: &[&str],
) -> Result<Vec<(String, Option<DataKey>)>, StoreError> {
    let rows: Vec<(String, Option<Vec<u8>>)> = sqlx::query_as(
        "SELECT stream_id, wrapped_key FROM contact_keys WHERE stream_id = ANY($1::text[])",
    )
    .bind(streams)
    .fetch_all(&mut *conn)
    .await?;
    rows.into_iter()
        .map(|(s, w)| {
            let key = w.map(|w| DataKey::unwrap(&s, &w)).transpose()?;
            Ok((s, key))
        })
        .collect()
}

/// Deletes the keys of `streams` for good, leaving tombstones (so none is made again).
/// Run it in the transaction that appends the erasure.
pub async fn shred(conn: &mut PgConnection, streams: &[String]) -> Result<u64, StoreError> {
    let n = sqlx::query(
        "INSERT INTO contact_keys (stream_id, wrapped_key, erased_at) \
         SELECT s, NULL, now() FROM UNNEST($1::text[]) AS s \
         ON CONFLICT (stream_id) DO UPDATE SET wrapped_key = NULL, \
             erased_at = coalesce(contact_keys.erased_at, now())",
    )
    .bind(streams)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    Ok(n)
}

/// What re-wrapping contact keys did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Rewrap {
    /// Keys re-wrapped under the current master key.
    pub rewrapped: u64,
    /// Keys already wrapped by it.
    pub already_current: u64,
    /// Keys wrapped by neither the current nor the previous master key: left as they are.
    pub unreadable: u64,
}

/// Re-wraps every contact key wrapped by `keys`' previous master key under its current one,
/// a page of streams at a time; each update is conditional on the row being unchanged, so
/// writers keep running. Idempotent.
pub async fn rewrap(pool: &PgPool, keys: &Keyring) -> Result<Rewrap, StoreError> {
    const PAGE: i64 = 1000;
    let mut report = Rewrap::default();
    let mut after = String::new();
    loop {
        let rows: Vec<(String, Vec<u8>)> = sqlx::query_as(
            "SELECT stream_id, wrapped_key FROM contact_keys \
             WHERE stream_id > $1 AND wrapped_key IS NOT NULL ORDER BY stream_id LIMIT $2",
        )
        .bind(&after)
        .bind(PAGE)
        .fetch_all(pool)
        .await?;
        let Some((last, _)) = rows.last() else { break };
        after = last.clone();
        for (stream, wrapped) in rows {
            let aad = stream.as_bytes();
            if open_bytes(keys.current_key(), &wrapped, aad).is_ok() {
                report.already_current += 1;
                continue;
            }
            let raw = match keys.previous_key().map(|k| open_bytes(k, &wrapped, aad)) {
                Some(Ok(raw)) => raw,
                _ => {
                    tracing::error!(%stream, "contact key wrapped by an unknown master key");
                    report.unreadable += 1;
                    continue;
                }
            };
            let again = seal_bytes(keys.current_key(), &raw, aad)?;
            let n = sqlx::query(
                "UPDATE contact_keys SET wrapped_key = $3 WHERE stream_id = $1 AND wrapped_key = $2",
            )
            .bind(&stream)
            .bind(&wrapped)
            .bind(&again)
            .execute(pool)
            .await?
            .rows_affected();
            report.rewrapped += n;
        }
    }
    Ok(report)
}
