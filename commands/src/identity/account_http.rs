//! The signed-in user's own account over HTTP: password, email verification, TOTP, the
//! current organization, founding an organization, accepting an invite. Each handler
//! extracts, calls [`Accounts`](super::accounts::Accounts), answers.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use domain::{TenantId, UserId};
use http_kit::auth::session::Session;
use http_kit::{ApiJson, Problem};

use super::accounts::{RecoveryCodes, TotpEnrolment};
use super::body::{
    ChangePassword, CreateOrganization, PasswordConfirmation, SwitchOrganization, TokenBody,
    TotpCode,
};
use crate::context::UserContext;
use crate::executor::Accepted;
use crate::CommandState;

/// The signed-in user (routes whose rule is `Access::User` always have one).
fn me(ctx: &UserContext) -> Result<(UserId, &Session), Problem> {
    let session = ctx.session.as_ref().ok_or_else(Problem::internal)?;
    Ok((UserId(session.user_id), session))
}

/// Change the password (knowing the current one); every other session ends.
#[utoipa::path(post, path = "/api/v1/me/password", tag = "me", request_body = ChangePassword,
    responses(
        (status = 200, description = "Changed", body = Accepted),
        (status = 401, description = "Wrong current password", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Weak password", body = Problem, content_type = "application/problem+json"),
    ),
    security(("session" = [])))]
pub async fn change_password(
    State(s): State<CommandState>,
    ctx: UserContext,
    ApiJson(b): ApiJson<ChangePassword>,
) -> Result<Json<Accepted>, Problem> {
    let (user, session) = me(&ctx)?;
    let accepted = s
        .identity
        .accounts
        .change_password(
            user,
            b.current_password,
            b.new_password,
            Some(session),
            &ctx.metadata,
        )
        .await?;
    Ok(Json(accepted))
}

/// Mail a new verification link (the previous one stops working).
#[utoipa::path(post, path = "/api/v1/me/verification", tag = "me",
    responses(
        (status = 202, description = "Mailed", body = Accepted),
        (status = 409, description = "Already verified", body = Problem, content_type = "application/problem+json"),
    ),
    security(("session" = [])))]
pub async fn resend_verification(
    State(s): State<CommandState>,
    ctx: UserContext,
) -> Result<Response, Problem> {
    let (user, _) = me(&ctx)?;
    let accepted = s
        .identity
        .accounts
        .resend_verification(user, &ctx.metadata)
        .await?;
    Ok((StatusCode::ACCEPTED, Json(accepted)).into_response())
}

/// Start enrolling a TOTP second factor; confirm it with a code to turn it on.
#[utoipa::path(post, path = "/api/v1/me/totp", tag = "me",
    responses(
        (status = 200, description = "The secret", body = TotpEnrolment),
        (status = 409, description = "Already enabled", body = Problem, content_type = "application/problem+json"),
    ),
    security(("session" = [])))]
pub async fn start_totp(
    State(s): State<CommandState>,
    ctx: UserContext,
) -> Result<Json<TotpEnrolment>, Problem> {
    let (user, _) = me(&ctx)?;
    let enrolment = s.identity.accounts.start_totp(user, &ctx.metadata).await?;
    Ok(Json(enrolment))
}

/// Turn TOTP on by proving the app produces valid codes; answers the recovery codes.
#[utoipa::path(post, path = "/api/v1/me/totp/confirm", tag = "me", request_body = TotpCode,
    responses(
        (status = 200, description = "Enabled", body = RecoveryCodes),
        (status = 401, description = "Wrong code", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not being enrolled, or already on", body = Problem, content_type = "application/problem+json"),
    ),
    security(("session" = [])))]
pub async fn confirm_totp(
    State(s): State<CommandState>,
    ctx: UserContext,
    ApiJson(b): ApiJson<TotpCode>,
) -> Result<Json<RecoveryCodes>, Problem> {
    let (user, _) = me(&ctx)?;
    let codes = s
        .identity
        .accounts
        .confirm_totp(user, &b.code, &ctx.metadata)
        .await?;
    Ok(Json(codes))
}

/// Turn TOTP off (needs the password).
#[utoipa::path(delete, path = "/api/v1/me/totp", tag = "me", request_body = PasswordConfirmation,
    responses(
        (status = 200, description = "Disabled", body = Accepted),
        (status = 401, description = "Wrong password", body = Problem, content_type = "application/problem+json"),
    ),
    security(("session" = [])))]
pub async fn disable_totp(
    State(s): State<CommandState>,
    ctx: UserContext,
    ApiJson(b): ApiJson<PasswordConfirmation>,
) -> Result<Json<Accepted>, Problem> {
    let (user, _) = me(&ctx)?;
    let accepted = s
        .identity
        .accounts
        .disable_totp(user, b.password, &ctx.metadata)
        .await?;
    Ok(Json(accepted))
}

/// Work in another organization (one the user is a member of).
#[utoipa::path(post, path = "/api/v1/me/organization", tag = "me", request_body = SwitchOrganization,
    responses(
        (status = 204, description = "Switched"),
        (status = 404, description = "No such organization (or not a member)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("session" = [])))]
pub async fn switch_organization(
    State(s): State<CommandState>,
    ctx: UserContext,
    ApiJson(b): ApiJson<SwitchOrganization>,
) -> Result<StatusCode, Problem> {
    let (_, session) = me(&ctx)?;
    s.identity
        .accounts
        .switch_organization(session, TenantId(b.organization_id))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Found an organization; the user becomes its owner and works in it from now on.
#[utoipa::path(post, path = "/api/v1/organizations", tag = "organization", request_body = CreateOrganization,
    responses(
        (status = 201, description = "Created", body = Accepted),
        (status = 422, description = "Invalid name", body = Problem, content_type = "application/problem+json"),
    ),
    security(("session" = [])))]
pub async fn create_organization(
    State(s): State<CommandState>,
    ctx: UserContext,
    ApiJson(b): ApiJson<CreateOrganization>,
) -> Result<Response, Problem> {
    let name = b.validate()?;
    let (_, session) = me(&ctx)?;
    let (_, accepted) = s
        .identity
        .accounts
        .create_organization(session, name, &ctx.metadata)
        .await?;
    Ok((StatusCode::CREATED, Json(accepted)).into_response())
}

/// Accept an invite with the mailed token; the user joins and works in that organization.
#[utoipa::path(post, path = "/api/v1/invites/accept", tag = "organization", request_body = TokenBody,
    responses(
        (status = 200, description = "Joined (accepting again changes nothing)", body = Accepted),
        (status = 403, description = "The invite is for another email", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such invite", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Invite used or revoked", body = Problem, content_type = "application/problem+json"),
        (status = 410, description = "Invite expired", body = Problem, content_type = "application/problem+json"),
    ),
    security(("session" = [])))]
pub async fn accept_invite(
    State(s): State<CommandState>,
    ctx: UserContext,
    ApiJson(b): ApiJson<TokenBody>,
) -> Result<Json<Accepted>, Problem> {
    let (_, session) = me(&ctx)?;
    let accepted = s
        .identity
        .accounts
        .accept_invite(session, &b.token, &ctx.client, &ctx.metadata)
        .await?;
    Ok(Json(accepted))
}
