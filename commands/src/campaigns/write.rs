//! The one write path of campaigns: a command's events appended together with what they mean
//! for the write-side tables (`campaign_runs`, `campaign_recipients`, held delivery jobs), in
//! one transaction that first locks the campaign's run row — so a pause and a fan-out batch
//! take turns, and the tables never disagree with the log.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use domain::campaign::{Campaign, CampaignCommand, CampaignError, CampaignEvent, Pinned};
use domain::template::Template;
use event_store::append::AppendError;
use event_store::{reader, Cursor, EventMetadata};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::delivery::jobs::{self, JobsError};
use crate::error::CommandError;
use crate::executor::{Accepted, Decided, Executor, CONFLICT_RETRIES};

type Failure = CommandError<CampaignError>;

fn technical(e: impl Into<crate::error::Technical>) -> Failure {
    CommandError::Technical(e.into())
}

/// Why a send could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A template of the campaign cannot be sent (missing, deleted, unpublished, of another
    /// channel): the field and why.
    #[error("{field}: {reason}")]
    Template { field: String, reason: String },
    #[error(transparent)]
    Command(#[from] Failure),
}

/// Campaign commands with their write-side effects.
pub struct CampaignWriter {
    pool: PgPool,
    executor: Executor<Campaign>,
    templates: Arc<Executor<Template>>,
}

impl CampaignWriter {
    pub fn new(
        pool: PgPool,
        notifier: event_store::wakeup::Notifier,
        templates: Arc<Executor<Template>>,
    ) -> Self {
        Self {
            executor: Executor::new(pool.clone(), notifier, ()),
            pool,
            templates,
        }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The campaign `id` of `tenant` as of its latest event.
    pub async fn load(&self, tenant: Uuid, id: Uuid) -> Result<Campaign, Failure> {
        self.executor.load(tenant, id).await
    }

    /// Runs `command` on campaign `id` of `tenant` with its effects; again on a conflict.
    pub async fn execute(
        &self,
        tenant: Uuid,
        id: Uuid,
        command: CampaignCommand,
        metadata: &EventMetadata,
        now: DateTime<Utc>,
    ) -> Result<Accepted, Failure> {
        self.run(tenant, id, metadata, now, |_, c| {
            let command = command.clone();
            Box::pin(async move { c.decide(command).map_err(CommandError::Rejected) })
        })
        .await
    }

    /// Starts sending campaign `id` now (send now, or a schedule that came due): the
    /// published version of each of its templates is pinned and the audience fixed — the
    /// members of its segments minus those of its excluded ones at this moment, written to
    /// `campaign_recipients` (an A/B test's test group drawn from it at random, split evenly)
    /// — in the transaction that appends `CampaignSendingStarted`.
    pub async fn start(
        &self,
        tenant: Uuid,
        id: Uuid,
        metadata: &EventMetadata,
        now: DateTime<Utc>,
    ) -> Result<Accepted, StartError> {
        let campaign = self.load(tenant, id).await?;
        let pinned = self.pin(tenant, &campaign).await?;
        Ok(self
            .run(tenant, id, metadata, now, |conn, c| {
                let pinned = pinned.clone();
                Box::pin(async move {
                    // Refused before the audience is written (a sending campaign, say).
                    c.decide(CampaignCommand::Start {
                        pinned: pinned.clone(),
                        audience: 0,
                        test_group: 0,
                        now,
                    })
                    .map_err(CommandError::Rejected)?;
                    let (audience, test_group) = freeze(conn, tenant, id, c).await?;
                    c.decide(CampaignCommand::Start {
                        pinned,
                        audience,
                        test_group,
                        now,
                    })
                    .map_err(CommandError::Rejected)
                })
            })
            .await?)
    }

    /// The published version of each template the campaign sends.
    async fn pin(&self, tenant: Uuid, campaign: &Campaign) -> Result<Vec<Pinned>, StartError> {
        let mut out = Vec::new();
        for (variant, template_id) in campaign.settings.templates() {
            let field = match variant {
                Some(v) => format!("ab_test.variants[{v}].template_id"),
                None => "template_id".to_owned(),
            };
            let bad = |reason: &str| StartError::Template {
                field: field.clone(),
                reason: reason.to_owned(),
            };
            let t = self
                .templates
                .load(tenant, template_id)
                .await
                .map_err(|e| StartError::Command(technical(e)))?;
            if !t.live() {
                return Err(bad("no such template"));
            }
            if t.channel != campaign.settings.channel {
                return Err(bad("the template is of another channel"));
            }
            let Some(version) = t.published_version else {
                return Err(bad("the template has no published version"));
            };
            out.push(Pinned {
                variant: variant.map(str::to_owned),
                template_id,
                version,
            });
        }
        Ok(out)
    }

    /// Locks the run row, loads the campaign, lets `decide` write what it must and choose
    /// the events, appends them with their effects, commits; again on a conflict.
    async fn run<F>(
        &self,
        tenant: Uuid,
        id: Uuid,
        metadata: &EventMetadata,
        now: DateTime<Utc>,
        decide: F,
    ) -> Result<Accepted, Failure>
    where
        F: for<'c> Fn(
            &'c mut PgConnection,
            &'c Campaign,
        )
            -> futures::future::BoxFuture<'c, Result<Vec<CampaignEvent>, Failure>>,
    {
        let mut attempt = 0;
        loop {
            let mut tx = self.pool.begin().await.map_err(technical)?;
            lock_run(&mut tx, tenant, id).await.map_err(technical)?;
            let (campaign, version) = self.executor.load_versioned(tenant, id).await?;
            let events = decide(&mut tx, &campaign).await?;
            if events.is_empty() {
                let stream = event_store::recorded::stream_id(tenant, id);
                let cursor = reader::stream_cursor(
                    &mut *tx,
                    <Campaign as cqrs_es::Aggregate>::TYPE,
                    &stream,
                )
                .await
                .map_err(technical)?
                .unwrap_or(Cursor::ZERO);
                return Ok(Accepted { id, cursor });
            }
            match append_in(
                &self.executor,
                &mut tx,
                tenant,
                id,
                version,
                &events,
                metadata,
                now,
            )
            .await
            {
                Ok(cursor) => {
                    tx.commit().await.map_err(technical)?;
                    self.executor.poke();
                    return Ok(Accepted { id, cursor });
                }
                Err(AppendFailure::Conflict) if attempt < CONFLICT_RETRIES => {
                    attempt += 1;
                    drop(tx);
                    tokio::time::sleep(crate::executor::backoff(attempt)).await;
                }
                Err(AppendFailure::Conflict) => return Err(CommandError::Conflict),
                Err(AppendFailure::Technical(e)) => return Err(CommandError::Technical(e)),
            }
        }
    }

