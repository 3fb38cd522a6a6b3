//! The segment refresher: re-evaluates whole segments.
//!
//! Requests come from the evaluator (a segment created, its rule changed, deleted) and from
//! a schedule (rules on relative dates and event windows change truth with time alone).
//! A request is claimed with a lease (no transaction stays open while a segment of a million
//! contacts is walked). The segment's rule runs as SQL over the contacts read model, a page
//! of contacts at a time, to find whose membership differs; those contacts are then decided
//! in memory on rows read `FOR SHARE` inside the transaction that records the change, so a
//! concurrent contact change is either seen here or handled by the evaluator after it.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;
use domain::segment::{MembershipReason, Segment, SegmentEvent, SegmentKind};
use event_store::wakeup::Notifier;
use event_store::Clock;
use sqlx::{PgPool, Postgres, QueryBuilder};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::definitions::Definitions;
use super::{decide::decide, metadata, WorkerError};
use commands::segments::membership::{self, Decision};
use event_store::follow::pause;

/// Contacts per page of a refresh.
const PAGE: i64 = 5000;
/// How long a claim lasts without renewal.
const LEASE_SECS: i64 = 120;

pub struct Refresher {
    pool: PgPool,
    clock: Clock,
    notifier: Notifier,
    /// How often rules on relative dates are re-evaluated.
    every: Duration,
    /// Cancelled when the refresher stops: a refresh ends between two pages.
    stop: CancellationToken,
}

/// What one refresh changed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Refreshed {
    pub entered: usize,
    pub exited: usize,
}

impl Refresher {
    pub fn new(pool: PgPool, clock: Clock, every: Duration) -> Self {
        Self {
            notifier: Notifier::start(pool.clone()),
            pool,
            clock,
            every,
            stop: CancellationToken::new(),
        }
    }

    /// Works on requests until `cancel`, and queues time-dependent segments every `every`.
    pub async fn run(mut self, cancel: CancellationToken) {
        self.stop = cancel.clone();
        let mut scheduled = Instant::now();
        while !cancel.is_cancelled() {
            if scheduled.elapsed() >= self.every {
                scheduled = Instant::now();
                if let Err(e) = self.schedule().await {
                    tracing::warn!(error = %e, "segment refresher: cannot schedule");
                }
            }
            // A refresh in progress stops between two pages (each page's transaction runs
            // to its end); its request stays, and it is claimed again.
            let worked = self.work_once().await;
            match worked {
                Err(_) if cancel.is_cancelled() => return,
                Ok(true) => continue,
                Ok(false) => {
                    if pause(&cancel, Duration::from_millis(200)).await {
                        return;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "segment refresher: refresh failed; retrying");
                    if pause(&cancel, Duration::from_secs(1)).await {
                        return;
                    }
                }
            }
        }
    }

    /// Queues every live dynamic segment whose rule depends on time.
    pub async fn schedule(&self) -> Result<(), WorkerError> {
        let due: super::definitions::Changed = Definitions::load(&self.pool)
            .await?
            .time_dependent()
            .into_iter()
            .collect();
        let mut conn = self.pool.acquire().await?;
        Ok(membership::queue_refresh(&mut conn, &due).await?)
    }

    /// Claims and refreshes one requested segment; false if none was waiting.
    pub async fn work_once(&self) -> Result<bool, WorkerError> {
        let claimed: Option<(Uuid, Uuid, DateTime<Utc>)> = sqlx::query_as(
            "UPDATE segment_refresh r SET claimed_until = now() + make_interval(secs => $1) \
             FROM (SELECT tenant_id, segment_id FROM segment_refresh \
                   WHERE claimed_until IS NULL OR claimed_until < now() \
                   ORDER BY requested_at LIMIT 1 FOR UPDATE SKIP LOCKED) q \
             WHERE r.tenant_id = q.tenant_id AND r.segment_id = q.segment_id \
             RETURNING r.tenant_id, r.segment_id, r.requested_at",
        )
        .bind(LEASE_SECS as f64)
        .fetch_optional(&self.pool)
        .await?;
        let Some((tenant, segment, requested_at)) = claimed else {
            return Ok(false);
        };
        let result = self.refresh(tenant, segment).await;
        // Done: drop the request unless it was requested again meanwhile; either way, the
        // claim ends.
        sqlx::query(
            "WITH gone AS (DELETE FROM segment_refresh WHERE tenant_id = $1 AND segment_id = $2 \
                           AND requested_at = $3 AND $4 RETURNING 1) \
             UPDATE segment_refresh SET claimed_until = NULL \
             WHERE tenant_id = $1 AND segment_id = $2 AND NOT EXISTS (SELECT 1 FROM gone)",
        )
        .bind(tenant)
        .bind(segment)
        .bind(requested_at)
        .bind(result.is_ok())
        .execute(&self.pool)
        .await?;
        result.map(|_| true)
    }

