//! Sign-up, email verification, login (password, then TOTP or a recovery code), logout,
//! and password reset by mailed token. Login and token routes are rate-limited per account
//! and per address.

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use axum_extra::extract::cookie::CookieJar;
use domain::identity::user::{UserCommand, PLATFORM_TENANT};
use event_store::reservation::{Holder, Scope};
use http_kit::auth::session::{Stage, COOKIE};
use http_kit::auth::throttle::Limit;
use http_kit::{secret, ApiJson, Problem};
use uuid::Uuid;

use super::body::{self, ForgotPassword, Login, ResetPassword, SecondFactor, SignUp, TokenBody};
use super::config::chrono;
use super::support::{self, bad_credentials, SignedInAnswer};
use super::{credentials, password, totp};
use crate::context::UserContext;
use crate::executor::Accepted;
use crate::CommandState;

const MINUTES_15: Duration = Duration::from_secs(15 * 60);
/// Login attempts per account (email) per 15 minutes.
pub const LOGIN_PER_ACCOUNT: Limit = Limit {
    attempts: 10,
    window: MINUTES_15,
};
/// Login attempts per client address per 15 minutes.
pub const LOGIN_PER_ADDRESS: Limit = Limit {
    attempts: 100,
    window: MINUTES_15,
};
/// Token and code submissions per client address per 15 minutes.
pub const TOKENS_PER_ADDRESS: Limit = Limit {
    attempts: 30,
    window: MINUTES_15,
};
/// Second-factor attempts per user per 15 minutes.
pub const SECOND_FACTOR_PER_USER: Limit = Limit {
    attempts: 10,
    window: MINUTES_15,
};
/// Sign-ups and reset requests per address per hour.
pub const MAILS_PER_ADDRESS: Limit = Limit {
    attempts: 20,
    window: Duration::from_secs(3600),
};

