//! The write path of delivery jobs, for many jobs at once: requesting them (the events and
//! their queue rows in one transaction), loading them, and recording what became of them
//! (events at the expected sequences, with the queue, the frequency counts and the
//! provider's message ids changed in the same transaction); and a campaign's view of its
//! queue rows: holding them while it is paused, counting what is left.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use domain::delivery::{
    DeliveryCommand, DeliveryError, DeliveryEvent, DeliveryJob, Request, Source,
};
use event_store::append::{self, AppendError, NewEvent};
use event_store::wakeup::Notifier;
use event_store::{reader, recorded, Cursor, EventMetadata, StoreError};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

/// Why a batch write did not happen.
#[derive(Debug, thiserror::Error)]
pub enum JobsError {
    /// A job's stream moved since it was loaded: load again, decide again.
    #[error("a delivery job was changed concurrently")]
    Conflict,
    /// The job refused the command (or does not exist).
    #[error(transparent)]
    Rejected(#[from] DeliveryError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<AppendError> for JobsError {
    fn from(e: AppendError) -> Self {
        match e {
            AppendError::Conflict => Self::Conflict,
            AppendError::Store(e) => Self::Store(e),
        }
    }
}

impl From<sqlx::Error> for JobsError {
    fn from(e: sqlx::Error) -> Self {
        Self::Store(e.into())
    }
}

/// A loaded job and its version (the sequence of its last event).
#[derive(Debug, Clone)]
pub struct Loaded {
    pub job: DeliveryJob,
    pub version: i64,
    /// Where the job's request is in the log (what the read models a send consults must
    /// have reached).
    pub requested: Cursor,
}

/// What happens to a job's queue row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Queue {
    /// Stays as it is (e.g. dispatching: the claim's lease covers it).
    Keep,
    /// Due again at this time (deferred, failed, rate limited).
    DueAt(DateTime<Utc>),
    /// Done with (an outcome).
    Remove,
}

