//! The `delivery_warmup` read model: one row per sending domain whose warmup is configured
//! (deleted when it is removed). The delivery worker follows it; the query API shows it.
//! Keyed by `(tenant_id, domain)`, so a configuration replaces a row written by hand before
//! there was an API.

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use cqrs_es::Aggregate;
use domain::delivery::warmup::{Warmup, WarmupSchedule};
use domain::delivery::warmup_config::{WarmupConfig, WarmupEvent as E};
use event_store::RecordedEvent;
use sqlx::PgExecutor;
use uuid::Uuid;

use crate::{Projection, ProjectionError, Target};

pub struct WarmupProjection;

#[async_trait]
impl Projection for WarmupProjection {
    fn name(&self) -> &'static str {
        "warmup"
    }

    fn table(&self) -> &'static str {
        "delivery_warmup"
    }

    /// Warmups hold no personal data.
    fn needs_personal_data(&self) -> bool {
        false
    }

    fn concerns(&self, e: &RecordedEvent) -> bool {
        e.aggregate_type == WarmupConfig::TYPE
    }

    fn aggregate_types(&self) -> Option<&'static [&'static str]> {
        Some(&[WarmupConfig::TYPE])
    }

    async fn apply(
        &self,
        conn: &mut sqlx::PgConnection,
        target: &Target,
        events: &[RecordedEvent],
    ) -> Result<(), ProjectionError> {
        let table = &target.table;
        // Configurations change rarely: one statement per event, in order.
        for e in events.iter().filter(|e| self.concerns(e)) {
            let Some(id) = e.entity_id() else { continue };
            match crate::decode::<E>(e)? {
                E::WarmupConfigured {
                    domain,
                    started_on,
                    time_zone,
                    ramp,
                    growth,
                    ceiling,
                } => {
                    let ramp: Vec<i64> = ramp.iter().map(|n| to_i64(*n)).collect();
                    sqlx::query(&format!(
                        "INSERT INTO {table} AS w (tenant_id, domain, started_on, time_zone, ramp, \
                           growth, ceiling, updated_at, id, created_at, version) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $8, $10) \
                         ON CONFLICT (tenant_id, domain) DO UPDATE SET \
                           started_on = EXCLUDED.started_on, time_zone = EXCLUDED.time_zone, \
                           ramp = EXCLUDED.ramp, growth = EXCLUDED.growth, \
                           ceiling = EXCLUDED.ceiling, updated_at = EXCLUDED.updated_at, \
                           id = EXCLUDED.id, \
                           created_at = CASE WHEN w.id = EXCLUDED.id THEN w.created_at \
                                             ELSE EXCLUDED.created_at END, \
                           version = EXCLUDED.version \
                         WHERE w.id IS DISTINCT FROM EXCLUDED.id OR w.version < EXCLUDED.version"
                    ))
                    .bind(e.tenant_id)
                    .bind(&domain)
                    .bind(started_on)
                    .bind(&time_zone)
                    .bind(&ramp)
                    .bind(growth)
                    .bind(ceiling.map(to_i64))
                    .bind(e.recorded_at)
                    .bind(id)
                    .bind(e.sequence)
                    .persistent(false)
                    .execute(&mut *conn)
                    .await?;
                }
                E::WarmupRemoved { .. } => {
                    sqlx::query(&format!(
                        "DELETE FROM {table} WHERE tenant_id = $1 AND id = $2 AND version < $3"
                    ))
                    .bind(e.tenant_id)
                    .bind(id)
                    .bind(e.sequence)
                    .persistent(false)
                    .execute(&mut *conn)
                    .await?;
                }
            }
        }
        Ok(())
    }
}

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// A row of `delivery_warmup`.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct WarmupRow {
    pub domain: String,
    pub started_on: NaiveDate,
    pub time_zone: String,
    pub ramp: Vec<i64>,
    pub growth: f64,
    pub ceiling: Option<i64>,
    pub updated_at: DateTime<Utc>,
}

impl WarmupRow {
    /// The warmup the row configures.
    pub fn warmup(&self) -> Warmup {
        Warmup {
            domain: self.domain.to_ascii_lowercase(),
            started_on: self.started_on,
            time_zone: self.time_zone.clone(),
            schedule: WarmupSchedule {
                ramp: self.ramp.iter().map(|n| (*n).max(0) as u64).collect(),
                growth: self.growth,
                ceiling: self.ceiling.map(|c| c.max(0) as u64),
            },
        }
    }
}

const COLUMNS: &str = "domain, started_on, time_zone, ramp, growth, ceiling, updated_at";

/// The warmups of `tenant`'s sending domains, by domain.
pub async fn list<'e>(
    db: impl PgExecutor<'e>,
    tenant: Uuid,
) -> Result<Vec<WarmupRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM delivery_warmup WHERE tenant_id = $1 ORDER BY domain"
    ))
    .bind(tenant)
    .persistent(false)
    .fetch_all(db)
    .await
}

/// The warmup of `tenant`'s sending domain `domain` (lower-cased), if one is configured.
pub async fn get<'e>(
    db: impl PgExecutor<'e>,
    tenant: Uuid,
    domain: &str,
) -> Result<Option<WarmupRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM delivery_warmup WHERE tenant_id = $1 AND lower(domain) = $2"
    ))
    .bind(tenant)
    .bind(domain)
    .persistent(false)
    .fetch_optional(db)
    .await
}

/// How many messages each `(scope, window_end)` took from its allowance (missing: none).
pub async fn used<'e>(
    db: impl PgExecutor<'e>,
    tenant: Uuid,
    windows: &[(String, DateTime<Utc>)],
) -> Result<Vec<(String, DateTime<Utc>, i64)>, sqlx::Error> {
    let (scopes, ends): (Vec<String>, Vec<DateTime<Utc>>) = windows.iter().cloned().unzip();
    sqlx::query_as(
        "SELECT scope, window_end, used FROM delivery_allowances WHERE tenant_id = $1 \
         AND (scope, window_end) IN (SELECT * FROM UNNEST($2::text[], $3::timestamptz[]))",
    )
    .bind(tenant)
    .bind(&scopes)
    .bind(&ends)
    .persistent(false)
    .fetch_all(db)
    .await
}
