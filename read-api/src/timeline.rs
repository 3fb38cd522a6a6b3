//! A contact's timeline: everything that happened to it, newest first.

use axum::extract::State;
use axum::Json;
use http_kit::{ApiQuery, PathIds};
use http_kit::{Authenticated, Problem};
use projections::timeline::{self, TimelineRow};
use serde::{Deserialize, Serialize};

use crate::audit_log::{decode_token, encode_token};
use crate::consistency::ConsistentAfter;
use crate::QueryState;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TimelineParams {
    /// Page size, 1 to 500 (default 50).
    pub limit: Option<i64>,
    /// The `next` token of the previous page.
    pub after: Option<String>,
    pub consistent_after: Option<String>,
}

/// A page of a contact's timeline.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TimelinePage {
    pub items: Vec<TimelineRow>,
    /// Pass as `after` for the next page; null on the last page.
    pub next: Option<String>,
}

/// Everything that happened to a contact, newest first (a merged contact's id answers its
/// survivor's timeline; the merged contact's own history stays in the audit endpoint).
#[utoipa::path(get, path = "/api/v1/contacts/{id}/timeline", tag = "contacts",
    params(("id" = Uuid, Path, description = "Contact id"), TimelineParams),
    responses(
        (status = 200, description = "A page", body = TimelinePage),
        (status = 400, description = "Bad parameters", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such contact", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []), ("session" = [])))]
pub async fn page(
    State(s): State<QueryState>,
    Authenticated(caller): Authenticated,
    consistency: ConsistentAfter,
    PathIds(id): PathIds<domain::ContactId>,
    ApiQuery(p): ApiQuery<TimelineParams>,
) -> Result<Json<TimelinePage>, Problem> {
    let id = crate::resolve::contact(&s, caller.tenant_id, &consistency, id).await?;
    let limit = p.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(Problem::bad_parameter("limit", "an integer from 1 to 500"));
    }
    let after = match p.after.as_deref() {
        Some(t) => Some(
            decode_token(t)
                .ok_or_else(|| Problem::bad_parameter("after", "not a page token from this API"))?,
        ),
        None => None,
    };
    consistency.wait(&s, "contacts").await?;
    consistency.wait(&s, "contact_timeline").await?;
    let internal = |e: sqlx::Error| Problem::from_internal(&e);
    if projections::contacts::get(&s.pool, caller.tenant_id, id)
        .await
        .map_err(internal)?
        .is_none()
    {
        return Err(Problem::not_found("contact"));
    }
    let mut items = timeline::page(&s.pool, caller.tenant_id, id, after, limit + 1)
        .await
        .map_err(internal)?;
    let next = if items.len() as i64 > limit {
        items.truncate(limit as usize);
        items
            .last()
            .map(|r| encode_token(r.tx_id, r.global_position))
    } else {
        None
    };
    Ok(Json(TimelinePage { items, next }))
}