/// Create an account (signed in at once; the email still needs verifying).
#[utoipa::path(post, path = "/api/v1/auth/signup", tag = "auth", request_body = SignUp,
    responses(
        (status = 201, description = "Signed up and signed in (session cookie set)", body = SignedInAnswer),
        (status = 409, description = "An account with this email exists", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid email or weak password", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many attempts", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn signup(
    State(s): State<CommandState>,
    ctx: UserContext,
    jar: CookieJar,
    ApiJson(b): ApiJson<SignUp>,
) -> Result<Response, Problem> {
    let email = body::email(&b.email)?;
    let name = body::person_name(b.name.as_deref())?;
    password::check_policy(&b.password, email.as_str(), name.as_deref())?;
    s.auth
        .throttle
        .hit(&format!("mail:{}", ctx.client.ip_text()), MAILS_PER_ADDRESS)
        .await?;
    let hash = password::hash(s.identity.config.password_cost, b.password).await?;
    let user_id = Uuid::now_v7();
    let me = Holder {
        tenant_id: PLATFORM_TENANT,
        owner_id: user_id,
    };
    let token = secret::random_hex(32);
    let expires = s.auth.clock.now() + chrono(s.identity.config.verification_ttl);
    let command = UserCommand::SignUp {
        email: email.clone(),
        name,
        has_password: true,
        verification: Some((secret::digest(&token), expires)),
    };
    let meta = ctx.in_tenant(PLATFORM_TENANT);
    let created = support::reserved(&s.pool, Scope::UserEmail, email.as_str(), me, || async {
        credentials::set_password(&s.pool, user_id, &hash).await?;
        s.identity
            .users
            .execute(PLATFORM_TENANT, user_id, command, &meta)
            .await
            .map_err(Problem::from)
    })
    .await?;
    if created.is_err() {
        return Err(
            Problem::new(StatusCode::CONFLICT, "email-taken", "Email taken")
                .detail("an account with this email exists; sign in or reset the password"),
        );
    }
    send_verification(&s, email.as_str(), user_id, &token).await;
    let mut res = support::sign_in(&s, &jar, user_id, &ctx.client).await?;
    *res.status_mut() = StatusCode::CREATED;
    Ok(res)
}

/// Mails the verification link; a failure is logged (the user can ask for another).
pub async fn send_verification(s: &CommandState, to: &str, user: Uuid, token: &str) {
    let url = support::link(s, "/verify-email", &support::user_token(user, token));
    let body = format!("Welcome to Mauntic3.\n\nConfirm your email address: {url}\n\nThe link works once, for 48 hours.\n");
    if let Err(e) = s
        .identity
        .mailer
        .send(to, "Confirm your email address", body)
        .await
    {
        tracing::warn!(error = %e, "verification mail not sent");
    }
}

/// Verify an email address with the mailed token.
#[utoipa::path(post, path = "/api/v1/auth/verify-email", tag = "auth", request_body = TokenBody,
    responses(
        (status = 200, description = "Verified", body = Accepted),
        (status = 400, description = "Invalid or used token", body = Problem, content_type = "application/problem+json"),
        (status = 410, description = "Expired token", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn verify_email(
    State(s): State<CommandState>,
    ctx: UserContext,
    ApiJson(b): ApiJson<TokenBody>,
) -> Result<Json<Accepted>, Problem> {
    support::limit_token_guesses(&s, &ctx.client).await?;
    let (user, token) = support::parse_user_token(&b.token)?;
    let command = UserCommand::VerifyEmail {
        token: secret::digest(&token),
        now: s.auth.clock.now(),
    };
    let meta = ctx.in_tenant(PLATFORM_TENANT);
    run_token_command(&s, user, command, &meta).await.map(Json)
}

/// Runs a token command on `user`; an unknown user reads as an invalid token.
async fn run_token_command(
    s: &CommandState,
    user: Uuid,
    command: UserCommand,
    meta: &event_store::EventMetadata,
) -> Result<Accepted, Problem> {
    use domain::identity::user::UserError;
    match s
        .identity
        .users
        .execute(PLATFORM_TENANT, user, command, meta)
        .await
    {
        Ok(a) => Ok(a),
        Err(crate::CommandError::Rejected(UserError::NotFound)) => {
            Err(crate::CommandError::Rejected(UserError::InvalidToken).into())
        }
        Err(e) => Err(e.into()),
    }
}

/// What a password login answers when a second factor is still needed.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct SecondFactorRequired {
    /// Always true: send a TOTP or recovery code to `/api/v1/auth/login/second-factor`.
    pub second_factor_required: bool,
}

/// Sign in with email and password.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = Login,
    responses(
        (status = 200, description = "Signed in (session cookie set), or a second factor is required", body = SignedInAnswer),
        (status = 401, description = "Wrong email or password", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many attempts (Retry-After)", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn login(
    State(s): State<CommandState>,
    ctx: UserContext,
    jar: CookieJar,
    ApiJson(b): ApiJson<Login>,
) -> Result<Response, Problem> {
    let email = b.email.trim().to_lowercase();
    s.auth
        .throttle
        .hit(
            &format!("login-ip:{}", ctx.client.ip_text()),
            LOGIN_PER_ADDRESS,
        )
        .await?;
    let account_bucket = format!("login:{email}");
    s.auth
        .throttle
        .hit(&account_bucket, LOGIN_PER_ACCOUNT)
        .await?;
    let user_id = support::user_by_email(&s, &email).await?;
    let user = match user_id {
        Some(id) => Some((id, support::load_user(&s, id).await?)).filter(|(_, u)| u.exists),
        None => None,
    };
    let hash = match &user {
        Some((id, _)) => credentials::of(&s.pool, *id).await?.password_hash,
        None => None,
    };
    if !password::verify(s.identity.config.password_cost, b.password, hash).await? {
        return Err(bad_credentials());
    }
    let Some((user_id, user)) = user else {
        return Err(bad_credentials());
    };
    s.auth.throttle.reset(&account_bucket).await?;
    if user.totp_enabled {
        support::end_presented_session(&s, &jar).await?;
        let pending = s
            .auth
            .sessions
            .create(user_id, None, Stage::SecondFactor, &ctx.client)
            .await?;
        let jar = jar.add(
            s.auth
                .sessions
                .cookie(pending.cookie_value, Stage::SecondFactor),
        );
        return Ok((
            jar,
            Json(SecondFactorRequired {
                second_factor_required: true,
            }),
        )
            .into_response());
    }
    support::sign_in(&s, &jar, user_id, &ctx.client).await
}

/// Finish a login with a TOTP code or a recovery code.
#[utoipa::path(post, path = "/api/v1/auth/login/second-factor", tag = "auth", request_body = SecondFactor,
    responses(
        (status = 200, description = "Signed in (a new session cookie set)", body = SignedInAnswer),
        (status = 401, description = "Wrong code, or no login awaiting one", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many attempts", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn second_factor(
    State(s): State<CommandState>,
    ctx: UserContext,
    jar: CookieJar,
    ApiJson(b): ApiJson<SecondFactor>,
) -> Result<Response, Problem> {
    let wrong = || {
        Problem::new(
            StatusCode::UNAUTHORIZED,
            "invalid-second-factor",
            "Invalid code",
        )
        .detail("the code is wrong, or no login is waiting for one")
    };
    let pending = match jar.get(COOKIE) {
        Some(c) => s.auth.sessions.find(c.value()).await?,
        None => None,
    };
    let pending = pending
        .filter(|p| p.stage == Stage::SecondFactor)
        .ok_or_else(wrong)?;
    let user_id = pending.user_id;
    s.auth
        .throttle
        .hit(&format!("mfa:{user_id}"), SECOND_FACTOR_PER_USER)
        .await?;
    let user = support::load_user(&s, user_id).await?;
    let meta = ctx.in_tenant(PLATFORM_TENANT);
    match (b.code.as_deref(), b.recovery_code.as_deref()) {
        (Some(code), None) => {
            let secret_b32 = credentials::of(&s.pool, user_id).await?.totp_secret;
            let secret_b32 = secret_b32.as_deref().ok_or_else(wrong)?;
            let step = totp::matching_step(secret_b32, code, s.auth.clock.now())?;
            let Some(step) = step.filter(|_| user.totp_enabled) else {
                return Err(wrong());
            };
            // Each code signs in once: a replay within its 30 s is refused.
            if !credentials::use_totp_step(&s.pool, user_id, step).await? {
                return Err(wrong());
            }
        }
        (None, Some(code)) => {
            let digest = secret::digest(&code.trim().to_lowercase());
            s.identity
                .users
                .execute(
                    PLATFORM_TENANT,
                    user_id,
                    UserCommand::UseRecoveryCode { code: digest },
                    &meta,
                )
                .await
                .map_err(|_| wrong())?;
        }
        _ => {
            return Err(Problem::validation(
                "code",
                "give either code or recovery_code",
            ))
        }
    }
    support::sign_in(&s, &jar, user_id, &ctx.client).await
}

/// Sign out: the session ends on the server and its cookie is cleared.
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth",
    responses((status = 204, description = "Signed out")),
    security(("session" = [])))]
pub async fn logout(
    State(s): State<CommandState>,
    ctx: UserContext,
    jar: CookieJar,
) -> Result<Response, Problem> {
    if let Some(session) = &ctx.session {
        s.auth.sessions.delete(&session.id_hash).await?;
    }
    Ok((jar.add(s.auth.sessions.removal()), StatusCode::NO_CONTENT).into_response())
}

/// Ask for a password-reset link by mail. Answers the same whether the account exists.
#[utoipa::path(post, path = "/api/v1/auth/password/forgot", tag = "auth", request_body = ForgotPassword,
    responses(
        (status = 202, description = "If the account exists, a link was mailed"),
        (status = 429, description = "Too many attempts", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn forgot_password(
    State(s): State<CommandState>,
    ctx: UserContext,
    ApiJson(b): ApiJson<ForgotPassword>,
) -> Result<Response, Problem> {
    let email = body::email(&b.email)?;
    s.auth
        .throttle
        .hit(&format!("mail:{}", ctx.client.ip_text()), MAILS_PER_ADDRESS)
        .await?;
    s.auth
        .throttle
        .hit(
            &format!("forgot:{email}"),
            Limit {
                attempts: 5,
                window: Duration::from_secs(3600),
            },
        )
        .await?;
    if let Some(user) = support::user_by_email(&s, email.as_str()).await? {
        let token = secret::random_hex(32);
        let command = UserCommand::RequestPasswordReset {
            token: secret::digest(&token),
            expires_at: s.auth.clock.now() + chrono(s.identity.config.reset_ttl),
        };
        let meta = ctx.in_tenant(PLATFORM_TENANT);
        if s.identity
            .users
            .execute(PLATFORM_TENANT, user, command, &meta)
            .await
            .is_ok()
        {
            let url = support::link(&s, "/reset-password", &support::user_token(user, &token));
            let body = format!("Someone asked to reset your Mauntic3 password.\n\nChoose a new one: {url}\n\nThe link works once, for one hour. If it was not you, ignore this mail.\n");
            if let Err(e) = s
                .identity
                .mailer
                .send(email.as_str(), "Reset your password", body)
                .await
            {
                tracing::warn!(error = %e, "reset mail not sent");
            }
        }
    }
    Ok((StatusCode::ACCEPTED, Json(serde_json::json!({}))).into_response())
}

/// Set a new password with the mailed token; every session of the user ends.
#[utoipa::path(post, path = "/api/v1/auth/password/reset", tag = "auth", request_body = ResetPassword,
    responses(
        (status = 200, description = "Password changed; all sessions ended", body = Accepted),
        (status = 400, description = "Invalid or used token", body = Problem, content_type = "application/problem+json"),
        (status = 410, description = "Expired token", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Weak password", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn reset_password(
    State(s): State<CommandState>,
    ctx: UserContext,
    ApiJson(b): ApiJson<ResetPassword>,
) -> Result<Json<Accepted>, Problem> {
    support::limit_token_guesses(&s, &ctx.client).await?;
    let (user_id, token) = support::parse_user_token(&b.token)?;
    let user = support::load_user(&s, user_id).await?;
    password::check_policy(&b.password, &user.email, user.name.as_deref())?;
    let (digest, now) = (secret::digest(&token), s.auth.clock.now());
    // Checked before the new password is stored; the command checks again, atomically.
    user.check_reset_token(&digest, now)
        .map_err(|e| crate::CommandError::Rejected(e).into_problem())?;
    let hash = password::hash(s.identity.config.password_cost, b.password).await?;
    credentials::set_password(&s.pool, user_id, &hash).await?;
    let command = UserCommand::ResetPassword { token: digest, now };
    let meta = ctx.in_tenant(PLATFORM_TENANT);
    let accepted = run_token_command(&s, user_id, command, &meta).await?;
    s.auth.sessions.delete_for_user(user_id, None).await?;
    Ok(Json(accepted))
}
