//! The journey runner: claims due executions (`journey_runs`, the timer table) with
//! `FOR UPDATE SKIP LOCKED`, runs each through the engine (`domain::journey::advance`) with
//! the signals its inbox holds, and writes in the same transaction everything that follows:
//! the executions' events (one append for the batch), the delivery jobs their message steps
//! request (ids derived from the execution and the step run), entries into linked journeys,
//! balancer places, and the rows' new state, due time and signals listened for. A worker
//! that dies mid-batch leaves nothing half-done: the transaction rolls back and the rows are
//! due again. Contact changes (`action_update_contact`) go through the contacts write path
//! just before the commit; they only set values, so a batch run again records nothing new.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use commands::journeys::enter::load_version;
use commands::CommandState;
use cqrs_es::Aggregate;
use domain::journey::execution::Signal;
use domain::journey::{Execution, Version};
use domain::{ContactId, TenantId};
use event_store::{Clock, EventMetadata};
use sqlx::PgConnection;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

mod advance;
mod balancer;
mod load;
mod persist;

use super::JourneyError;
use advance::Change;
use balancer::Balancer;

/// How the runner works.
#[derive(Debug, Clone)]
pub struct JourneyWorkerConfig {
    /// Executions per batch (one transaction).
    pub batch: i64,
    /// How often an idle runner looks for due timers (appends wake it sooner).
    pub poll: Duration,
    /// Runner loops per process (each claims its own batches).
    pub loops: usize,
}

impl Default for JourneyWorkerConfig {
    fn default() -> Self {
        Self {
            batch: 500,
            poll: Duration::from_millis(200),
            loops: 2,
        }
    }
}

pub(crate) fn metadata(tenant: Uuid) -> EventMetadata {
    EventMetadata {
        tenant_id: Some(tenant),
        actor: Some("system:journeys".to_owned()),
        correlation_id: Some(Uuid::now_v7()),
        causation_id: None,
        request_id: None,
        ip: None,
        user_agent: None,
    }
}

/// A claimed row.
#[derive(sqlx::FromRow)]
struct Claimed {
    tenant_id: Uuid,
    execution_id: Uuid,
    journey_id: Uuid,
    version: i32,
    contact_id: Uuid,
    seq: i64,
    state: sqlx::types::Json<Execution>,
}

/// Versions are immutable: kept once loaded.
type Versions = Arc<Mutex<HashMap<(Uuid, Uuid, u32), Arc<Version>>>>;

pub struct JourneyRunner {
    state: CommandState,
    clock: Clock,
    config: JourneyWorkerConfig,
    versions: Versions,
}

/// What one batch did.
#[derive(Debug, Default, Clone, Copy)]
pub struct Ran {
    /// Executions run.
    pub executions: usize,
    /// Step runs (events naming a step).
    pub steps: usize,
}

impl JourneyRunner {
    pub fn new(state: CommandState, clock: Clock, config: JourneyWorkerConfig) -> Self {
        Self {
            state,
            clock,
            config,
            versions: Arc::default(),
        }
    }

