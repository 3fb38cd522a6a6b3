//! Claiming due jobs from `delivery_queue`: `FOR UPDATE SKIP LOCKED`, so any number of
//! workers share the queue, and the claim moves `due_at` forward by the lease, so a worker
//! that dies leaves its jobs due again when the lease lapses. Held rows (a paused
//! campaign's) are never claimed: every query here says `NOT held`, the predicate of the
//! partial index `delivery_queue_due`, so held rows cost a claim nothing.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

/// One claimed job.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Claimed {
    pub tenant_id: Uuid,
    pub job_id: Uuid,
    /// How often the row was claimed, this claim included.
    pub claims: i32,
}

/// The claim: `$1` now, `$2` the most rows, `$3` the end of the lease. Public so a test can
/// check its plan uses the partial index.
pub const CLAIM: &str = "WITH due AS ( \
       SELECT tenant_id, job_id FROM delivery_queue WHERE due_at <= $1 AND NOT held \
       ORDER BY due_at LIMIT $2 FOR UPDATE SKIP LOCKED) \
     UPDATE delivery_queue q SET due_at = $3, claims = q.claims + 1 FROM due \
     WHERE q.tenant_id = due.tenant_id AND q.job_id = due.job_id \
     RETURNING q.tenant_id, q.job_id, q.claims";

/// When the next claimable row is due.
pub const NEXT_DUE: &str =
    "SELECT due_at FROM delivery_queue WHERE NOT held ORDER BY due_at LIMIT 1";

/// Claims up to `limit` jobs due at `now` and not held, for `lease`.
pub async fn claim(
    pool: &PgPool,
    now: DateTime<Utc>,
    limit: i64,
    lease: Duration,
) -> Result<Vec<Claimed>, sqlx::Error> {
    let until = now + chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::minutes(5));
    sqlx::query_as(CLAIM)
        .bind(now)
        .bind(limit)
        .bind(until)
        .fetch_all(pool)
        .await
}

/// Makes claimed jobs due again at `at` (given back without a decision, e.g. when the read
/// models are behind or the provider's rate is used up).
pub async fn release(
    pool: &PgPool,
    tenant: Uuid,
    jobs: &[Uuid],
    at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    if jobs.is_empty() {
        return Ok(());
    }
    sqlx::query("UPDATE delivery_queue SET due_at = $3 WHERE tenant_id = $1 AND job_id = ANY($2)")
        .bind(tenant)
        .bind(jobs)
        .bind(at)
        .execute(pool)
        .await?;
    Ok(())
}

/// When the next claimable job is due (`None`: nothing but held rows, or nothing at all).
pub async fn next_due(pool: &PgPool) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
    let row: Option<(DateTime<Utc>,)> = sqlx::query_as(NEXT_DUE).fetch_optional(pool).await?;
    Ok(row.map(|r| r.0))
}
