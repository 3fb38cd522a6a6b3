//! Thin handlers: extract → checked input (references to segments, templates and providers
//! checked on the write side) → the campaign write path → answer.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::Utc;
use domain::campaign::{CampaignCommand, CampaignError, Settings};
use domain::CampaignId;
use http_kit::problem::FieldProblem;
use http_kit::PathIds;
use http_kit::{ApiJson, Problem};
use uuid::Uuid;

use super::body::{copy_name, CampaignBody, CloneBody, ScheduleBody};
use super::write::StartError;
use crate::context::RequestContext;
use crate::error::Rejection;
use crate::executor::Accepted;
use crate::CommandState;

impl Rejection for CampaignError {
    fn problem(&self) -> Problem {
        use CampaignError as E;
        match self {
            E::NotFound => Problem::not_found("campaign"),
            E::AlreadyExists => {
                Problem::new(StatusCode::CONFLICT, "already-exists", "Already exists")
                    .detail(self.to_string())
            }
            E::Settings(e) => Problem::validation(e.field, e.message.clone()),
            E::InThePast => Problem::validation("at", self.to_string()),
            E::Locked(field) => Problem::new(
                StatusCode::CONFLICT,
                "campaign-locked",
                "Campaign already sending",
            )
            .detail(self.to_string())
            .with("field", *field),
            E::Status { status, .. } => Problem::new(
                StatusCode::CONFLICT,
                "campaign-status",
                "Not possible in the campaign's status",
            )
            .detail(self.to_string())
            .with("current_status", *status),
            E::PinMismatch | E::NoDecision(_) => {
                Problem::new(StatusCode::CONFLICT, "campaign-state", "Campaign state")
                    .detail(self.to_string())
            }
        }
    }
}

fn problem(field: &str, reason: &str) -> FieldProblem {
    FieldProblem {
        field: field.to_owned(),
        reason: reason.to_owned(),
    }
}

/// Checks what `next` refers to where it differs from `base`: segments that exist, templates
/// of the campaign's channel, a provider of the channel; 422 listing every bad reference.
async fn check_references(
    s: &CommandState,
    tenant: Uuid,
    base: &Settings,
    next: &Settings,
) -> Result<(), Problem> {
    let changed = next.changes(base);
    let mut problems = Vec::new();
    let internal = |e: &dyn std::error::Error| Problem::from_internal(e);
    if changed.contains(&"segments") || changed.contains(&"excluded_segments") {
        for (field, ids) in [
            ("segments", &next.segments),
            ("excluded_segments", &next.excluded_segments),
        ] {
            for id in ids {
                let seg = s
                    .segments
                    .get(domain::TenantId(tenant), domain::SegmentId(*id))
                    .await
                    .map_err(|e| internal(&e))?;
                if !seg.live() {
                    problems.push(problem(field, &format!("no such segment {id}")));
                }
            }
        }
    }
    if ["template_id", "ab_test", "channel"]
        .iter()
        .any(|f| changed.contains(f))
    {
        for (variant, id) in next.templates() {
            let field = match variant {
                Some(_) => "ab_test.variants",
                None => "template_id",
            };
            let t = s
                .templates
                .executor()
                .load(tenant, id)
                .await
                .map_err(|e| internal(&e))?;
            if !t.live() {
                problems.push(problem(field, &format!("no such template {id}")));
            } else if t.channel.as_str() != next.channel.as_str() {
                problems.push(problem(
                    field,
                    &format!(
                        "template {id} is a {} template, the campaign sends {}",
                        t.channel.as_str(),
                        next.channel.as_str()
                    ),
                ));
            }
        }
    }
    if changed.contains(&"provider_id") || changed.contains(&"channel") {
        if let Some(p) = next.provider_id {
            let found: Option<(String,)> = sqlx::query_as(
                "SELECT channel FROM provider_configs WHERE tenant_id = $1 AND id = $2",
            )
            .bind(tenant)
            .bind(p)
            .fetch_optional(&s.pool)
            .await
            .map_err(|e| internal(&e))?;
            match found {
                None => problems.push(problem("provider_id", "no such provider")),
                Some((ch,)) if ch != next.channel.as_str() => problems.push(problem(
                    "provider_id",
                    &format!(
                        "a {ch} provider; the campaign sends {}",
                        next.channel.as_str()
                    ),
                )),
                Some(_) => {}
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Problem::invalid_fields(problems))
    }
}

/// Create a campaign (a draft): its name, channel, content, audience, sender and pace.
#[utoipa::path(post, path = "/api/v1/campaigns", tag = "campaigns", request_body = CampaignBody,
    responses(
        (status = 201, description = "Created (a draft)", body = Accepted),
        (status = 422, description = "Invalid settings, or a segment, template or provider that does not exist or does not fit", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []), ("session" = [])))]
