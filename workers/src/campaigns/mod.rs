//! The campaign worker: takes each campaign with something to do (`campaign_runs`) one step
//! further — starts a scheduled send when it comes due, fans a send out (one delivery job
//! per recipient, in keyset pages of the frozen audience, each page one transaction with its
//! progress), chooses an A/B test's winner after the wait, sees a send complete, and ends a
//! cancelled campaign's pending jobs.
//!
//! A run row is claimed with `FOR UPDATE SKIP LOCKED` and a lease, so any number of workers
//! share the campaigns and a worker that dies leaves its campaign due again when the lease
//! lapses. A restarted fan-out creates nothing twice: it goes on after the last contact a
//! committed page recorded, and job ids are derived from (campaign, contact), so a page
//! requested again is a no-op.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use commands::campaigns::write::{lock_run, AppendFailure, CampaignWriter, StartError};
use commands::delivery::jobs::{self, JobsError, Queue, Write};
use domain::campaign::{job_id, Campaign, CampaignCommand, Phase, VariantFigures};
use domain::delivery::{DeliveryCommand, Request, Source};
use event_store::{Clock, EventMetadata};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// How the worker runs.
#[derive(Debug, Clone)]
pub struct CampaignWorkerConfig {
    /// Recipients per fan-out page (one transaction).
    pub page: i64,
    /// How long a claim holds a campaign (renewed with every page).
    pub lease: Duration,
    /// Idle polling interval (appends usually wake the worker first).
    pub poll: Duration,
    /// How often a fanned-out send looks whether its jobs are all done.
    pub completion_check: Duration,
    /// How long the A/B decision waits for the statistics to reach the log's head.
    pub consistency_timeout: Duration,
}

impl Default for CampaignWorkerConfig {
    fn default() -> Self {
        Self {
            page: 5_000,
            lease: Duration::from_secs(60),
            poll: Duration::from_millis(500),
            completion_check: Duration::from_secs(2),
            consistency_timeout: Duration::from_secs(10),
        }
    }
}