    /// Re-evaluates `segment` of `tenant` for every contact.
    pub async fn refresh(&self, tenant: Uuid, segment: Uuid) -> Result<Refreshed, WorkerError> {
        let definition = load(&self.pool, tenant, segment).await?;
        let now = self.clock.now();
        let mut total = Refreshed::default();
        let mut after = Uuid::nil();
        loop {
            if self.stop.is_cancelled() {
                return Err(WorkerError::Stopping);
            }
            let page: Vec<(Uuid, bool, bool)> =
                if definition.live() && definition.kind == SegmentKind::Dynamic {
                    let Some(rule) = &definition.compiled else {
                        break;
                    };
                    let mut qb = QueryBuilder::<Postgres>::new("SELECT c.id, ");
                    projections::segment_sql::push_rule(&mut qb, rule, now);
                    qb.push(
                    ", EXISTS (SELECT 1 FROM segment_members m WHERE m.tenant_id = c.tenant_id \
                     AND m.contact_id = c.id AND m.segment_id = ",
                )
                .push_bind(segment)
                .push(") FROM contacts c WHERE c.tenant_id = ")
                .push_bind(tenant)
                .push(" AND c.id > ")
                .push_bind(after)
                .push(" ORDER BY c.id LIMIT ")
                .push_bind(PAGE);
                    qb.build_query_as()
                        .persistent(false)
                        .fetch_all(&self.pool)
                        .await?
                } else if definition.exists && !definition.live() {
                    // Deleted: everyone leaves.
                    sqlx::query_as(
                        "SELECT contact_id, false, true FROM segment_members WHERE tenant_id = $1 \
                     AND segment_id = $2 AND contact_id > $3 ORDER BY contact_id LIMIT $4",
                    )
                    .bind(tenant)
                    .bind(segment)
                    .bind(after)
                    .bind(PAGE)
                    .fetch_all(&self.pool)
                    .await?
                } else {
                    vec![]
                };
            let Some(last) = page.last().map(|r| r.0) else {
                break;
            };
            after = last;
            let differs: Vec<Uuid> = page
                .iter()
                .filter(|(_, matches, member)| matches != member)
                .map(|(id, _, _)| *id)
                .collect();
            let written = self
                .settle(tenant, segment, &definition, &differs, now)
                .await?;
            total.entered += written.entered;
            total.exited += written.exited;
            sqlx::query(
                "UPDATE segment_refresh SET claimed_until = now() + make_interval(secs => $3) \
                 WHERE tenant_id = $1 AND segment_id = $2",
            )
            .bind(tenant)
            .bind(segment)
            .bind(LEASE_SECS as f64)
            .execute(&self.pool)
            .await?;
            if (page.len() as i64) < PAGE {
                break;
            }
        }
        tracing::debug!(%tenant, %segment, entered = total.entered, exited = total.exited, "segment refreshed");
        Ok(total)
    }

    /// Records the membership of `ids` in `segment`, decided on rows locked in this
    /// transaction; retried when another writer got to one of their streams first.
    async fn settle(
        &self,
        tenant: Uuid,
        segment: Uuid,
        definition: &Segment,
        ids: &[Uuid],
        now: DateTime<Utc>,
    ) -> Result<membership::Written, WorkerError> {
        if ids.is_empty() {
            return Ok(membership::Written::default());
        }
        let mut attempt: u32 = 0;
        loop {
            attempt += 1;
            let mut tx = self.pool.begin().await?;
            let decisions = match (&definition.compiled, definition.live()) {
                (Some(rule), true) => {
                    decide(&mut tx, tenant, ids, &[(segment, rule.clone())], now, true).await?
                }
                _ => ids
                    .iter()
                    .map(|c| Decision {
                        contact_id: *c,
                        considered: BTreeSet::from([segment]),
                        target: BTreeSet::new(),
                        reason: MembershipReason::SegmentDeleted,
                    })
                    .collect(),
            };
            match membership::write(&mut tx, tenant, &decisions, &metadata(tenant), now).await {
                Ok(w) => {
                    tx.commit().await?;
                    if w.cursor.is_some() {
                        self.notifier.poke();
                    }
                    return Ok(w);
                }
                Err(event_store::append::AppendError::Conflict) if attempt < 20 => {
                    drop(tx);
                    tokio::time::sleep(Duration::from_millis(5 * u64::from(attempt))).await;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
}

/// Segment `id` of `tenant`, folded from its stream.
pub async fn load(pool: &PgPool, tenant: Uuid, id: Uuid) -> Result<Segment, WorkerError> {
    let stream = [event_store::recorded::stream_id(tenant, id)];
    let mut s = Segment::default();
    for e in event_store::reader::load_streams(pool, Segment::TYPE, &stream).await? {
        s.apply(e.decode::<SegmentEvent>()?);
    }
    Ok(s)
}