pub async fn create(
    State(s): State<CommandState>,
    ctx: RequestContext,
    ApiJson(b): ApiJson<CampaignBody>,
) -> Result<Response, Problem> {
    if b.name.is_none() {
        return Err(Problem::validation("name", "required"));
    }
    let base = Settings::default();
    let settings = b.merge(&base)?;
    check_references(&s, ctx.tenant_id, &base, &settings).await?;
    let command = CampaignCommand::Create {
        settings,
        cloned_from: None,
    };
    let accepted = s
        .campaigns
        .execute(
            ctx.tenant_id,
            Uuid::now_v7(),
            command,
            &ctx.metadata,
            Utc::now(),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(accepted)).into_response())
}

/// Change a campaign's settings: any of them before it sends; once it sends, only its name.
#[utoipa::path(patch, path = "/api/v1/campaigns/{id}", tag = "campaigns", request_body = CampaignBody,
    params(("id" = Uuid, Path, description = "Campaign id")),
    responses(
        (status = 200, description = "Changed (or nothing to change)", body = Accepted),
        (status = 404, description = "No such campaign", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The campaign is sending or sent: only its name may change", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid settings or references", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []), ("session" = [])))]
pub async fn change(
    State(s): State<CommandState>,
    ctx: RequestContext,
    PathIds(id): PathIds<CampaignId>,
    ApiJson(b): ApiJson<CampaignBody>,
) -> Result<Json<Accepted>, Problem> {
    let id = id.0;
    let current = s.campaigns.load(ctx.tenant_id, id).await?;
    if matches!(
        current.status,
        domain::campaign::Status::None | domain::campaign::Status::Deleted
    ) {
        return Err(Problem::not_found("campaign"));
    }
    let settings = b.merge(&current.settings)?;
    let locked = current.status.started()
        && settings
            .changes(&current.settings)
            .iter()
            .any(|f| *f != "name");
    // A locked change answers 409 from the aggregate, before references are looked up.
    if !locked {
        check_references(&s, ctx.tenant_id, &current.settings, &settings).await?;
    }
    let accepted = s
        .campaigns
        .execute(
            ctx.tenant_id,
            id,
            CampaignCommand::Change { settings },
            &ctx.metadata,
            Utc::now(),
        )
        .await?;
    Ok(Json(accepted))
}

/// The organization's time zone (schedules default to it).
async fn org_zone(s: &CommandState, tenant: Uuid) -> Result<String, Problem> {
    let org = s
        .identity
        .organizations
        .load(tenant, tenant)
        .await
        .map_err(|e| Problem::from_internal(&e))?;
    Ok(org.settings.time_zone)
}

/// Schedule a campaign (or move its schedule): at a moment, or at a local time in each
/// recipient's time zone.
#[utoipa::path(post, path = "/api/v1/campaigns/{id}/schedule", tag = "campaigns", request_body = ScheduleBody,
    params(("id" = Uuid, Path, description = "Campaign id")),
    responses(
        (status = 200, description = "Scheduled", body = Accepted),
        (status = 404, description = "No such campaign", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not a draft or scheduled campaign", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A time in the past, a bad zone, or a campaign not ready to send", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []), ("session" = [])))]
pub async fn schedule(
    State(s): State<CommandState>,
    ctx: RequestContext,
    PathIds(id): PathIds<CampaignId>,
    ApiJson(b): ApiJson<ScheduleBody>,
) -> Result<Json<Accepted>, Problem> {
    let id = id.0;
    let schedule = b.validate(&org_zone(&s, ctx.tenant_id).await?)?;
    let now = Utc::now();
    let command = CampaignCommand::Schedule { schedule, now };
    Ok(Json(
        s.campaigns
            .execute(ctx.tenant_id, id, command, &ctx.metadata, now)
            .await?,
    ))
}

/// Send a draft or scheduled campaign now: the published versions of its templates are
/// pinned and its audience fixed as of this moment; the fan-out follows in the background
/// (`GET /api/v1/campaigns/{id}` shows its progress).
#[utoipa::path(post, path = "/api/v1/campaigns/{id}/send", tag = "campaigns",
    params(("id" = Uuid, Path, description = "Campaign id")),
    responses(
        (status = 200, description = "Sending started", body = Accepted),
        (status = 404, description = "No such campaign", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Already sending, sent or cancelled", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Not ready: no template, no segment, or a template without a published version", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []), ("session" = [])))]
pub async fn send(
    State(s): State<CommandState>,
    ctx: RequestContext,
    PathIds(id): PathIds<CampaignId>,
) -> Result<Json<Accepted>, Problem> {
    let id = id.0;
    match s
        .campaigns
        .start(ctx.tenant_id, id, &ctx.metadata, Utc::now())
        .await
    {
        Ok(a) => Ok(Json(a)),
        Err(StartError::Template { field, reason }) => Err(Problem::validation(field, reason)),
        Err(StartError::Command(e)) => Err(e.into()),
    }
}

/// Runs a command that needs only the time.
async fn simple(
    s: &CommandState,
    ctx: &RequestContext,
    id: CampaignId,
    command: impl FnOnce(chrono::DateTime<Utc>) -> CampaignCommand,
) -> Result<Json<Accepted>, Problem> {
    let id = id.0;
    let now = Utc::now();
    Ok(Json(
        s.campaigns
            .execute(ctx.tenant_id, id, command(now), &ctx.metadata, now)
            .await?,
    ))
}

