//! The middleware on every `/api/v1` route: who is calling, and may they do this?

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use axum_extra::extract::cookie::CookieJar;
use domain::identity::organization::Organization;
use event_store::Clock;
use sqlx::PgPool;

use super::session::{Session, Stage, COOKIE, CSRF_HEADER};
use super::{
    access_of, Access, Actor, Caller, ClientInfo, KeyResolver, OrgCache, SessionConfig,
    SessionStore, Throttle,
};
use crate::{secret, Problem};

/// What authentication needs, shared by every request.
#[derive(Clone)]
pub struct AuthState {
    pub keys: KeyResolver,
    pub orgs: OrgCache,
    pub sessions: SessionStore,
    pub throttle: Throttle,
    pub clock: Clock,
    /// Take the client address from `X-Forwarded-For` (behind a trusted proxy only).
    pub trust_proxy: bool,
}

impl AuthState {
    pub fn new(pool: PgPool, sessions: SessionConfig, clock: Clock, trust_proxy: bool) -> Self {
        Self {
            keys: KeyResolver::new(pool.clone()),
            orgs: OrgCache::new(pool.clone()),
            sessions: SessionStore::new(pool.clone(), sessions, clock.clone()),
            throttle: Throttle::new(pool),
            clock,
            trust_proxy,
        }
    }
}

fn unauthorized(detail: &str) -> Problem {
    Problem::new(StatusCode::UNAUTHORIZED, "unauthorized", "Unauthorized").detail(detail)
}

fn forbidden(slug: &str, detail: impl Into<String>) -> Problem {
    Problem::new(StatusCode::FORBIDDEN, slug, "Forbidden").detail(detail)
}

/// Resolves the caller (API key or session cookie), applies the route's access rule, and
/// leaves `ClientInfo`, and `Caller` or `Session`, in the request for the handler.
pub async fn authenticate(
    State(auth): State<AuthState>,
    mut req: Request,
    next: Next,
) -> Result<Response, Problem> {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    let client = ClientInfo::from_parts(req.headers(), peer, auth.trust_proxy);
    req.extensions_mut().insert(client);
    // No matched route: the router answers 404 itself.
    let Some(path) = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
    else {
        return Ok(next.run(req).await);
    };
    let Some(access) = access_of(req.method(), &path) else {
        let allowed = super::routes::methods_of(&path);
        if !allowed.is_empty() {
            return Ok(Problem::method_not_allowed(&allowed));
        }
        tracing::error!(method = %req.method(), %path, "route has no access rule; refused");
        return Err(Problem::internal());
    };
    let bearer = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.strip_prefix("Bearer ").unwrap_or("").trim().to_owned());
    match access {
        Access::Public => {}
        Access::User => {
            if bearer.is_some() {
                return Err(forbidden(
                    "user-only",
                    "this route is for signed-in users, not API keys",
                ));
            }
            let session = signed_in(&auth, &Credentials::of(req.method(), req.headers())).await?;
            req.extensions_mut().insert(session);
        }
        Access::Org(action) => {
            // A key acts with its kind's limits; a person with their role alone.
            let (key_kind, caller) = match bearer {
                Some(key) => key_caller(&auth, &key).await?,
                None => {
                    let session =
                        signed_in(&auth, &Credentials::of(req.method(), req.headers())).await?;
                    let caller = session_caller(&auth, &session).await?;
                    req.extensions_mut().insert(session);
                    caller
                }
            };
            let allowed = match key_kind {
                Some(kind) => kind.allows(caller.role, action),
                None => domain::identity::allows(caller.role, action),
            };
            if !allowed {
                return Err(forbidden(
                    "forbidden",
                    format!("the {} role may not do this", caller.role),
                ));
            }
            req.extensions_mut().insert(caller);
        }
    }
    Ok(next.run(req).await)
}

/// The session cookie and CSRF header of a request, and whether it writes: taken out of the
/// request (which is not `Sync`, so cannot be borrowed across an await) without copying the
/// whole header map, and only on the session path.
struct Credentials {
    cookie: Option<String>,
    csrf: Option<String>,
    writes: bool,
}

impl Credentials {
    fn of(method: &Method, headers: &HeaderMap) -> Self {
        Self {
            cookie: CookieJar::from_headers(headers)
                .get(COOKIE)
                .map(|c| c.value().to_owned()),
            csrf: headers
                .get(CSRF_HEADER)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            writes: !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS),
        }
    }
}

/// The active session of the request's cookie; cookie-authenticated writes must also
/// carry the session's CSRF token in `X-CSRF-Token`.
async fn signed_in(auth: &AuthState, c: &Credentials) -> Result<Session, Problem> {
    let value = c
        .cookie
        .as_deref()
        .ok_or_else(|| unauthorized("sign in, or send Authorization: Bearer <api key>"))?;
    let session = auth
        .sessions
        .find(value)
        .await
        .map_err(|e| Problem::from_internal(&e))?
        .filter(|s| s.stage == Stage::Active)
        .ok_or_else(|| unauthorized("the session has ended; sign in again"))?;
    if c.writes {
        let token = c.csrf.as_deref().unwrap_or("");
        if !secret::constant_time_eq(token.as_bytes(), session.csrf_token.as_bytes()) {
            return Err(forbidden(
                "csrf",
                "cookie-authenticated writes need the session's X-CSRF-Token header",
            ));
        }
    }
    Ok(session)
}

/// The caller a key stands for: live key of an unblocked organization.
async fn key_caller(
    auth: &AuthState,
    key: &str,
) -> Result<(Option<domain::identity::KeyKind>, Caller), Problem> {
    let bad = || unauthorized("unknown, revoked or expired API key");
    let (holder, digest) = auth
        .keys
        .locate(key)
        .await
        .map_err(|e| Problem::from_internal(&e))?
        .ok_or_else(bad)?;
    let org = current(auth, holder.tenant_id).await?.ok_or_else(bad)?;
    let now = auth.clock.now();
    let k = org
        .keys
        .get(&holder.owner_id)
        .filter(|k| k.digest == digest && k.is_live(now))
        .ok_or_else(bad)?;
    if org.blocked {
        return Err(blocked());
    }
    auth.keys.record_use(holder.tenant_id, holder.owner_id, now);
    Ok((
        Some(k.kind),
        Caller {
            tenant_id: holder.tenant_id,
            actor: Actor::ApiKey(holder.owner_id),
            role: k.role,
        },
    ))
}

/// The caller a session stands for in its current organization.
async fn session_caller(
    auth: &AuthState,
    session: &Session,
) -> Result<(Option<domain::identity::KeyKind>, Caller), Problem> {
    let org_id = session.organization_id.ok_or_else(|| {
        forbidden(
            "no-organization",
            "choose an organization first (POST /api/v1/me/organization)",
        )
    })?;
    let not_member = || forbidden("not-a-member", "you are not a member of this organization");
    let org = current(auth, org_id).await?.ok_or_else(not_member)?;
    let role = org.role_of(session.user_id).ok_or_else(not_member)?;
    if org.blocked {
        return Err(blocked());
    }
    Ok((
        None,
        Caller {
            tenant_id: org_id,
            actor: Actor::User(session.user_id),
            role,
        },
    ))
}

async fn current(
    auth: &AuthState,
    org: uuid::Uuid,
) -> Result<Option<std::sync::Arc<Organization>>, Problem> {
    auth.orgs
        .current(org)
        .await
        .map_err(|e| Problem::from_internal(&e))
}

fn blocked() -> Problem {
    forbidden(
        "organization-blocked",
        "this organization is blocked; contact support",
    )
}
