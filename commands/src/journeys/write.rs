//! The one write path of journeys: a command's events appended together with what they mean
//! for the write-side tables the journey worker runs on (`journey_states`, `journey_versions`,
//! `journey_triggers`, held or archived executions in `journey_runs`), in one transaction
//! that first locks the journey's state row.

use chrono::{DateTime, Duration, Utc};
use domain::journey::execution::{Signal, ARCHIVED};
use domain::journey::{Journey, JourneyCommand, JourneyError, JourneyEvent, TriggerKind, Version};
use event_store::append::AppendError;
use event_store::{reader, Cursor, EventMetadata};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::error::CommandError;
use crate::executor::{Accepted, Decided, Executor, CONFLICT_RETRIES};

pub type Failure = CommandError<JourneyError>;

pub(crate) fn technical(e: impl Into<crate::error::Technical>) -> Failure {
    CommandError::Technical(e.into())
}

/// Journey commands with their write-side effects.
pub struct JourneyWriter {
    pool: PgPool,
    executor: Executor<Journey>,
    /// Journey executions (entries are appended through it).
    pub executions: std::sync::Arc<Executor<domain::journey::Execution>>,
}

impl JourneyWriter {
    pub fn new(pool: PgPool, notifier: event_store::wakeup::Notifier) -> Self {
        Self {
            executor: Executor::new(pool.clone(), notifier.clone(), ()),
            executions: std::sync::Arc::new(Executor::new(pool.clone(), notifier, ())),
            pool,
        }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    pub async fn load(&self, tenant: Uuid, id: Uuid) -> Result<Journey, Failure> {
        self.executor.load(tenant, id).await
    }

    /// Runs `command` on journey `id` of `tenant` with its effects; again on a conflict.
    pub async fn execute(
        &self,
        tenant: Uuid,
        id: Uuid,
        command: JourneyCommand,
        metadata: &EventMetadata,
        now: DateTime<Utc>,
    ) -> Result<Accepted, Failure> {
        let mut attempt = 0;
        loop {
            let mut tx = self.pool.begin().await.map_err(technical)?;
            sqlx::query(
                "SELECT 1 FROM journey_states WHERE tenant_id = $1 AND journey_id = $2 FOR UPDATE",
            )
            .bind(tenant)
            .bind(id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(technical)?;
            let (journey, version) = self.executor.load_versioned(tenant, id).await?;
            let events = journey
                .decide(command.clone())
                .map_err(CommandError::Rejected)?;
            if events.is_empty() {
                let stream = event_store::recorded::stream_id(tenant, id);
                let cursor = reader::stream_cursor(&mut *tx, "journey", &stream)
                    .await
                    .map_err(technical)?
                    .unwrap_or(Cursor::ZERO);
                return Ok(Accepted { id, cursor });
            }
            let decided: Vec<Decided<JourneyEvent>> = events
                .iter()
                .enumerate()
                .map(|(i, e)| Decided {
                    id,
                    version: version + i,
                    event: e.clone(),
                })
                .collect();
            match self
                .executor
                .append_decided(&mut tx, tenant, &decided, metadata)
                .await
            {
                Ok(cursor) => {
                    for e in &events {
                        effect(&mut tx, tenant, id, e, now)
                            .await
                            .map_err(technical)?;
                    }
                    tx.commit().await.map_err(technical)?;
                    self.executor.poke();
                    return Ok(Accepted {
                        id,
                        cursor: cursor.unwrap_or(Cursor::ZERO),
                    });
                }
                Err(AppendError::Conflict) if attempt < CONFLICT_RETRIES => {
                    attempt += 1;
                    drop(tx);
                    tokio::time::sleep(crate::executor::backoff(attempt)).await;
                }
                Err(AppendError::Conflict) => return Err(CommandError::Conflict),
                Err(AppendError::Store(e)) => return Err(technical(e)),
            }
        }
    }
}

/// What a journey event means for the write-side tables.
async fn effect(
    conn: &mut PgConnection,
    tenant: Uuid,
    id: Uuid,
    event: &JourneyEvent,
    now: DateTime<Utc>,
) -> sqlx::Result<()> {
    use JourneyEvent as E;
    match event {
        E::JourneyCreated { .. } | E::JourneyDraftChanged { .. } => {}
        E::JourneyPublished {
            version,
            definition,
            rules,
            at,
        } => {
            let body = Version {
                number: *version,
                definition: definition.clone(),
                rules: rules.clone(),
                published_at: *at,
            };
            sqlx::query(
                "INSERT INTO journey_versions (tenant_id, journey_id, version, body, published_at) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(tenant)
            .bind(id)
            .bind(*version as i32)
            .bind(sqlx::types::Json(&body))
            .bind(at)
            .execute(&mut *conn)
            .await?;
            sqlx::query(
                "INSERT INTO journey_states (tenant_id, journey_id, status, version) \
                 VALUES ($1, $2, 'live', $3) \
                 ON CONFLICT (tenant_id, journey_id) DO UPDATE SET version = excluded.version",
            )
            .bind(tenant)
            .bind(id)
            .bind(*version as i32)
            .execute(&mut *conn)
            .await?;
            sqlx::query("DELETE FROM journey_triggers WHERE tenant_id = $1 AND journey_id = $2")
                .bind(tenant)
                .bind(id)
                .execute(&mut *conn)
                .await?;
            for t in &definition.triggers {
                let (event_name, segment_id, next_run_at) = match &t.kind {
                    TriggerKind::Event { name, .. } => (Some(name.clone()), None, None),
                    TriggerKind::SegmentEntered { segment_id } => (None, Some(*segment_id), None),
                    TriggerKind::Schedule {
                        segment_id,
                        recurrence,
                    } => (
                        None,
                        Some(*segment_id),
                        recurrence.next_after(now - Duration::seconds(1)),
                    ),
                    TriggerKind::Api => (None, None, None),
                };
                sqlx::query(
                    "INSERT INTO journey_triggers \
                       (tenant_id, journey_id, trigger_id, kind, event_name, segment_id, next_run_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(tenant)
                .bind(id)
                .bind(&t.id)
                .bind(t.kind.as_str())
                .bind(event_name)
                .bind(segment_id)
                .bind(next_run_at)
                .execute(&mut *conn)
                .await?;
            }
        }
        E::JourneyPaused { .. } | E::JourneyResumed { .. } => {
            let paused = matches!(event, E::JourneyPaused { .. });
            sqlx::query(
                "UPDATE journey_states SET status = $3 WHERE tenant_id = $1 AND journey_id = $2",
            )
            .bind(tenant)
            .bind(id)
            .bind(if paused { "paused" } else { "live" })
            .execute(&mut *conn)
            .await?;
            sqlx::query(
                "UPDATE journey_runs SET held = $3 WHERE tenant_id = $1 AND journey_id = $2",
            )
            .bind(tenant)
            .bind(id)
            .bind(paused)
            .execute(&mut *conn)
            .await?;
        }
        E::JourneyArchived { .. } => {
            sqlx::query(
                "UPDATE journey_states SET status = 'archived' \
                 WHERE tenant_id = $1 AND journey_id = $2",
            )
            .bind(tenant)
            .bind(id)
            .execute(&mut *conn)
            .await?;
            sqlx::query("DELETE FROM journey_triggers WHERE tenant_id = $1 AND journey_id = $2")
                .bind(tenant)
                .bind(id)
                .execute(&mut *conn)
                .await?;
            // Executions in flight exit (at their next run, which is now).
            let signal = Signal {
                name: ARCHIVED.to_owned(),
                properties: serde_json::Value::Null,
                at: now,
            };
            sqlx::query(
                "INSERT INTO journey_inbox (tenant_id, execution_id, signal) \
                 SELECT tenant_id, execution_id, $3 FROM journey_runs \
                 WHERE tenant_id = $1 AND journey_id = $2",
            )
            .bind(tenant)
            .bind(id)
            .bind(sqlx::types::Json(&signal))
            .execute(&mut *conn)
            .await?;
            sqlx::query(
                "UPDATE journey_runs SET held = false, due_at = $3 \
                 WHERE tenant_id = $1 AND journey_id = $2",
            )
            .bind(tenant)
            .bind(id)
            .bind(now)
            .execute(&mut *conn)
            .await?;
        }
    }
    Ok(())
}
