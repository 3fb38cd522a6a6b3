//! What the identity handlers share: mailed tokens, finding users, signing in.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use axum_extra::extract::cookie::CookieJar;
use domain::identity::user::{User, PLATFORM_TENANT};
use event_store::reservation::{self, Scope};
use http_kit::auth::session::{Stage, COOKIE};
use http_kit::{secret, ClientInfo, Problem};
use serde::Serialize;
use uuid::Uuid;

use crate::CommandState;

/// A mailed token that names its user: `<user id>.<secret>`.
pub fn user_token(user: Uuid, secret: &str) -> String {
    format!("{user}.{secret}")
}

/// The user and secret of a mailed token; any malformed token is simply invalid.
pub fn parse_user_token(token: &str) -> Result<(Uuid, String), Problem> {
    let invalid = || {
        Problem::new(StatusCode::BAD_REQUEST, "invalid-token", "Invalid token")
            .detail("the token is invalid or was already used")
    };
    let (user, secret) = token.trim().split_once('.').ok_or_else(invalid)?;
    let user = Uuid::parse_str(user).map_err(|_| invalid())?;
    if secret.len() != 64 {
        return Err(invalid());
    }
    Ok((user, secret.to_owned()))
}

/// The user with this email, if any.
pub async fn user_by_email(s: &CommandState, email: &str) -> Result<Option<Uuid>, Problem> {
    reservation::lookup(&s.pool, Scope::UserEmail, email)
        .await
        .map(|h| h.map(|h| h.owner_id))
        .map_err(|e| Problem::from_internal(&e))
}

/// The user `id` as of its latest event (`exists` is false for an unknown id).
pub async fn load_user(s: &CommandState, id: Uuid) -> Result<User, Problem> {
    s.identity
        .users
        .load(PLATFORM_TENANT, id)
        .await
        .map_err(Problem::from)
}

/// What a successful sign-in answers (the session itself is in the cookie).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SignedInAnswer {
    pub user_id: Uuid,
    /// The organization the session works in (the one used last), if any.
    pub organization_id: Option<Uuid>,
    /// Send as `X-CSRF-Token` with every cookie-authenticated write.
    pub csrf_token: String,
}

/// Signs `user` in: a new session id (a presented one is ended: no fixation), the
/// organization used last (if still a member), the cookie. The session row records when and
/// from where.
pub async fn sign_in(
    s: &CommandState,
    jar: &CookieJar,
    user: Uuid,
    client: &ClientInfo,
) -> Result<Response, Problem> {
    end_presented_session(s, jar).await?;
    let org = last_organization(s, user).await?;
    let new = s
        .auth
        .sessions
        .create(user, org, Stage::Active, client)
        .await?;
    let jar = jar
        .clone()
        .add(s.auth.sessions.cookie(new.cookie_value, Stage::Active));
    let answer = SignedInAnswer {
        user_id: user,
        organization_id: org,
        csrf_token: new.session.csrf_token,
    };
    Ok((jar, Json(answer)).into_response())
}

/// Ends the session whose cookie the request carries, if any.
pub async fn end_presented_session(s: &CommandState, jar: &CookieJar) -> Result<(), Problem> {
    if let Some(c) = jar.get(COOKIE) {
        s.auth
            .sessions
            .delete(&secret::digest_bytes(c.value()))
            .await?;
    }
    Ok(())
}

/// The organization `user` worked in last, if they are still a member of it.
async fn last_organization(s: &CommandState, user: Uuid) -> Result<Option<Uuid>, Problem> {
    let org: Option<(Uuid,)> =
        sqlx::query_as("SELECT organization_id FROM user_last_organization WHERE user_id = $1")
            .bind(user)
            .fetch_optional(&s.pool)
            .await
            .map_err(|e| Problem::from_internal(&e))?;
    let Some((org,)) = org else {
        return Ok(None);
    };
    let current = s
        .auth
        .orgs
        .current(org)
        .await
        .map_err(|e| Problem::from_internal(&e))?;
    Ok(current.filter(|o| o.role_of(user).is_some()).map(|_| org))
}

/// Remembers `org` as the one `user` works in, for their next sign-in.
pub async fn remember_organization(s: &CommandState, user: Uuid, org: Uuid) -> Result<(), Problem> {
    sqlx::query(
        "INSERT INTO user_last_organization (user_id, organization_id) VALUES ($1, $2) \
         ON CONFLICT (user_id) DO UPDATE SET organization_id = EXCLUDED.organization_id",
    )
    .bind(user)
    .bind(org)
    .execute(&s.pool)
    .await
    .map_err(|e| Problem::from_internal(&e))?;
    Ok(())
}

/// A link into the platform, e.g. `https://app.example/reset-password?token=…`.
pub fn link(s: &CommandState, path: &str, token: &str) -> String {
    format!(
        "{}{path}?token={token}",
        s.identity.config.public_url.trim_end_matches('/')
    )
}

/// 401 for a failed sign-in, the same whatever was wrong.
pub fn bad_credentials() -> Problem {
    Problem::new(
        StatusCode::UNAUTHORIZED,
        "invalid-credentials",
        "Invalid credentials",
    )
    .detail("the email or password is wrong")
}

pub use crate::reservations::reserved;

/// Counts a token or code guess from this client (429 past the limit).
pub async fn limit_token_guesses(s: &CommandState, client: &ClientInfo) -> Result<(), Problem> {
    s.auth
        .throttle
        .hit(
            &format!("token:{}", client.ip_text()),
            super::auth_http::TOKENS_PER_ADDRESS,
        )
        .await
}