    /// Appends `events` (decided on `version`) to campaign `id` in the caller's transaction,
    /// with their effects: for the campaign worker, whose fan-out batches record the end of
    /// a phase in the batch's own transaction. Lock the run row first ([`lock_run`]).
    #[allow(clippy::too_many_arguments)]
    pub async fn append_in(
        &self,
        conn: &mut PgConnection,
        tenant: Uuid,
        id: Uuid,
        version: usize,
        events: &[CampaignEvent],
        metadata: &EventMetadata,
        now: DateTime<Utc>,
    ) -> Result<Cursor, AppendFailure> {
        append_in(
            &self.executor,
            conn,
            tenant,
            id,
            version,
            events,
            metadata,
            now,
        )
        .await
    }

    /// The campaign and its version (the sequence of its last event).
    pub async fn load_versioned(
        &self,
        tenant: Uuid,
        id: Uuid,
    ) -> Result<(Campaign, usize), Failure> {
        self.executor.load_versioned(tenant, id).await
    }

    /// Wakes the log's tails after a transaction that appended through [`Self::append_in`].
    pub fn poke(&self) {
        self.executor.poke();
    }
}

/// Why an append did not happen.
#[derive(Debug, thiserror::Error)]
pub enum AppendFailure {
    #[error("the campaign was changed concurrently")]
    Conflict,
    #[error(transparent)]
    Technical(crate::error::Technical),
}

impl From<sqlx::Error> for AppendFailure {
    fn from(e: sqlx::Error) -> Self {
        Self::Technical(e.into())
    }
}

