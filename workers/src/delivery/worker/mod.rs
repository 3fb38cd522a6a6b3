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
//! - [`queue`]: claiming due jobs.
//! - [`checks`]: contact rules and frequency, pure.
//! - [`limits`]: warmup allowances and rate buckets shared by every process.
//! - [`compose`]: rendered parts → the provider's message.

pub mod checks;
pub mod compose;
pub mod limits;
pub mod queue;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use commands::delivery::jobs::{self, Jobs, JobsError, Loaded, Queue, Write};
use cqrs_es::Aggregate;
use domain::delivery::suppression::SuppressionReason;
use domain::delivery::warmup::Allowance;
use domain::delivery::{
    Channel, Deferral, DeliveryCommand, DeliveryJob, Request, Sender, Source, Status, Suppression,
};
use domain::field::FieldSchema;
use domain::template::render::{self, Known, Prepared};
use domain::template::Content;
use event_store::wakeup::Wakeup;
use event_store::{reader, Clock, Cursor, EventMetadata};
use futures::StreamExt;
use projections::contacts::ContactRow;
use sqlx::PgPool;
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::message::{Channel as MessageChannel, Message};
use super::provider::SendError;
use super::resolve::{Providers, ResolveError, Resolved};
use super::tracking::Tracker;
use checks::{Frequency, Verdict};

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

/// A template version compiled once (versions never change).
struct Version {
    prepared: Prepared,
    method: Option<String>,
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

fn message_channel(c: Channel) -> MessageChannel {
    match c {
        Channel::Email => MessageChannel::Email,
        Channel::Sms => MessageChannel::Sms,
        Channel::Push => MessageChannel::Push,
        Channel::Webhook => MessageChannel::Webhook,
    }
}

/// A job's provider, as the batch resolves it once: the channel and the provider its request
/// names (`None`: the channel's default).
type ProviderKey = (Channel, Option<Uuid>);

/// A job that passed every check, with what it needs to be sent.
struct Ready {
    id: Uuid,
    loaded: Loaded,
    address: String,
    contact: Option<usize>,
}

/// A job handed to its provider: the version after `DeliveryDispatching`.
struct Dispatched {
    id: Uuid,
    job: DeliveryJob,
    version: i64,
    message: Message,
    provider: Resolved,
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

