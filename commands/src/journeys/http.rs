//! Thin handlers: extract → checked input (references to templates, segments, providers and
//! linked journeys checked on the write side at publish) → the journey write path → answer.

use domain::JourneyId;
use http_kit::PathIds;
use std::collections::BTreeSet;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::Utc;
use domain::journey::definition::Definition;
use domain::journey::{JourneyCommand, JourneyError, StepKind, TriggerKind};
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
    let Some(name) = b.name else {
        return Err(Problem::validation("name", "required"));
    };
    let command = JourneyCommand::Create {
        name,
        definition: b.definition.unwrap_or_default(),
    };
    let accepted = s
        .journeys
        .execute(
            ctx.tenant_id,
            Uuid::now_v7(),
            command,
            &ctx.metadata,
            s.clock.now(),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(accepted)).into_response())
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
    let id = id.0;
    let command = JourneyCommand::Edit {
        name: b.name,
        definition: b.definition,
    };
    Ok(Json(
        s.journeys
            .execute(ctx.tenant_id, id, command, &ctx.metadata, s.clock.now())
            .await?,
    ))
}

fn problem(field: String, reason: String) -> FieldProblem {
    FieldProblem { field, reason }
}

/// What the draft refers to, checked on the write side: templates (live, of the step's
/// channel, with a published version), segments, providers of the channel, linked journeys.
async fn check_references(
    s: &CommandState,
    tenant: Uuid,
    journey: Uuid,
    d: &Definition,
) -> Result<(), Problem> {
    let internal = |e: &dyn std::error::Error| Problem::from_internal(e);
    let mut problems = Vec::new();
    for step in &d.steps {
        let path = format!("definition.steps.{}.config", step.id);
        if let Some((channel, m)) = step.kind.channel() {
            let t = s
                .templates
                .executor()
                .load(tenant, m.template_id)
                .await
                .map_err(|e| internal(&e))?;
            if !t.live() {
                problems.push(problem(
                    format!("{path}.template_id"),
                    format!("no such template {}", m.template_id),
                ));
            } else if t.channel.as_str() != channel.as_str() {
                problems.push(problem(
                    format!("{path}.template_id"),
                    format!(
                        "a {} template; {} sends {}",
                        t.channel.as_str(),
                        step.kind.as_str(),
                        channel.as_str()
                    ),
                ));
            } else if t.published_version.is_none() {
                problems.push(problem(
                    format!("{path}.template_id"),
                    "the template has no published version".to_owned(),
                ));
            }
            if let Some(p) = m.provider_id {
                let found: Option<(String,)> = sqlx::query_as(
                    "SELECT channel FROM provider_configs WHERE tenant_id = $1 AND id = $2",
                )
                .bind(tenant)
                .bind(p)
                .fetch_optional(&s.pool)
                .await
                .map_err(|e| internal(&e))?;
                if found.as_ref().map(|(c,)| c.as_str()) != Some(channel.as_str()) {
                    problems.push(problem(
                        format!("{path}.provider_id"),
                        format!("no {} provider {p}", channel.as_str()),
                    ));
                }
            }
        }
        if let StepKind::Link(link) = &step.kind {
            if link.journey_id != journey {
                let j = s
                    .journeys
                    .load(tenant, link.journey_id)
                    .await
                    .map_err(|e| internal(&e))?;
                if matches!(
                    j.status,
                    domain::journey::Status::None | domain::journey::Status::Archived
                ) {
                    problems.push(problem(
                        format!("{path}.journey_id"),
                        format!("no such journey {}", link.journey_id),
                    ));
                }
            }
        }
    }
    let mut segments = BTreeSet::new();
    for (i, t) in d.triggers.iter().enumerate() {
        match &t.kind {
            TriggerKind::SegmentEntered { segment_id }
            | TriggerKind::Schedule { segment_id, .. } => {
                segments.insert((format!("definition.triggers.{i}.segment_id"), *segment_id));
            }
            _ => {}
        }
    }
    for (i, c) in d.exit_criteria.iter().enumerate() {
        if let domain::journey::definition::ExitCriterion::SegmentExited { segment_id } = c {
            segments.insert((
                format!("definition.exit_criteria.{i}.segment_id"),
                *segment_id,
            ));
        }
    }
    for (field, id) in segments {
        let seg = s
            .segments
            .get(domain::TenantId(tenant), domain::SegmentId(id))
            .await
            .map_err(|e| internal(&e))?;
        if !seg.live() {
            problems.push(problem(field, format!("no such segment {id}")));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Problem::invalid_fields(problems))
    }
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
    let id = id.0;
    let journey = s.journeys.load(ctx.tenant_id, id).await?;
    if journey.status == domain::journey::Status::None {
        return Err(Problem::not_found("journey"));
    }
    let fields = s.fields.schema(ctx.tenant()).await?.fields;
    // The graph's own problems first (all of them), then what it refers to.
    let now = s.clock.now();
    let command = JourneyCommand::Publish { fields, now };
    if let Err(e) = journey.decide(command.clone()) {
        return Err(crate::error::CommandError::Rejected(e).into());
    }
    check_references(&s, ctx.tenant_id, id, &journey.draft).await?;
    Ok(Json(
        s.journeys
            .execute(ctx.tenant_id, id, command, &ctx.metadata, now)
            .await?,
    ))
}

async fn simple(
    s: &CommandState,
    ctx: &RequestContext,
    id: JourneyId,
    command: impl FnOnce(chrono::DateTime<Utc>) -> JourneyCommand,
) -> Result<Json<Accepted>, Problem> {
    let id = id.0;
    let now = s.clock.now();
    Ok(Json(
        s.journeys
            .execute(ctx.tenant_id, id, command(now), &ctx.metadata, now)
            .await?,
    ))
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
    let journey = s.journeys.load(ctx.tenant_id, id).await?;
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
                .map(|(i, c)| problem(format!("contact_ids.{i}"), format!("no such contact {c}")))
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
            &s.journeys.executions,
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
