//! Identity queries: the signed-in user, their organization, members, invites and keys.

use axum::extract::{Query, State};
use axum::Json;
use chrono::{DateTime, Utc};
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
    /// Every organization the user is a member of.
    pub organizations: Vec<Membership>,
    /// The organization this session works in.
    pub current_organization_id: Option<Uuid>,
    /// Send as `X-CSRF-Token` with every cookie-authenticated write.
    pub csrf_token: String,
}

/// The signed-in user.
#[utoipa::path(get, path = "/api/v1/me", tag = "me",
    params(("consistent_after" = Option<String>, Query, description = "Wait until the read model has passed this cursor")),
    responses(
        (status = 200, description = "The user", body = Me),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
    ),
    security(("session" = [])))]
pub async fn me(
    State(s): State<QueryState>,
    SignedIn(session): SignedIn,
    consistency: ConsistentAfter,
) -> Result<Json<Me>, Problem> {
    consistency.wait(&s, "users").await?;
    consistency.wait(&s, "organizations").await?;
    let internal = |e: sqlx::Error| Problem::from_internal(&e);
    let mut user = users::get(&s.pool, session.user_id)
        .await
        .map_err(internal)?;
    if user.is_none() {
        // A session's user exists in the log: a missing row means the read model lags
        // (just after sign-up), so wait for it to reach the head once.
        ConsistentAfter::head(&s).await?.wait(&s, "users").await?;
        user = users::get(&s.pool, session.user_id)
            .await
            .map_err(internal)?;
    }
    let user = user.ok_or_else(|| Problem::not_found("user"))?;
    let organizations = organizations::memberships_of(&s.pool, session.user_id)
        .await
        .map_err(internal)?;
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
    #[schema(value_type = Object)]
    pub settings: serde_json::Value,
    pub blocked: bool,
    pub member_count: usize,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

async fn current(
    s: &QueryState,
    org: Uuid,
    consistency: &ConsistentAfter,
) -> Result<OrganizationRow, Problem> {
    consistency.wait(s, "organizations").await?;
    organizations::get(&s.pool, org)
        .await
        .map_err(|e| Problem::from_internal(&e))?
        .ok_or_else(|| {
            Problem::not_found("organization (not yet in the read model: pass consistent_after)")
        })
}

/// The organization the caller works in.
#[utoipa::path(get, path = "/api/v1/organization", tag = "organization",
    params(("consistent_after" = Option<String>, Query, description = "Wait until the read model has passed this cursor")),
    responses((status = 200, description = "The organization", body = OrganizationView)),
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
    responses((status = 200, description = "Members, oldest first", body = [MemberRow])),
    security(("api_key" = []), ("session" = [])))]
pub async fn members(
    State(s): State<QueryState>,
    Authenticated(caller): Authenticated,
    consistency: ConsistentAfter,
) -> Result<Json<Vec<MemberRow>>, Problem> {
    Ok(Json(
        current(&s, caller.tenant_id, &consistency).await?.members,
    ))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct InviteParams {
    /// pending (default), accepted, revoked or all.
    pub status: Option<String>,
    pub consistent_after: Option<String>,
}

/// Invites of the caller's organization.
#[utoipa::path(get, path = "/api/v1/organization/invites", tag = "organization", params(InviteParams),
    responses(
        (status = 200, description = "Invites, oldest first", body = [InviteRow]),
        (status = 400, description = "Bad status", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []), ("session" = [])))]
pub async fn invites(
    State(s): State<QueryState>,
    Authenticated(caller): Authenticated,
    consistency: ConsistentAfter,
    Query(p): Query<InviteParams>,
) -> Result<Json<Vec<InviteRow>>, Problem> {
    let status = p.status.unwrap_or_else(|| "pending".into());
    if !["pending", "accepted", "revoked", "all"].contains(&status.as_str()) {
        return Err(Problem::bad_request(
            "status must be pending, accepted, revoked or all",
        ));
    }
    let all = current(&s, caller.tenant_id, &consistency).await?.invites;
    Ok(Json(
        all.into_iter()
            .filter(|i| status == "all" || i.status == status)
            .collect(),
    ))
}

/// An API key as lists show it (never the key itself).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct KeyView {
    #[serde(flatten)]
    pub key: KeyRow,
    pub last_used_at: Option<DateTime<Utc>>,
}

/// API keys of the caller's organization, revoked ones included.
#[utoipa::path(get, path = "/api/v1/api-keys", tag = "api-keys",
    params(("consistent_after" = Option<String>, Query, description = "Wait until the read model has passed this cursor")),
    responses((status = 200, description = "Keys, oldest first", body = [KeyView])),
    security(("api_key" = []), ("session" = [])))]
pub async fn api_keys(
    State(s): State<QueryState>,
    Authenticated(caller): Authenticated,
    consistency: ConsistentAfter,
) -> Result<Json<Vec<KeyView>>, Problem> {
    let keys = current(&s, caller.tenant_id, &consistency).await?.api_keys;
    let used: Vec<(Uuid, DateTime<Utc>)> =
        sqlx::query_as("SELECT key_id, last_used_at FROM api_key_usage WHERE organization_id = $1")
            .bind(caller.tenant_id)
            .fetch_all(&s.pool)
            .await
            .map_err(|e| Problem::from_internal(&e))?;
    let used: std::collections::HashMap<Uuid, DateTime<Utc>> = used.into_iter().collect();
    Ok(Json(
        keys.into_iter()
            .map(|key| KeyView {
                last_used_at: used.get(&key.id).copied(),
                key,
            })
            .collect(),
    ))
}
