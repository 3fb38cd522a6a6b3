//! Warmup routes: extract, call [`super::Warmups`], answer (with the domain's status for a
//! configuration).

use axum::extract::State;
use axum::Json;
use http_kit::ApiPath;
use http_kit::{ApiJson, Problem};

use super::body::ConfigureWarmup;
use super::WarmupAccepted;
use crate::context::RequestContext;
use crate::executor::Accepted;
use crate::CommandState;

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
    let configured = s
        .delivery
        .warmups
        .configure(ctx.tenant(), new, &ctx.metadata);
    Ok(Json(configured.await?))
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
    let removed = s
        .delivery
        .warmups
        .remove(ctx.tenant(), &domain, &ctx.metadata);
    Ok(Json(removed.await?))
}
