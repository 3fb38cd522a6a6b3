//! `Authorization: Bearer <api key>` on every `/api/v1` route.

use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use event_store::tenancy::{self, Caller};
use sqlx::PgPool;

use crate::Problem;

/// Middleware: resolves the bearer key to its caller, or answers 401.
pub async fn require_api_key(
    State(pool): State<PgPool>,
    mut req: Request,
    next: Next,
) -> Result<Response, Problem> {
    let unauthorized = |detail: &str| {
        Problem::new(StatusCode::UNAUTHORIZED, "unauthorized", "Unauthorized").detail(detail)
    };
    let key = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .ok_or_else(|| unauthorized("send Authorization: Bearer <api key>"))?;
    let caller = tenancy::authenticate(&pool, key)
        .await
        .map_err(|e| Problem::from_internal(&e))?
        .ok_or_else(|| unauthorized("unknown or revoked API key"))?;
    req.extensions_mut().insert(caller);
    Ok(next.run(req).await)
}

/// The authenticated caller of this request.
pub struct Authenticated(pub Caller);

impl<S: Send + Sync> FromRequestParts<S> for Authenticated {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Caller>()
            .copied()
            .map(Self)
            .ok_or_else(Problem::internal)
    }
}
