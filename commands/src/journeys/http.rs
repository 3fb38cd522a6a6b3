//! Journey routes: extract, call [`super::Journeys`], answer; how a journey's refusal is
//! shown; entries by the API.

use domain::JourneyId;
use http_kit::PathIds;
use std::collections::BTreeSet;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::Utc;
use domain::journey::definition::Definition;
use domain::journey::{JourneyCommand, JourneyError};
use event_store::Cursor;
use http_kit::problem::FieldProblem;
use http_kit::{ApiJson, Problem};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::enter::{enter_in, EnterError, Entry, Via};
use crate::context::RequestContext;
use crate::error::Rejection;
use crate::executor::Accepted;
use crate::CommandState;

impl Rejection for JourneyError {
    fn problem(&self) -> Problem {
        use JourneyError as E;
        match self {
            E::NotFound => Problem::not_found("journey"),
            E::AlreadyExists => {
                Problem::new(StatusCode::CONFLICT, "already-exists", "Already exists")
                    .detail(self.to_string())
            }
            E::Name => Problem::validation("name", self.to_string()),
            E::Invalid(problems) => Problem::invalid_fields(
                problems
                    .iter()
                    .map(|p| FieldProblem {
                        field: format!("definition.{}", p.path),
                        reason: p.reason.clone(),
                    })
                    .collect(),
            ),
            E::Status { status, .. } => Problem::new(
                StatusCode::CONFLICT,
                "journey-status",
                "Not possible in the journey's status",
            )
            .detail(self.to_string())
            .with("current_status", *status),
        }
    }
}

/// A journey's name and draft definition (triggers, steps, exit criteria, goal, re-entry,
/// quiet hours).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JourneyBody {
    pub name: Option<String>,
    /// The draft: `{"triggers": [...], "steps": [...], "exit_criteria": [...], "goal": {...},
    /// "reentry": {"policy": "never" | "after" | "concurrent"}, "quiet_hours": {...}}`.
    #[schema(value_type = Option<Object>)]
    pub definition: Option<Definition>,
}

/// Create a journey (a draft).
#[utoipa::path(post, path = "/api/v1/journeys", tag = "journeys", request_body = JourneyBody,
    responses(
        (status = 201, description = "Created (a draft)", body = Accepted),
        (status = 422, description = "No name, or a draft of the wrong shape", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []), ("session" = [])))]
pub async fn create(
    State(s): State<CommandState>,
    ctx: RequestContext,
    ApiJson(b): ApiJson<JourneyBody>,
) -> Result<Response, Problem> {
    let created = s
        .journeys
        .create(ctx.tenant(), b.name, b.definition, &ctx.metadata);
    Ok((StatusCode::CREATED, Json(created.await?)).into_response())
}

/// Change a journey's name and/or draft. Versions already published do not change.
#[utoipa::path(patch, path = "/api/v1/journeys/{id}", tag = "journeys", request_body = JourneyBody,
    params(("id" = Uuid, Path, description = "Journey id")),
    responses(
        (status = 200, description = "Changed (or nothing to change)", body = Accepted),
        (status = 404, description = "No such journey", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The journey is archived", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A draft of the wrong shape", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []), ("session" = [])))]
pub async fn change(
    State(s): State<CommandState>,
    ctx: RequestContext,
    PathIds(id): PathIds<JourneyId>,
    ApiJson(b): ApiJson<JourneyBody>,
) -> Result<Json<Accepted>, Problem> {
    let changed = s
        .journeys
        .change(ctx.tenant(), id, b.name, b.definition, &ctx.metadata);
    Ok(Json(changed.await?))
}

/// Publish the draft as the journey's next version: the graph is checked whole (one entrance
/// per trigger, every step reachable, no dangling edge, every branch routed, no cycle without
/// a delay, each step's configuration and references). New entries run the new version;
/// executions in flight finish on theirs.
#[utoipa::path(post, path = "/api/v1/journeys/{id}/publish", tag = "journeys",
    params(("id" = Uuid, Path, description = "Journey id")),
    responses(
        (status = 200, description = "Published", body = Accepted),
        (status = 404, description = "No such journey", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The journey is archived", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Every problem of the draft, each at its path", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []), ("session" = [])))]
pub async fn publish(
    State(s): State<CommandState>,
    ctx: RequestContext,
    PathIds(id): PathIds<JourneyId>,
) -> Result<Json<Accepted>, Problem> {
    Ok(Json(
        s.journeys.publish(ctx.tenant(), id, &ctx.metadata).await?,
    ))
}

