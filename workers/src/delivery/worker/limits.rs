//! Limits every worker process shares, kept in Postgres: a sending domain's warmup allowance
//! for the day, and a provider's rate (a token bucket). One statement takes what a batch
//! needs, so two processes never both spend the last of an allowance.

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

pub use domain::delivery::warmup::Warmup;

/// The warmup schedules of `tenant`'s sending domains (the `delivery_warmup` read model,
/// configured through `PUT /api/v1/warmup/{domain}`).
pub async fn warmups(pool: &PgPool, tenant: Uuid) -> Result<Vec<Warmup>, sqlx::Error> {
    Ok(projections::warmup::list(pool, tenant)
        .await?
        .iter()
        .map(projections::warmup::WarmupRow::warmup)
        .collect())
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
