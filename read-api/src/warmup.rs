//! Warmup queries: per sending domain, its configuration and where it stands today (the
//! ramp's day, today's allowance, what was used of it, what remains, when the window ends,
//! whether the domain is warm). The math is the domain's (`Warmup::status`); "used" is
//! what the delivery worker took from today's window in `delivery_allowances`.

use axum::extract::State;
use axum::Json;
use chrono::{DateTime, NaiveDate, Utc};
use domain::delivery::warmup::WarmupStatus;
use domain::delivery::warmup_config::valid_domain;
use http_kit::ApiPath;
use http_kit::{Authenticated, Problem};
use projections::warmup::{self, WarmupRow};
use serde::Serialize;
use uuid::Uuid;

use crate::consistency::ConsistentAfter;
use crate::QueryState;

/// A sending domain's warmup: its configuration and today's standing.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct WarmupView {
    #[schema(example = "mail.example.org")]
    pub domain: String,
    /// The ramp's first day (a date in `time_zone`).
    #[schema(value_type = String, format = Date)]
    pub started_on: NaiveDate,
    #[schema(example = "UTC")]
    pub time_zone: String,
    /// Messages allowed on day 1, day 2, … of the ramp.
    pub ramp: Vec<u64>,
    /// The factor each day after the ramp grows by.
    pub growth: f64,
    /// The daily allowance at which the domain is warm (null: never).
    pub ceiling: Option<u64>,
    /// The ramp's day today (1 = the first).
    pub day: u32,
    /// Messages allowed today (null: warm, unlimited by warmup).
    pub allowance: Option<u64>,
    /// Messages taken from today's allowance.
    pub used: u64,
    /// Messages still allowed today (null: unlimited).
    pub remaining: Option<u64>,
    /// When today's window ends and the next day's allowance begins.
    pub window_ends: DateTime<Utc>,
    /// Whether the domain reached its ceiling (warmup is over).
    pub warm: bool,
}

impl From<WarmupStatus> for WarmupView {
    fn from(s: WarmupStatus) -> Self {
        Self {
            domain: s.domain,
            started_on: s.started_on,
            time_zone: s.time_zone,
            ramp: s.ramp,
            growth: s.growth,
            ceiling: s.ceiling,
            day: s.day,
            allowance: s.allowance,
            used: s.used,
            remaining: s.remaining,
            window_ends: s.window_ends,
            warm: s.warm,
        }
    }
}

/// The warmups of the organization's sending domains.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct WarmupList {
    pub items: Vec<WarmupView>,
}

/// The views of `rows` at `now`, with what each used of today's window.
async fn views(
    s: &QueryState,
    tenant: Uuid,
    rows: Vec<WarmupRow>,
) -> Result<Vec<WarmupView>, Problem> {
    let now = s.clock.now();
    let warmups: Vec<_> = rows.iter().map(WarmupRow::warmup).collect();
    let windows: Vec<(String, DateTime<Utc>)> = warmups
        .iter()
        .map(|w| (w.scope(), w.today(now).1))
        .collect();
    let used = warmup::used(&s.pool, tenant, &windows)
        .await
        .map_err(|e| Problem::from_internal(&e))?;
    Ok(warmups
        .iter()
        .zip(&windows)
        .map(|(w, (scope, end))| {
            let n = used
                .iter()
                .find(|(s, e, _)| s == scope && e == end)
                .map_or(0, |(_, _, n)| (*n).max(0) as u64);
            WarmupView::from(w.status(now, n))
        })
        .collect())
}

/// List the organization's sending domains that warm up, by domain, with today's standing.
#[utoipa::path(get, path = "/api/v1/warmup", tag = "warmup",
    params(("consistent_after" = Option<String>, Query, description = "Wait until the read model has passed this cursor")),
    responses(
        (status = 200, description = "The warmups", body = WarmupList),
    ),
    security(("api_key" = []), ("session" = [])))]
pub async fn list(
    State(s): State<QueryState>,
    Authenticated(caller): Authenticated,
    consistency: ConsistentAfter,
) -> Result<Json<WarmupList>, Problem> {
    consistency.wait(&s, "warmup").await?;
    let rows = warmup::list(&s.pool, caller.tenant_id)
        .await
        .map_err(|e| Problem::from_internal(&e))?;
    Ok(Json(WarmupList {
        items: views(&s, caller.tenant_id, rows).await?,
    }))
}

/// One sending domain's warmup, with today's standing.
#[utoipa::path(get, path = "/api/v1/warmup/{domain}", tag = "warmup",
    params(("domain" = String, Path, description = "The sending domain", example = "mail.example.org"),
           ("consistent_after" = Option<String>, Query, description = "Wait until the read model has passed this cursor")),
    responses(
        (status = 200, description = "The warmup", body = WarmupView),
        (status = 404, description = "No warmup is configured for the domain", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []), ("session" = [])))]
pub async fn get(
    State(s): State<QueryState>,
    Authenticated(caller): Authenticated,
    consistency: ConsistentAfter,
    ApiPath(domain): ApiPath<String>,
) -> Result<Json<WarmupView>, Problem> {
    let domain = valid_domain(&domain).map_err(|_| Problem::not_found("warmup"))?;
    consistency.wait(&s, "warmup").await?;
    let row = warmup::get(&s.pool, caller.tenant_id, &domain)
        .await
        .map_err(|e| Problem::from_internal(&e))?
        .ok_or_else(|| Problem::not_found("warmup"))?;
    views(&s, caller.tenant_id, vec![row])
        .await?
        .pop()
        .map(Json)
        .ok_or_else(Problem::internal)
}