    async fn tenant_batch(
        &self,
        tenant: Uuid,
        ids: &[Uuid],
        mut loaded: HashMap<Uuid, Loaded>,
        now: DateTime<Utc>,
    ) -> Result<usize, WorkerError> {
        let meta = metadata(tenant);
        let mut writes: Vec<Write> = Vec::new();
        let mut candidates: Vec<(Uuid, Loaded)> = Vec::new();
        for id in ids {
            let Some(l) = loaded.remove(id) else {
                writes.push(bare(*id, 0, Queue::Remove));
                continue;
            };
            match l.job.status {
                Status::Dispatching => writes.push(self.recover(tenant, *id, l, now).await?),
                s if s.pending() => candidates.push((*id, l)),
                _ => writes.push(bare(*id, l.version, Queue::Remove)),
            }
        }

        // The contacts and the organization the candidates need.
        let contact_ids: Vec<Uuid> = candidates
            .iter()
            .filter_map(|(_, l)| l.job.request.as_ref().and_then(|r| r.contact_id))
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let contacts =
            projections::contacts::get_many(&self.pool, tenant, &contact_ids, false).await?;
        let contact_at: HashMap<Uuid, usize> = contacts
            .iter()
            .enumerate()
            .map(|(i, c)| (c.id, i))
            .collect();
        let org = projections::organizations::get(&self.pool, tenant).await?;

        // Contact rules, then the suppression list on the addresses they chose.
        let mut ready: Vec<Ready> = Vec::new();
        for (id, mut l) in candidates {
            let Some(request) = l.job.request.clone() else {
                writes.push(bare(id, l.version, Queue::Remove));
                continue;
            };
            let contact = request.contact_id.and_then(|c| contact_at.get(&c).copied());
            match checks::contact_rules(&request, contact.map(|i| &contacts[i])) {
                Verdict::Send { address } => ready.push(Ready {
                    id,
                    loaded: l,
                    address,
                    contact,
                }),
                Verdict::Suppress(reason) => writes.push(
                    decided(id, &mut l, DeliveryCommand::Suppress(reason), Queue::Remove).await?,
                ),
                Verdict::Defer { reason, until } => writes.push(
                    decided(
                        id,
                        &mut l,
                        DeliveryCommand::Defer { reason, until },
                        Queue::DueAt(until),
                    )
                    .await?,
                ),
            }
        }
        let ready = self.suppression_list(tenant, ready, &mut writes).await?;
        let ready = self
            .frequency(tenant, ready, &contacts, now, &mut writes)
            .await?;
        let default_from = org
            .as_ref()
            .and_then(|o| {
                let address = o.settings["sender_email"].as_str()?;
                Some(Sender {
                    address: address.to_owned(),
                    name: o.settings["sender_name"].as_str().map(str::to_owned),
                })
            })
            .unwrap_or_else(|| self.config.default_from.clone());
        let ready = self
            .warmup(tenant, ready, &default_from, now, &mut writes)
            .await?;

        // Providers and their rates, then rendering: what is left is dispatched. A job's
        // provider is the one its request names, else the channel's default.
        let mut known: Option<Known> = None;
        let mut dispatch: Vec<Dispatched> = Vec::new();
        // The `DeliveryDispatching` of each job in `dispatch`, in the same order.
        let mut dispatching: Vec<Write> = Vec::new();
        let mut providers: HashMap<ProviderKey, Result<Resolved, String>> = HashMap::new();
        let mut rate_granted: HashMap<ProviderKey, i64> = HashMap::new();
        let mut wants: HashMap<ProviderKey, i64> = HashMap::new();
        for r in &ready {
            if let Some(req) = &r.loaded.job.request {
                *wants.entry((req.channel, req.provider_id)).or_default() += 1;
            }
        }
        let mut released = Vec::new();
        for r in ready {
            let Ready {
                id,
                mut loaded,
                address,
                contact,
            } = r;
            let Some(request) = loaded.job.request.clone() else {
                continue;
            };
            let key = (request.channel, request.provider_id);
            let resolved = match providers.get(&key) {
                Some(p) => p.clone(),
                None => {
                    let p = self
                        .providers
                        .resolve(
                            tenant,
                            message_channel(request.channel),
                            request.provider_id,
                        )
                        .await;
                    // A failed lookup gives the batch back; a provider that cannot be had
                    // gives the message up.
                    let p = match p {
                        Err(ResolveError::Store(e)) => return Err(WorkerError::Sql(e)),
                        p => p.map_err(|e| e.to_string()),
                    };
                    providers.insert(key, p.clone());
                    p
                }
            };
            let resolved = match resolved {
                Ok(p) => p,
                Err(reason) => {
                    writes.push(
                        decided(
                            id,
                            &mut loaded,
                            DeliveryCommand::GiveUp { error: reason },
                            Queue::Remove,
                        )
                        .await?,
                    );
                    continue;
                }
            };
            if let Some(rate) = resolved.rate_per_second {
                let granted = match rate_granted.get(&key) {
                    Some(g) => *g,
                    None => {
                        let want = wants.get(&key).copied().unwrap_or(0);
                        let scope = format!("rate:{}", resolved.name);
                        let g = limits::take_tokens(&self.pool, tenant, &scope, rate, want, now)
                            .await?;
                        rate_granted.insert(key, g);
                        g
                    }
                };
                if granted <= 0 {
                    released.push(id);
                    continue;
                }
                rate_granted.insert(key, granted - 1);
            }
            let version = match self.version(tenant, &request).await? {
                Some(v) => v,
                None => {
                    let error = format!(
                        "template {} version {} is gone",
                        request.template_id, request.template_version
                    );
                    writes.push(
                        decided(
                            id,
                            &mut loaded,
                            DeliveryCommand::GiveUp { error },
                            Queue::Remove,
                        )
                        .await?,
                    );
                    continue;
                }
            };
            let known = match &known {
                Some(k) => k,
                None => known.insert(self.known_fields(tenant).await?),
            };
            let mut data = match &request.data {
                serde_json::Value::Object(m) => m.clone(),
                _ => serde_json::Map::new(),
            };
            if let Some(t) = &self.tracker {
                data.insert(
                    "unsubscribe_url".into(),
                    t.unsubscribe_url(tenant, id).into(),
                );
            }
            let data = serde_json::Value::Object(data);
            let mut context = match contact {
                Some(i) => contacts[i].render_context(org.as_ref(), data),
                None => serde_json::json!({
                    "contact": {
                        "id": null, "email": (request.channel == Channel::Email).then_some(&address),
                        "first_name": null, "last_name": null,
                        "phone": (request.channel == Channel::Sms).then_some(&address),
                        "time_zone": null, "locale": null, "fields": {}, "tags": [],
                        "stage": null, "points": 0,
                    },
                    "organization": projections::contacts::organization_context(tenant, org.as_ref()),
                    "message": data,
                }),
            };
            render::fill_fields(&mut context, known);
            let rendered = match version.prepared.render(context) {
                Ok(r) => r,
                Err(errors) => {
                    let error = errors
                        .iter()
                        .map(|e| format!("{}: {}", e.part, e.message))
                        .collect::<Vec<_>>()
                        .join("; ");
                    writes.push(
                        decided(
                            id,
                            &mut loaded,
                            DeliveryCommand::GiveUp { error },
                            Queue::Remove,
                        )
                        .await?,
                    );
                    continue;
                }
            };
            let envelope = compose::Envelope {
                tenant,
                job_id: id,
                request: &request,
                address: &address,
                default_from: &default_from,
                tracker: self.tracker.as_ref(),
                bounce_domain: self.config.bounce_domain.as_deref(),
                method: version.method.as_deref(),
                provider_from: resolved.from.as_deref(),
            };
            let message = match compose::compose(&envelope, rendered) {
                Ok(m) => m,
                Err(error) => {
                    writes.push(
                        decided(
                            id,
                            &mut loaded,
                            DeliveryCommand::GiveUp { error },
                            Queue::Remove,
                        )
                        .await?,
                    );
                    continue;
                }
            };
            let mut w = decided(
                id,
                &mut loaded,
                DeliveryCommand::BeginDispatch {
                    provider: resolved.name.clone(),
                },
                Queue::Keep,
            )
            .await?;
            w.send = request
                .contact_id
                .filter(|_| contact.is_some())
                .map(|c| (c, request.channel.as_str(), now));
            let version = w.version + w.events.len() as i64;
            dispatching.push(w);
            dispatch.push(Dispatched {
                id,
                job: loaded.job,
                version,
                message,
                provider: resolved,
            });
        }
        if !released.is_empty() {
            // Over the provider's rate: due again when the bucket has refilled a little.
            queue::release(
                &self.pool,
                tenant,
                &released,
                now + chrono::Duration::milliseconds(200),
            )
            .await?;
        }

        // "Dispatching" is in the log before any provider is called, a chunk of
        // `concurrency` jobs at a time: a crash leaves in doubt only what was being handed
        // over, not the rest of the batch (the other decisions go with the first chunk).
        let checked = std::time::Instant::now();
        let chunk = self.config.concurrency.max(1);
        let (mut dispatching, mut dispatch) = (dispatching.into_iter(), dispatch.into_iter());
        let mut sent = 0;
        let lease = chrono::Duration::from_std(self.config.lease)
            .unwrap_or_else(|_| chrono::Duration::minutes(5));
        loop {
            // The chunk handed over now holds its rows for a whole lease from here, not from
            // the claim: a batch that waited (read models, its earlier chunks) never has a
            // live worker's messages found "dispatching" by another claim, and put in doubt.
            let until = self.clock.now().max(now) + lease;
            writes.extend(dispatching.by_ref().take(chunk).map(|mut w| {
                w.queue = Queue::DueAt(until);
                w
            }));
            let now_sending: Vec<Dispatched> = dispatch.by_ref().take(chunk).collect();
            self.jobs.record(tenant, &meta, &writes).await?;
            writes.clear();
            if now_sending.is_empty() {
                break;
            }
            sent += self.send_all(tenant, &meta, now_sending, now).await?;
        }
        tracing::debug!(
            %tenant,
            jobs = ids.len(),
            sent,
            total_ms = checked.elapsed().as_millis() as u64,
            "delivery batch"
        );
        Ok(sent)
    }

