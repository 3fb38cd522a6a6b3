//! The signed-in user's own account: password, email verification, TOTP, the current
//! organization, founding an organization, accepting an invite.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use domain::identity::organization::OrganizationCommand;
use domain::identity::user::{UserCommand, PLATFORM_TENANT};
use domain::EmailAddress;
use http_kit::auth::throttle::Limit;
use http_kit::{secret, ApiJson, Problem};
use serde::Serialize;
use uuid::Uuid;

use super::auth_http::send_verification;
use super::body::{
    ChangePassword, CreateOrganization, PasswordConfirmation, SwitchOrganization, TokenBody,
    TotpCode,
};
use super::config::chrono;
use super::{credentials, password, support, totp};
use crate::context::UserContext;
use crate::executor::Accepted;
use crate::CommandState;

const PASSWORD_CHECKS: Limit = Limit {
    attempts: 10,
    window: std::time::Duration::from_secs(15 * 60),
};

/// Checks the signed-in user's password (rate-limited per user).
async fn confirm_password(
    s: &CommandState,
    user_id: Uuid,
    given: String,
) -> Result<domain::identity::user::User, Problem> {
    s.auth
        .throttle
        .hit(&format!("password:{user_id}"), PASSWORD_CHECKS)
        .await?;
    let user = support::load_user(s, user_id).await?;
    let hash = credentials::of(&s.pool, user_id).await?.password_hash;
    if !password::verify(s.identity.config.password_cost, given, hash).await? {
        return Err(Problem::new(
            StatusCode::UNAUTHORIZED,
            "invalid-credentials",
            "Invalid credentials",
        )
        .detail("the password is wrong"));
    }
    Ok(user)
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
    let user_id = ctx.user_id()?;
    let user = confirm_password(&s, user_id, b.current_password).await?;
    password::check_policy(&b.new_password, &user.email, user.name.as_deref())?;
    let hash = password::hash(s.identity.config.password_cost, b.new_password).await?;
    // Stored first, so the event never tells of a change that did not happen.
    credentials::set_password(&s.pool, user_id, &hash).await?;
    let accepted = s
        .identity
        .users
        .execute(
            PLATFORM_TENANT,
            user_id,
            UserCommand::ChangePassword,
            &ctx.in_tenant(PLATFORM_TENANT),
        )
        .await?;
    let keep = ctx.session.as_ref().map(|s| s.id_hash.as_slice());
    s.auth.sessions.delete_for_user(user_id, keep).await?;
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
    let user_id = ctx.user_id()?;
    s.auth
        .throttle
        .hit(&format!("verify-mail:{user_id}"), PASSWORD_CHECKS)
        .await?;
    let token = secret::random_hex(32);
    let command = UserCommand::RequestEmailVerification {
        token: secret::digest(&token),
        expires_at: s.auth.clock.now() + chrono(s.identity.config.verification_ttl),
    };
    let accepted = s
        .identity
        .users
        .execute(
            PLATFORM_TENANT,
            user_id,
            command,
            &ctx.in_tenant(PLATFORM_TENANT),
        )
        .await?;
    let user = support::load_user(&s, user_id).await?;
    send_verification(&s, &user.email, user_id, &token).await;
    Ok((StatusCode::ACCEPTED, Json(accepted)).into_response())
}

/// A TOTP secret to put in an authenticator app.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TotpEnrolment {
    /// Base32 secret.
    pub secret: String,
    /// The same as an `otpauth://` URL (show it as a QR code).
    pub otpauth_url: String,
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
    let user_id = ctx.user_id()?;
    let user = support::load_user(&s, user_id).await?;
    if user.totp_enabled {
        return Err(crate::CommandError::Rejected(
            domain::identity::user::UserError::TotpAlreadyEnabled,
        )
        .into_problem());
    }
    let secret_b32 = totp::new_secret();
    credentials::set_totp_secret(&s.pool, user_id, Some(&secret_b32)).await?;
    s.identity
        .users
        .execute(
            PLATFORM_TENANT,
            user_id,
            UserCommand::StartTotp,
            &ctx.in_tenant(PLATFORM_TENANT),
        )
        .await?;
    let user = support::load_user(&s, user_id).await?;
    Ok(Json(TotpEnrolment {
        otpauth_url: totp::otpauth_url(&secret_b32, &user.email),
        secret: secret_b32,
    }))
}