/// What to record for one job.
#[derive(Debug, Clone)]
pub struct Write {
    pub id: Uuid,
    /// The version the events were decided on.
    pub version: i64,
    pub events: Vec<DeliveryEvent>,
    pub queue: Queue,
    /// A message handed over to a contact: counted by frequency rules.
    pub send: Option<(Uuid, &'static str, DateTime<Utc>)>,
    /// The provider's id of a message sent: `(provider, id)`.
    pub provider_message: Option<(String, String)>,
}

/// Requests, loads and records delivery jobs.
#[derive(Clone)]
pub struct Jobs {
    pool: PgPool,
    notifier: Notifier,
}

/// What a request of many jobs did.
#[derive(Debug, Clone, Default)]
pub struct Requested {
    /// Jobs created now.
    pub created: Vec<Uuid>,
    /// Jobs that existed already (the same id requested before): left as they are.
    pub existing: Vec<Uuid>,
    /// The cursor after the new jobs' events (the latest of the existing ones' otherwise).
    pub cursor: Option<Cursor>,
}

impl Jobs {
    pub fn new(pool: PgPool, notifier: Notifier) -> Self {
        Self { pool, notifier }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    pub fn notifier(&self) -> &Notifier {
        &self.notifier
    }

    /// Requests `jobs` of `tenant` (ids chosen by the caller: derived ids make a repeated
    /// request a no-op), due at `due_at`: their `DeliveryRequested` events and queue rows in
    /// one transaction.
    pub async fn request(
        &self,
        tenant: Uuid,
        metadata: &EventMetadata,
        jobs: &[(Uuid, Request)],
        due_at: DateTime<Utc>,
    ) -> Result<Requested, JobsError> {
        let jobs: Vec<(Uuid, Request, DateTime<Utc>)> = jobs
            .iter()
            .map(|(id, request)| (*id, request.clone(), due_at))
            .collect();
        self.request_each(tenant, metadata, &jobs, false).await
    }

    /// Like [`Jobs::request`], each job due at its own time, and `held` or not
    /// ([`request_each_in`] in a transaction of its own).
    pub async fn request_each(
        &self,
        tenant: Uuid,
        metadata: &EventMetadata,
        jobs: &[(Uuid, Request, DateTime<Utc>)],
        held: bool,
    ) -> Result<Requested, JobsError> {
        let mut attempt = 0;
        loop {
            let mut tx = self.pool.begin().await?;
            match request_each_in(&mut tx, tenant, metadata, jobs, held).await {
                Ok(r) => {
                    tx.commit().await?;
                    self.notifier.poke_type(DeliveryJob::TYPE);
                    return Ok(r);
                }
                // Another request created one of the jobs meanwhile: it exists now.
                Err(JobsError::Conflict) if attempt < 3 => attempt += 1,
                Err(e) => return Err(e),
            }
        }
    }

    /// The jobs `ids` of `tenant` that exist, folded from their streams.
    pub async fn load(
        &self,
        tenant: Uuid,
        ids: &[Uuid],
    ) -> Result<HashMap<Uuid, Loaded>, JobsError> {
        load_in(&self.pool, tenant, ids).await
    }

    /// Runs one command on job `id` of `tenant` (tracking, provider reports): load, decide,
    /// record with `queue`, again on a conflict. The job as it is after, and the cursor.
    pub async fn execute(
        &self,
        tenant: Uuid,
        id: Uuid,
        command: DeliveryCommand,
        metadata: &EventMetadata,
        queue: Queue,
    ) -> Result<(DeliveryJob, Option<Cursor>), JobsError> {
        let mut attempt = 0;
        loop {
            let mut loaded = self
                .load(tenant, &[id])
                .await?
                .remove(&id)
                .ok_or(DeliveryError::NotFound)?;
            let events = decide(&mut loaded.job, command.clone()).await?;
            let write = Write {
                id,
                version: loaded.version,
                events,
                queue,
                send: None,
                provider_message: None,
            };
            match self.record(tenant, metadata, &[write]).await {
                Ok(cursor) => return Ok((loaded.job, cursor)),
                Err(JobsError::Conflict) if attempt < crate::executor::CONFLICT_RETRIES => {
                    attempt += 1;
                    tokio::time::sleep(crate::executor::backoff(attempt)).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Records `writes` of `tenant` in one transaction; `Conflict` (nothing written) if any
    /// job moved since it was loaded.
    pub async fn record(
        &self,
        tenant: Uuid,
        metadata: &EventMetadata,
        writes: &[Write],
    ) -> Result<Option<Cursor>, JobsError> {
        if writes.is_empty() {
            return Ok(None);
        }
        let mut tx = self.pool.begin().await?;
        let cursor = record_in(&mut tx, tenant, metadata, writes).await?;
        tx.commit().await?;
        self.notifier.poke_type(DeliveryJob::TYPE);
        Ok(cursor)
    }
}

/// The events `command` causes on `job` (applied to it), decided by the aggregate's own
/// `handle`.
pub async fn decide(
    job: &mut DeliveryJob,
    command: DeliveryCommand,
) -> Result<Vec<DeliveryEvent>, DeliveryError> {
    let sink = EventSink::default();
    job.handle(command, &(), &sink).await?;
    Ok(sink.collect().await)
}

fn technical(e: impl ToString) -> JobsError {
    JobsError::Store(StoreError::Malformed(e.to_string()))
}

/// [`Jobs::load`] with the caller's executor (a transaction).
pub async fn load_in<'e>(
    db: impl sqlx::PgExecutor<'e>,
    tenant: Uuid,
    ids: &[Uuid],
) -> Result<HashMap<Uuid, Loaded>, JobsError> {
    let streams: Vec<String> = ids
        .iter()
        .map(|id| recorded::stream_id(tenant, *id))
        .collect();
    let events = reader::load_streams(db, DeliveryJob::TYPE, &streams).await?;
    let mut out: HashMap<Uuid, Loaded> = HashMap::with_capacity(ids.len());
    for e in events {
        let id = recorded::entity_of(&e.aggregate_id)
            .ok_or_else(|| technical(format!("delivery job stream {:?}", e.aggregate_id)))?;
        let event: DeliveryEvent = serde_json::from_str(e.payload.get()).map_err(technical)?;
        let loaded = out.entry(id).or_insert_with(|| Loaded {
            job: DeliveryJob::default(),
            version: 0,
            requested: e.cursor,
        });
        loaded.job.apply(event);
        loaded.version = e.sequence;
    }
    Ok(out)
}

/// [`Jobs::request`] in the caller's transaction: every job due at `due_at`, none held.
pub async fn request_in(
    conn: &mut PgConnection,
    tenant: Uuid,
    metadata: &EventMetadata,
    jobs: &[(Uuid, Request)],
    due_at: DateTime<Utc>,
) -> Result<Requested, JobsError> {
    let jobs: Vec<(Uuid, Request, DateTime<Utc>)> = jobs
        .iter()
        .map(|(id, request)| (*id, request.clone(), due_at))
        .collect();
    request_each_in(conn, tenant, metadata, &jobs, false).await
}

/// Requests `jobs` of `tenant`, each due at its own time, in the caller's transaction:
/// their `DeliveryRequested` events and queue rows (campaign fan-outs request their batches
/// this way together with their own progress: a blast spreads its due times over recipients'
/// time zones and its throttle). A job whose id was requested before is left as it is.
///
/// A `Source::Campaign` job's queue row carries its `campaign_id`, so the campaign can hold
/// and count its rows ([`hold_campaign`], [`campaign_pending`]); `held` rows (a fan-out
/// of a paused campaign) are not claimed until released. The queue rows are one multi-row
/// `INSERT` whatever the batch's size (5,000 jobs is a fan-out's batch).
pub async fn request_each_in(
    conn: &mut PgConnection,
    tenant: Uuid,
    metadata: &EventMetadata,
    jobs: &[(Uuid, Request, DateTime<Utc>)],
    held: bool,
) -> Result<Requested, JobsError> {
    request_jobs_in(conn, tenant, metadata, jobs, held, true).await
}

/// [`request_each_in`] for ids the caller knows were never requested (a campaign fan-out's
/// page, whose progress commits with its jobs, so a committed page is never requested
/// again): the log is not probed for them first. Should one exist after all, the append
/// fails the transaction with `Conflict`, nothing is written, and the caller may retry with
/// [`request_each_in`].
pub async fn request_fresh_in(
    conn: &mut PgConnection,
    tenant: Uuid,
    metadata: &EventMetadata,
    jobs: &[(Uuid, Request, DateTime<Utc>)],
    held: bool,
) -> Result<Requested, JobsError> {
    request_jobs_in(conn, tenant, metadata, jobs, held, false).await
}

async fn request_jobs_in(
    conn: &mut PgConnection,
    tenant: Uuid,
    metadata: &EventMetadata,
    jobs: &[(Uuid, Request, DateTime<Utc>)],
    held: bool,
    probe: bool,
) -> Result<Requested, JobsError> {
    let existing: std::collections::BTreeSet<String> = if probe {
        let streams: Vec<String> = jobs
            .iter()
            .map(|(id, _, _)| recorded::stream_id(tenant, *id))
            .collect();
        event_store::reader::existing_streams(&mut *conn, DeliveryJob::TYPE, &streams).await?
    } else {
        Default::default()
    };
    let existing: HashSet<Uuid> = existing
        .iter()
        .filter_map(|s| recorded::entity_of(s))
        .collect();
    let mut out = Requested::default();
    let mut seen = HashSet::new();
    let mut writes = Vec::new();
    // The queue rows of the jobs created now, column by column.
    let (mut channels, mut due, mut campaigns) = (Vec::new(), Vec::new(), Vec::new());
    for (id, request, due_at) in jobs {
        if existing.contains(id) || !seen.insert(*id) {
            out.existing.push(*id);
            continue;
        }
        out.created.push(*id);
        channels.push(request.channel.as_str());
        due.push(*due_at);
        campaigns.push(match request.source {
            Source::Campaign { campaign_id, .. } => Some(campaign_id),
            _ => None,
        });
        writes.push(Write {
            id: *id,
            version: 0,
            events: vec![DeliveryEvent::DeliveryRequested(request.clone())],
            queue: Queue::Keep,
            send: None,
            provider_message: None,
        });
    }
    out.cursor = record_in(conn, tenant, metadata, &writes).await?;
    if !out.created.is_empty() {
        sqlx::query(
            "INSERT INTO delivery_queue (tenant_id, job_id, channel, due_at, campaign_id, held) \
             SELECT $1, u.id, u.channel, u.due_at, u.campaign_id, $6 \
             FROM UNNEST($2::uuid[], $3::text[], $4::timestamptz[], $5::uuid[]) \
               AS u(id, channel, due_at, campaign_id) \
             ON CONFLICT DO NOTHING",
        )
        .bind(tenant)
        .bind(&out.created)
        .bind(&channels)
        .bind(&due)
        .bind(&campaigns)
        .bind(held)
        .execute(&mut *conn)
        .await?;
    }
    if out.cursor.is_none() && !out.existing.is_empty() {
        let stream = recorded::stream_id(tenant, out.existing[0]);
        out.cursor = reader::stream_cursor(&mut *conn, DeliveryJob::TYPE, &stream).await?;
    }
    Ok(out)
}

/// Holds (`held`: a campaign paused) or releases (resumed) every queue row of campaign
/// `campaign_id` of `tenant`, in the caller's transaction (the campaign's pause or resume,
/// so its events and its jobs' state commit together); the number of rows changed.
///
/// A held row is not claimed, whatever its due time; released, it is due as it was (a due
/// time passed meanwhile makes it due at once). Jobs a worker claimed before the hold are
/// not stopped: their batch may already be dispatching. Jobs the campaign requests after
/// the hold must be requested held ([`request_each_in`]). Nothing is appended to the jobs'
/// streams: holding is the queue's state, not a fact about each message. After committing
/// a release, poke the [`Notifier`] so workers look at the queue at once.
pub async fn hold_campaign(
    conn: &mut PgConnection,
    tenant: Uuid,
    campaign_id: Uuid,
    held: bool,
) -> Result<u64, JobsError> {
    let done = sqlx::query(
        "UPDATE delivery_queue SET held = $3 \
         WHERE tenant_id = $1 AND campaign_id = $2 AND held <> $3",
    )
    .bind(tenant)
    .bind(campaign_id)
    .bind(held)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected())
}

/// How many jobs of campaign `campaign_id` of `tenant` are still in the queue (held or not,
/// waiting, deferred, retrying or being dispatched): zero once every job the campaign
/// requested reached an outcome (sent, suppressed, given up, in doubt, cancelled). Read in
/// the caller's transaction, e.g. to decide in the campaign's own that it is complete.
pub async fn campaign_pending(
    conn: &mut PgConnection,
    tenant: Uuid,
    campaign_id: Uuid,
) -> Result<i64, JobsError> {
    let (n,): (i64,) = sqlx::query_as(
        "SELECT count(*) FROM delivery_queue WHERE tenant_id = $1 AND campaign_id = $2",
    )
    .bind(tenant)
    .bind(campaign_id)
    .fetch_one(&mut *conn)
    .await?;
    Ok(n)
}

/// [`Jobs::record`] in the caller's transaction.
pub async fn record_in(
    conn: &mut PgConnection,
    tenant: Uuid,
    metadata: &EventMetadata,
    writes: &[Write],
) -> Result<Option<Cursor>, JobsError> {
    let metadata = serde_json::to_value(metadata.to_map()).map_err(technical)?;
    let mut rows = Vec::new();
    for w in writes {
        let stream = recorded::stream_id(tenant, w.id);
        for (i, e) in w.events.iter().enumerate() {
            rows.push((
                stream.clone(),
                w.version + 1 + i as i64,
                e.event_type(),
                e.event_version(),
                serde_json::to_string(e).map_err(technical)?,
            ));
        }
    }
    // One order of streams for every writer, so two transactions wait instead of deadlocking.
    rows.sort_by(|x, y| (&x.0, x.1).cmp(&(&y.0, y.1)));
    let new: Vec<NewEvent<'_>> = rows
        .iter()
        .map(
            |(stream, sequence, event_type, version, payload)| NewEvent {
                aggregate_type: DeliveryJob::TYPE,
                aggregate_id: stream,
                sequence: *sequence,
                event_type,
                event_version: version,
                payload,
                metadata: &metadata,
            },
        )
        .collect();
    let cursor = append::append(conn, &new).await?;

    let (mut remove, mut due_ids, mut due_at) = (Vec::new(), Vec::new(), Vec::new());
    let (mut send_contacts, mut send_channels, mut send_jobs, mut send_at) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut providers, mut message_ids, mut message_jobs) = (Vec::new(), Vec::new(), Vec::new());
    for w in writes {
        match w.queue {
            Queue::Keep => {}
            Queue::Remove => remove.push(w.id),
            Queue::DueAt(at) => {
                due_ids.push(w.id);
                due_at.push(at);
            }
        }
        if let Some((contact, channel, at)) = w.send {
            send_contacts.push(contact);
            send_channels.push(channel);
            send_jobs.push(w.id);
            send_at.push(at);
        }
        if let Some((provider, id)) = &w.provider_message {
            providers.push(provider.as_str());
            message_ids.push(id.as_str());
            message_jobs.push(w.id);
        }
    }
    if !remove.is_empty() {
        sqlx::query("DELETE FROM delivery_queue WHERE tenant_id = $1 AND job_id = ANY($2)")
            .bind(tenant)
            .bind(&remove)
            .execute(&mut *conn)
            .await?;
    }
    if !due_ids.is_empty() {
        sqlx::query(
            "UPDATE delivery_queue q SET due_at = u.at \
             FROM UNNEST($2::uuid[], $3::timestamptz[]) AS u(id, at) \
             WHERE q.tenant_id = $1 AND q.job_id = u.id",
        )
        .bind(tenant)
        .bind(&due_ids)
        .bind(&due_at)
        .execute(&mut *conn)
        .await?;
    }
    if !send_jobs.is_empty() {
        sqlx::query(
            "INSERT INTO delivery_sends (tenant_id, contact_id, channel, job_id, at) \
             SELECT $1, c, ch, j, a FROM UNNEST($2::uuid[], $3::text[], $4::uuid[], $5::timestamptz[]) \
               AS u(c, ch, j, a) ON CONFLICT DO NOTHING",
        )
        .bind(tenant)
        .bind(&send_contacts)
        .bind(&send_channels)
        .bind(&send_jobs)
        .bind(&send_at)
        .execute(&mut *conn)
        .await?;
    }
    if !message_jobs.is_empty() {
        sqlx::query(
            "INSERT INTO delivery_provider_messages (provider, provider_message_id, tenant_id, job_id) \
             SELECT p, m, $1, j FROM UNNEST($2::text[], $3::text[], $4::uuid[]) AS u(p, m, j) \
             ON CONFLICT DO NOTHING",
        )
        .bind(tenant)
        .bind(&providers)
        .bind(&message_ids)
        .bind(&message_jobs)
        .execute(&mut *conn)
        .await?;
    }
    Ok(cursor)
}
