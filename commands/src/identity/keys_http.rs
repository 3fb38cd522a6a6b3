//! API keys of the caller's organization: create (shown once) and revoke.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use domain::identity::KeyKind;
use domain::ApiKeyId;
use http_kit::{ApiJson, PathIds, Problem};

use super::body::CreateApiKey;
use super::organizations::{CreatedKey, KeySpec};
use crate::context::RequestContext;
use crate::executor::Accepted;
use crate::CommandState;

/// Create an API key with a role (and optionally an expiry).
#[utoipa::path(post, path = "/api/v1/api-keys", tag = "api-keys", request_body = CreateApiKey,
    responses(
        (status = 201, description = "Created; the key is in the answer, once", body = CreatedKey),
        (status = 422, description = "Invalid input (an owner key, say)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []), ("session" = [])))]
pub async fn create(
    State(s): State<CommandState>,
    ctx: RequestContext,
    ApiJson(b): ApiJson<CreateApiKey>,
) -> Result<Response, Problem> {
    let name = b.validate(s.auth.clock.now())?;
    let spec = KeySpec {
        name,
        role: b.role,
        kind: b.kind.unwrap_or(KeyKind::Secret),
        expires_at: b.expires_at,
    };
    let orgs = &s.identity.organizations;
    let created = orgs.create_key(ctx.tenant(), spec, ctx.role, &ctx.metadata);
    Ok((StatusCode::CREATED, Json(created.await?)).into_response())
}

/// Revoke a key; it fails on its very next request.
#[utoipa::path(delete, path = "/api/v1/api-keys/{id}", tag = "api-keys",
    params(("id" = Uuid, Path, description = "Key id")),
    responses(
        (status = 200, description = "Revoked", body = Accepted),
        (status = 404, description = "No such key", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []), ("session" = [])))]
pub async fn revoke(
    State(s): State<CommandState>,
    ctx: RequestContext,
    PathIds(id): PathIds<ApiKeyId>,
) -> Result<Json<Accepted>, Problem> {
    let orgs = &s.identity.organizations;
    Ok(Json(
        orgs.revoke_key(ctx.tenant(), id, &ctx.metadata).await?,
    ))
}
