//! Identity queries: the signed-in user, their organization, members, invites and keys.

use std::collections::HashMap;
use std::future::Future;

use axum::extract::State;
use axum::Json;
use chrono::{DateTime, Utc};
use http_kit::ApiQuery;
use http_kit::{Authenticated, Problem, SignedIn};
use projections::organizations::{self, InviteRow, KeyRow, MemberRow, Membership, OrganizationRow};
use projections::users::{self, UserRow};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::consistency::ConsistentAfter;
use crate::QueryState;

/// The signed-in user and where they work.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Me {
    pub user: UserRow,
    /// Every organization the user is a member of, by name.
    pub organizations: Vec<Membership>,
    /// The organization this session works in (null before the user has one).
    pub current_organization_id: Option<Uuid>,
    /// Send as `X-CSRF-Token` with every cookie-authenticated write.
    pub csrf_token: String,
}

/// `load`s a row the log is known to have (the caller was authenticated from it): a missing
/// row means the read model lags (just after sign-up, or a new organization), so it waits
/// once for `projection` to reach the head of the log and loads again; 404 `what` if the
/// row is still missing then.
async fn known_row<T, F, Fut>(
    s: &QueryState,
    projection: &str,
    what: &str,
    load: F,
) -> Result<T, Problem>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<Option<T>, sqlx::Error>>,
{
    let internal = |e: sqlx::Error| Problem::from_internal(&e);
    if let Some(row) = load().await.map_err(internal)? {
        return Ok(row);
    }
    ConsistentAfter::head(s).await?.wait(s, projection).await?;
    load()
        .await
        .map_err(internal)?
        .ok_or_else(|| Problem::not_found(what))
}

/// The signed-in user, their organizations and the session's CSRF token.
#[utoipa::path(get, path = "/api/v1/me", tag = "me",
    params(("consistent_after" = Option<String>, Query, description = "Wait until the read model has passed this cursor")),
    responses(
        (status = 200, description = "The user", body = Me),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Read model not caught up", body = Problem, content_type = "application/problem+json"),
    ),
    security(("session" = [])))]
pub async fn me(
    State(s): State<QueryState>,
    SignedIn(session): SignedIn,
    consistency: ConsistentAfter,
) -> Result<Json<Me>, Problem> {
    consistency.wait(&s, "users").await?;
    consistency.wait(&s, "organizations").await?;
    let user = known_row(&s, "users", "user", || users::get(&s.pool, session.user_id)).await?;
    let organizations = organizations::memberships_of(&s.pool, session.user_id)
        .await
        .map_err(|e| Problem::from_internal(&e))?;
    Ok(Json(Me {
        user,
        organizations,
        current_organization_id: session.organization_id,
        csrf_token: session.csrf_token,
    }))
}

/// The caller's organization.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct OrganizationView {
    pub id: Uuid,
    pub name: String,
    /// Time zone, locale and the other organization settings.
    #[schema(value_type = Object)]
    pub settings: serde_json::Value,
    /// A blocked organization's keys and members are refused.
    pub blocked: bool,
    pub member_count: usize,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The caller's organization as the read model has it (after `consistency`).
async fn current(
    s: &QueryState,
    org: Uuid,
    consistency: &ConsistentAfter,
) -> Result<OrganizationRow, Problem> {
    consistency.wait(s, "organizations").await?;
    known_row(s, "organizations", "organization", || {
        organizations::get(&s.pool, org)
    })
    .await
}

/// The organization the caller works in.
#[utoipa::path(get, path = "/api/v1/organization", tag = "organization",
    params(("consistent_after" = Option<String>, Query, description = "Wait until the read model has passed this cursor")),
    responses(
        (status = 200, description = "The organization", body = OrganizationView),
        (status = 503, description = "Read model not caught up", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []), ("session" = [])))]
pub async fn organization(
    State(s): State<QueryState>,
    Authenticated(caller): Authenticated,
    consistency: ConsistentAfter,
) -> Result<Json<OrganizationView>, Problem> {
    let o = current(&s, caller.tenant_id, &consistency).await?;
    Ok(Json(OrganizationView {
        id: o.id,
        name: o.name,
        settings: o.settings,
        blocked: o.blocked,
        member_count: o.members.len(),
        created_at: o.created_at,
        updated_at: o.updated_at,
    }))
}

