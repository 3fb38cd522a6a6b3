//! Suppression list queries: the list (newest first, keyset pages; channel, reason and
//! address-prefix filters; active entries unless asked otherwise) and one entry.

use axum::extract::State;
use axum::Json;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Utc};
use domain::SuppressionId;
use http_kit::ApiQuery;
use http_kit::PathIds;
use http_kit::{Authenticated, Problem};
use projections::suppressions::{self, ListFilter, SuppressionRow};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::consistency::ConsistentAfter;
use crate::QueryState;

const PROJECTION: &str = "suppressions";

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SuppressionPageParams {
    /// Only this channel: `email`, `sms`, `push` or `webhook`.
    pub channel: Option<String>,
    /// Only this reason: `hard_bounce`, `complaint`, `unsubscribe` or `manual`.
    pub reason: Option<String>,
    /// Only addresses starting with this (as given, or lower-cased).
    pub q: Option<String>,
    /// Removed entries too (default: active ones only).
    pub include_removed: Option<bool>,
    /// Page size, 1 to 500 (default 50).
    pub limit: Option<i64>,
    /// The `next` token of the previous page.
    pub after: Option<String>,
    /// Wait until the read model has passed this cursor (from a command's answer).
    pub consistent_after: Option<String>,
}

/// An entry of the suppression list.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SuppressionView {
    pub id: Uuid,
    /// `email`, `sms`, `push` or `webhook`.
    pub channel: String,
    /// The normalized address.
    pub address: String,
    /// `hard_bounce`, `complaint`, `unsubscribe` or `manual` (of the last suppression).
    pub reason: String,
    /// Where the last change came from (for a removal: who removed it).
    pub source: Option<String>,
    /// False once removed.
    pub active: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A page of entries.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SuppressionPage {
    pub items: Vec<SuppressionView>,
    /// Pass as `after` for the next page; null on the last page.
    pub next: Option<String>,
}

fn view(r: SuppressionRow) -> SuppressionView {
    SuppressionView {
        id: r.id,
        channel: r.channel.as_str().to_owned(),
        address: r.address,
        reason: r.reason.as_str().to_owned(),
        source: r.source,
        active: r.active,
        created_at: r.created_at,
        updated_at: r.updated_at,
    }
}

/// A query parameter naming one of `options` (by their API names).
fn one_of<T: Copy>(
    name: &str,
    raw: Option<&str>,
    options: &[T],
    label: fn(T) -> &'static str,
) -> Result<Option<T>, Problem> {
    let Some(raw) = raw.filter(|r| !r.is_empty()) else {
        return Ok(None);
    };
    options
        .iter()
        .copied()
        .find(|o| label(*o) == raw)
        .map(Some)
        .ok_or_else(|| {
            let names: Vec<&str> = options.iter().map(|o| label(*o)).collect();
            Problem::bad_request(format!("{name}: one of {}", names.join(", ")))
        })
}

/// List the suppression list, newest first, in keyset pages.
#[utoipa::path(get, path = "/api/v1/suppressions", tag = "suppressions", params(SuppressionPageParams),
    responses(
        (status = 200, description = "A page", body = SuppressionPage),
        (status = 400, description = "Bad parameters", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []), ("session" = [])))]
pub async fn list(
    State(s): State<QueryState>,
    Authenticated(caller): Authenticated,
    consistency: ConsistentAfter,
    ApiQuery(p): ApiQuery<SuppressionPageParams>,
) -> Result<Json<SuppressionPage>, Problem> {
    use domain::delivery::suppression::SuppressionReason as R;
    use domain::delivery::Channel as C;
    let limit = p.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(Problem::bad_parameter("limit", "an integer from 1 to 500"));
    }
    let filter = ListFilter {
        channel: one_of(
            "channel",
            p.channel.as_deref(),
            &[C::Email, C::Sms, C::Push, C::Webhook],
            C::as_str,
        )?,
        reason: one_of(
            "reason",
            p.reason.as_deref(),
            &[R::HardBounce, R::Complaint, R::Unsubscribe, R::Manual],
            R::as_str,
        )?,
        prefix: p.q.map(|q| q.trim().to_owned()).filter(|q| !q.is_empty()),
        include_removed: p.include_removed.unwrap_or(false),
    };
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
    consistency.wait(&s, PROJECTION).await?;
    let mut rows = suppressions::list(&s.pool, caller.tenant_id, &filter, after, limit + 1)
        .await
        .map_err(|e| Problem::from_internal(&e))?;
    let next = if rows.len() as i64 > limit {
        rows.truncate(limit as usize);
        rows.last().and_then(|r| {
            serde_json::to_vec(&(r.created_at, r.id))
                .ok()
                .map(|b| URL_SAFE_NO_PAD.encode(b))
        })
    } else {
        None
    };
    Ok(Json(SuppressionPage {
        items: rows.into_iter().map(view).collect(),
        next,
    }))
}

/// One entry of the suppression list (active or removed).
#[utoipa::path(get, path = "/api/v1/suppressions/{id}", tag = "suppressions",
    params(("id" = Uuid, Path, description = "Suppression entry id"),
           ("consistent_after" = Option<String>, Query, description = "Wait until the read model has passed this cursor")),
    responses(
        (status = 200, description = "The entry", body = SuppressionView),
        (status = 404, description = "No such entry", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []), ("session" = [])))]
pub async fn get(
    State(s): State<QueryState>,
    Authenticated(caller): Authenticated,
    consistency: ConsistentAfter,
    PathIds(id): PathIds<SuppressionId>,
) -> Result<Json<SuppressionView>, Problem> {
    let id = id.0;
    consistency.wait(&s, PROJECTION).await?;
    suppressions::get(&s.pool, caller.tenant_id, id)
        .await
        .map_err(|e| Problem::from_internal(&e))?
        .map(|r| Json(view(r)))
        .ok_or_else(|| Problem::not_found("suppression"))
}
