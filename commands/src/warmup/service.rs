//! The warmups service: configure (or replace) a sending domain's daily ramp, or stop it.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use domain::delivery::warmup::{Warmup, WarmupStatus};
use domain::delivery::warmup_config::{
    stream_id, valid_domain, WarmupCommand, WarmupConfig, WarmupConfigError,
};
use domain::TenantId;
use event_store::EventMetadata;
use sqlx::PgPool;
use uuid::Uuid;

use super::body::NewWarmup;
use crate::executor::{Accepted, Executor};
use crate::CommandError;

/// Why a warmup command was not carried out.
pub type WarmupsError = CommandError<WarmupConfigError>;

/// A configuration accepted: the aggregate, the cursor after its event, and where the
/// domain's warmup stands now.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct WarmupAccepted {
    pub id: Uuid,
    #[schema(value_type = String, example = "812-45")]
    pub cursor: event_store::Cursor,
    /// The same object as `GET /api/v1/warmup/{domain}` answers.
    #[schema(value_type = Object)]
    pub warmup: WarmupStatus,
}

/// The warmups of every organization's sending domains.
#[derive(Clone)]
pub struct Warmups {
    pool: PgPool,
    executor: Arc<Executor<WarmupConfig>>,
}

impl Warmups {
    pub fn new(pool: PgPool, executor: Arc<Executor<WarmupConfig>>) -> Self {
        Self { pool, executor }
    }

    /// Configures (or replaces) the warmup of `new.domain`; answers where it stands now.
    pub async fn configure(
        &self,
        tenant: TenantId,
        new: NewWarmup,
        meta: &EventMetadata,
    ) -> Result<WarmupAccepted, WarmupsError> {
        let now = Utc::now();
        let id = stream_id(tenant.0, &new.domain);
        let command = WarmupCommand::Configure {
            domain: new.domain,
            started_on: new.started_on,
            today: now.with_timezone(&new.zone).date_naive(),
            time_zone: new.zone.name().to_owned(),
            schedule: new.schedule,
        };
        let Accepted { id, cursor } = self.executor.execute(tenant.0, id, command, meta).await?;
        let config = self.executor.load(tenant.0, id).await?;
        let Some(warmup) = config.current() else {
            // Removed by another request meanwhile.
            return Err(CommandError::Rejected(WarmupConfigError::NotConfigured));
        };
        let (_, window_end) = warmup.today(now);
        let used = used(&self.pool, tenant.0, warmup, window_end)
            .await
            .map_err(|e| CommandError::Technical(Box::new(e)))?;
        Ok(WarmupAccepted {
            id,
            cursor,
            warmup: warmup.status(now, used),
        })
    }

    /// Stops warming up `domain` (a malformed one has no warmup).
    pub async fn remove(
        &self,
        tenant: TenantId,
        domain: &str,
        meta: &EventMetadata,
    ) -> Result<Accepted, WarmupsError> {
        let domain = valid_domain(domain)
            .map_err(|_| CommandError::Rejected(WarmupConfigError::NotConfigured))?;
        let id = stream_id(tenant.0, &domain);
        self.executor
            .execute(tenant.0, id, WarmupCommand::Remove, meta)
            .await
    }
}

/// Messages taken from `warmup`'s allowance in the window ending at `window_end`.
async fn used(
    pool: &PgPool,
    tenant: Uuid,
    warmup: &Warmup,
    window_end: DateTime<Utc>,
) -> Result<u64, sqlx::Error> {
    let used: Option<i64> = sqlx::query_scalar(
        "SELECT used FROM delivery_allowances \
         WHERE tenant_id = $1 AND scope = $2 AND window_end = $3",
    )
    .bind(tenant)
    .bind(warmup.scope())
    .bind(window_end)
    .fetch_optional(pool)
    .await?;
    Ok(used.unwrap_or(0).max(0) as u64)
}