async fn simple(
    s: &CommandState,
    ctx: &RequestContext,
    id: JourneyId,
    command: impl FnOnce(chrono::DateTime<Utc>) -> JourneyCommand,
) -> Result<Json<Accepted>, Problem> {
    let acted = s.journeys.act(ctx.tenant(), id, command, &ctx.metadata);
    Ok(Json(acted.await?))
}

/// Pause a live journey: nobody enters, and executions in flight hold where they are.
#[utoipa::path(post, path = "/api/v1/journeys/{id}/pause", tag = "journeys",
    params(("id" = Uuid, Path, description = "Journey id")),
    responses(
        (status = 200, description = "Paused", body = Accepted),
        (status = 404, description = "No such journey", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not live", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []), ("session" = [])))]
pub async fn pause(
    State(s): State<CommandState>,
    ctx: RequestContext,
    PathIds(id): PathIds<JourneyId>,
) -> Result<Json<Accepted>, Problem> {
    simple(&s, &ctx, id, |now| JourneyCommand::Pause { now }).await
}

/// Resume a paused journey: executions go on from where they held; entries are taken again.
#[utoipa::path(post, path = "/api/v1/journeys/{id}/resume", tag = "journeys",
    params(("id" = Uuid, Path, description = "Journey id")),
    responses(
        (status = 200, description = "Live again", body = Accepted),
        (status = 404, description = "No such journey", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not paused", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []), ("session" = [])))]
pub async fn resume(
    State(s): State<CommandState>,
    ctx: RequestContext,
    PathIds(id): PathIds<JourneyId>,
) -> Result<Json<Accepted>, Problem> {
    simple(&s, &ctx, id, |now| JourneyCommand::Resume { now }).await
}

/// Archive a journey: nobody enters any more, and executions in flight exit.
#[utoipa::path(post, path = "/api/v1/journeys/{id}/archive", tag = "journeys",
    params(("id" = Uuid, Path, description = "Journey id")),
    responses(
        (status = 200, description = "Archived", body = Accepted),
        (status = 404, description = "No such journey", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Archived already", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []), ("session" = [])))]
pub async fn archive(
    State(s): State<CommandState>,
    ctx: RequestContext,
    PathIds(id): PathIds<JourneyId>,
) -> Result<Json<Accepted>, Problem> {
    simple(&s, &ctx, id, |now| JourneyCommand::Archive { now }).await
}

/// Contacts to enter: by id, or every member of a segment.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EntriesBody {
    /// 1 to 1000 contact ids.
    pub contact_ids: Option<Vec<Uuid>>,
    /// Every member of this segment now.
    pub segment_id: Option<Uuid>,
}

/// What an entries request did.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EntriesAnswer {
    /// Executions started: `{contact_id, execution_id}`.
    pub entered: Vec<EnteredContact>,
    /// Contacts the re-entry policy kept out (or entered before with this Idempotency-Key).
    pub refused: Vec<Uuid>,
    #[schema(value_type = Option<String>)]
    pub cursor: Option<Cursor>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EnteredContact {
    pub contact_id: Uuid,
    pub execution_id: Uuid,
}

/// Most contacts one request enters by id; a segment is entered in pages of this size.
const ENTRIES_PAGE: usize = 1000;

/// Enter contacts into a live journey through its API trigger (re-entry policy applies).
/// With `Idempotency-Key`, a repeated request enters nobody twice.
#[utoipa::path(post, path = "/api/v1/journeys/{id}/entries", tag = "journeys", request_body = EntriesBody,
    params(
        ("id" = Uuid, Path, description = "Journey id"),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe: the same key enters each contact once"),
    ),
    responses(
        (status = 200, description = "Entered (and refused)", body = EntriesAnswer),
        (status = 404, description = "No such journey", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The journey is not live, or has no API trigger", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "No contacts, too many, unknown contacts or segment", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []), ("session" = [])))]
pub async fn entries(
    State(s): State<CommandState>,
    ctx: RequestContext,
    headers: HeaderMap,
    PathIds(id): PathIds<JourneyId>,
    ApiJson(b): ApiJson<EntriesBody>,
) -> Result<Json<EntriesAnswer>, Problem> {
    let id = id.0;
    let internal = |e: &dyn std::error::Error| Problem::from_internal(e);
    let journey = s.journeys.writer().load(ctx.tenant_id, id).await?;
    if journey.status == domain::journey::Status::None {
        return Err(Problem::not_found("journey"));
    }
    let key = crate::delivery::http::idempotency_key(&headers)?;
    let mut pages: Vec<Vec<Uuid>> = Vec::new();
    match (b.contact_ids, b.segment_id) {
        (Some(ids), None) => {
            if ids.is_empty() || ids.len() > ENTRIES_PAGE {
                return Err(Problem::validation(
                    "contact_ids",
                    format!("1 to {ENTRIES_PAGE} contact ids"),
                ));
            }
            let streams: Vec<String> = ids
                .iter()
                .map(|c| event_store::recorded::stream_id(ctx.tenant_id, *c))
                .collect();
            let known: BTreeSet<Uuid> = event_store::reader::existing_streams(
                &s.pool,
                <domain::contact::Contact as cqrs_es::Aggregate>::TYPE,
                &streams,
            )
            .await
            .map_err(|e| internal(&e))?
            .iter()
            .filter_map(|s| event_store::recorded::entity_of(s))
            .collect();
            let unknown: Vec<FieldProblem> = ids
                .iter()
                .enumerate()
                .filter(|(_, c)| !known.contains(c))
                .map(|(i, c)| FieldProblem {
                    field: format!("contact_ids.{i}"),
                    reason: format!("no such contact {c}"),
                })
                .collect();
            if !unknown.is_empty() {
                return Err(Problem::invalid_fields(unknown));
            }
            pages.push(ids);
        }
        (None, Some(segment)) => {
            let seg = s
                .segments
                .get(ctx.tenant(), domain::SegmentId(segment))
                .await
                .map_err(|e| internal(&e))?;
            if !seg.live() {
                return Err(Problem::validation("segment_id", "no such segment"));
            }
            let members: Vec<(Uuid,)> = sqlx::query_as(
                "SELECT contact_id FROM segment_members \
                 WHERE tenant_id = $1 AND segment_id = $2 ORDER BY contact_id",
            )
            .bind(ctx.tenant_id)
            .bind(segment)
            .fetch_all(&s.pool)
            .await
            .map_err(|e| internal(&e))?;
            let all: Vec<Uuid> = members.into_iter().map(|(c,)| c).collect();
            pages.extend(all.chunks(ENTRIES_PAGE * 5).map(<[Uuid]>::to_vec));
        }
        _ => {
            return Err(Problem::validation(
                "contact_ids",
                "give either contact_ids or segment_id",
            ))
        }
    }
    let mut answer = EntriesAnswer {
        entered: Vec::new(),
        refused: Vec::new(),
        cursor: None,
    };
    let now = s.clock.now();
    for page in pages {
        let entries: Vec<Entry> = page
            .iter()
            .map(|c| Entry {
                contact_id: *c,
                execution_id: match &key {
                    Some(k) => Uuid::new_v5(&id, format!("entry:{k}:{c}").as_bytes()),
                    None => Uuid::now_v7(),
                },
            })
            .collect();
        let mut tx = s.pool.begin().await.map_err(|e| internal(&e))?;
        let done = enter_in(
            &mut tx,
            &s.journeys.writer().executions,
            ctx.tenant_id,
            id,
            &Via::Api,
            &entries,
            &ctx.metadata,
            now,
        )
        .await;
        let done = match done {
            Ok(d) => d,
            Err(EnterError::NotLive) => {
                return Err(Problem::new(
                    StatusCode::CONFLICT,
                    "journey-status",
                    "Not possible in the journey's status",
                )
                .detail("the journey is not live: publish it (or resume it) first"))
            }
            Err(EnterError::NoTrigger(_)) => {
                return Err(Problem::new(
                    StatusCode::CONFLICT,
                    "journey-no-api-trigger",
                    "The journey takes no API entries",
                )
                .detail("the live version has no trigger of type api"))
            }
            Err(e) => return Err(internal(&e)),
        };
        tx.commit().await.map_err(|e| internal(&e))?;
        s.notifier.poke();
        answer
            .entered
            .extend(done.entered.into_iter().map(|(c, e)| EnteredContact {
                contact_id: c,
                execution_id: e,
            }));
        answer.refused.extend(done.refused);
        answer.cursor = done.cursor.or(answer.cursor);
    }
    Ok(Json(answer))
}
