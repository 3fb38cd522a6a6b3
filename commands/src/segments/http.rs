//! Thin handlers: extract → typed command → execute with metadata → answer.

use http_kit::json::present;
use http_kit::ApiPath;
use std::collections::BTreeSet;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use cqrs_es::Aggregate;
use domain::contact::Contact;
use domain::segment::{
    Definition, MembershipReason, Rule, SegmentCommand, SegmentKind, SegmentPatch,
};
use http_kit::{ApiJson, Problem};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::membership::{self, Decision};
use super::rules;
use crate::context::RequestContext;
use crate::executor::Accepted;
use crate::CommandState;

/// Most contacts one add or remove may name.
pub const MAX_CONTACTS: usize = 10_000;

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

/// What an add or remove changed.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MembershipChanged {
    /// Contacts that entered (add) or left (remove); the others already were / were not in.
    pub changed: usize,
    /// The cursor after the change (pass as `consistent_after`).
    #[schema(value_type = Option<String>)]
    pub cursor: Option<event_store::Cursor>,
}

fn segment_id(raw: &str) -> Result<Uuid, Problem> {
    Uuid::parse_str(raw).map_err(|_| Problem::not_found("segment"))
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
    let id = Uuid::now_v7();
    let definition = match b.rule {
        Some(rule) => {
            let compiled = rules::check(&s, ctx.tenant_id, Some(id), &rule).await?;
            Definition::Dynamic { rule, compiled }
        }
        None => Definition::Static,
    };
    let command = SegmentCommand::Create {
        name: b.name,
        description: b.description,
        definition,
    };
    let accepted = s
        .segments
        .execute(ctx.tenant_id, id, command, &ctx.metadata)
        .await?;
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
    ApiPath(id): ApiPath<String>,
    ApiJson(b): ApiJson<UpdateSegment>,
) -> Result<Json<Accepted>, Problem> {
    let id = segment_id(&id)?;
    let rule = match b.rule {
        Some(rule) => {
            let compiled = rules::check(&s, ctx.tenant_id, Some(id), &rule).await?;
            Some((rule, compiled))
        }
        None => None,
    };
    let patch = SegmentPatch {
        name: b.name,
        description: b.description,
        rule,
    };
    let accepted = s
        .segments
        .execute(
            ctx.tenant_id,
            id,
            SegmentCommand::Update(patch),
            &ctx.metadata,
        )
        .await?;
    Ok(Json(accepted))
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
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Accepted>, Problem> {
    let id = segment_id(&id)?;
    let accepted = s
        .segments
        .execute(ctx.tenant_id, id, SegmentCommand::Delete, &ctx.metadata)
        .await?;
    Ok(Json(accepted))
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
    ApiPath(id): ApiPath<String>,
    ApiJson(b): ApiJson<SegmentContacts>,
) -> Result<Json<MembershipChanged>, Problem> {
    change_members(&s, &ctx, &id, b, true).await.map(Json)
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
    ApiPath(id): ApiPath<String>,
    ApiJson(b): ApiJson<SegmentContacts>,
) -> Result<Json<MembershipChanged>, Problem> {
    change_members(&s, &ctx, &id, b, false).await.map(Json)
}

async fn change_members(
    s: &CommandState,
    ctx: &RequestContext,
    id: &str,
    b: SegmentContacts,
    add: bool,
) -> Result<MembershipChanged, Problem> {
    let id = segment_id(id)?;
    let ids: BTreeSet<Uuid> = b.contact_ids.into_iter().collect();
    if ids.is_empty() || ids.len() > MAX_CONTACTS {
        return Err(Problem::validation(
            "contact_ids",
            format!("1 to {MAX_CONTACTS} contact ids"),
        ));
    }
    let segment = s.segments.load(ctx.tenant_id, id).await?;
    if !segment.live() {
        return Err(Problem::not_found("segment"));
    }
    if segment.kind == SegmentKind::Dynamic {
        return Err(
            Problem::new(StatusCode::CONFLICT, "dynamic-segment", "Dynamic segment")
                .detail("a dynamic segment's members follow its rule; change the rule instead"),
        );
    }
    let ids: Vec<Uuid> = ids.into_iter().collect();
    if add {
        let unknown = unknown_contacts(s, ctx.tenant_id, &ids).await?;
        if !unknown.is_empty() {
            let list: Vec<String> = unknown.iter().map(Uuid::to_string).collect();
            return Err(Problem::validation(
                "contact_ids",
                format!("no such contacts: {}", list.join(", ")),
            ));
        }
    }
    let decisions: Vec<Decision> = ids
        .iter()
        .map(|c| Decision {
            contact_id: *c,
            considered: BTreeSet::from([id]),
            target: if add {
                BTreeSet::from([id])
            } else {
                BTreeSet::new()
            },
            reason: MembershipReason::Manual,
        })
        .collect();
    let now = s.auth.clock.now();
    let mut attempt = 0;
    loop {
        attempt += 1;
        let mut tx = s
            .pool
            .begin()
            .await
            .map_err(|e| Problem::from_internal(&e))?;
        match membership::write(&mut tx, ctx.tenant_id, &decisions, &ctx.metadata, now).await {
            Ok(w) => {
                tx.commit().await.map_err(|e| Problem::from_internal(&e))?;
                if w.cursor.is_some() {
                    s.notifier.poke();
                }
                return Ok(MembershipChanged {
                    changed: w.entered + w.exited,
                    cursor: w.cursor,
                });
            }
            Err(event_store::append::AppendError::Conflict) if attempt < 10 => continue,
            Err(event_store::append::AppendError::Conflict) => {
                return Err(crate::CommandError::<domain::segment::SegmentError>::Conflict.into())
            }
            Err(event_store::append::AppendError::Store(e)) => {
                return Err(Problem::from_internal(&e))
            }
        }
    }
}

/// The ids among `ids` that are not contacts of `tenant` (by their streams).
async fn unknown_contacts(
    s: &CommandState,
    tenant: Uuid,
    ids: &[Uuid],
) -> Result<Vec<Uuid>, Problem> {
    let streams: Vec<String> = ids
        .iter()
        .map(|c| event_store::recorded::stream_id(tenant, *c))
        .collect();
    let known: Vec<(String,)> = sqlx::query_as(
        "SELECT aggregate_id FROM events WHERE aggregate_type = $1 AND aggregate_id = ANY($2) \
         AND sequence = 1",
    )
    .bind(Contact::TYPE)
    .bind(&streams)
    .fetch_all(&s.pool)
    .await
    .map_err(|e| Problem::from_internal(&e))?;
    let known: BTreeSet<&str> = known.iter().map(|(k,)| k.as_str()).collect();
    Ok(ids
        .iter()
        .zip(&streams)
        .filter(|(_, st)| !known.contains(st.as_str()))
        .map(|(id, _)| *id)
        .collect())
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
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, Problem> {
    let id = segment_id(&id)?;
    let segment = s.segments.load(ctx.tenant_id, id).await?;
    if !segment.live() {
        return Err(Problem::not_found("segment"));
    }
    let mut conn = s
        .pool
        .acquire()
        .await
        .map_err(|e| Problem::from_internal(&e))?;
    membership::queue_refresh(&mut conn, &BTreeSet::from([(ctx.tenant_id, id)]))
        .await
        .map_err(|e| Problem::from_internal(&e))?;
    Ok(StatusCode::ACCEPTED)
}
