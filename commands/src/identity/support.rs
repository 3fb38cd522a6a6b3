//! What the identity handlers share: the one mapping of account failures to problem+json,
//! and the answer of a sign-in (the session cookie and what the client needs).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use axum_extra::extract::cookie::CookieJar;
use http_kit::auth::session::{Stage, COOKIE};
use http_kit::Problem;
use serde::Serialize;
use uuid::Uuid;

use super::accounts::{AccountsError, SignedIn};
use domain::identity::user::UserError;

use crate::error::Rejection;
use crate::{CommandError, CommandState};

pub use crate::reservations::reserved;

/// What a successful sign-in answers (the session itself is in the cookie).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SignedInAnswer {
    pub user_id: Uuid,
    /// The organization the session works in (the one used last), if any.
    pub organization_id: Option<Uuid>,
    /// Send as `X-CSRF-Token` with every cookie-authenticated write.
    pub csrf_token: String,
}

/// The session cookie of the request, if any.
pub fn presented(jar: &CookieJar) -> Option<&str> {
    jar.get(COOKIE).map(|c| c.value())
}

/// The answer to a sign-in: the new session's cookie, and who is signed in where.
pub fn signed_in(s: &CommandState, jar: CookieJar, signed: SignedIn) -> Response {
    let jar = jar.add(
        s.auth
            .sessions
            .cookie(signed.session.cookie_value, Stage::Active),
    );
    let answer = SignedInAnswer {
        user_id: signed.user.0,
        organization_id: signed.organization.map(|o| o.0),
        csrf_token: signed.session.session.csrf_token,
    };
    (jar, Json(answer)).into_response()
}

impl From<AccountsError> for Problem {
    fn from(e: AccountsError) -> Self {
        use AccountsError as E;
        let detail = e.to_string();
        let p = |status: StatusCode, slug: &str, title: &str| {
            Problem::new(status, slug, title).detail(detail.clone())
        };
        match e {
            E::TooManyAttempts { retry_after } => p(
                StatusCode::TOO_MANY_REQUESTS,
                "too-many-attempts",
                "Too many attempts",
            )
            .retry_after(retry_after),
            E::EmailTaken => p(StatusCode::CONFLICT, "email-taken", "Email taken"),
            E::BadCredentials | E::WrongPassword => p(
                StatusCode::UNAUTHORIZED,
                "invalid-credentials",
                "Invalid credentials",
            ),
            E::WrongCode | E::CodeMismatch => p(
                StatusCode::UNAUTHORIZED,
                "invalid-second-factor",
                "Invalid code",
            ),
            E::TotpNotEnrolling => p(
                StatusCode::CONFLICT,
                "totp-not-set-up",
                "Two-factor not being enrolled",
            ),
            E::NoSuchOrganization => Problem::not_found("organization"),
            E::NoSuchInvite => Problem::not_found("invite"),
            E::Organization(r) => r.problem(),
            // The rest are answered like any command's failure.
            E::User(r) => CommandError::Rejected(r).into(),
            E::Invalid(i) => i.into(),
            E::Conflict => CommandError::<UserError>::Conflict.into(),
            E::Technical(t) => CommandError::<UserError>::Technical(t).into(),
        }
    }
}
