//! Segment queries: the list (with member counts), the detail, the members, and previews of
//! a rule (saved or not yet saved): how many contacts match and the first of them.

use axum::extract::State;
use axum::Json;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Utc};
use domain::segment::{Checked, Rule, SegmentKind};
use domain::SegmentId;
use http_kit::problem::FieldProblem;
use http_kit::ApiQuery;
use http_kit::PathIds;
use http_kit::{ApiJson, Authenticated, Problem};
use projections::contacts::ContactRow;
use projections::segments::{self, SegmentRow};
use replay::inspect;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::consistency::ConsistentAfter;
use crate::QueryState;

/// The checkpoint that says how far memberships are decided (`consistent_after` on member
/// lists waits for it).
const EVALUATOR: &str = "segment_evaluator";

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// Page size, 1 to 500 (default 50).
    pub limit: Option<i64>,
    /// The `next` token of the previous page.
    pub after: Option<String>,
    /// Wait until the read model has passed this cursor (from a command's answer).
    pub consistent_after: Option<String>,
}

/// A segment with how many contacts are in it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SegmentView {
    pub id: Uuid,
    pub name: String,
    pub description: Option<String>,
    /// `static` or `dynamic`.
    #[schema(value_type = String)]
    pub kind: SegmentKind,
    /// The rule as written (dynamic segments).
    #[schema(value_type = Option<Object>)]
    pub rule: Option<serde_json::Value>,
    pub member_count: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl SegmentView {
    fn of((r, n): (SegmentRow, i64)) -> Self {
        Self {
            id: r.id,
            name: r.name,
            description: r.description,
            kind: r.kind,
            rule: r.rule,
            member_count: n,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

/// A page of segments.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SegmentPage {
    pub items: Vec<SegmentView>,
    /// Pass as `after` for the next page; null on the last page.
    pub next: Option<String>,
}

/// Contacts of a segment, or matching a rule: how many, and a page of them.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ContactMatches {
    pub count: i64,
    pub items: Vec<ContactRow>,
    /// Pass as `after` for the next page; null on the last page.
    pub next: Option<String>,
}

/// `POST /api/v1/segments:preview`
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PreviewRule {
    #[schema(value_type = Object)]
    pub rule: Rule,
    /// How many matching contacts to return, 0 to 500 (default 20).
    pub limit: Option<i64>,
}

fn limit_of(limit: Option<i64>, default: i64, min: i64) -> Result<i64, Problem> {
    let limit = limit.unwrap_or(default);
    if (min..=500).contains(&limit) {
        Ok(limit)
    } else {
        Err(Problem::bad_parameter(
            "limit",
            format!("an integer from {min} to 500"),
        ))
    }
}

/// List segments by name, in keyset pages, with member counts.
#[utoipa::path(get, path = "/api/v1/segments", tag = "segments", params(PageParams),
    responses(
        (status = 200, description = "A page", body = SegmentPage),
        (status = 400, description = "Bad parameters", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []), ("session" = [])))]
pub async fn list(
    State(s): State<QueryState>,
    Authenticated(caller): Authenticated,
    consistency: ConsistentAfter,
    ApiQuery(p): ApiQuery<PageParams>,
) -> Result<Json<SegmentPage>, Problem> {
    let limit = limit_of(p.limit, 50, 1)?;
    let after = p
        .after
        .as_deref()
        .map(|t| {
            URL_SAFE_NO_PAD
                .decode(t)
                .ok()
                .and_then(|b| serde_json::from_slice::<(String, Uuid)>(&b).ok())
                .ok_or_else(|| Problem::bad_parameter("after", "not a page token from this API"))
        })
        .transpose()?;
    consistency.wait(&s, "segments").await?;
    let mut rows = segments::list(&s.pool, caller.tenant_id, after, limit + 1)
        .await
        .map_err(|e| Problem::from_internal(&e))?;
    let next = if rows.len() as i64 > limit {
        rows.truncate(limit as usize);
        rows.last().and_then(|(r, _)| {
            serde_json::to_vec(&(r.name.to_lowercase(), r.id))
                .ok()
                .map(|b| URL_SAFE_NO_PAD.encode(b))
        })
    } else {
        None
    };
    Ok(Json(SegmentPage {
        items: rows.into_iter().map(SegmentView::of).collect(),
        next,
    }))
}

/// One segment.
#[utoipa::path(get, path = "/api/v1/segments/{id}", tag = "segments",
    params(("id" = Uuid, Path, description = "Segment id"),
           ("consistent_after" = Option<String>, Query, description = "Wait until the read model has passed this cursor")),
    responses(
        (status = 200, description = "The segment", body = SegmentView),
        (status = 404, description = "No such segment", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []), ("session" = [])))]
pub async fn get(
    State(s): State<QueryState>,
    Authenticated(caller): Authenticated,
    consistency: ConsistentAfter,
    PathIds(id): PathIds<SegmentId>,
) -> Result<Json<SegmentView>, Problem> {
    let id = id.0;
    consistency.wait(&s, "segments").await?;
    segments::get(&s.pool, caller.tenant_id, id)
        .await
        .map_err(|e| Problem::from_internal(&e))?
        .map(|r| Json(SegmentView::of(r)))
        .ok_or_else(|| Problem::not_found("segment"))
}

fn contact_token(t: &str) -> Result<Uuid, Problem> {
    URL_SAFE_NO_PAD
        .decode(t)
        .ok()
        .and_then(|b| Uuid::from_slice(&b).ok())
        .ok_or_else(|| Problem::bad_parameter("after", "not a page token from this API"))
}