impl From<JobsError> for AppendFailure {
    fn from(e: JobsError) -> Self {
        match e {
            JobsError::Conflict => Self::Conflict,
            e => Self::Technical(e.into()),
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn append_in(
    executor: &Executor<Campaign>,
    conn: &mut PgConnection,
    tenant: Uuid,
    id: Uuid,
    version: usize,
    events: &[CampaignEvent],
    metadata: &EventMetadata,
    now: DateTime<Utc>,
) -> Result<Cursor, AppendFailure> {
    let decided: Vec<Decided<CampaignEvent>> = events
        .iter()
        .enumerate()
        .map(|(i, e)| Decided {
            id,
            version: version + i,
            event: e.clone(),
        })
        .collect();
    let cursor = executor
        .append_decided(conn, tenant, &decided, metadata)
        .await
        .map_err(|e| match e {
            AppendError::Conflict => AppendFailure::Conflict,
            AppendError::Store(e) => AppendFailure::Technical(e.into()),
        })?
        .unwrap_or(Cursor::ZERO);
    for e in events {
        effect(conn, tenant, id, e, now).await?;
    }
    Ok(cursor)
}

/// Locks campaign `id`'s run row (if it has one) until the transaction ends.
pub async fn lock_run(conn: &mut PgConnection, tenant: Uuid, id: Uuid) -> sqlx::Result<()> {
    sqlx::query("SELECT 1 FROM campaign_runs WHERE tenant_id = $1 AND campaign_id = $2 FOR UPDATE")
        .bind(tenant)
        .bind(id)
        .fetch_optional(conn)
        .await?;
    Ok(())
}

/// Sets the run row's state, due now, creating it if needed.
async fn set_run(
    conn: &mut PgConnection,
    tenant: Uuid,
    id: Uuid,
    state: &str,
    due_at: DateTime<Utc>,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO campaign_runs (tenant_id, campaign_id, state, due_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (tenant_id, campaign_id) DO UPDATE \
           SET state = excluded.state, due_at = excluded.due_at, lease_until = NULL",
    )
    .bind(tenant)
    .bind(id)
    .bind(state)
    .bind(due_at)
    .execute(conn)
    .await?;
    Ok(())
}

async fn drop_run(conn: &mut PgConnection, tenant: Uuid, id: Uuid) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM campaign_runs WHERE tenant_id = $1 AND campaign_id = $2")
        .bind(tenant)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// What an event means for the write-side tables.
async fn effect(
    conn: &mut PgConnection,
    tenant: Uuid,
    id: Uuid,
    event: &CampaignEvent,
    now: DateTime<Utc>,
) -> Result<(), AppendFailure> {
    use CampaignEvent as E;
    match event {
        E::CampaignCreated { .. } | E::CampaignSettingsChanged { .. } => {}
        E::CampaignScheduled { starts_at, .. } => {
            set_run(conn, tenant, id, "scheduled", *starts_at).await?
        }
        E::CampaignUnscheduled | E::CampaignSent { .. } => drop_run(conn, tenant, id).await?,
        E::CampaignDeleted => {
            drop_run(conn, tenant, id).await?;
            sqlx::query(
                "DELETE FROM campaign_recipients WHERE tenant_id = $1 AND campaign_id = $2",
            )
            .bind(tenant)
            .bind(id)
            .execute(&mut *conn)
            .await?;
        }
        E::CampaignSendingStarted { .. } | E::CampaignWinnerChosen { .. } => {
            set_run(conn, tenant, id, "sending", now).await?
        }
        E::CampaignFannedOut { .. } => {
            sqlx::query(
                "UPDATE campaign_runs SET phase = NULL, after_contact = NULL, phase_queued = 0, \
                   due_at = $3 WHERE tenant_id = $1 AND campaign_id = $2",
            )
            .bind(tenant)
            .bind(id)
            .bind(now)
            .execute(&mut *conn)
            .await?;
        }
        E::CampaignPaused { .. } => {
            set_run(conn, tenant, id, "paused", now).await?;
            jobs::hold_campaign(conn, tenant, id, true).await?;
        }
        E::CampaignResumed { .. } => {
            set_run(conn, tenant, id, "sending", now).await?;
            jobs::hold_campaign(conn, tenant, id, false).await?;
        }
        E::CampaignCancelled { .. } => {
            set_run(conn, tenant, id, "cancelling", now).await?;
            jobs::hold_campaign(conn, tenant, id, true).await?;
        }
    }
    Ok(())
}

/// Writes the audience of campaign `id` to `campaign_recipients`: members of any included
/// segment who are in no excluded one, as of this transaction. With an A/B test, the test
/// group (its size from [`domain::campaign::AbTest::test_group`]) is drawn in a random order
/// fixed by the campaign (md5 of campaign and contact) and dealt round the variants, so each
/// gets the same number (±1). The audience's size and the test group's.
async fn freeze(
    conn: &mut PgConnection,
    tenant: Uuid,
    id: Uuid,
    campaign: &Campaign,
) -> Result<(u64, u64), Failure> {
    let s = &campaign.settings;
    sqlx::query("DELETE FROM campaign_recipients WHERE tenant_id = $1 AND campaign_id = $2")
        .bind(tenant)
        .bind(id)
        .execute(&mut *conn)
        .await
        .map_err(technical)?;
    let audience = sqlx::query(
        "INSERT INTO campaign_recipients (tenant_id, campaign_id, contact_id) \
         SELECT DISTINCT $1::uuid, $2::uuid, m.contact_id FROM segment_members m \
         WHERE m.tenant_id = $1 AND m.segment_id = ANY($3) \
           AND NOT EXISTS (SELECT 1 FROM segment_members x WHERE x.tenant_id = $1 \
                           AND x.segment_id = ANY($4) AND x.contact_id = m.contact_id)",
    )
    .bind(tenant)
    .bind(id)
    .bind(&s.segments)
    .bind(&s.excluded_segments)
    .execute(&mut *conn)
    .await
    .map_err(technical)?
    .rows_affected();
    let Some(ab) = &s.ab_test else {
        return Ok((audience, 0));
    };
    let test_group = ab.test_group(audience);
    let variants: Vec<&str> = ab.variants.iter().map(|v| v.name.as_str()).collect();
    sqlx::query(
        "UPDATE campaign_recipients r SET variant = ($4::text[])[1 + (d.rn - 1) % cardinality($4::text[])] \
         FROM (SELECT contact_id, row_number() OVER (ORDER BY md5($2::text || contact_id::text)) AS rn \
               FROM campaign_recipients WHERE tenant_id = $1 AND campaign_id = $2) d \
         WHERE r.tenant_id = $1 AND r.campaign_id = $2 AND r.contact_id = d.contact_id \
           AND d.rn <= $3",
    )
    .bind(tenant)
    .bind(id)
    .bind(test_group as i64)
    .bind(&variants)
    .execute(&mut *conn)
    .await
    .map_err(technical)?;
    Ok((audience, test_group))
}
