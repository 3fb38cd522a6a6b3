//! Running commands: tenant-scoped stream ids, metadata, conflict retries, the cursor.

use cqrs_es::persist::PersistedEventStore;
use cqrs_es::{Aggregate, AggregateError, DomainEvent as _, EventStore as _};
use event_store::append::{self, AppendError, NewEvent};
use event_store::repository::capture_cursor;
use event_store::store::{self, Framework};
use event_store::wakeup::Notifier;
use event_store::{reader, Cursor, EventMetadata, StoreError};
use serde::Serialize;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::CommandError;

/// How often a command is retried when another writer appended to its stream first.
pub(crate) const CONFLICT_RETRIES: u32 = 10;

/// How many redirects a command follows (a merged contact to its survivor, and on along a
/// chain) before giving up; chains are short, this only stops a cycle no rule allows.
pub(crate) const MAX_REDIRECTS: u32 = 16;

/// A random pause that grows with the attempt (1–2 ms, 2–4 ms, … up to 64–128 ms), so
/// writers racing for one stream spread out instead of colliding again.
pub(crate) fn backoff(attempt: u32) -> std::time::Duration {
    use rand::Rng;
    let base = 1u64 << attempt.min(6);
    std::time::Duration::from_micros(rand::thread_rng().gen_range(base * 1000..base * 2000))
}

/// What a command answers: the aggregate and the cursor after its events. Pass the cursor
/// to a query as `consistent_after` to read your own write.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Accepted {
    pub id: Uuid,
    #[schema(value_type = String, example = "812-45")]
    pub cursor: Cursor,
}

/// An event decided outside the framework (over several aggregates at once), to append at
/// the sequence after `version`, the stream's version it was decided on.
#[derive(Debug, Clone)]
pub struct Decided<E> {
    pub id: Uuid,
    pub version: usize,
    pub event: E,
}

/// Executes the commands of aggregate `A`.
pub struct Executor<A: Aggregate> {
    framework: Framework<A>,
    loads: store::EventStore<A>,
    pool: PgPool,
    notifier: Notifier,
    /// Where a refusal says the entity now lives (a merged contact's survivor): the command
    /// is run there instead.
    redirect: fn(&A::Error) -> Option<Uuid>,
}