fn page(count: i64, mut items: Vec<ContactRow>, limit: i64) -> ContactMatches {
    let next = if items.len() as i64 > limit {
        items.truncate(limit as usize);
        items
            .last()
            .map(|r| URL_SAFE_NO_PAD.encode(r.id.as_bytes()))
    } else {
        None
    };
    ContactMatches { count, items, next }
}

/// The contacts in a segment, in keyset pages, with how many there are.
#[utoipa::path(get, path = "/api/v1/segments/{id}/contacts", tag = "segments",
    params(("id" = Uuid, Path, description = "Segment id"), PageParams),
    responses(
        (status = 200, description = "Members", body = ContactMatches),
        (status = 404, description = "No such segment", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []), ("session" = [])))]
pub async fn contacts(
    State(s): State<QueryState>,
    Authenticated(caller): Authenticated,
    consistency: ConsistentAfter,
    PathIds(id): PathIds<SegmentId>,
    ApiQuery(p): ApiQuery<PageParams>,
) -> Result<Json<ContactMatches>, Problem> {
    let id = id.0;
    let limit = limit_of(p.limit, 50, 1)?;
    let after = p.after.as_deref().map(contact_token).transpose()?;
    consistency.wait(&s, EVALUATOR).await?;
    consistency.wait(&s, "segments").await?;
    if segments::get(&s.pool, caller.tenant_id, id)
        .await
        .map_err(|e| Problem::from_internal(&e))?
        .is_none()
    {
        return Err(Problem::not_found("segment"));
    }
    let (n, items) = segments::members(&s.pool, caller.tenant_id, id, after, limit + 1)
        .await
        .map_err(|e| Problem::from_internal(&e))?;
    Ok(Json(page(n, items, limit)))
}

/// What a saved segment's rule matches right now (count and first page), evaluated live
/// over the contacts read model; for a static segment, its members.
#[utoipa::path(get, path = "/api/v1/segments/{id}/preview", tag = "segments",
    params(("id" = Uuid, Path, description = "Segment id"), PageParams),
    responses(
        (status = 200, description = "Matching contacts", body = ContactMatches),
        (status = 404, description = "No such segment", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []), ("session" = [])))]
pub async fn preview(
    State(s): State<QueryState>,
    Authenticated(caller): Authenticated,
    consistency: ConsistentAfter,
    PathIds(id): PathIds<SegmentId>,
    ApiQuery(p): ApiQuery<PageParams>,
) -> Result<Json<ContactMatches>, Problem> {
    let id = id.0;
    let limit = limit_of(p.limit, 20, 0)?;
    let after = p.after.as_deref().map(contact_token).transpose()?;
    consistency.wait(&s, "segments").await?;
    consistency.wait(&s, "contacts").await?;
    let (row, _) = segments::get(&s.pool, caller.tenant_id, id)
        .await
        .map_err(|e| Problem::from_internal(&e))?
        .ok_or_else(|| Problem::not_found("segment"))?;
    let compiled: Option<Checked> = row
        .compiled
        .map(serde_json::from_value)
        .transpose()
        .map_err(|e| Problem::from_internal(&e))?;
    let (n, items) = match compiled {
        Some(rule) => {
            segments::matching(
                &s.pool,
                caller.tenant_id,
                &rule,
                s.clock.now(),
                after,
                limit + 1,
            )
            .await
        }
        None => segments::members(&s.pool, caller.tenant_id, id, after, limit + 1).await,
    }
    .map_err(|e| Problem::from_internal(&e))?;
    Ok(Json(page(n, items, limit)))
}

/// What a rule would match (count and first page) before it is saved. The rule is checked
/// exactly as when a segment is saved: 422 names each problem with its place in the rule.
#[utoipa::path(post, path = "/api/v1/segments:preview", tag = "segments", request_body = PreviewRule,
    responses(
        (status = 200, description = "Matching contacts", body = ContactMatches),
        (status = 422, description = "Invalid rule", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []), ("session" = [])))]
pub async fn preview_rule(
    State(s): State<QueryState>,
    Authenticated(caller): Authenticated,
    consistency: ConsistentAfter,
    ApiJson(b): ApiJson<PreviewRule>,
) -> Result<Json<ContactMatches>, Problem> {
    let limit = limit_of(b.limit, 20, 0)?;
    consistency.wait(&s, "contacts").await?;
    let schema = inspect::inspect(
        &s.pool,
        caller.tenant_id,
        "field_schema",
        caller.tenant_id,
        event_store::reader::Until::End,
    )
    .await
    .map_err(|e| Problem::from_internal(&e))?
    .map(|found| serde_json::from_value::<domain::field::FieldSchema>(found.state))
    .transpose()
    .map_err(|e| Problem::from_internal(&e))?
    .unwrap_or_default();
    let rule = b.rule.check(&schema.fields).map_err(|errors| {
        Problem::invalid_fields(
            errors
                .into_iter()
                .map(|e| FieldProblem {
                    field: format!("rule{}", e.path),
                    reason: e.reason,
                })
                .collect(),
        )
    })?;
    let (n, items) = segments::matching(
        &s.pool,
        caller.tenant_id,
        &rule,
        s.clock.now(),
        None,
        limit + 1,
    )
    .await
    .map_err(|e| Problem::from_internal(&e))?;
    Ok(Json(page(n, items, limit)))
}