    /// Calls the providers and records their answers.
    async fn send_all(
        &self,
        tenant: Uuid,
        meta: &EventMetadata,
        dispatch: Vec<Dispatched>,
        now: DateTime<Utc>,
    ) -> Result<usize, WorkerError> {
        let answers: Vec<(Dispatched, Result<_, SendError>)> = futures::stream::iter(dispatch)
            .map(|d| async move {
                let r = d.provider.provider.send(&d.message).await;
                (d, r)
            })
            .buffer_unordered(self.config.concurrency.max(1))
            .collect()
            .await;
        // A retry's delay counts from the answer (a provider's Retry-After does), not from
        // the claim: the batch may have waited for read models and other sends since.
        let answered = self.clock.now().max(now);
        let mut writes = Vec::with_capacity(answers.len());
        let mut sent = 0;
        // Addresses the providers say are gone: suppressed once the outcomes are recorded.
        let mut gone = Vec::new();
        for (mut d, answer) in answers {
            let mut loaded = Loaded {
                job: std::mem::take(&mut d.job),
                version: d.version,
                requested: Cursor::ZERO,
            };
            let (command, queue, message) = match answer {
                Ok(s) => {
                    sent += 1;
                    let pm = (d.provider.name.clone(), s.provider_message_id.clone());
                    (
                        DeliveryCommand::RecordSent {
                            provider_message_id: s.provider_message_id,
                        },
                        Queue::Remove,
                        Some(pm),
                    )
                }
                Err(SendError::Transient {
                    reason,
                    retry_after,
                }) if loaded.job.attempts < self.config.max_attempts => {
                    let retry_at = answered + self.backoff(loaded.job.attempts, retry_after);
                    (
                        DeliveryCommand::RecordTransientFailure {
                            error: reason,
                            retry_at,
                        },
                        Queue::DueAt(retry_at),
                        None,
                    )
                }
                Err(SendError::Transient { reason, .. }) => (
                    DeliveryCommand::GiveUp {
                        error: format!("gave up after {} attempts: {reason}", loaded.job.attempts),
                    },
                    Queue::Remove,
                    None,
                ),
                Err(SendError::Permanent { reason }) => (
                    DeliveryCommand::GiveUp { error: reason },
                    Queue::Remove,
                    None,
                ),
                Err(SendError::Unreachable { reason }) => {
                    if let Some(channel) = loaded.job.request.as_ref().map(|r| r.channel) {
                        if let Ok(address) =
                            commands::suppressions::normalize(channel, d.message.address())
                        {
                            gone.push((
                                channel,
                                address,
                                SuppressionReason::HardBounce,
                                Some(format!("job:{}", d.id)),
                            ));
                        }
                    }
                    (
                        DeliveryCommand::GiveUp { error: reason },
                        Queue::Remove,
                        None,
                    )
                }
                Err(SendError::Unknown { reason }) => {
                    tracing::warn!(job = %d.id, %reason, "provider outcome unknown");
                    let retry = d.provider.provider.deduplicates();
                    let queue = if retry {
                        Queue::DueAt(now)
                    } else {
                        Queue::Remove
                    };
                    (DeliveryCommand::Recover { retry, now }, queue, None)
                }
            };
            let mut w = decided(d.id, &mut loaded, command, queue).await?;
            w.provider_message = message;
            writes.push(w);
        }
        // The messages have left: losing their outcomes to a database blip would leave them in
        // doubt, so recording is tried a few times before giving the batch up to recovery.
        let mut attempt = 0u32;
        loop {
            match self.jobs.record(tenant, meta, &writes).await {
                Ok(_) => break,
                Err(JobsError::Store(e)) if attempt < 5 => {
                    attempt += 1;
                    tracing::warn!(error = %e, attempt, "recording delivery outcomes failed; retrying");
                    tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt))).await;
                }
                Err(e) => return Err(e.into()),
            }
        }
        if !gone.is_empty() {
            // A lost suppression costs one more refused send (which suppresses again): the
            // outcomes, already recorded, stand either way.
            if let Err(e) = commands::suppressions::suppress_many(
                self.jobs.pool(),
                self.jobs.notifier(),
                tenant,
                meta,
                &gone,
            )
            .await
            {
                tracing::warn!(error = %e, "suppressing addresses providers report gone failed");
            }
        }
        Ok(sent)
    }

    /// The delay before attempt `attempts + 1`: doubling from `retry_base` with ±20 %
    /// jitter, at most an hour, and never sooner than the provider asked.
    fn backoff(&self, attempts: u32, asked: Option<Duration>) -> chrono::Duration {
        use rand::Rng;
        let base = self.config.retry_base.as_secs_f64()
            * 2f64.powi(attempts.saturating_sub(1).min(16) as i32);
        let jittered = base.min(3600.0) * rand::thread_rng().gen_range(0.8..1.2);
        let secs = jittered.max(asked.map_or(0.0, |a| a.as_secs_f64()));
        chrono::Duration::milliseconds((secs * 1000.0) as i64)
    }

    /// A job found dispatching when claimed: its worker died (or its lease lapsed) between
    /// "dispatching" and the provider's answer.
    async fn recover(
        &self,
        tenant: Uuid,
        id: Uuid,
        mut l: Loaded,
        now: DateTime<Utc>,
    ) -> Result<Write, WorkerError> {
        let channel = l.job.request.as_ref().map_or(Channel::Email, |r| r.channel);
        let named = l.job.request.as_ref().and_then(|r| r.provider_id);
        let retry = match self
            .providers
            .resolve(tenant, message_channel(channel), named)
            .await
        {
            Ok(p) => Some(&p.name) == l.job.provider.as_ref() && p.provider.deduplicates(),
            Err(ResolveError::Store(e)) => return Err(WorkerError::Sql(e)),
            Err(_) => false,
        };
        tracing::warn!(job = %id, retry, "delivery job found dispatching after a crash");
        let queue = if retry {
            Queue::DueAt(now)
        } else {
            Queue::Remove
        };
        decided(id, &mut l, DeliveryCommand::Recover { retry, now }, queue).await
    }

    /// Suppresses jobs whose address is on the organization's suppression list.
    async fn suppression_list(
        &self,
        tenant: Uuid,
        ready: Vec<Ready>,
        writes: &mut Vec<Write>,
    ) -> Result<Vec<Ready>, WorkerError> {
        let mut by_channel: HashMap<Channel, Vec<String>> = HashMap::new();
        for r in &ready {
            if let Some(req) = &r.loaded.job.request {
                by_channel
                    .entry(req.channel)
                    .or_default()
                    .push(normalized(req.channel, &r.address));
            }
        }
        let mut listed: HashMap<(Channel, String), String> = HashMap::new();
        for (channel, addresses) in by_channel {
            // The log, not the read model: an address suppressed a moment ago counts.
            let found =
                commands::suppressions::suppressed_now(&self.pool, tenant, channel, &addresses)
                    .await?;
            for (address, reason) in found {
                listed.insert((channel, address), reason.as_str().to_owned());
            }
        }
        let mut out = Vec::with_capacity(ready.len());
        for mut r in ready {
            let Some(channel) = r.loaded.job.request.as_ref().map(|q| q.channel) else {
                continue;
            };
            match listed.get(&(channel, normalized(channel, &r.address))) {
                Some(reason) => writes.push(
                    decided(
                        r.id,
                        &mut r.loaded,
                        DeliveryCommand::Suppress(Suppression::SuppressedAddress {
                            reason: reason.clone(),
                        }),
                        Queue::Remove,
                    )
                    .await?,
                ),
                None => out.push(r),
            }
        }
        Ok(out)
    }

    /// Marketing messages to contacts whose frequency rule allows none now: a journey's waits
    /// (deferred until the oldest message in the window leaves it), a campaign's is
    /// suppressed (`Suppression::FrequencyCap`: a blast is time-bound, and its row leaves the
    /// queue so the campaign's pending count reaches zero).
    async fn frequency(
        &self,
        tenant: Uuid,
        ready: Vec<Ready>,
        contacts: &[ContactRow],
        now: DateTime<Utc>,
        writes: &mut Vec<Write>,
    ) -> Result<Vec<Ready>, WorkerError> {
        let ruled = |r: &Ready| -> Option<(Channel, Frequency)> {
            let req = r.loaded.job.request.as_ref()?;
            if !matches!(req.source, Source::Campaign { .. } | Source::Journey { .. }) {
                return None;
            }
            let c = &contacts[r.contact?];
            Some((req.channel, Frequency::of(c, req.channel)?))
        };
        let ids: Vec<Uuid> = ready
            .iter()
            .filter(|r| ruled(r).is_some())
            .filter_map(|r| r.contact.map(|i| contacts[i].id))
            .collect();
        if ids.is_empty() {
            return Ok(ready);
        }
        let rows: Vec<(Uuid, String, DateTime<Utc>)> = sqlx::query_as(
            "SELECT contact_id, channel, at FROM delivery_sends \
             WHERE tenant_id = $1 AND contact_id = ANY($2) AND at > $3 ORDER BY at",
        )
        .bind(tenant)
        .bind(&ids)
        .bind(now - chrono::Duration::days(366))
        .fetch_all(&self.pool)
        .await?;
        let mut sent: HashMap<(Uuid, &str), Vec<DateTime<Utc>>> = HashMap::new();
        for (c, ch, at) in &rows {
            sent.entry((*c, ch.as_str())).or_default().push(*at);
        }
        let mut out = Vec::with_capacity(ready.len());
        for mut r in ready {
            let Some((channel, f)) = ruled(&r) else {
                out.push(r);
                continue;
            };
            let contact = r.contact.map(|i| contacts[i].id).unwrap_or_default();
            let times = sent.entry((contact, channel.as_str())).or_default();
            let within: Vec<DateTime<Utc>> = times
                .iter()
                .copied()
                .filter(|t| *t > now - f.window())
                .collect();
            match f.next_allowed(&within) {
                None => {
                    times.push(now);
                    out.push(r);
                }
                Some(until) => {
                    // `ruled` found the request: a campaign's is suppressed, others wait.
                    let verdict = match r.loaded.job.request.as_ref() {
                        Some(request) => checks::over_cap(request, until),
                        None => Verdict::Defer {
                            reason: Deferral::FrequencyCap,
                            until,
                        },
                    };
                    let (command, queue) = match verdict {
                        Verdict::Suppress(reason) => {
                            (DeliveryCommand::Suppress(reason), Queue::Remove)
                        }
                        Verdict::Defer { reason, until } => (
                            DeliveryCommand::Defer { reason, until },
                            Queue::DueAt(until),
                        ),
                        Verdict::Send { .. } => {
                            out.push(r);
                            continue;
                        }
                    };
                    writes.push(decided(r.id, &mut r.loaded, command, queue).await?);
                }
            }
        }
        Ok(out)
    }

    /// Defers email over its sending domain's warmup allowance for today to the next day.
    async fn warmup(
        &self,
        tenant: Uuid,
        ready: Vec<Ready>,
        default_from: &Sender,
        now: DateTime<Utc>,
        writes: &mut Vec<Write>,
    ) -> Result<Vec<Ready>, WorkerError> {
        let domain_of = |r: &Ready| -> Option<String> {
            let req = r.loaded.job.request.as_ref()?;
            (req.channel == Channel::Email).then(|| {
                compose::domain_of(&compose::sender(req, default_from).address).to_ascii_lowercase()
            })
        };
        if !ready.iter().any(|r| domain_of(r).is_some()) {
            return Ok(ready);
        }
        let schedules = limits::warmups(&self.pool, tenant).await?;
        if schedules.is_empty() {
            return Ok(ready);
        }
        let mut wants: HashMap<String, i64> = HashMap::new();
        for r in &ready {
            if let Some(d) = domain_of(r) {
                *wants.entry(d).or_default() += 1;
            }
        }
        let mut left: HashMap<String, (i64, DateTime<Utc>)> = HashMap::new();
        for w in &schedules {
            let domain = w.domain.clone();
            let Some(want) = wants.get(&domain) else {
                continue;
            };
            if let (Allowance::Limited { messages, .. }, ends) = w.today(now) {
                let scope = w.scope();
                let granted = limits::take_allowance(
                    &self.pool,
                    tenant,
                    &scope,
                    ends,
                    messages as i64,
                    *want,
                )
                .await?;
                left.insert(domain, (granted, ends));
            }
        }
        let mut out = Vec::with_capacity(ready.len());
        for mut r in ready {
            let Some(domain) = domain_of(&r) else {
                out.push(r);
                continue;
            };
            match left.get_mut(&domain) {
                Some((n, _)) if *n > 0 => {
                    *n -= 1;
                    out.push(r);
                }
                Some((_, ends)) => {
                    let until = *ends;
                    writes.push(
                        decided(
                            r.id,
                            &mut r.loaded,
                            DeliveryCommand::Defer {
                                reason: Deferral::Warmup { domain },
                                until,
                            },
                            Queue::DueAt(until),
                        )
                        .await?,
                    )
                }
                None => out.push(r),
            }
        }
        Ok(out)
    }

    /// The compiled template version a request names (`None`: it is gone).
    async fn version(
        &self,
        tenant: Uuid,
        request: &Request,
    ) -> Result<Option<Arc<Version>>, WorkerError> {
        let key = (tenant, request.template_id, request.template_version);
        if let Some(v) = self.versions.lock().await.get(&key) {
            return Ok(Some(v.clone()));
        }
        let row = projections::templates::get(&self.pool, tenant, request.template_id).await?;
        let content = row.and_then(|t| {
            t.versions
                .into_iter()
                .find(|v| v.version as u32 == request.template_version)
                .map(|v| v.content)
        });
        let version = match content {
            Some(content) => {
                let method = match &content {
                    Content::Webhook { method, .. } => Some(method.clone()),
                    _ => None,
                };
                Prepared::new(&content)
                    .ok()
                    .map(|prepared| Arc::new(Version { prepared, method }))
            }
            None => None,
        };
        // A version not found may still arrive (the templates read model lags): only keep
        // what was found.
        if let Some(v) = &version {
            self.versions.lock().await.insert(key, v.clone());
        }
        Ok(version)
    }

    /// The organization's custom fields (every one is present when rendering).
    async fn known_fields(&self, tenant: Uuid) -> Result<Known, WorkerError> {
        let stream = event_store::recorded::stream_id(tenant, tenant);
        let events =
            reader::load_stream(&self.pool, FieldSchema::TYPE, &stream, reader::Until::End).await?;
        let mut schema = FieldSchema::default();
        for e in events {
            if let Ok(event) = e.decode() {
                schema.apply(event);
            }
        }
        Ok(Known {
            fields: schema.fields.keys().cloned().collect(),
        })
    }
}

/// A write with no events (a queue row whose job needs nothing more).
fn bare(id: Uuid, version: i64, queue: Queue) -> Write {
    Write {
        id,
        version,
        events: Vec::new(),
        queue,
        send: None,
        provider_message: None,
    }
}

/// `command` decided on the loaded job (applied to it), as a write with `queue`.
async fn decided(
    id: Uuid,
    l: &mut Loaded,
    command: DeliveryCommand,
    queue: Queue,
) -> Result<Write, WorkerError> {
    let version = l.version;
    let events = jobs::decide(&mut l.job, command)
        .await
        .map_err(JobsError::Rejected)?;
    l.version += events.len() as i64;
    Ok(Write {
        id,
        version,
        events,
        queue,
        send: None,
        provider_message: None,
    })
}

/// An address as the suppression list keys it (as given when it does not normalize: then no
/// entry can match it either).
pub fn normalized(channel: Channel, address: &str) -> String {
    commands::suppressions::normalize(channel, address)
        .unwrap_or_else(|_| address.trim().to_owned())
}