/// Unschedule a scheduled campaign: it is a draft again.
#[utoipa::path(post, path = "/api/v1/campaigns/{id}/unschedule", tag = "campaigns",
    params(("id" = Uuid, Path, description = "Campaign id")),
    responses(
        (status = 200, description = "A draft again", body = Accepted),
        (status = 404, description = "No such campaign", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not scheduled", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []), ("session" = [])))]
pub async fn unschedule(
    State(s): State<CommandState>,
    ctx: RequestContext,
    PathIds(id): PathIds<CampaignId>,
) -> Result<Json<Accepted>, Problem> {
    simple(&s, &ctx, id, |_| CampaignCommand::Unschedule).await
}

/// Pause a sending campaign: no new message of it is dispatched (those being handed over
/// finish) until it resumes.
#[utoipa::path(post, path = "/api/v1/campaigns/{id}/pause", tag = "campaigns",
    params(("id" = Uuid, Path, description = "Campaign id")),
    responses(
        (status = 200, description = "Paused", body = Accepted),
        (status = 404, description = "No such campaign", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not sending", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []), ("session" = [])))]
pub async fn pause(
    State(s): State<CommandState>,
    ctx: RequestContext,
    PathIds(id): PathIds<CampaignId>,
) -> Result<Json<Accepted>, Problem> {
    simple(&s, &ctx, id, |now| CampaignCommand::Pause { now }).await
}

/// Resume a paused campaign: exactly the recipients not yet sent to get it.
#[utoipa::path(post, path = "/api/v1/campaigns/{id}/resume", tag = "campaigns",
    params(("id" = Uuid, Path, description = "Campaign id")),
    responses(
        (status = 200, description = "Sending again", body = Accepted),
        (status = 404, description = "No such campaign", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not paused", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []), ("session" = [])))]
pub async fn resume(
    State(s): State<CommandState>,
    ctx: RequestContext,
    PathIds(id): PathIds<CampaignId>,
) -> Result<Json<Accepted>, Problem> {
    simple(&s, &ctx, id, |now| CampaignCommand::Resume { now }).await
}

/// Cancel a scheduled, sending or paused campaign: nothing more of it is sent; its pending
/// messages end as cancelled (in the background).
#[utoipa::path(post, path = "/api/v1/campaigns/{id}/cancel", tag = "campaigns",
    params(("id" = Uuid, Path, description = "Campaign id")),
    responses(
        (status = 200, description = "Cancelled", body = Accepted),
        (status = 404, description = "No such campaign", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "A draft, sent or cancelled already", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []), ("session" = [])))]
pub async fn cancel(
    State(s): State<CommandState>,
    ctx: RequestContext,
    PathIds(id): PathIds<CampaignId>,
) -> Result<Json<Accepted>, Problem> {
    simple(&s, &ctx, id, |now| CampaignCommand::Cancel { now }).await
}

/// Delete a campaign that is not sending (a draft, scheduled, sent or cancelled one).
#[utoipa::path(delete, path = "/api/v1/campaigns/{id}", tag = "campaigns",
    params(("id" = Uuid, Path, description = "Campaign id")),
    responses(
        (status = 200, description = "Deleted", body = Accepted),
        (status = 404, description = "No such campaign", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Sending or paused: cancel it first", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []), ("session" = [])))]
pub async fn delete(
    State(s): State<CommandState>,
    ctx: RequestContext,
    PathIds(id): PathIds<CampaignId>,
) -> Result<Json<Accepted>, Problem> {
    simple(&s, &ctx, id, |_| CampaignCommand::Delete).await
}

/// Copy a campaign's settings into a new draft.
#[utoipa::path(post, path = "/api/v1/campaigns/{id}/clone", tag = "campaigns", request_body = CloneBody,
    params(("id" = Uuid, Path, description = "The campaign to copy")),
    responses(
        (status = 201, description = "The copy, a draft", body = Accepted),
        (status = 404, description = "No such campaign", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid name", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []), ("session" = [])))]
pub async fn clone(
    State(s): State<CommandState>,
    ctx: RequestContext,
    PathIds(id): PathIds<CampaignId>,
    body: Option<ApiJson<CloneBody>>,
) -> Result<Response, Problem> {
    let id = id.0;
    let source = s.campaigns.load(ctx.tenant_id, id).await?;
    if matches!(
        source.status,
        domain::campaign::Status::None | domain::campaign::Status::Deleted
    ) {
        return Err(Problem::not_found("campaign"));
    }
    let name = body
        .and_then(|ApiJson(b)| b.name)
        .map(|n| n.trim().to_owned())
        .unwrap_or_else(|| copy_name(&source.settings.name));
    let settings = Settings {
        name,
        ..source.settings
    };
    let command = CampaignCommand::Create {
        settings,
        cloned_from: Some(id),
    };
    let accepted = s
        .campaigns
        .execute(
            ctx.tenant_id,
            Uuid::now_v7(),
            command,
            &ctx.metadata,
            Utc::now(),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(accepted)).into_response())
}
