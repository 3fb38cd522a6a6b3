//! The caller's organization: name and settings, members, invites, ownership.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use domain::{InviteId, MemberId, UserId};
use http_kit::{Actor, ApiJson, PathIds, Problem};
use uuid::Uuid;

use super::body::{self, ChangeRole, Invite, TransferOwnership, UpdateOrganization};
use crate::context::RequestContext;
use crate::executor::Accepted;
use crate::CommandState;

/// The signed-in user behind the request (ownership and leaving are for people, not keys).
fn person(ctx: &RequestContext) -> Result<Uuid, Problem> {
    match ctx.actor {
        Actor::User(id) => Ok(id),
        Actor::ApiKey(_) => Err(
            Problem::new(StatusCode::FORBIDDEN, "user-only", "Forbidden")
                .detail("only a signed-in member can do this, not an API key"),
        ),
    }
}

/// Rename the organization and/or change its settings.
#[utoipa::path(patch, path = "/api/v1/organization", tag = "organization", request_body = UpdateOrganization,
    responses(
        (status = 200, description = "Updated (or nothing to change)", body = Accepted),
        (status = 422, description = "Invalid input", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []), ("session" = [])))]
pub async fn update(
    State(s): State<CommandState>,
    ctx: RequestContext,
    ApiJson(b): ApiJson<UpdateOrganization>,
) -> Result<Json<Accepted>, Problem> {
    let (name, patch) = b.validate()?;
    let orgs = &s.identity.organizations;
    Ok(Json(
        orgs.update(ctx.tenant(), name, patch, &ctx.metadata)
            .await?,
    ))
}

/// Leave the organization (the last owner cannot).
#[utoipa::path(post, path = "/api/v1/organization/leave", tag = "organization",
    responses(
        (status = 200, description = "Left", body = Accepted),
        (status = 409, description = "The last owner cannot leave", body = Problem, content_type = "application/problem+json"),
    ),
    security(("session" = [])))]
pub async fn leave(
    State(s): State<CommandState>,
    ctx: RequestContext,
) -> Result<Json<Accepted>, Problem> {
    let me = UserId(person(&ctx)?);
    let orgs = &s.identity.organizations;
    Ok(Json(orgs.leave(ctx.tenant(), me, &ctx.metadata).await?))
}

/// Hand ownership to another member; the current owner becomes an admin.
#[utoipa::path(post, path = "/api/v1/organization/transfer-ownership", tag = "organization", request_body = TransferOwnership,
    responses(
        (status = 200, description = "Transferred", body = Accepted),
        (status = 404, description = "No such member", body = Problem, content_type = "application/problem+json"),
    ),
    security(("session" = [])))]
pub async fn transfer_ownership(
    State(s): State<CommandState>,
    ctx: RequestContext,
    ApiJson(b): ApiJson<TransferOwnership>,
) -> Result<Json<Accepted>, Problem> {
    let me = UserId(person(&ctx)?);
    let to = UserId(b.user_id);
    let orgs = &s.identity.organizations;
    let transferred = orgs.transfer_ownership(ctx.tenant(), me, to, &ctx.metadata);
    Ok(Json(transferred.await?))
}

/// Change a member's role.
#[utoipa::path(patch, path = "/api/v1/organization/members/{user_id}", tag = "organization", request_body = ChangeRole,
    params(("user_id" = Uuid, Path, description = "The member's user id")),
    responses(
        (status = 200, description = "Changed", body = Accepted),
        (status = 403, description = "Only owners change owners", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such member", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Would leave no owner", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []), ("session" = [])))]
pub async fn change_role(
    State(s): State<CommandState>,
    ctx: RequestContext,
    PathIds(user_id): PathIds<MemberId>,
    ApiJson(b): ApiJson<ChangeRole>,
) -> Result<Json<Accepted>, Problem> {
    let orgs = &s.identity.organizations;
    let changed = orgs.change_role(ctx.tenant(), user_id, b.role, ctx.role, &ctx.metadata);
    Ok(Json(changed.await?))
}

/// Remove a member.
#[utoipa::path(delete, path = "/api/v1/organization/members/{user_id}", tag = "organization",
    params(("user_id" = Uuid, Path, description = "The member's user id")),
    responses(
        (status = 200, description = "Removed", body = Accepted),
        (status = 404, description = "No such member", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Would leave no owner", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []), ("session" = [])))]
pub async fn remove_member(
    State(s): State<CommandState>,
    ctx: RequestContext,
    PathIds(user_id): PathIds<MemberId>,
) -> Result<Json<Accepted>, Problem> {
    let orgs = &s.identity.organizations;
    let removed = orgs.remove_member(ctx.tenant(), user_id, ctx.role, &ctx.metadata);
    Ok(Json(removed.await?))
}

/// Invite someone by email; they get a single-use link that expires.
#[utoipa::path(post, path = "/api/v1/organization/invites", tag = "organization", request_body = Invite,
    responses(
        (status = 201, description = "Invited (mail sent)", body = Accepted),
        (status = 409, description = "Already a member, or a pending invite exists", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid input", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []), ("session" = [])))]
pub async fn invite(
    State(s): State<CommandState>,
    ctx: RequestContext,
    ApiJson(b): ApiJson<Invite>,
) -> Result<Response, Problem> {
    let email = body::email(&b.email)?;
    let orgs = &s.identity.organizations;
    let invited = orgs.invite(ctx.tenant(), email, b.role, ctx.role, &ctx.metadata);
    Ok((StatusCode::CREATED, Json(invited.await?)).into_response())
}

/// Revoke a pending invite.
#[utoipa::path(delete, path = "/api/v1/organization/invites/{id}", tag = "organization",
    params(("id" = Uuid, Path, description = "Invite id")),
    responses(
        (status = 200, description = "Revoked", body = Accepted),
        (status = 404, description = "No such invite", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Already accepted", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []), ("session" = [])))]
pub async fn revoke_invite(
    State(s): State<CommandState>,
    ctx: RequestContext,
    PathIds(id): PathIds<InviteId>,
) -> Result<Json<Accepted>, Problem> {
    let orgs = &s.identity.organizations;
    Ok(Json(
        orgs.revoke_invite(ctx.tenant(), id, &ctx.metadata).await?,
    ))
}

/// Send a pending invite again with a new link (the old link stops working).
#[utoipa::path(post, path = "/api/v1/organization/invites/{id}/resend", tag = "organization",
    params(("id" = Uuid, Path, description = "Invite id")),
    responses(
        (status = 200, description = "Resent", body = Accepted),
        (status = 404, description = "No such invite", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Accepted or revoked", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []), ("session" = [])))]
pub async fn resend_invite(
    State(s): State<CommandState>,
    ctx: RequestContext,
    PathIds(id): PathIds<InviteId>,
) -> Result<Json<Accepted>, Problem> {
    let orgs = &s.identity.organizations;
    Ok(Json(
        orgs.resend_invite(ctx.tenant(), id, &ctx.metadata).await?,
    ))
}