    /// Runs batches until `cancel`; idle, it waits for a wake-up (appends of journeys and
    /// executions, through `wake`) or the poll interval.
    pub async fn run(self, wake: event_store::wakeup::Wakeup, cancel: CancellationToken) {
        let mut wake = wake.only(&[
            domain::journey::Journey::TYPE,
            domain::journey::Execution::TYPE,
        ]);
        while !cancel.is_cancelled() {
            if let Err(e) = super::triggers::run_schedules(
                &self.state.pool,
                &self.state.journeys.writer().executions,
                self.clock.now(),
            )
            .await
            {
                tracing::warn!(error = %e, "journey schedules failed; retrying");
            }
            match self.step().await {
                Ok(r) if r.executions as i64 >= self.config.batch => continue,
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "journey batch failed; retrying"),
            }
            // Idle: sleep until the next timer is due (at most the poll interval), so a timer
            // fires within a batch's time of its moment rather than a poll's.
            let idle = self.until_next_due().await.unwrap_or(self.config.poll);
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = wake.wait(idle) => {}
            }
        }
    }

    /// How long until the next timer is due, at most the poll interval.
    async fn until_next_due(&self) -> Result<Duration, JourneyError> {
        let next: Option<DateTime<Utc>> = sqlx::query_scalar(
            "SELECT min(due_at) FROM journey_runs WHERE due_at IS NOT NULL AND NOT held",
        )
        .fetch_one(&self.state.pool)
        .await?;
        Ok(match next {
            Some(t) => (t - self.clock.now())
                .to_std()
                .unwrap_or(Duration::ZERO)
                // Rows due now that another loop holds: look again shortly, not in a spin.
                .max(Duration::from_millis(10))
                .min(self.config.poll),
            None => self.config.poll,
        })
    }

    async fn version(
        &self,
        conn: &mut PgConnection,
        tenant: Uuid,
        journey: Uuid,
        number: u32,
    ) -> Result<Option<Arc<Version>>, JourneyError> {
        let key = (tenant, journey, number);
        if let Some(v) = self.versions.lock().ok().and_then(|m| m.get(&key).cloned()) {
            return Ok(Some(v));
        }
        let Some(v) = load_version(conn, tenant, journey, number).await? else {
            return Ok(None);
        };
        let v = Arc::new(v);
        if let Ok(mut m) = self.versions.lock() {
            m.insert(key, v.clone());
        }
        Ok(Some(v))
    }

    /// Runs one batch of due executions.
    pub async fn step(&self) -> Result<Ran, JourneyError> {
        let now = self.clock.now();
        let mut tx = self.state.pool.begin().await?;
        let claimed: Vec<Claimed> = sqlx::query_as(
            "SELECT tenant_id, execution_id, journey_id, version, contact_id, seq, state \
             FROM journey_runs WHERE due_at <= $1 AND NOT held \
             ORDER BY due_at LIMIT $2 FOR UPDATE SKIP LOCKED",
        )
        .bind(now)
        .bind(self.config.batch)
        .fetch_all(&mut *tx)
        .await?;
        if claimed.is_empty() {
            tx.commit().await?;
            return Ok(Ran::default());
        }
        let mut signals: HashMap<Uuid, Vec<(i64, Signal)>> = HashMap::new();
        let ids: Vec<Uuid> = claimed.iter().map(|c| c.execution_id).collect();
        let tenants: Vec<Uuid> = claimed.iter().map(|c| c.tenant_id).collect();
        let inbox: Vec<(i64, Uuid, sqlx::types::Json<Signal>)> = sqlx::query_as(
            "DELETE FROM journey_inbox i USING UNNEST($1::uuid[], $2::uuid[]) AS u(t, e) \
             WHERE i.tenant_id = u.t AND i.execution_id = u.e \
             RETURNING i.id, i.execution_id, i.signal",
        )
        .bind(&tenants)
        .bind(&ids)
        .fetch_all(&mut *tx)
        .await?;
        for (id, exec, s) in inbox {
            signals.entry(exec).or_default().push((id, s.0));
        }
        for s in signals.values_mut() {
            s.sort_by_key(|(id, _)| *id);
        }
        let mut by_tenant: BTreeMap<Uuid, Vec<Claimed>> = BTreeMap::new();
        for c in claimed {
            by_tenant.entry(c.tenant_id).or_default().push(c);
        }
        let mut ran = Ran::default();
        let mut appended = false;
        let mut changes: Vec<Change> = Vec::new();
        for (tenant, rows) in by_tenant {
            let (r, a, c) = self
                .tenant_batch(&mut tx, tenant, rows, &signals, now)
                .await?;
            ran.executions += r.executions;
            ran.steps += r.steps;
            appended |= a;
            changes.extend(c);
        }
        // Contact changes last, just before the commit (each is idempotent: see the module).
        for (tenant, contact_id, change, meta) in &changes {
            let (t, c) = (TenantId(*tenant), ContactId(*contact_id));
            if let Err(e) = self.state.contacts.change(t, c, change, meta).await {
                // A failure of ours rolls the batch back (it runs again); a change the contact
                // refuses (a value that no longer fits the fields, a contact gone) is logged,
                // and the step stays done.
                if e.is_transient() {
                    return Err(JourneyError::Command(format!(
                        "contact change: {}",
                        commands::error::chain(&e)
                    )));
                }
                tracing::warn!(contact = %contact_id, error = %e, "journey contact change refused");
            }
        }
        tx.commit().await?;
        if appended {
            self.state.notifier.poke();
        }
        Ok(ran)
    }

    /// One organization's claimed executions: load what the engine may ask, advance each,
    /// persist what they decided; the contact changes they asked for are returned, applied
    /// by the caller just before the commit.
    async fn tenant_batch(
        &self,
        tx: &mut PgConnection,
        tenant: Uuid,
        rows: Vec<Claimed>,
        signals: &HashMap<Uuid, Vec<(i64, Signal)>>,
        now: DateTime<Utc>,
    ) -> Result<(Ran, bool, Vec<Change>), JourneyError> {
        let meta = metadata(tenant);
        let ctx = self.load(tx, tenant, &rows).await?;
        let mut balancer = Balancer::load(tx, tenant, &ctx.versions, now).await?;
        let mut outcome =
            advance::advance_all(tenant, &meta, rows, &ctx, &mut balancer, signals, now)?;
        let (ran, changes) = (outcome.ran, std::mem::take(&mut outcome.changes));
        let appended = self
            .persist(tx, tenant, &meta, outcome, &balancer, now)
            .await?;
        Ok((ran, appended, changes))
    }
}
