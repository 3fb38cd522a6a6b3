//! API keys of the caller's organization: create (shown once) and revoke.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use domain::identity::organization::{NewApiKey, OrganizationCommand};
use domain::identity::KeyKind;
use domain::ApiKeyId;
use event_store::reservation::{Holder, Scope};
use event_store::EventMetadata;
use http_kit::auth::keys;
use http_kit::PathIds;
use http_kit::{ApiJson, Problem};
use serde::Serialize;
use uuid::Uuid;

use super::body::CreateApiKey;
use super::support::reserved;
use crate::context::RequestContext;
use crate::executor::Accepted;
use crate::{CommandError, CommandState};

/// A new key: the only time its secret is shown.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CreatedKey {
    pub id: Uuid,
    /// The key. Store it now: it cannot be shown again.
    pub key: String,
    pub prefix: String,
    #[schema(value_type = String)]
    pub cursor: event_store::Cursor,
}

/// What a new key is to be.
pub struct KeySpec {
    pub name: String,
    pub role: domain::identity::Role,
    pub kind: KeyKind,
    pub expires_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// Creates a key in `org` (reserving its digest first, so it resolves to this key).
pub async fn create_key(
    s: &CommandState,
    org: Uuid,
    spec: KeySpec,
    metadata: &EventMetadata,
) -> Result<CreatedKey, Problem> {
    let KeySpec {
        name,
        role,
        kind,
        expires_at,
    } = spec;
    let key = keys::generate(kind);
    let key_id = Uuid::now_v7();
    let holder = Holder {
        tenant_id: org,
        owner_id: key_id,
    };
    let command = OrganizationCommand::CreateApiKey(NewApiKey {
        key_id,
        name,
        role,
        kind,
        prefix: key.prefix.clone(),
        digest: key.digest.clone(),
        expires_at,
        created_by: metadata.actor.clone().unwrap_or_else(|| "system".into()),
    });
    let created = reserved(&s.pool, Scope::ApiKey, &key.digest.0, holder, || async {
        s.identity
            .organizations
            .execute(org, org, command, metadata)
            .await
            .map_err(Problem::from)
    })
    .await?;
    let accepted = created.map_err(|_| {
        // 192 random bits colliding: not in this universe, but never hand out a shared key.
        Problem::internal()
    })?;
    Ok(CreatedKey {
        id: key_id,
        key: key.plain,
        prefix: key.prefix,
        cursor: accepted.cursor,
    })
}

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
    // A key never outranks its maker (roles order owner < admin < member < viewer).
    if b.role < ctx.role {
        return Err(
            Problem::new(StatusCode::FORBIDDEN, "forbidden", "Forbidden")
                .detail("a key cannot have a higher role than its maker"),
        );
    }
    let spec = KeySpec {
        name,
        role: b.role,
        kind: b.kind.unwrap_or(KeyKind::Secret),
        expires_at: b.expires_at,
    };
    let created = create_key(&s, ctx.tenant_id, spec, &ctx.metadata).await?;
    Ok((StatusCode::CREATED, Json(created)).into_response())
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
    let key_id = id.0;
    let accepted = s
        .identity
        .organizations
        .execute(
            ctx.tenant_id,
            ctx.tenant_id,
            OrganizationCommand::RevokeApiKey { key_id },
            &ctx.metadata,
        )
        .await
        .map_err(|e: CommandError<_>| Problem::from(e))?;
    Ok(Json(Accepted {
        id: key_id,
        cursor: accepted.cursor,
    }))
}