/// Recovery codes, shown once.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RecoveryCodes {
    /// Each works once in place of a TOTP code.
    pub recovery_codes: Vec<String>,
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
    let user_id = ctx.user_id()?;
    s.auth
        .throttle
        .hit(&format!("mfa:{user_id}"), PASSWORD_CHECKS)
        .await?;
    let user = support::load_user(&s, user_id).await?;
    let secret_b32 = credentials::of(&s.pool, user_id).await?.totp_secret;
    let Some(secret_b32) = secret_b32.as_deref().filter(|_| user.totp_pending) else {
        return Err(Problem::new(
            StatusCode::CONFLICT,
            "totp-not-set-up",
            "Two-factor not being enrolled",
        )
        .detail("start with POST /api/v1/me/totp"));
    };
    if !totp::check(secret_b32, &b.code, s.auth.clock.now())? {
        return Err(Problem::new(
            StatusCode::UNAUTHORIZED,
            "invalid-second-factor",
            "Invalid code",
        )
        .detail("the code does not match; check the app's clock"));
    }
    let codes = totp::recovery_codes();
    let command = UserCommand::ConfirmTotp {
        recovery_codes: codes.iter().map(|c| secret::digest(c)).collect(),
    };
    s.identity
        .users
        .execute(
            PLATFORM_TENANT,
            user_id,
            command,
            &ctx.in_tenant(PLATFORM_TENANT),
        )
        .await?;
    Ok(Json(RecoveryCodes {
        recovery_codes: codes,
    }))
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
    let user_id = ctx.user_id()?;
    confirm_password(&s, user_id, b.password).await?;
    let accepted = s
        .identity
        .users
        .execute(
            PLATFORM_TENANT,
            user_id,
            UserCommand::DisableTotp,
            &ctx.in_tenant(PLATFORM_TENANT),
        )
        .await?;
    credentials::set_totp_secret(&s.pool, user_id, None).await?;
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
    let session = ctx.session.as_ref().ok_or_else(Problem::internal)?;
    let org = s
        .auth
        .orgs
        .current(b.organization_id)
        .await
        .map_err(|e| Problem::from_internal(&e))?;
    if org.and_then(|o| o.role_of(session.user_id)).is_none() {
        return Err(Problem::not_found("organization"));
    }
    s.auth
        .sessions
        .set_organization(&session.id_hash, b.organization_id)
        .await?;
    support::remember_organization(&s, session.user_id, b.organization_id).await?;
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
    let session = ctx.session.as_ref().ok_or_else(Problem::internal)?;
    let user = support::load_user(&s, session.user_id).await?;
    let email = EmailAddress::parse(&user.email).map_err(|e| Problem::from_internal(&e))?;
    let org = Uuid::now_v7();
    let command = OrganizationCommand::Create {
        name,
        owner: Some((session.user_id, email)),
    };
    let accepted = s
        .identity
        .organizations
        .executor()
        .execute(org, org, command, &ctx.in_tenant(org))
        .await?;
    s.auth
        .sessions
        .set_organization(&session.id_hash, org)
        .await?;
    support::remember_organization(&s, session.user_id, org).await?;
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
    support::limit_token_guesses(&s, &ctx.client).await?;
    let session = ctx.session.as_ref().ok_or_else(Problem::internal)?;
    let (org, invite_id, token) = parse_invite_token(&b.token)?;
    let user = support::load_user(&s, session.user_id).await?;
    let email = EmailAddress::parse(&user.email).map_err(|e| Problem::from_internal(&e))?;
    let command = OrganizationCommand::AcceptInvite {
        invite_id,
        token: secret::digest(&token),
        user_id: session.user_id,
        email,
        now: s.auth.clock.now(),
    };
    let accepted = match s
        .identity
        .organizations
        .executor()
        .execute(org, org, command, &ctx.in_tenant(org))
        .await
    {
        Err(crate::CommandError::Rejected(
            domain::identity::organization::OrganizationError::NotFound,
        )) => return Err(Problem::not_found("invite")),
        other => other?,
    };
    s.auth
        .sessions
        .set_organization(&session.id_hash, org)
        .await?;
    support::remember_organization(&s, session.user_id, org).await?;
    Ok(Json(accepted))
}

/// An invite token: `<organization>.<invite>.<secret>`.
pub fn invite_token(org: Uuid, invite: Uuid, secret: &str) -> String {
    format!("{org}.{invite}.{secret}")
}

fn parse_invite_token(t: &str) -> Result<(Uuid, Uuid, String), Problem> {
    let mut parts = t.trim().splitn(3, '.');
    let mut id = || parts.next().and_then(|p| Uuid::parse_str(p).ok());
    let (Some(org), Some(invite)) = (id(), id()) else {
        return Err(Problem::not_found("invite"));
    };
    match parts.next() {
        Some(secret) if secret.len() == 64 => Ok((org, invite, secret.to_owned())),
        _ => Err(Problem::not_found("invite")),
    }
}
