//! The delivery worker: claims due jobs from the queue (never a held one: a paused
//! campaign's), checks them (contact rules, the suppression list, frequency rules — a
//! campaign's message over the cap is suppressed, a journey's deferred —, the sending
//! domain's warmup, the job's provider — the one its request names, else the channel's
//! default — and its rate), renders them, records `DeliveryDispatching` for the whole batch
//! **before** calling any provider, sends them concurrently and records the outcomes.
//!
//! **Never two sends for one job.** The claim (`FOR UPDATE SKIP LOCKED`) gives a job to one
//! worker at a time; `DeliveryDispatching` is appended at the job's expected sequence before
//! the provider call, so a second worker (or the same job claimed again after a crash) finds
//! it dispatching and calls nobody: it records the job in doubt (`DeliveryInDoubt`), or
//! retries it only when the provider deduplicates by job id. A lease longer than any
//! provider call separates the two cases.
//!
//! A batch goes through stages, a module each, in this order:
//! - `partition`: the claimed jobs sorted (check, recover, drop); their contacts loaded.
//! - `gates`: contact rules, the suppression list, frequency rules, warmup.
//! - `route`: each job's provider and its rate.
//! - `render`: template, context, the provider's message; `DeliveryDispatching` decided.
//! - `dispatch`: dispatching recorded a chunk at a time, providers called, answers recorded.
//!
//! Under them: `batch` (the types the stages pass on, how a decision becomes a write),
//! [`queue`] (claiming due jobs), [`checks`] (contact rules and frequency, pure), [`limits`]
//! (warmup allowances and rate buckets shared by every process), [`compose`] (rendered parts
//! → the provider's message).

mod batch;
pub mod checks;
pub mod compose;
mod dispatch;
mod gates;
pub mod limits;
mod partition;
pub mod queue;
mod render;
mod route;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use commands::delivery::jobs::{Jobs, JobsError, Loaded, Write};
use cqrs_es::Aggregate;
use domain::delivery::{DeliveryJob, Sender};
use event_store::wakeup::Wakeup;
use event_store::{Clock, Cursor, EventMetadata};
use sqlx::PgPool;
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::resolve::Providers;
use super::tracking::Tracker;
use batch::Version;
use partition::Audience;

/// How the worker runs.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Jobs claimed at once by one loop.
    pub batch: i64,
    /// Loops per process (each claims its own batches).
    pub loops: usize,
    /// Provider calls in flight per loop.
    pub concurrency: usize,
    /// How long a claim holds a job: longer than any provider call can take.
    pub lease: Duration,
    /// Attempts before a job that keeps failing transiently is given up.
    pub max_attempts: u32,
    /// The first retry's delay; each next one doubles (with ±20 % jitter), up to an hour.
    pub retry_base: Duration,
    /// Idle polling interval (a notification usually wakes the worker first).
    pub poll: Duration,
    /// The sender when neither the job nor the organization names one.
    pub default_from: Sender,
    /// The domain of return paths (`bounce+<job>.<tag>@…`); the sender's domain when `None`.
    pub bounce_domain: Option<String>,
    /// How long to wait for the contacts read model to reach a claimed batch.
    pub consistency_timeout: Duration,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            batch: 500,
            loops: 3,
            concurrency: 64,
            lease: Duration::from_secs(300),
            max_attempts: 8,
            retry_base: Duration::from_secs(30),
            poll: Duration::from_millis(500),
            default_from: Sender {
                address: "no-reply@localhost".into(),
                name: None,
            },
            bounce_domain: None,
            consistency_timeout: Duration::from_secs(10),
        }
    }
}

