//! Suppressing many addresses at once (the API's add, CSV imports, and the delivery worker
//! for hard bounces, complaints and unsubscribes), and the write side's answer to "which of
//! these addresses are suppressed right now".
//!
//! A batch is one transaction: the entries' streams are loaded in one query
//! (`reader::load_streams`), folded with `SuppressionEntry::apply`, every entry is decided
//! by `SuppressionEntry::handle` (an address suppressed already for an equal or stronger
//! reason records nothing), and the events are appended in one statement
//! (`event_store::append`, which seals the addresses). A concurrent writer on one of the
//! streams makes the batch load and decide again.

use std::collections::HashMap;

use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use domain::delivery::suppression::{
    SuppressionCommand, SuppressionEntry, SuppressionError, SuppressionEvent, SuppressionReason,
};
use domain::delivery::Channel;
use event_store::append::{self, AppendError, NewEvent};
use event_store::recorded::{entity_of, stream_id};
use event_store::wakeup::Notifier;
use event_store::{reader, Cursor, EventMetadata, StoreError};
use serde::Deserialize;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::address::{entry_id, normalize};
use crate::executor::{backoff, CONFLICT_RETRIES};

/// One address to suppress: channel, normalized address (see [`normalize`]), reason, and
/// where it came from (a job id, a provider report, a user, an import).
pub type NewSuppression = (Channel, String, SuppressionReason, Option<String>);

/// What became of one entry of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Recorded: the address was not suppressed, or only for a weaker reason.
    Added,
    /// Suppressed already for as strong a reason (or earlier in the same batch): nothing
    /// recorded.
    AlreadySuppressed,
    /// Not an address of its channel in normalized form, or refused by the entry.
    Refused(String),
}

/// What a batch did: per entry (in the order given) its entry id and outcome, and the
/// cursor after the batch's events (`None` when it recorded nothing).
#[derive(Debug, Clone, Default)]
pub struct SuppressMany {
    pub entries: Vec<(Uuid, Outcome)>,
    pub cursor: Option<Cursor>,
}

impl SuppressMany {
    pub fn added(&self) -> usize {
        self.count(|o| *o == Outcome::Added)
    }

    pub fn already_suppressed(&self) -> usize {
        self.count(|o| *o == Outcome::AlreadySuppressed)
    }

    fn count(&self, f: impl Fn(&Outcome) -> bool) -> usize {
        self.entries.iter().filter(|(_, o)| f(o)).count()
    }
}

/// Why a batch was not applied (nothing of it was written).
#[derive(Debug, thiserror::Error)]
pub enum SuppressError {
    /// Other writers kept appending to the batch's streams, even after retries.
    #[error("the suppression entries were changed concurrently; retries exhausted")]
    Conflict,
    /// The database or the log failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for SuppressError {
    fn from(e: sqlx::Error) -> Self {
        Self::Store(e.into())
    }
}

/// Suppresses `entries` in `tenant`'s list in one transaction of its own (retried when
/// another writer got to one of the streams first), with `metadata` on every event; wakes
/// the log's tails after the commit.
#[tracing::instrument(skip_all, fields(%tenant, entries = entries.len()), err)]
pub async fn suppress_many(
    pool: &PgPool,
    notifier: &Notifier,
    tenant: Uuid,
    metadata: &EventMetadata,
    entries: &[NewSuppression],
) -> Result<SuppressMany, SuppressError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let mut tx = pool.begin().await?;
        match suppress_many_in(&mut tx, tenant, metadata, entries).await {
            Ok(done) => {
                tx.commit().await?;
                if done.cursor.is_some() {
                    notifier.poke();
                }
                return Ok(done);
            }
            Err(AppendError::Conflict) if attempt <= CONFLICT_RETRIES => {
                let _ = tx.rollback().await;
                tokio::time::sleep(backoff(attempt)).await;
            }
            Err(AppendError::Conflict) => return Err(SuppressError::Conflict),
            Err(AppendError::Store(e)) => return Err(e.into()),
        }
    }
}

