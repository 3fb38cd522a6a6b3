//! `Authorization: Bearer <api key>` on every `/api/v1` route.

use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use event_store::tenancy::{self, Caller};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sqlx::PgPool;

use crate::Problem;

/// Resolves keys to callers, remembering live keys for a short time so a request does not
/// cost a key lookup. A revoked key keeps working for at most `ttl` in a process that has
/// just seen it (the identity issue replaces this with invalidation on revocation).
#[derive(Clone)]
pub struct KeyResolver {
    pool: PgPool,
    ttl: Duration,
    live: Arc<Mutex<HashMap<String, (Caller, Instant)>>>,
}

impl KeyResolver {
    pub fn new(pool: PgPool, ttl: Duration) -> Self {
        Self {
            pool,
            ttl,
            live: Arc::default(),
        }
    }

    async fn resolve(&self, key: &str) -> Result<Option<Caller>, event_store::StoreError> {
        let now = Instant::now();
        if let Ok(live) = self.live.lock() {
            if let Some((caller, at)) = live.get(key) {
                if now.duration_since(*at) < self.ttl {
                    return Ok(Some(*caller));
                }
            }
        }
        let found = tenancy::authenticate(&self.pool, key).await?;
        if let (Some(caller), Ok(mut live)) = (found, self.live.lock()) {
            if live.len() > 10_000 {
                live.retain(|_, (_, at)| now.duration_since(*at) < self.ttl);
            }
            live.insert(key.to_owned(), (caller, now));
        }
        Ok(found)
    }
}

/// Middleware: resolves the bearer key to its caller, or answers 401.
pub async fn require_api_key(
    State(keys): State<KeyResolver>,
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
    let caller = keys
        .resolve(key)
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