impl<A> Executor<A>
where
    A: Aggregate,
    A::Command: Clone,
{
    pub fn new(pool: PgPool, notifier: Notifier, services: A::Services) -> Self {
        let repo = event_store::repository::LogRepository::new(pool.clone(), notifier.clone());
        Self {
            framework: store::framework(pool.clone(), notifier.clone(), services),
            loads: PersistedEventStore::new_event_store(repo),
            pool,
            notifier,
            redirect: |_| None,
        }
    }

    /// Follows refusals that name another entity: `execute` reruns the command there (and on
    /// along a chain) and answers with that entity's id.
    pub fn with_redirect(mut self, redirect: fn(&A::Error) -> Option<Uuid>) -> Self {
        self.redirect = redirect;
        self
    }

    /// The aggregate `id` of `tenant` and its version (the sequence of its last event, 0
    /// for none): for decisions over several aggregates, appended with [`Self::append_decided`].
    pub async fn load_versioned(
        &self,
        tenant: Uuid,
        id: Uuid,
    ) -> Result<(A, usize), CommandError<A::Error>> {
        let stream = event_store::recorded::stream_id(tenant, id);
        let context = self
            .loads
            .load_aggregate(&stream)
            .await
            .map_err(|e| CommandError::Technical(e.to_string()))?;
        let version = context.current_sequence;
        Ok((context.aggregate, version))
    }

    /// Appends events decided over several streams of `tenant` in `conn` (the caller's
    /// transaction, which may write more before it commits), each at the sequence after the
    /// version it was decided on. `Err(Conflict)` if any stream moved meanwhile: load again,
    /// decide again. Call [`Self::poke`] after the commit.
    pub async fn append_decided(
        &self,
        conn: &mut PgConnection,
        tenant: Uuid,
        events: &[Decided<A::Event>],
        metadata: &EventMetadata,
    ) -> Result<Option<Cursor>, AppendError> {
        let technical =
            |e: serde_json::Error| AppendError::Store(StoreError::Malformed(e.to_string()));
        let metadata = serde_json::to_value(metadata.to_map()).map_err(technical)?;
        let mut rows = Vec::with_capacity(events.len());
        for d in events {
            rows.push((
                event_store::recorded::stream_id(tenant, d.id),
                d.version as i64 + 1,
                d.event.event_type(),
                d.event.event_version(),
                serde_json::to_string(&d.event).map_err(technical)?,
            ));
        }
        // Always the same order of streams, so two transactions appending to the same
        // streams wait for each other (and one conflicts) instead of deadlocking.
        rows.sort_by(|x, y| (&x.0, x.1).cmp(&(&y.0, y.1)));
        let new: Vec<NewEvent<'_>> = rows
            .iter()
            .map(
                |(stream, sequence, event_type, version, payload)| NewEvent {
                    aggregate_type: A::TYPE,
                    aggregate_id: stream,
                    sequence: *sequence,
                    event_type,
                    event_version: version,
                    payload,
                    metadata: &metadata,
                },
            )
            .collect();
        append::append(conn, &new).await
    }

    /// Wakes the log's tails after a transaction that appended through
    /// [`Self::append_decided`] committed.
    pub fn poke(&self) {
        self.notifier.poke();
    }

    /// The aggregate `id` of `tenant` as of its latest event (the default state if it has
    /// none): for rules that need a slow check before the command, like a password.
    pub async fn load(&self, tenant: Uuid, id: Uuid) -> Result<A, CommandError<A::Error>> {
        let stream = event_store::recorded::stream_id(tenant, id);
        self.loads
            .load_aggregate(&stream)
            .await
            .map(|c| c.aggregate)
            .map_err(|e| CommandError::Technical(e.to_string()))
    }

    /// Runs `command` on entity `id` of `tenant`. The stream id is built here from both, so a
    /// command can never reach another tenant's stream.
    #[tracing::instrument(level = "debug", skip_all, fields(aggregate = A::TYPE, %tenant, %id), err(level = "debug"))]
    pub async fn execute(
        &self,
        tenant: Uuid,
        id: Uuid,
        command: A::Command,
        metadata: &EventMetadata,
    ) -> Result<Accepted, CommandError<A::Error>> {
        let mut id = id;
        let mut stream = event_store::recorded::stream_id(tenant, id);
        let mut attempt = 0;
        let mut redirects = 0;
        let appended = loop {
            attempt += 1;
            let (result, appended) = capture_cursor(self.framework.execute_with_metadata(
                &stream,
                command.clone(),
                metadata.to_map(),
            ))
            .await;
            match result {
                Ok(()) => break appended,
                Err(AggregateError::AggregateConflict) if attempt <= CONFLICT_RETRIES => {
                    tokio::time::sleep(backoff(attempt)).await;
                }
                Err(AggregateError::AggregateConflict) => return Err(CommandError::Conflict),
                Err(AggregateError::UserError(e)) => match (self.redirect)(&e) {
                    Some(next) if redirects < MAX_REDIRECTS && next != id => {
                        tracing::debug!(from = %id, to = %next, "command redirected");
                        redirects += 1;
                        attempt = 0;
                        id = next;
                        stream = event_store::recorded::stream_id(tenant, id);
                    }
                    _ => return Err(CommandError::Rejected(e)),
                },
                Err(e) => return Err(CommandError::Technical(e.to_string())),
            }
        };
        let cursor = match appended {
            Some(c) => c,
            // Nothing new (the command changed nothing): the stream's last event's cursor.
            None => reader::stream_cursor(&self.pool, A::TYPE, &stream)
                .await
                .map_err(|e| CommandError::Technical(e.to_string()))?
                .unwrap_or(Cursor::ZERO),
        };
        Ok(Accepted { id, cursor })
    }
}
