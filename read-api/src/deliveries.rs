//! Delivery queries: the list (filters by status, channel, contact, template and source,
//! keyset pages, newest first) and one delivery with the events that made it.

use axum::extract::State;
use axum::Json;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Utc};
use domain::DeliveryId;
use event_store::reader::Until;
use http_kit::ApiQuery;
use http_kit::PathIds;
use http_kit::{Authenticated, Problem};
use projections::deliveries::{self, DeliveryRow, Filter};
use replay::inspect::{self, HistoryEvent};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::consistency::ConsistentAfter;
use crate::QueryState;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeliveryPageParams {
    /// requested, deferred, failed, dispatching, sent, in_doubt, delivered, bounced,
    /// complained, suppressed, given_up or cancelled.
    pub status: Option<String>,
    /// email, sms, push or webhook.
    pub channel: Option<String>,
    pub contact_id: Option<Uuid>,
    pub template_id: Option<Uuid>,
    /// campaign, journey, transactional or test.
    pub source: Option<String>,
    /// The campaign or journey.
    pub source_id: Option<Uuid>,
    /// Page size, 1 to 500 (default 50).
    pub limit: Option<i64>,
    /// The `next` token of the previous page.
    pub after: Option<String>,
    /// Wait until the read model has passed this cursor (from a command's answer).
    pub consistent_after: Option<String>,
}

/// A page of deliveries.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DeliveryPage {
    pub items: Vec<DeliveryRow>,
    /// The token of the next page (`after`), if there is one.
    pub next: Option<String>,
}

/// A delivery and the events of its job, oldest first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DeliveryDetail {
    #[serde(flatten)]
    pub delivery: DeliveryRow,
    pub events: Vec<HistoryEvent>,
}

/// A job's statuses (the recipients of a campaign filter by them too).
pub(crate) const STATUSES: &[&str] = &[
    "requested",
    "deferred",
    "failed",
    "dispatching",
    "sent",
    "in_doubt",
    "delivered",
    "bounced",
    "complained",
    "suppressed",
    "given_up",
    "cancelled",
];

fn one_of(field: &str, value: Option<String>, allowed: &[&str]) -> Result<Option<String>, Problem> {
    match value.filter(|v| !v.is_empty()) {
        Some(v) if !allowed.contains(&v.as_str()) => Err(Problem::bad_request(format!(
            "{field} must be one of {}",
            allowed.join(", ")
        ))),
        v => Ok(v),
    }
}

/// List deliveries, newest first, in keyset pages.
#[utoipa::path(get, path = "/api/v1/deliveries", tag = "messages", params(DeliveryPageParams),
    responses(
        (status = 200, description = "A page", body = DeliveryPage),
        (status = 400, description = "Bad parameters", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []), ("session" = [])))]
pub async fn list(
    State(s): State<QueryState>,
    Authenticated(caller): Authenticated,
    consistency: ConsistentAfter,
    ApiQuery(p): ApiQuery<DeliveryPageParams>,
) -> Result<Json<DeliveryPage>, Problem> {
    let limit = p.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(Problem::bad_parameter("limit", "an integer from 1 to 500"));
    }
    let after = p
        .after
        .as_deref()
        .map(|t| {
            URL_SAFE_NO_PAD
                .decode(t)
                .ok()
                .and_then(|b| serde_json::from_slice::<(DateTime<Utc>, Uuid)>(&b).ok())
                .ok_or_else(|| Problem::bad_parameter("after", "not a page token from this API"))
        })
        .transpose()?;
    let filter = Filter {
        status: one_of("status", p.status, STATUSES)?,
        channel: one_of("channel", p.channel, &["email", "sms", "push", "webhook"])?,
        contact_id: p.contact_id,
        template_id: p.template_id,
        source: one_of(
            "source",
            p.source,
            &["campaign", "journey", "transactional", "test"],
        )?,
        source_id: p.source_id,
    };
    consistency.wait(&s, "deliveries").await?;
    let mut rows = deliveries::list(&s.pool, caller.tenant_id, &filter, after, limit + 1)
        .await
        .map_err(|e| Problem::from_internal(&e))?;
    let next = if rows.len() as i64 > limit {
        rows.truncate(limit as usize);
        rows.last().and_then(|r| {
            serde_json::to_vec(&(r.requested_at, r.id))
                .ok()
                .map(|b| URL_SAFE_NO_PAD.encode(b))
        })
    } else {
        None
    };
    Ok(Json(DeliveryPage { items: rows, next }))
}

/// One delivery, with every event of its job and who caused it.
#[utoipa::path(get, path = "/api/v1/deliveries/{id}", tag = "messages",
    params(("id" = Uuid, Path, description = "Delivery (job) id"),
           ("consistent_after" = Option<String>, Query, description = "Wait until the read model has passed this cursor")),
    responses(
        (status = 200, description = "The delivery", body = DeliveryDetail),
        (status = 404, description = "No such delivery", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []), ("session" = [])))]
pub async fn get(
    State(s): State<QueryState>,
    Authenticated(caller): Authenticated,
    consistency: ConsistentAfter,
    PathIds(id): PathIds<DeliveryId>,
) -> Result<Json<DeliveryDetail>, Problem> {
    let id = id.0;
    consistency.wait(&s, "deliveries").await?;
    let row = deliveries::get(&s.pool, caller.tenant_id, id)
        .await
        .map_err(|e| Problem::from_internal(&e))?
        .ok_or_else(|| Problem::not_found("delivery"))?;
    let history = inspect::inspect(&s.pool, caller.tenant_id, "delivery_job", id, Until::End)
        .await
        .map_err(|e| Problem::from_internal(&e))?;
    Ok(Json(DeliveryDetail {
        delivery: row,
        events: history.map(|h| h.events).unwrap_or_default(),
    }))
}