/// Why a step failed (it is retried: nothing was half-written).
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error(transparent)]
    Jobs(#[from] JobsError),
    #[error(transparent)]
    Store(#[from] event_store::StoreError),
    #[error(transparent)]
    Sql(#[from] sqlx::Error),
    /// A read model the worker reads did not reach the claimed jobs in time.
    #[error("the {0} read model is behind; jobs given back")]
    Behind(&'static str),
}

/// What one loop handled in a step.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Stepped {
    pub claimed: usize,
    pub sent: usize,
}

pub struct Worker {
    pool: PgPool,
    jobs: Jobs,
    clock: Clock,
    config: WorkerConfig,
    providers: Arc<dyn Providers>,
    tracker: Option<Tracker>,
    versions: Mutex<HashMap<(Uuid, Uuid, u32), Arc<Version>>>,
}

fn metadata(tenant: Uuid) -> EventMetadata {
    EventMetadata {
        tenant_id: Some(tenant),
        actor: Some("system:delivery".to_owned()),
        correlation_id: Some(Uuid::now_v7()),
        causation_id: None,
        request_id: None,
        ip: None,
        user_agent: None,
    }
}

impl Worker {
    pub fn new(
        pool: PgPool,
        jobs: Jobs,
        clock: Clock,
        config: WorkerConfig,
        providers: Arc<dyn Providers>,
        tracker: Option<Tracker>,
    ) -> Self {
        Self {
            pool,
            jobs,
            clock,
            config,
            providers,
            tracker,
            versions: Mutex::new(HashMap::new()),
        }
    }

    /// Runs `config.loops` loops until `cancel`, woken by appends of jobs and campaigns
    /// (which request jobs) through `wake`.
    pub async fn run(self: Arc<Self>, wake: Wakeup, cancel: CancellationToken) {
        let wake = wake.only(&[DeliveryJob::TYPE, domain::campaign::Campaign::TYPE]);
        let mut loops = tokio::task::JoinSet::new();
        for _ in 0..self.config.loops.max(1) {
            let (me, mut wake, cancel) = (self.clone(), wake.clone(), cancel.clone());
            loops.spawn(async move {
                while !cancel.is_cancelled() {
                    match me.step().await {
                        Ok(s) if s.claimed as i64 >= me.config.batch => continue,
                        Ok(_) => {}
                        Err(e) => tracing::warn!(error = %e, "delivery step failed; retrying"),
                    }
                    tokio::select! {
                        _ = cancel.cancelled() => return,
                        _ = wake.wait(me.config.poll) => {}
                    }
                }
            });
        }
        while loops.join_next().await.is_some() {}
    }

    /// Claims one batch and takes it as far as it goes now.
    pub async fn step(&self) -> Result<Stepped, WorkerError> {
        let now = self.clock.now();
        let claimed = queue::claim(&self.pool, now, self.config.batch, self.config.lease).await?;
        if claimed.is_empty() {
            return Ok(Stepped::default());
        }
        let mut by_tenant: BTreeMap<Uuid, Vec<Uuid>> = BTreeMap::new();
        for c in &claimed {
            by_tenant.entry(c.tenant_id).or_default().push(c.job_id);
        }
        // Contact rules and template versions are read from read models: they must hold
        // every change committed before these jobs were requested (a retried or deferred
        // job was requested long ago: it waits for nothing).
        let started = std::time::Instant::now();
        let mut loaded: BTreeMap<Uuid, HashMap<Uuid, Loaded>> = BTreeMap::new();
        for (tenant, ids) in &by_tenant {
            loaded.insert(*tenant, self.jobs.load(*tenant, ids).await?);
        }
        let head = loaded
            .values()
            .flat_map(|jobs| jobs.values().map(|l| l.requested))
            .max()
            .unwrap_or(Cursor::ZERO);
        for read_model in ["contacts", "templates"] {
            let caught_up = projections::status::wait_for(
                &self.pool,
                read_model,
                head,
                self.config.consistency_timeout,
            )
            .await?;
            if !caught_up {
                for (tenant, ids) in &by_tenant {
                    queue::release(&self.pool, *tenant, ids, now).await?;
                }
                return Err(WorkerError::Behind(read_model));
            }
        }
        let waited = started.elapsed();
        let mut out = Stepped {
            claimed: claimed.len(),
            sent: 0,
        };
        tracing::debug!(
            claimed = claimed.len(),
            waited_ms = waited.as_millis() as u64,
            "delivery step: read models reached"
        );
        for (tenant, ids) in by_tenant {
            let jobs = loaded.remove(&tenant).unwrap_or_default();
            match self.tenant_batch(tenant, &ids, jobs, now).await {
                Ok(sent) => out.sent += sent,
                Err(WorkerError::Jobs(JobsError::Conflict)) => {
                    // A job moved under us (a cancel): give the batch back, decide again.
                    queue::release(&self.pool, tenant, &ids, now).await?;
                }
                Err(e) => {
                    queue::release(&self.pool, tenant, &ids, now).await?;
                    return Err(e);
                }
            }
        }
        Ok(out)
    }

    /// One organization's claimed jobs through the stages: partition, gates, route, render,
    /// dispatch. Each stage's decisions join `writes`, recorded with the first chunk handed
    /// over (or alone, when nothing is).
    async fn tenant_batch(
        &self,
        tenant: Uuid,
        ids: &[Uuid],
        loaded: HashMap<Uuid, Loaded>,
        now: DateTime<Utc>,
    ) -> Result<usize, WorkerError> {
        let meta = metadata(tenant);
        let mut writes: Vec<Write> = Vec::new();
        let candidates = self
            .partition(tenant, ids, loaded, now, &mut writes)
            .await?;
        let audience = Audience::load(&self.pool, tenant, &candidates).await?;

        let ready = gates::contact_rules(candidates, &audience, &mut writes).await?;
        let ready = self.suppression_list(tenant, ready, &mut writes).await?;
        let ready = self
            .frequency(tenant, ready, &audience.contacts, now, &mut writes)
            .await?;
        let default_from = audience.default_from(&self.config.default_from);
        let ready = self
            .warmup(tenant, ready, &default_from, now, &mut writes)
            .await?;

        let routed = self.route(tenant, ready, now, &mut writes).await?;
        let (dispatching, dispatch) = self
            .render(tenant, routed, &audience, &default_from, now, &mut writes)
            .await?;

        let checked = std::time::Instant::now();
        let sent = self
            .dispatch(tenant, &meta, writes, dispatching, dispatch, now)
            .await?;
        tracing::debug!(
            %tenant,
            jobs = ids.len(),
            sent,
            total_ms = checked.elapsed().as_millis() as u64,
            "delivery batch"
        );
        Ok(sent)
    }
}

pub use batch::normalized;