/// The members of the caller's organization.
#[utoipa::path(get, path = "/api/v1/organization/members", tag = "organization",
    params(("consistent_after" = Option<String>, Query, description = "Wait until the read model has passed this cursor")),
    responses(
        (status = 200, description = "Members, oldest first", body = [MemberRow]),
        (status = 503, description = "Read model not caught up", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []), ("session" = [])))]
pub async fn members(
    State(s): State<QueryState>,
    Authenticated(caller): Authenticated,
    consistency: ConsistentAfter,
) -> Result<Json<Vec<MemberRow>>, Problem> {
    let o = current(&s, caller.tenant_id, &consistency).await?;
    Ok(Json(o.members))
}

/// Which invites to list.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum InviteStatus {
    #[default]
    Pending,
    Accepted,
    Revoked,
    All,
}

impl InviteStatus {
    /// Whether an invite with status `s` is listed.
    fn includes(self, s: &str) -> bool {
        match self {
            Self::Pending => s == "pending",
            Self::Accepted => s == "accepted",
            Self::Revoked => s == "revoked",
            Self::All => true,
        }
    }
}

/// Parameters of `GET /api/v1/organization/invites`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct InviteParams {
    /// pending (default), accepted, revoked or all.
    #[param(inline)]
    pub status: Option<InviteStatus>,
    /// Wait until the read model has passed this cursor (from a command's answer).
    pub consistent_after: Option<String>,
}

/// Invites of the caller's organization.
#[utoipa::path(get, path = "/api/v1/organization/invites", tag = "organization", params(InviteParams),
    responses(
        (status = 200, description = "Invites, oldest first", body = [InviteRow]),
        (status = 400, description = "Bad status", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Read model not caught up", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []), ("session" = [])))]
pub async fn invites(
    State(s): State<QueryState>,
    Authenticated(caller): Authenticated,
    consistency: ConsistentAfter,
    ApiQuery(p): ApiQuery<InviteParams>,
) -> Result<Json<Vec<InviteRow>>, Problem> {
    let status = p.status.unwrap_or_default();
    let o = current(&s, caller.tenant_id, &consistency).await?;
    Ok(Json(
        o.invites
            .into_iter()
            .filter(|i| status.includes(&i.status))
            .collect(),
    ))
}

/// An API key as lists show it (never the key itself or its digest).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct KeyView {
    #[serde(flatten)]
    pub key: KeyRow,
    /// When the key last authenticated a request (to the minute); null if never.
    pub last_used_at: Option<DateTime<Utc>>,
}

/// API keys of the caller's organization, revoked ones included.
#[utoipa::path(get, path = "/api/v1/api-keys", tag = "api-keys",
    params(("consistent_after" = Option<String>, Query, description = "Wait until the read model has passed this cursor")),
    responses(
        (status = 200, description = "Keys, oldest first", body = [KeyView]),
        (status = 503, description = "Read model not caught up", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []), ("session" = [])))]
pub async fn api_keys(
    State(s): State<QueryState>,
    Authenticated(caller): Authenticated,
    consistency: ConsistentAfter,
) -> Result<Json<Vec<KeyView>>, Problem> {
    let keys = current(&s, caller.tenant_id, &consistency).await?.api_keys;
    let ids: Vec<Uuid> = keys.iter().map(|k| k.id).collect();
    let used: HashMap<Uuid, DateTime<Utc>> = sqlx::query_as(
        "SELECT key_id, last_used_at FROM api_key_usage \
         WHERE key_id = ANY($1) AND organization_id = $2",
    )
    .bind(&ids)
    .bind(caller.tenant_id)
    .fetch_all(&s.pool)
    .await
    .map_err(|e| Problem::from_internal(&e))?
    .into_iter()
    .collect();
    Ok(Json(
        keys.into_iter()
            .map(|key| KeyView {
                last_used_at: used.get(&key.id).copied(),
                key,
            })
            .collect(),
    ))
}
