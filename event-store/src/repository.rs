//! The cqrs-es event repository: postgres-es for reading a stream, our batched [`append`]
//! for writing it.
//!
//! Writing is one `INSERT … RETURNING` (atomic as a single statement, so no BEGIN/COMMIT
//! round trips), which also yields the cursor the command answers with; the executor reads it
//! with [`capture_cursor`]. After each append the [`Notifier`] wakes tails of the log.

use std::cell::Cell;

use cqrs_es::persist::{
    PersistedEventRepository, PersistenceError, ReplayStream, SerializedEvent, SerializedSnapshot,
};
use cqrs_es::Aggregate;
use postgres_es::PostgresEventRepository;
use serde_json::Value;
use sqlx::PgPool;

use crate::append::{self, AppendError, NewEvent};
use crate::wakeup::Notifier;
use crate::{Cursor, StoreError};

tokio::task_local! {
    static LAST_CURSOR: Cell<Option<Cursor>>;
}

/// Runs `f` (a command execution) and returns its output with the cursor of the events it
/// appended, if it appended any. The keys its load reads are reused by its append
/// ([`crate::shred::with_key_memo`]).
pub async fn capture_cursor<F: std::future::Future>(f: F) -> (F::Output, Option<Cursor>) {
    LAST_CURSOR
        .scope(
            Cell::new(None),
            crate::shred::with_key_memo(async move {
                let out = f.await;
                (out, LAST_CURSOR.with(Cell::get))
            }),
        )
        .await
}

pub struct LogRepository {
    reads: PostgresEventRepository,
    pool: PgPool,
    notifier: Notifier,
}

impl LogRepository {
    pub fn new(pool: PgPool, notifier: Notifier) -> Self {
        Self {
            reads: PostgresEventRepository::new(pool.clone()),
            pool,
            notifier,
        }
    }
}

impl LogRepository {
    /// A stream's events with their personal fields in clear (or erased): one key query,
    /// only for a stream that holds sealed values.
    async fn reveal<A: Aggregate>(
        &self,
        aggregate_id: &str,
        mut events: Vec<SerializedEvent>,
    ) -> Result<Vec<SerializedEvent>, PersistenceError> {
        if !crate::shred::policy::covers(A::TYPE)
            || !events
                .iter()
                .any(|e| crate::shred::is_sealed(&e.event_type, &e.payload))
        {
            return Ok(events);
        }
        let failed = |e: StoreError| PersistenceError::UnknownError(Box::new(e));
        let mut conn = self.pool.acquire().await.map_err(|e| failed(e.into()))?;
        crate::shred::reveal_payloads(
            &mut conn,
            A::TYPE,
            aggregate_id,
            events
                .iter_mut()
                .map(|e| (e.event_type.as_str(), &mut e.payload)),
        )
        .await
        .map_err(failed)?;
        Ok(events)
    }
}

fn refused(what: &str) -> PersistenceError {
    PersistenceError::UnknownError(
        format!("{what}: replays read the log through event_store::reader (postgres-es stream_events panics on errors)").into(),
    )
}

impl PersistedEventRepository for LogRepository {
    async fn get_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<Vec<SerializedEvent>, PersistenceError> {
        let events = self.reads.get_events::<A>(aggregate_id).await?;
        self.reveal::<A>(aggregate_id, events).await
    }

    async fn get_last_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
        last_sequence: usize,
    ) -> Result<Vec<SerializedEvent>, PersistenceError> {
        let events = self
            .reads
            .get_last_events::<A>(aggregate_id, last_sequence)
            .await?;
        self.reveal::<A>(aggregate_id, events).await
    }

    /// Snapshots are not used (event-store mode).
    async fn get_snapshot<A: Aggregate>(
        &self,
        _aggregate_id: &str,
    ) -> Result<Option<SerializedSnapshot>, PersistenceError> {
        Ok(None)
    }

    async fn persist<A: Aggregate>(
        &self,
        events: &[SerializedEvent],
        _snapshot_update: Option<(String, Value, usize)>,
    ) -> Result<(), PersistenceError> {
        let payloads: Vec<String> = events.iter().map(|e| e.payload.to_string()).collect();
        let rows: Vec<NewEvent<'_>> = events
            .iter()
            .zip(&payloads)
            .map(|(e, payload)| NewEvent {
                aggregate_type: &e.aggregate_type,
                aggregate_id: &e.aggregate_id,
                sequence: e.sequence as i64,
                event_type: &e.event_type,
                event_version: &e.event_version,
                payload,
                metadata: &e.metadata,
            })
            .collect();
        let mut conn = self
            .pool
            .acquire()
            .await
            .map_err(|e| PersistenceError::ConnectionError(Box::new(e)))?;
        match append::append(&mut conn, &rows).await {
            Ok(cursor) => {
                if cursor.is_some() {
                    self.notifier.poke();
                    let _ = LAST_CURSOR.try_with(|c| c.set(cursor));
                }
                Ok(())
            }
            Err(AppendError::Conflict) => Err(PersistenceError::OptimisticLockError),
            Err(AppendError::Store(e)) => Err(PersistenceError::ConnectionError(Box::new(e))),
        }
    }

    async fn stream_events<A: Aggregate>(
        &self,
        _aggregate_id: &str,
    ) -> Result<ReplayStream, PersistenceError> {
        Err(refused("stream_events"))
    }

    async fn stream_all_events<A: Aggregate>(&self) -> Result<ReplayStream, PersistenceError> {
        Err(refused("stream_all_events"))
    }
}
