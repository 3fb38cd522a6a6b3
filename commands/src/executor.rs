//! Running commands: tenant-scoped stream ids, metadata, conflict retries, the cursor.
//!
//! A command runs on one connection: its stream is loaded in one statement (with the
//! stream's key, for contacts), the aggregate decides (cqrs-es `handle`, whose sink applies
//! each event as it is written), and the events are appended in one more statement, which
//! also yields the cursor the command answers with. A command that creates an entity under
//! a new id ([`Executor::create`]) skips the load, and its append also stores the new
//! stream's key and claims its unique values: one statement in all.

use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent as _};
use event_store::append::{self, AppendError, Beside, Claim, NewEvent, Taken};
use event_store::shred::{self, FreshKey};
use event_store::wakeup::Notifier;
use event_store::{reader, stream, Cursor, EventMetadata, StoreError};
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
    services: A::Services,
    pool: PgPool,
    notifier: Notifier,
    /// Where a refusal says the entity now lives (a merged contact's survivor): the command
    /// is run there instead.
    redirect: fn(&A::Error) -> Option<Uuid>,
}

/// Why [`Executor::create`] did not create.
#[derive(Debug, thiserror::Error)]
pub enum CreateError<E: std::error::Error> {
    /// The stream has events already (or a key: it was erased): run the command with
    /// [`Executor::execute`], which decides on what is there.
    #[error("the stream exists")]
    Exists,
    /// A value claimed with the events is held by another owner; nothing was written.
    #[error("a claimed value is taken")]
    Taken,
    #[error(transparent)]
    Command(#[from] CommandError<E>),
}

/// One event to append, serialized.
struct Row {
    stream: String,
    sequence: i64,
    event_type: String,
    event_version: String,
    payload: String,
}

/// What one attempt at a command came to.
enum Attempt<E> {
    Appended(Option<Cursor>),
    Conflict,
    Rejected(E),
}

fn technical<E: std::error::Error>(e: impl Into<crate::error::Technical>) -> CommandError<E> {
    CommandError::Technical(e.into())
}

impl<A> Executor<A>
where
    A: Aggregate,
    A::Command: Clone,
{
    pub fn new(pool: PgPool, notifier: Notifier, services: A::Services) -> Self {
        Self {
            services,
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

    /// Stream `stream` folded into the aggregate, and its version, on `conn`.
    async fn load_on(
        conn: &mut PgConnection,
        stream: &str,
    ) -> Result<(A, usize), CommandError<A::Error>> {
        let loaded = stream::load(conn, A::TYPE, stream)
            .await
            .map_err(technical)?;
        let mut aggregate = A::default();
        for (_, payload) in loaded.events {
            let event: A::Event = serde_json::from_value(payload).map_err(technical)?;
            aggregate.apply(event);
        }
        Ok((aggregate, loaded.version as usize))
    }

    /// The aggregate `id` of `tenant` and its version (the sequence of its last event, 0
    /// for none): for decisions over several aggregates, appended with [`Self::append_decided`].
    pub async fn load_versioned(
        &self,
        tenant: Uuid,
        id: Uuid,
    ) -> Result<(A, usize), CommandError<A::Error>> {
        let stream = event_store::recorded::stream_id(tenant, id);
        let mut conn = self.pool.acquire().await.map_err(technical)?;
        Self::load_on(&mut conn, &stream).await
    }

    /// The row of `event` decided at `sequence - 1` of `stream`.
    fn row(stream: String, sequence: i64, event: &A::Event) -> Result<Row, AppendError> {
        let payload = serde_json::to_string(event)
            .map_err(|e| AppendError::Store(StoreError::Malformed(e.to_string())))?;
        Ok(Row {
            stream,
            sequence,
            event_type: event.event_type(),
            event_version: event.event_version(),
            payload,
        })
    }

    /// `rows` as the log's batched append takes them, all with `metadata`.
    fn new_events<'r>(rows: &'r [Row], metadata: &'r serde_json::Value) -> Vec<NewEvent<'r>> {
        rows.iter()
            .map(|r| NewEvent {
                aggregate_type: A::TYPE,
                aggregate_id: &r.stream,
                sequence: r.sequence,
                event_type: &r.event_type,
                event_version: &r.event_version,
                payload: &r.payload,
                metadata,
            })
            .collect()
    }

    /// Appends the events one command decided on `stream` at `version`. For a new stream,
    /// `new_stream` holds its key (`None` for aggregates without personal data), which seals the
    /// events and is stored with them, and the values to claim with them.
    async fn append_on(
        &self,
        conn: &mut PgConnection,
        stream: &str,
        version: usize,
        events: &[A::Event],
        metadata: &serde_json::Value,
        new_stream: Option<(Option<&FreshKey>, &[Claim<'_>])>,
    ) -> Result<Result<Option<Cursor>, Taken>, AppendError> {
        let (fresh, claims) = new_stream.unwrap_or((None, &[]));
        let beside = Beside {
            keys: fresh
                .map(|k| vec![(stream, k.wrapped())])
                .unwrap_or_default(),
            claims: claims.to_vec(),
        };
        let mut rows = events
            .iter()
            .enumerate()
            .map(|(i, e)| Self::row(stream.to_owned(), (version + 1 + i) as i64, e))
            .collect::<Result<Vec<Row>, AppendError>>()?;
        if let Some(key) = fresh {
            for r in &mut rows {
                r.payload = key.seal(A::TYPE, stream, &r.event_type, &r.payload)?;
            }
        }
        let new = Self::new_events(&rows, metadata);
        let appended = append::append_with(conn, &new, &beside).await?;
        if matches!(appended, Ok(Some(_))) {
            self.notifier.poke_type(A::TYPE);
        }
        Ok(appended)
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
        let mut rows = events
            .iter()
            .map(|d| {
                let stream = event_store::recorded::stream_id(tenant, d.id);
                Self::row(stream, d.version as i64 + 1, &d.event)
            })
            .collect::<Result<Vec<Row>, AppendError>>()?;
        // Always the same order of streams, so two transactions appending to the same
        // streams wait for each other (and one conflicts) instead of deadlocking.
        rows.sort_by(|x, y| (&x.stream, x.sequence).cmp(&(&y.stream, y.sequence)));
        let new = Self::new_events(&rows, &metadata);
        append::append(conn, &new).await
    }

    /// Wakes the log's tails after a transaction that appended through
    /// [`Self::append_decided`] committed.
    pub fn poke(&self) {
        self.notifier.poke_type(A::TYPE);
    }

    /// The aggregate `id` of `tenant` as of its latest event (the default state if it has
    /// none): for rules that need a slow check before the command, like a password.
    pub async fn load(&self, tenant: Uuid, id: Uuid) -> Result<A, CommandError<A::Error>> {
        self.load_versioned(tenant, id).await.map(|(a, _)| a)
    }

    /// One attempt at `command` on `stream`: load, decide, append, on `conn`.
    async fn attempt(
        &self,
        conn: &mut PgConnection,
        stream: &str,
        command: A::Command,
        metadata: &serde_json::Value,
    ) -> Result<Attempt<A::Error>, CommandError<A::Error>> {
        let (mut aggregate, version) = Self::load_on(conn, stream).await?;
        let sink = EventSink::default();
        if let Err(e) = aggregate.handle(command, &self.services, &sink).await {
            return Ok(Attempt::Rejected(e));
        }
        let events = sink.collect().await;
        match self
            .append_on(conn, stream, version, &events, metadata, None)
            .await
        {
            // No claims: nothing can be taken.
            Ok(appended) => Ok(Attempt::Appended(appended.unwrap_or(None))),
            Err(AppendError::Conflict) => Ok(Attempt::Conflict),
            Err(e) => Err(technical(e)),
        }
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
        let metadata = serde_json::to_value(metadata.to_map()).map_err(technical)?;
        let mut conn = self.pool.acquire().await.map_err(technical)?;
        let mut id = id;
        let mut stream = event_store::recorded::stream_id(tenant, id);
        let mut attempt = 0;
        let mut redirects = 0;
        let appended = loop {
            attempt += 1;
            let outcome =
                shred::with_key_memo(self.attempt(&mut conn, &stream, command.clone(), &metadata))
                    .await?;
            match outcome {
                Attempt::Appended(cursor) => break cursor,
                Attempt::Conflict if attempt <= CONFLICT_RETRIES => {
                    tokio::time::sleep(backoff(attempt)).await;
                }
                Attempt::Conflict => return Err(CommandError::Conflict),
                Attempt::Rejected(e) => match (self.redirect)(&e) {
                    Some(next) if redirects < MAX_REDIRECTS && next != id => {
                        tracing::debug!(from = %id, to = %next, "command redirected");
                        redirects += 1;
                        attempt = 0;
                        id = next;
                        stream = event_store::recorded::stream_id(tenant, id);
                    }
                    _ => return Err(CommandError::Rejected(e)),
                },
            }
        };
        let cursor = match appended {
            Some(c) => c,
            // Nothing new (the command changed nothing): the stream's last event's cursor.
            None => reader::stream_cursor(&mut *conn, A::TYPE, &stream)
                .await
                .map_err(technical)?
                .unwrap_or(Cursor::ZERO),
        };
        Ok(Accepted { id, cursor })
    }

    /// Runs `command` on entity `id` of `tenant`, a new id whose stream is expected to be
    /// empty: no load, and one statement that appends the events, stores a new key for the
    /// stream (when `A` holds personal data) and claims `claims` for it. `Exists` when the
    /// stream has events (or a key) after all, `Taken` when a claim is held by another
    /// owner: nothing was written in either case.
    #[tracing::instrument(level = "debug", skip_all, fields(aggregate = A::TYPE, %tenant, %id), err(level = "debug"))]
    pub async fn create(
        &self,
        tenant: Uuid,
        id: Uuid,
        command: A::Command,
        metadata: &EventMetadata,
        claims: &[Claim<'_>],
    ) -> Result<Accepted, CreateError<A::Error>> {
        let metadata = serde_json::to_value(metadata.to_map()).map_err(technical)?;
        let stream = event_store::recorded::stream_id(tenant, id);
        let mut aggregate = A::default();
        let sink = EventSink::default();
        aggregate
            .handle(command, &self.services, &sink)
            .await
            .map_err(CommandError::Rejected)?;
        let events = sink.collect().await;
        let fresh = if shred::policy::covers(A::TYPE) {
            Some(FreshKey::generate(&stream).map_err(technical)?)
        } else {
            None
        };
        let mut conn = self.pool.acquire().await.map_err(technical)?;
        match self
            .append_on(
                &mut conn,
                &stream,
                0,
                &events,
                &metadata,
                Some((fresh.as_ref(), claims)),
            )
            .await
        {
            Ok(Ok(Some(cursor))) => Ok(Accepted { id, cursor }),
            Ok(Ok(None)) | Err(AppendError::Conflict) => Err(CreateError::Exists),
            Ok(Err(Taken)) => Err(CreateError::Taken),
            Err(e) => Err(technical(e).into()),
        }
    }
}
