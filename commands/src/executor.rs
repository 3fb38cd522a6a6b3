//! Running commands: tenant-scoped stream ids, metadata, conflict retries, the cursor.

use cqrs_es::persist::PersistedEventStore;
use cqrs_es::{Aggregate, AggregateError, EventStore as _};
use event_store::repository::capture_cursor;
use event_store::store::{self, Framework};
use event_store::wakeup::Notifier;
use event_store::{reader, Cursor, EventMetadata};
use serde::Serialize;
use sqlx::PgPool;
use uuid::Uuid;

use crate::CommandError;

/// How often a command is retried when another writer appended to its stream first.
const CONFLICT_RETRIES: u32 = 10;

/// A random pause that grows with the attempt (1–2 ms, 2–4 ms, … up to 64–128 ms), so
/// writers racing for one stream spread out instead of colliding again.
fn backoff(attempt: u32) -> std::time::Duration {
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

/// Executes the commands of aggregate `A`.
pub struct Executor<A: Aggregate> {
    framework: Framework<A>,
    loads: store::EventStore<A>,
    pool: PgPool,
}

impl<A> Executor<A>
where
    A: Aggregate,
    A::Command: Clone,
{
    pub fn new(pool: PgPool, notifier: Notifier, services: A::Services) -> Self {
        let repo = event_store::repository::LogRepository::new(pool.clone(), notifier.clone());
        Self {
            framework: store::framework(pool.clone(), notifier, services),
            loads: PersistedEventStore::new_event_store(repo),
            pool,
        }
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
        let stream = event_store::recorded::stream_id(tenant, id);
        let mut attempt = 0;
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
                Err(AggregateError::UserError(e)) => return Err(CommandError::Rejected(e)),
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