/// [`suppress_many`] inside the caller's transaction `conn` (which may write more before it
/// commits, and must poke a `Notifier` after). `Err(Conflict)`: roll back, call again.
pub async fn suppress_many_in(
    conn: &mut PgConnection,
    tenant: Uuid,
    metadata: &EventMetadata,
    entries: &[NewSuppression],
) -> Result<SuppressMany, AppendError> {
    let technical = |e: String| AppendError::Store(StoreError::Malformed(e));
    let ids: Vec<Uuid> = entries
        .iter()
        .map(|(channel, address, _, _)| entry_id(tenant, *channel, address))
        .collect();
    let mut states = load(conn, tenant, &ids).await?;

    let mut out = SuppressMany::default();
    // (stream, sequence, event) in decision order.
    let mut events: Vec<(String, i64, SuppressionEvent)> = Vec::new();
    for ((channel, address, reason, source), id) in entries.iter().zip(&ids) {
        if normalize(*channel, address).as_deref() != Ok(address.as_str()) {
            let why = "address: not in normalized form (commands::suppressions::normalize)";
            out.entries.push((*id, Outcome::Refused(why.into())));
            continue;
        }
        let (state, version) = states.entry(*id).or_default();
        let command = SuppressionCommand::Add {
            channel: *channel,
            address: address.clone(),
            reason: *reason,
            source: source.clone(),
        };
        let outcome = match run(state, command).await {
            Ok(new) if new.is_empty() => Outcome::AlreadySuppressed,
            Ok(new) => {
                for e in new {
                    *version += 1;
                    events.push((stream_id(tenant, *id), *version, e));
                }
                Outcome::Added
            }
            Err(e) => Outcome::Refused(e.to_string()),
        };
        out.entries.push((*id, outcome));
    }

    let metadata = serde_json::to_value(metadata.to_map()).map_err(|e| technical(e.to_string()))?;
    let mut texts = Vec::with_capacity(events.len());
    for (_, _, e) in &events {
        texts.push((
            e.event_type(),
            e.event_version(),
            serde_json::to_string(e).map_err(|x| technical(x.to_string()))?,
        ));
    }
    let rows: Vec<NewEvent<'_>> = events
        .iter()
        .zip(&texts)
        .map(
            |((stream, sequence, _), (event_type, version, payload))| NewEvent {
                aggregate_type: SuppressionEntry::TYPE,
                aggregate_id: stream,
                sequence: *sequence,
                event_type,
                event_version: version,
                payload,
                metadata: &metadata,
            },
        )
        .collect();
    out.cursor = append::append(conn, &rows).await?;
    Ok(out)
}

/// The entries `ids` of `tenant` folded with the aggregate's `apply`, with their versions
/// (the sequence of their last event); entries without events are absent.
async fn load(
    conn: &mut PgConnection,
    tenant: Uuid,
    ids: &[Uuid],
) -> Result<HashMap<Uuid, (SuppressionEntry, i64)>, StoreError> {
    let mut streams: Vec<String> = ids.iter().map(|id| stream_id(tenant, *id)).collect();
    streams.sort_unstable();
    streams.dedup();
    let loaded = reader::load_streams(&mut *conn, SuppressionEntry::TYPE, &streams).await?;
    let mut payloads: Vec<(String, serde_json::Value)> = loaded
        .iter()
        .map(|e| {
            serde_json::from_str(e.payload.get())
                .map(|v| (e.aggregate_id.clone(), v))
                .map_err(|x| StoreError::Malformed(x.to_string()))
        })
        .collect::<Result<_, _>>()?;
    // The addresses are sealed: open them with the entries' keys (one statement).
    event_store::shred::reveal_values(conn, SuppressionEntry::TYPE, &mut payloads).await?;
    let mut out: HashMap<Uuid, (SuppressionEntry, i64)> = HashMap::new();
    for (e, (_, payload)) in loaded.iter().zip(payloads) {
        let Some(id) = entity_of(&e.aggregate_id) else {
            continue;
        };
        let event: SuppressionEvent =
            serde_json::from_value(payload).map_err(|x| StoreError::Malformed(x.to_string()))?;
        let (state, version) = out.entry(id).or_default();
        state.apply(event);
        *version = e.sequence;
    }
    Ok(out)
}

/// The events `command` causes on `state` (applied to it).
async fn run(
    state: &mut SuppressionEntry,
    command: SuppressionCommand,
) -> Result<Vec<SuppressionEvent>, SuppressionError> {
    let sink = EventSink::default();
    state.handle(command, &(), &sink).await?;
    Ok(sink.collect().await)
}

/// The public fields of an entry's events: all "is it suppressed, and why" needs. The
/// address (sealed) is neither decrypted nor read — the caller already has it.
#[derive(Deserialize)]
enum Public {
    AddressSuppressed { reason: SuppressionReason },
    AddressUnsuppressed {},
}

/// Which of `addresses` (normalized) are suppressed on `channel` in `tenant`'s list right
/// now, and why: read from the log (the entries' streams by derived id, one query), so an
/// address suppressed a moment ago counts even before the read model has it. The delivery
/// worker's check; lists and searches use `projections::suppressions::suppressed`.
#[tracing::instrument(skip_all, fields(%tenant, channel = channel.as_str(), n = addresses.len()), err)]
pub async fn suppressed_now(
    pool: &PgPool,
    tenant: Uuid,
    channel: Channel,
    addresses: &[String],
) -> Result<HashMap<String, SuppressionReason>, StoreError> {
    let by_stream: HashMap<String, &String> = addresses
        .iter()
        .map(|a| (stream_id(tenant, entry_id(tenant, channel, a)), a))
        .collect();
    let streams: Vec<String> = by_stream.keys().cloned().collect();
    let loaded = reader::load_streams(pool, SuppressionEntry::TYPE, &streams).await?;
    let mut state: HashMap<&str, Option<SuppressionReason>> = HashMap::new();
    for e in &loaded {
        let event: Public = serde_json::from_str(e.payload.get())
            .map_err(|x| StoreError::Malformed(x.to_string()))?;
        let reason = match event {
            Public::AddressSuppressed { reason } => Some(reason),
            Public::AddressUnsuppressed {} => None,
        };
        state.insert(e.aggregate_id.as_str(), reason);
    }
    Ok(state
        .into_iter()
        .filter_map(|(stream, reason)| Some(((*by_stream.get(stream)?).clone(), reason?)))
        .collect())
}
