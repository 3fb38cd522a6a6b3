//! Thin handlers: extract → checked input → the executor → answer (with the domain's status
//! for a configuration).

use axum::extract::State;
use axum::Json;
use chrono::{DateTime, Utc};
use domain::delivery::warmup::{Warmup, WarmupStatus};
use domain::delivery::warmup_config::{stream_id, valid_domain, WarmupCommand};
use http_kit::ApiPath;
use http_kit::{ApiJson, Problem};
use serde::Serialize;
use sqlx::PgPool;
use uuid::Uuid;

use super::body::ConfigureWarmup;
use crate::context::RequestContext;
use crate::executor::Accepted;
use crate::CommandState;

/// A configuration accepted: the aggregate, the cursor after its event, and where the
/// domain's warmup stands now.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct WarmupAccepted {
    pub id: Uuid,
    #[schema(value_type = String, example = "812-45")]
    pub cursor: event_store::Cursor,
    /// The same object as `GET /api/v1/warmup/{domain}` answers.
    #[schema(value_type = Object)]
    pub warmup: WarmupStatus,
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

/// Configure the warmup of a sending domain, or replace it: from its start, the domain may
/// send the ramp's allowance each day (days begin at midnight in `time_zone`); email over
/// it waits for the next day. Omitted fields take BillionMail's defaults (ramp
/// 1000/1500/2000/3000/5000/7000/10000, then ×1.3 a day, warm at 1,000,000, UTC); an
/// omitted `started_on` keeps the current start, or is today.
#[utoipa::path(put, path = "/api/v1/warmup/{domain}", tag = "warmup", request_body = ConfigureWarmup,
    params(("domain" = String, Path, description = "The sending domain", example = "mail.example.org")),
    responses(
        (status = 200, description = "Configured (or unchanged); the domain's status", body = WarmupAccepted),
        (status = 422, description = "Invalid domain, time zone, ramp, growth or ceiling", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []), ("session" = [])))]
pub async fn configure(
    State(s): State<CommandState>,
    ctx: RequestContext,
    ApiPath(domain): ApiPath<String>,
    ApiJson(b): ApiJson<ConfigureWarmup>,
) -> Result<Json<WarmupAccepted>, Problem> {
    let new = b.validate(&domain)?;
    let now = Utc::now();
    let tenant = ctx.tenant_id;
    let id = stream_id(tenant, &new.domain);
    let command = WarmupCommand::Configure {
        domain: new.domain,
        started_on: new.started_on,
        today: now.with_timezone(&new.zone).date_naive(),
        time_zone: new.zone.name().to_owned(),
        schedule: new.schedule,
    };
    let Accepted { id, cursor } = s
        .delivery
        .warmups
        .execute(tenant, id, command, &ctx.metadata)
        .await?;
    let config = s.delivery.warmups.load(tenant, id).await?;
    let Some(warmup) = config.current() else {
        // Removed by another request meanwhile.
        return Err(Problem::not_found("warmup"));
    };
    let (_, window_end) = warmup.today(now);
    let used = used(&s.pool, tenant, warmup, window_end)
        .await
        .map_err(|e| Problem::from_internal(&e))?;
    Ok(Json(WarmupAccepted {
        id,
        cursor,
        warmup: warmup.status(now, used),
    }))
}

/// Stop warming up a sending domain: its email is no longer limited by warmup.
#[utoipa::path(delete, path = "/api/v1/warmup/{domain}", tag = "warmup",
    params(("domain" = String, Path, description = "The sending domain", example = "mail.example.org")),
    responses(
        (status = 200, description = "Removed", body = Accepted),
        (status = 404, description = "No warmup is configured for the domain", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []), ("session" = [])))]
pub async fn remove(
    State(s): State<CommandState>,
    ctx: RequestContext,
    ApiPath(domain): ApiPath<String>,
) -> Result<Json<Accepted>, Problem> {
    let domain = valid_domain(&domain).map_err(|_| Problem::not_found("warmup"))?;
    let id = stream_id(ctx.tenant_id, &domain);
    Ok(Json(
        s.delivery
            .warmups
            .execute(ctx.tenant_id, id, WarmupCommand::Remove, &ctx.metadata)
            .await?,
    ))
}
