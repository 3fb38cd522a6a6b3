//! Segment routes: extract, call [`super::Segments`], answer.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use domain::segment::Rule;
use domain::{ContactId, SegmentId};
use http_kit::json::present;
use http_kit::{ApiJson, PathIds, Problem};
use serde::Deserialize;
use uuid::Uuid;

use super::{MembershipChanged, NewSegment, SegmentChange};
use crate::context::RequestContext;
use crate::executor::Accepted;
use crate::CommandState;

/// `POST /api/v1/segments`: with a `rule`, a dynamic segment; without, a static list.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSegment {
    #[schema(example = "Pro customers in France")]
    pub name: String,
    pub description: Option<String>,
    /// The rule (see the rule language in the README); absent for a static segment.
    #[schema(value_type = Option<Object>)]
    pub rule: Option<Rule>,
}

/// `PATCH /api/v1/segments/{id}`: absent keys stay; `null` clears the description.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateSegment {
    pub name: Option<String>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub description: Option<Option<String>>,
    #[schema(value_type = Option<Object>)]
    pub rule: Option<Rule>,
}

/// Contacts to add to or remove from a static segment.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SegmentContacts {
    /// 1 to 10,000 contact ids.
    pub contact_ids: Vec<Uuid>,
}

/// Create a segment.
#[utoipa::path(post, path = "/api/v1/segments", tag = "segments", request_body = CreateSegment,
    responses(
        (status = 201, description = "Created; a dynamic segment fills in the background", body = Accepted),
        (status = 422, description = "Invalid name or rule (each problem with its place in the rule)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []), ("session" = [])))]
pub async fn create(
    State(s): State<CommandState>,
    ctx: RequestContext,
    ApiJson(b): ApiJson<CreateSegment>,
) -> Result<Response, Problem> {
    let new = NewSegment {
        name: b.name,
        description: b.description,
        rule: b.rule,
    };
    let accepted = s.segments.create(ctx.tenant(), new, &ctx.metadata).await?;
    Ok((StatusCode::CREATED, Json(accepted)).into_response())
}

/// Rename a segment, or change its rule (dynamic segments; members are re-evaluated).
#[utoipa::path(patch, path = "/api/v1/segments/{id}", tag = "segments", request_body = UpdateSegment,
    params(("id" = Uuid, Path, description = "Segment id")),
    responses(
        (status = 200, description = "Updated (or nothing to change)", body = Accepted),
        (status = 404, description = "No such segment", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid name or rule", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []), ("session" = [])))]
pub async fn update(
    State(s): State<CommandState>,
    ctx: RequestContext,
    PathIds(id): PathIds<SegmentId>,
    ApiJson(b): ApiJson<UpdateSegment>,
) -> Result<Json<Accepted>, Problem> {
    let change = SegmentChange {
        name: b.name,
        description: b.description,
        rule: b.rule,
    };
    let updated = s.segments.update(ctx.tenant(), id, change, &ctx.metadata);
    Ok(Json(updated.await?))
}

/// Delete a segment: its members leave it (in the background).
#[utoipa::path(delete, path = "/api/v1/segments/{id}", tag = "segments",
    params(("id" = Uuid, Path, description = "Segment id")),
    responses(
        (status = 200, description = "Deleted", body = Accepted),
        (status = 404, description = "No such segment", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []), ("session" = [])))]
pub async fn delete(
    State(s): State<CommandState>,
    ctx: RequestContext,
    PathIds(id): PathIds<SegmentId>,
) -> Result<Json<Accepted>, Problem> {
    Ok(Json(
        s.segments.delete(ctx.tenant(), id, &ctx.metadata).await?,
    ))
}

fn contact_ids(b: SegmentContacts) -> Vec<ContactId> {
    b.contact_ids.into_iter().map(ContactId).collect()
}

/// Add contacts to a static segment.
#[utoipa::path(post, path = "/api/v1/segments/{id}/contacts", tag = "segments", request_body = SegmentContacts,
    params(("id" = Uuid, Path, description = "Segment id")),
    responses(
        (status = 200, description = "Added", body = MembershipChanged),
        (status = 404, description = "No such segment", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "A dynamic segment's members follow its rule", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Unknown contacts, or too many", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []), ("session" = [])))]
pub async fn add_contacts(
    State(s): State<CommandState>,
    ctx: RequestContext,
    PathIds(id): PathIds<SegmentId>,
    ApiJson(b): ApiJson<SegmentContacts>,
) -> Result<Json<MembershipChanged>, Problem> {
    let ids = contact_ids(b);
    let changed = s
        .segments
        .add_contacts(ctx.tenant(), id, &ids, &ctx.metadata);
    Ok(Json(changed.await?))
}

/// Remove contacts from a static segment.
#[utoipa::path(post, path = "/api/v1/segments/{id}/contacts:remove", tag = "segments", request_body = SegmentContacts,
    params(("id" = Uuid, Path, description = "Segment id")),
    responses(
        (status = 200, description = "Removed", body = MembershipChanged),
        (status = 404, description = "No such segment", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "A dynamic segment's members follow its rule", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Too many contacts", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []), ("session" = [])))]
pub async fn remove_contacts(
    State(s): State<CommandState>,
    ctx: RequestContext,
    PathIds(id): PathIds<SegmentId>,
    ApiJson(b): ApiJson<SegmentContacts>,
) -> Result<Json<MembershipChanged>, Problem> {
    let ids = contact_ids(b);
    let changed = s
        .segments
        .remove_contacts(ctx.tenant(), id, &ids, &ctx.metadata);
    Ok(Json(changed.await?))
}

/// Re-evaluate a dynamic segment now (rules on relative dates are also re-evaluated on a
/// schedule).
#[utoipa::path(post, path = "/api/v1/segments/{id}/refresh", tag = "segments",
    params(("id" = Uuid, Path, description = "Segment id")),
    responses(
        (status = 202, description = "Queued"),
        (status = 404, description = "No such segment", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []), ("session" = [])))]
pub async fn refresh(
    State(s): State<CommandState>,
    ctx: RequestContext,
    PathIds(id): PathIds<SegmentId>,
) -> Result<StatusCode, Problem> {
    s.segments.refresh(ctx.tenant(), id).await?;
    Ok(StatusCode::ACCEPTED)
}
