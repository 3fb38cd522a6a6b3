//! Provider routes: extract, call [`super::Providers`], answer.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use domain::ProviderId;
use http_kit::{ApiJson, PathIds, Problem};

use super::body::{CreateProvider, UpdateProvider};
use crate::context::RequestContext;
use crate::executor::Accepted;
use crate::CommandState;

/// Configure a provider of a channel. `secrets` are stored encrypted and never shown or
/// logged; the first provider of a channel (or one sent with `default: true`) becomes the
/// channel's default.
#[utoipa::path(post, path = "/api/v1/providers", tag = "providers", request_body = CreateProvider,
    responses(
        (status = 201, description = "Configured", body = Accepted),
        (status = 422, description = "Invalid name, channel, kind, settings or secrets (every bad field listed)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []), ("session" = [])))]
pub async fn create(
    State(s): State<CommandState>,
    ctx: RequestContext,
    ApiJson(b): ApiJson<CreateProvider>,
) -> Result<Response, Problem> {
    let new = b.validate()?;
    let providers = &s.delivery.providers;
    let accepted = providers.create(ctx.tenant(), new, &ctx.metadata).await?;
    Ok((StatusCode::CREATED, Json(accepted)).into_response())
}

/// Change a provider's name or settings, or replace its secrets (whole).
#[utoipa::path(patch, path = "/api/v1/providers/{id}", tag = "providers", request_body = UpdateProvider,
    params(("id" = Uuid, Path, description = "Provider id")),
    responses(
        (status = 200, description = "Changed (or nothing to change)", body = Accepted),
        (status = 404, description = "No such provider", body = Problem, content_type = "application/problem+json"),
        (status = 410, description = "The provider was removed", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []), ("session" = [])))]
pub async fn update(
    State(s): State<CommandState>,
    ctx: RequestContext,
    PathIds(id): PathIds<ProviderId>,
    ApiJson(b): ApiJson<UpdateProvider>,
) -> Result<Json<Accepted>, Problem> {
    let change = b.validate()?;
    let providers = &s.delivery.providers;
    Ok(Json(
        providers
            .update(ctx.tenant(), id, change, &ctx.metadata)
            .await?,
    ))
}

/// Make a provider its channel's default (the previous default loses the mark).
#[utoipa::path(post, path = "/api/v1/providers/{id}/default", tag = "providers",
    params(("id" = Uuid, Path, description = "Provider id")),
    responses(
        (status = 200, description = "Default (or already was)", body = Accepted),
        (status = 404, description = "No such provider", body = Problem, content_type = "application/problem+json"),
        (status = 410, description = "The provider was removed", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []), ("session" = [])))]
pub async fn make_default(
    State(s): State<CommandState>,
    ctx: RequestContext,
    PathIds(id): PathIds<ProviderId>,
) -> Result<Json<Accepted>, Problem> {
    let providers = &s.delivery.providers;
    Ok(Json(
        providers
            .make_default(ctx.tenant(), id, &ctx.metadata)
            .await?,
    ))
}

/// Remove a provider and its secrets (its history stays in the log). A removed default
/// leaves the channel without one until another is made the default.
#[utoipa::path(delete, path = "/api/v1/providers/{id}", tag = "providers",
    params(("id" = Uuid, Path, description = "Provider id")),
    responses(
        (status = 200, description = "Removed", body = Accepted),
        (status = 404, description = "No such provider", body = Problem, content_type = "application/problem+json"),
        (status = 410, description = "Already removed", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []), ("session" = [])))]
pub async fn remove(
    State(s): State<CommandState>,
    ctx: RequestContext,
    PathIds(id): PathIds<ProviderId>,
) -> Result<Json<Accepted>, Problem> {
    let providers = &s.delivery.providers;
    Ok(Json(
        providers.remove(ctx.tenant(), id, &ctx.metadata).await?,
    ))
}
