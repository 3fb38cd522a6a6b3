//! The caller's organization: name and settings, members, invites, ownership.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use domain::identity::organization::{NewInvite, OrganizationCommand as C};
use domain::{InviteId, MemberId};
use http_kit::PathIds;
use http_kit::{secret, Actor, ApiJson, Problem};
use uuid::Uuid;

use super::account_http::invite_token;
use super::body::{self, ChangeRole, Invite, TransferOwnership, UpdateOrganization};
use super::config::chrono;
use super::support;
use crate::context::RequestContext;
use crate::executor::Accepted;
use crate::CommandState;

async fn run(s: &CommandState, ctx: &RequestContext, command: C) -> Result<Accepted, Problem> {
    s.identity
        .organizations
        .execute(ctx.tenant_id, ctx.tenant_id, command, &ctx.metadata)
        .await
        .map_err(Problem::from)
}

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
    let mut last = None;
    if let Some(name) = name {
        last = Some(run(&s, &ctx, C::Rename(name)).await?);
    }
    if patch != Default::default() || last.is_none() {
        last = Some(run(&s, &ctx, C::ChangeSettings(patch)).await?);
    }
    last.map(Json).ok_or_else(Problem::internal)
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
    let me = person(&ctx)?;
    // Anyone may remove themselves (as an owner may); the last owner is still refused.
    let by = domain::identity::Role::Owner;
    run(&s, &ctx, C::RemoveMember { user_id: me, by })
        .await
        .map(Json)
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
    let me = person(&ctx)?;
    run(
        &s,
        &ctx,
        C::TransferOwnership {
            from: me,
            to: b.user_id,
        },
    )
    .await
    .map(Json)
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
    let user_id = user_id.0;
    run(
        &s,
        &ctx,
        C::ChangeMemberRole {
            user_id,
            role: b.role,
            by: ctx.role,
        },
    )
    .await
    .map(Json)
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
    let user_id = user_id.0;
    run(
        &s,
        &ctx,
        C::RemoveMember {
            user_id,
            by: ctx.role,
        },
    )
    .await
    .map(Json)
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
    let invite_id = Uuid::now_v7();
    let token = secret::random_hex(32);
    let command = C::Invite {
        invite: NewInvite {
            invite_id,
            email: email.clone(),
            role: b.role,
            token: secret::digest(&token),
            expires_at: s.auth.clock.now() + chrono(s.identity.config.invite_ttl),
            invited_by: ctx.actor.as_metadata(),
        },
        by: ctx.role,
    };
    let accepted = run(&s, &ctx, command).await?;
    send_invite(&s, &ctx, email.as_str(), invite_id, &token).await;
    Ok((
        StatusCode::CREATED,
        Json(Accepted {
            id: invite_id,
            cursor: accepted.cursor,
        }),
    )
        .into_response())
}

async fn send_invite(s: &CommandState, ctx: &RequestContext, to: &str, invite: Uuid, token: &str) {
    let name = s
        .auth
        .orgs
        .current(ctx.tenant_id)
        .await
        .ok()
        .flatten()
        .map(|o| o.name.clone())
        .unwrap_or_default();
    let url = support::link(
        s,
        "/accept-invite",
        &invite_token(ctx.tenant_id, invite, token),
    );
    let body = format!("You are invited to join {name} on Mauntic3.\n\nAccept the invitation: {url}\n\nSign in (or sign up) with this email address first. The link works once.\n");
    if let Err(e) = s
        .identity
        .mailer
        .send(to, &format!("Join {name} on Mauntic3"), body)
        .await
    {
        tracing::warn!(error = %e, "invite mail not sent");
    }
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
    let invite_id = id.0;
    let accepted = run(&s, &ctx, C::RevokeInvite { invite_id }).await?;
    Ok(Json(Accepted {
        id: invite_id,
        cursor: accepted.cursor,
    }))
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
    let invite_id = id.0;
    let token = secret::random_hex(32);
    let command = C::ResendInvite {
        invite_id,
        token: secret::digest(&token),
        expires_at: s.auth.clock.now() + chrono(s.identity.config.invite_ttl),
    };
    let accepted = run(&s, &ctx, command).await?;
    let org = s
        .auth
        .orgs
        .current(ctx.tenant_id)
        .await
        .map_err(|e| Problem::from_internal(&e))?;
    if let Some(email) = org.and_then(|o| o.invites.get(&invite_id).map(|i| i.email.clone())) {
        send_invite(&s, &ctx, &email, invite_id, &token).await;
    }
    Ok(Json(Accepted {
        id: invite_id,
        cursor: accepted.cursor,
    }))
}
