//! Limits every worker process shares, kept in Postgres: a sending domain's warmup allowance
//! for the day, and a provider's rate (a token bucket). One statement takes what a batch
//! needs, so two processes never both spend the last of an allowance.

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use domain::delivery::warmup::{Allowance, WarmupSchedule};
use sqlx::PgPool;
use uuid::Uuid;

/// A domain's warmup as configured.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Warmup {
    pub domain: String,
    pub started_on: NaiveDate,
    pub time_zone: String,
    pub ramp: Vec<i64>,
    pub growth: f64,
    pub ceiling: Option<i64>,
}

impl Warmup {
    pub fn schedule(&self) -> WarmupSchedule {
        WarmupSchedule {
            ramp: self.ramp.iter().map(|n| (*n).max(0) as u64).collect(),
            growth: self.growth,
            ceiling: self.ceiling.map(|c| c.max(0) as u64),
        }
    }

    /// Today's allowance at `now` and when today's window ends (the next one opens).
    pub fn today(&self, now: DateTime<Utc>) -> (Allowance, DateTime<Utc>) {
        let zone: Tz = self.time_zone.parse().unwrap_or(Tz::UTC);
        self.schedule().at(self.started_on, zone, now)
    }
}

/// The warmup schedules of `tenant`'s sending domains.
pub async fn warmups(pool: &PgPool, tenant: Uuid) -> Result<Vec<Warmup>, sqlx::Error> {
    sqlx::query_as(
        "SELECT domain, started_on, time_zone, ramp, growth, ceiling FROM delivery_warmup \
         WHERE tenant_id = $1",
    )
    .bind(tenant)
    .fetch_all(pool)
    .await
}

/// Takes up to `want` of `limit` for the window ending at `window`; how many were granted.
pub async fn take_allowance(
    pool: &PgPool,
    tenant: Uuid,
    scope: &str,
    window: DateTime<Utc>,
    limit: i64,
    want: i64,
) -> Result<i64, sqlx::Error> {
    // Insert the window's row or lock it, then grant what is left (never more).
    let mut tx = pool.begin().await?;
    sqlx::query(
        "INSERT INTO delivery_allowances (tenant_id, scope, window_end, used) \
         VALUES ($1, $2, $3, 0) ON CONFLICT DO NOTHING",
    )
    .bind(tenant)
    .bind(scope)
    .bind(window)
    .execute(&mut *tx)
    .await?;
    let (used,): (i64,) = sqlx::query_as(
        "SELECT used FROM delivery_allowances \
         WHERE tenant_id = $1 AND scope = $2 AND window_end = $3 FOR UPDATE",
    )
    .bind(tenant)
    .bind(scope)
    .bind(window)
    .fetch_one(&mut *tx)
    .await?;
    let granted = want.min((limit - used).max(0));
    if granted > 0 {
        sqlx::query(
            "UPDATE delivery_allowances SET used = used + $4 \
             WHERE tenant_id = $1 AND scope = $2 AND window_end = $3",
        )
        .bind(tenant)
        .bind(scope)
        .bind(window)
        .bind(granted)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(granted)
}

/// Takes up to `want` tokens from the bucket `scope` refilled at `rate` per second (holding
/// at most one second's worth); how many were granted.
pub async fn take_tokens(
    pool: &PgPool,
    tenant: Uuid,
    scope: &str,
    rate: f64,
    want: i64,
    now: DateTime<Utc>,
) -> Result<i64, sqlx::Error> {
    let (granted,): (f64,) = sqlx::query_as(
        "WITH b AS ( \
           INSERT INTO delivery_rate_buckets AS r (tenant_id, scope, tokens, refreshed_at) \
           VALUES ($1, $2, $3, $5) \
           ON CONFLICT (tenant_id, scope) DO UPDATE SET \
             tokens = LEAST($3, r.tokens + $3 * GREATEST(0, EXTRACT(EPOCH FROM ($5 - r.refreshed_at)))), \
             refreshed_at = GREATEST(r.refreshed_at, $5) \
           RETURNING r.tokens), \
         g AS (SELECT LEAST(floor(tokens), $4::float8) AS n FROM b) \
         UPDATE delivery_rate_buckets SET tokens = tokens - (SELECT n FROM g) \
         WHERE tenant_id = $1 AND scope = $2 RETURNING (SELECT n FROM g)",
    )
    .bind(tenant)
    .bind(scope)
    .bind(rate)
    .bind(want as f64)
    .bind(now)
    .fetch_one(pool)
    .await?;
    Ok(granted.max(0.0) as i64)
}
