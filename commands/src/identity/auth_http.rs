//! Sign-up, email verification, login (password, then TOTP or a recovery code), logout,
//! and password reset by mailed token, over HTTP: each handler extracts, calls
//! [`Accounts`](super::accounts::Accounts), answers.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use axum_extra::extract::cookie::CookieJar;
use http_kit::auth::session::Stage;
use http_kit::{ApiJson, Problem};

use super::accounts::{LogIn, SecondFactor as Factor};
use super::body::{self, ForgotPassword, Login, ResetPassword, SecondFactor, SignUp, TokenBody};
use super::support::{self, presented, SignedInAnswer};
use crate::context::UserContext;
use crate::executor::Accepted;
use crate::CommandState;

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
    let signed = s
        .identity
        .accounts
        .sign_up(
            email,
            name,
            b.password,
            presented(&jar),
            &ctx.client,
            &ctx.metadata,
        )
        .await?;
    let mut res = support::signed_in(&s, jar, signed);
    *res.status_mut() = StatusCode::CREATED;
    Ok(res)
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
    let accepted = s
        .identity
        .accounts
        .verify_email(&b.token, &ctx.client, &ctx.metadata)
        .await?;
    Ok(Json(accepted))
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
    let outcome = s
        .identity
        .accounts
        .log_in(&b.email, b.password, presented(&jar), &ctx.client)
        .await?;
    Ok(match outcome {
        LogIn::SignedIn(signed) => support::signed_in(&s, jar, signed),
        LogIn::SecondFactor(pending) => {
            let cookie = s
                .auth
                .sessions
                .cookie(pending.cookie_value, Stage::SecondFactor);
            let answer = SecondFactorRequired {
                second_factor_required: true,
            };
            (jar.add(cookie), Json(answer)).into_response()
        }
    })
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
    let factor = Factor::parse(b.code, b.recovery_code)?;
    let signed = s
        .identity
        .accounts
        .second_factor(presented(&jar), factor, &ctx.client, &ctx.metadata)
        .await?;
    Ok(support::signed_in(&s, jar, signed))
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
        s.identity.accounts.log_out(session).await?;
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
    s.identity
        .accounts
        .forgot_password(email, &ctx.client, &ctx.metadata)
        .await?;
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
    let accepted = s
        .identity
        .accounts
        .reset_password(&b.token, b.password, &ctx.client, &ctx.metadata)
        .await?;
    Ok(Json(accepted))
}
