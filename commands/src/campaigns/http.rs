//! Campaign routes: extract, call [`super::Campaigns`], answer; how a campaign's refusal
//! is shown.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::Utc;
use domain::campaign::{CampaignCommand, CampaignError};
use domain::CampaignId;
use http_kit::{ApiJson, PathIds, Problem};

use super::body::{CampaignBody, CloneBody, ScheduleBody};
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
    let accepted = s.campaigns.create(ctx.tenant(), b, &ctx.metadata).await?;
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
    Ok(Json(
        s.campaigns
            .change(ctx.tenant(), id, b, &ctx.metadata)
            .await?,
    ))
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
    Ok(Json(
        s.campaigns
            .schedule(ctx.tenant(), id, b, &ctx.metadata)
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
    Ok(Json(
        s.campaigns.send(ctx.tenant(), id, &ctx.metadata).await?,
    ))
}

/// Runs a command that needs only the time.
async fn simple(
    s: &CommandState,
    ctx: &RequestContext,
    id: CampaignId,
    command: impl FnOnce(chrono::DateTime<Utc>) -> CampaignCommand,
) -> Result<Json<Accepted>, Problem> {
    Ok(Json(
        s.campaigns
            .act(ctx.tenant(), id, command, &ctx.metadata)
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
    let name = body.and_then(|ApiJson(b)| b.name);
    let accepted = s
        .campaigns
        .clone_campaign(ctx.tenant(), id, name, &ctx.metadata)
        .await?;
    Ok((StatusCode::CREATED, Json(accepted)).into_response())
}