/// Why a step failed (it is retried: nothing was half-written).
#[derive(Debug, thiserror::Error)]
pub enum CampaignWorkerError {
    #[error(transparent)]
    Sql(#[from] sqlx::Error),
    #[error(transparent)]
    Jobs(#[from] JobsError),
    #[error(transparent)]
    Store(#[from] event_store::StoreError),
    #[error("{0}")]
    Command(String),
}

impl From<AppendFailure> for CampaignWorkerError {
    fn from(e: AppendFailure) -> Self {
        Self::Command(e.to_string())
    }
}

impl<E: std::error::Error> From<commands::CommandError<E>> for CampaignWorkerError {
    fn from(e: commands::CommandError<E>) -> Self {
        Self::Command(e.to_string())
    }
}

/// A claimed run row.
#[derive(Debug, Clone, sqlx::FromRow)]
struct Run {
    tenant_id: Uuid,
    campaign_id: Uuid,
    state: String,
}

fn metadata(tenant: Uuid) -> EventMetadata {
    EventMetadata {
        tenant_id: Some(tenant),
        actor: Some("system:campaigns".to_owned()),
        correlation_id: Some(Uuid::now_v7()),
        causation_id: None,
        request_id: None,
        ip: None,
        user_agent: None,
    }
}

/// What a fan-out page did.
enum Paged {
    /// More recipients follow.
    More,
    /// The phase is fanned out (or the campaign no longer sends): stop.
    Done,
}

pub struct CampaignWorker {
    pool: PgPool,
    campaigns: Arc<CampaignWriter>,
    clock: Clock,
    config: CampaignWorkerConfig,
}

impl CampaignWorker {
    pub fn new(
        pool: PgPool,
        campaigns: Arc<CampaignWriter>,
        clock: Clock,
        config: CampaignWorkerConfig,
    ) -> Self {
        Self {
            pool,
            campaigns,
            clock,
            config,
        }
    }

    /// Steps until `cancel`, woken by appends of campaigns through `wake`.
    pub async fn run(self, wake: event_store::wakeup::Wakeup, cancel: CancellationToken) {
        let mut wake = wake.only(&[<Campaign as cqrs_es::Aggregate>::TYPE]);
        while !cancel.is_cancelled() {
            match self.step().await {
                Ok(true) => continue,
                Ok(false) => {}
                Err(e) => tracing::warn!(error = %e, "campaign step failed; retrying"),
            }
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = wake.wait(self.config.poll) => {}
            }
        }
    }

    /// Claims one due campaign and takes it as far as it goes now; whether there was one.
    pub async fn step(&self) -> Result<bool, CampaignWorkerError> {
        let now = self.clock.now();
        let Some(run) = self.claim(now).await? else {
            return Ok(false);
        };
        let result = match run.state.as_str() {
            "scheduled" => self.start(&run, now).await,
            "sending" => self.advance(&run).await,
            "cancelling" => self.cancel_pending(&run).await,
            _ => Ok(()),
        };
        if result.is_err() {
            // Due again after a pause, not after the whole lease.
            self.due_in(&run, Duration::from_secs(1)).await?;
        }
        result.map(|_| true)
    }

    async fn claim(&self, now: DateTime<Utc>) -> Result<Option<Run>, sqlx::Error> {
        sqlx::query_as(
            "UPDATE campaign_runs r SET lease_until = $2 \
             FROM (SELECT tenant_id, campaign_id FROM campaign_runs \
                   WHERE due_at <= $1 AND state <> 'paused' \
                     AND (lease_until IS NULL OR lease_until < $1) \
                   ORDER BY due_at LIMIT 1 FOR UPDATE SKIP LOCKED) d \
             WHERE r.tenant_id = d.tenant_id AND r.campaign_id = d.campaign_id \
             RETURNING r.tenant_id, r.campaign_id, r.state",
        )
        .bind(now)
        .bind(now + self.lease())
        .fetch_optional(&self.pool)
        .await
    }

    fn lease(&self) -> chrono::Duration {
        chrono::Duration::from_std(self.config.lease).unwrap_or(chrono::Duration::seconds(60))
    }

    /// Gives the run back, due again in `after` (unless its state changed meanwhile, which
    /// set its own due time).
    async fn due_in(&self, run: &Run, after: Duration) -> Result<(), sqlx::Error> {
        let at = self.clock.now()
            + chrono::Duration::from_std(after).unwrap_or(chrono::Duration::seconds(1));
        self.due_at(run, at).await
    }

    async fn due_at(&self, run: &Run, at: DateTime<Utc>) -> Result<(), sqlx::Error> {
        sqlx::query(
            "UPDATE campaign_runs SET due_at = $3, lease_until = NULL \
             WHERE tenant_id = $1 AND campaign_id = $2 AND state = $4",
        )
        .bind(run.tenant_id)
        .bind(run.campaign_id)
        .bind(at)
        .bind(&run.state)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// A scheduled send came due: start it (pins, audience). A campaign that cannot start (a
    /// template unpublished since it was scheduled) stays scheduled and is tried each minute.
    async fn start(&self, run: &Run, now: DateTime<Utc>) -> Result<(), CampaignWorkerError> {
        let (tenant, id) = (run.tenant_id, run.campaign_id);
        match self
            .campaigns
            .start(tenant, id, &metadata(tenant), now)
            .await
        {
            Ok(_) => Ok(()),
            Err(StartError::Template { field, reason }) => {
                tracing::warn!(%tenant, campaign = %id, %field, %reason,
                    "a scheduled campaign cannot start; trying again in a minute");
                self.due_in(run, Duration::from_secs(60)).await?;
                Ok(())
            }
            Err(StartError::Command(e)) => Err(e.into()),
        }
    }

    /// A sending campaign: fan out the phase due, page after page; or choose the A/B winner
    /// when the wait is over; or complete it when every job is done.
    async fn advance(&self, run: &Run) -> Result<(), CampaignWorkerError> {
        let (tenant, id) = (run.tenant_id, run.campaign_id);
        loop {
            let campaign = self.campaigns.load(tenant, id).await?;
            if campaign.status != domain::campaign::Status::Sending {
                // Paused or cancelled since the claim: the run row says what comes next.
                return Ok(());
            }
            if let Some(phase) = campaign.phase_due() {
                match self.page(run, phase).await? {
                    Paged::More => continue,
                    Paged::Done => return Ok(()),
                }
            }
            if let Some(due) = campaign.decision_due() {
                let now = self.clock.now();
                if due > now {
                    return Ok(self.due_at(run, due).await?);
                }
                self.choose_winner(run, now).await?;
                continue;
            }
            if campaign.fully_fanned_out() {
                return self.complete(run).await;
            }
            return Ok(self.due_in(run, self.config.poll).await?);
        }
    }

    /// Requests the jobs of one page of recipients of `phase`, recording how far the phase
    /// got (and, on its last page, that it is fanned out) in the same transaction.
    async fn page(&self, run: &Run, phase: Phase) -> Result<Paged, CampaignWorkerError> {
        let (tenant, id) = (run.tenant_id, run.campaign_id);
        let now = self.clock.now();
        let mut tx = self.pool.begin().await?;
        let progress: Option<(String, Option<String>, Option<Uuid>, i64)> = sqlx::query_as(
            "SELECT state, phase, after_contact, phase_queued FROM campaign_runs \
             WHERE tenant_id = $1 AND campaign_id = $2 FOR UPDATE",
        )
        .bind(tenant)
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((state, at_phase, after, phase_queued)) = progress else {
            return Ok(Paged::Done);
        };
        if state != "sending" {
            return Ok(Paged::Done);
        }
        // Loaded under the lock: nothing appends to the campaign while it is held.
        let (campaign, version) = self.campaigns.load_versioned(tenant, id).await?;
        if campaign.phase_due() != Some(phase) {
            return Ok(Paged::More);
        }
        let (after, phase_queued) = match at_phase.as_deref() {
            Some(p) if p == phase.as_str() => (after, phase_queued),
            _ => (None, 0),
        };
        let filter = match phase {
            Phase::All => "",
            Phase::Test => "AND r.variant IS NOT NULL",
            Phase::Remainder => "AND r.variant IS NULL",
        };
        let rows: Vec<(Uuid, Option<String>, Option<String>)> = sqlx::query_as(&format!(
            "SELECT r.contact_id, r.variant, c.time_zone FROM campaign_recipients r \
             LEFT JOIN contacts c ON c.tenant_id = r.tenant_id AND c.id = r.contact_id \
             WHERE r.tenant_id = $1 AND r.campaign_id = $2 \
               AND r.contact_id > COALESCE($3, '00000000-0000-0000-0000-000000000000'::uuid) {filter} \
             ORDER BY r.contact_id LIMIT $4"
        ))
        .bind(tenant)
        .bind(id)
        .bind(after)
        .bind(self.config.page)
        .fetch_all(&mut *tx)
        .await?;
        let mut requests = Vec::with_capacity(rows.len());
        for (i, (contact, variant, zone)) in rows.iter().enumerate() {
            let variant = match phase {
                Phase::Remainder => campaign.winner.clone(),
                _ => variant.clone(),
            };
            let Some(request) = request_for(&campaign, id, *contact, variant) else {
                continue;
            };
            let due = campaign.due_at(phase, phase_queued as u64 + i as u64, zone.as_deref());
            requests.push((job_id(id, *contact), request, due));
        }
        let meta = metadata(tenant);
        // The page's progress commits with its jobs: none of them can exist yet.
        jobs::request_fresh_in(&mut tx, tenant, &meta, &requests, false).await?;
        let queued = phase_queued + rows.len() as i64;
        let last = rows.last().map(|r| r.0);
        sqlx::query(
            "UPDATE campaign_runs SET phase = $3, after_contact = COALESCE($4, after_contact), \
               phase_queued = $5, queued = queued + $6, lease_until = $7 \
             WHERE tenant_id = $1 AND campaign_id = $2",
        )
        .bind(tenant)
        .bind(id)
        .bind(phase.as_str())
        .bind(last)
        .bind(queued)
        .bind(rows.len() as i64)
        .bind(now + self.lease())
        .execute(&mut *tx)
        .await?;
        let done = (rows.len() as i64) < self.config.page;
        if done {
            let events = campaign
                .decide(CampaignCommand::RecordFannedOut {
                    phase,
                    queued: queued as u64,
                    now,
                })
                .map_err(|e| CampaignWorkerError::Command(e.to_string()))?;
            self.campaigns
                .append_in(&mut tx, tenant, id, version, &events, &meta, now)
                .await?;
        }
        tx.commit().await?;
        self.campaigns.poke();
        Ok(Paged::More)
    }

    /// Chooses the A/B winner on the test group's figures (the `campaign_rollups` read model,
    /// once it has reached the log's head).
    async fn choose_winner(
        &self,
        run: &Run,
        now: DateTime<Utc>,
    ) -> Result<(), CampaignWorkerError> {
        let (tenant, id) = (run.tenant_id, run.campaign_id);
        let head = event_store::reader::committed_head(&self.pool).await?;
        projections::status::wait_for(
            &self.pool,
            "campaign_rollups",
            head,
            self.config.consistency_timeout,
        )
        .await?;
        let rows: Vec<(String, i64, i64, i64)> = sqlx::query_as(
            "SELECT variant, COALESCE(SUM(sent), 0)::bigint, COALESCE(SUM(unique_opens), 0)::bigint, \
                    COALESCE(SUM(unique_clicks), 0)::bigint \
             FROM campaign_rollups WHERE tenant_id = $1 AND campaign_id = $2 AND granularity = 'day' \
             GROUP BY variant",
        )
        .bind(tenant)
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        let figures: Vec<VariantFigures> = rows
            .into_iter()
            .map(|(variant, sent, opens, clicks)| VariantFigures {
                variant,
                sent: sent.max(0) as u64,
                unique_opens: opens.max(0) as u64,
                unique_clicks: clicks.max(0) as u64,
            })
            .collect();
        self.campaigns
            .execute(
                tenant,
                id,
                CampaignCommand::ChooseWinner { figures, now },
                &metadata(tenant),
                now,
            )
            .await?;
        Ok(())
    }

    /// Every phase fanned out: sent once no job of the campaign waits any more.
    async fn complete(&self, run: &Run) -> Result<(), CampaignWorkerError> {
        let (tenant, id) = (run.tenant_id, run.campaign_id);
        let waiting: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM delivery_queue WHERE tenant_id = $1 AND campaign_id = $2)",
        )
        .bind(tenant)
        .bind(id)
        .fetch_one(&self.pool)
        .await?;
        if waiting {
            return Ok(self.due_in(run, self.config.completion_check).await?);
        }
        let now = self.clock.now();
        self.campaigns
            .execute(
                tenant,
                id,
                CampaignCommand::Complete { now },
                &metadata(tenant),
                now,
            )
            .await?;
        Ok(())
    }

    /// A cancelled campaign: its pending jobs end as cancelled, a page at a time (jobs being
    /// handed to a provider right now finish); the run row goes when no job waits.
    async fn cancel_pending(&self, run: &Run) -> Result<(), CampaignWorkerError> {
        let (tenant, id) = (run.tenant_id, run.campaign_id);
        loop {
            let mut tx = self.pool.begin().await?;
            lock_run(&mut tx, tenant, id).await?;
            let ids: Vec<Uuid> = sqlx::query_scalar(
                "SELECT job_id FROM delivery_queue WHERE tenant_id = $1 AND campaign_id = $2 \
                 LIMIT $3 FOR UPDATE SKIP LOCKED",
            )
            .bind(tenant)
            .bind(id)
            .bind(self.config.page.min(1_000))
            .fetch_all(&mut *tx)
            .await?;
            if ids.is_empty() {
                let left: bool = sqlx::query_scalar(
                    "SELECT EXISTS (SELECT 1 FROM delivery_queue WHERE tenant_id = $1 AND campaign_id = $2)",
                )
                .bind(tenant)
                .bind(id)
                .fetch_one(&mut *tx)
                .await?;
                if left {
                    drop(tx);
                    return Ok(self.due_in(run, self.config.completion_check).await?);
                }
                sqlx::query(
                    "DELETE FROM campaign_runs WHERE tenant_id = $1 AND campaign_id = $2 \
                     AND state = 'cancelling'",
                )
                .bind(tenant)
                .bind(id)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                return Ok(());
            }
            let loaded = jobs::load_in(&mut *tx, tenant, &ids).await?;
            let mut writes = Vec::new();
            for (job, mut l) in loaded {
                if !l.job.status.pending() {
                    continue;
                }
                let events = jobs::decide(
                    &mut l.job,
                    DeliveryCommand::Cancel {
                        reason: "campaign cancelled".into(),
                    },
                )
                .await
                .map_err(JobsError::from)?;
                writes.push(Write {
                    id: job,
                    version: l.version,
                    events,
                    queue: Queue::Remove,
                    send: None,
                    provider_message: None,
                });
            }
            if writes.is_empty() {
                // Only jobs being dispatched are left: they finish on their own.
                drop(tx);
                return Ok(self.due_in(run, self.config.completion_check).await?);
            }
            jobs::record_in(&mut tx, tenant, &metadata(tenant), &writes).await?;
            tx.commit().await?;
            self.campaigns.poke();
        }
    }
}

/// The delivery job of `contact` for `campaign` (with `variant`'s pinned version); `None`
/// when the variant has no pinned version (cannot happen for a started campaign).
fn request_for(
    campaign: &Campaign,
    id: Uuid,
    contact: Uuid,
    variant: Option<String>,
) -> Option<Request> {
    let pinned = campaign
        .pinned
        .iter()
        .find(|p| p.variant == variant || campaign.settings.ab_test.is_none())?;
    let s = &campaign.settings;
    Some(Request {
        channel: s.channel,
        contact_id: Some(contact),
        to: String::new(),
        template_id: pinned.template_id,
        template_version: pinned.version,
        source: Source::Campaign {
            campaign_id: id,
            variant,
        },
        data: serde_json::json!({"campaign": {"id": id, "name": s.name}}),
        from: s.from.clone(),
        reply_to: s.reply_to.clone(),
        provider_id: s.provider_id,
    })
}
