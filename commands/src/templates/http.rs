//! Template routes: extract, call [`super::Templates`], answer; the one mapping of
//! [`TemplatesError`] to problem+json.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use domain::TemplateId;
use http_kit::{ApiJson, PathIds, Problem};

use super::body::{template_problem, CreateTemplate, RenameTemplate, SaveVersion};
use super::TemplatesError;
use crate::context::RequestContext;
use crate::error::Rejection;
use crate::executor::Accepted;
use crate::{CommandError, CommandState};

impl From<TemplatesError> for Problem {
    fn from(e: TemplatesError) -> Self {
        type E = CommandError<domain::template::TemplateError>;
        match e {
            TemplatesError::Invalid(e) => e.into(),
            TemplatesError::Content(errors) => template_problem(&errors),
            TemplatesError::Rejected(e) => e.problem(),
            TemplatesError::Conflict => E::Conflict.into(),
            TemplatesError::Technical(t) => E::Technical(t).into(),
        }
    }
}

fn version_number(raw: &str) -> Result<u32, Problem> {
    raw.parse::<u32>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| Problem::not_found("version"))
}

/// Create a template of a channel (no content yet: save a version next).
#[utoipa::path(post, path = "/api/v1/templates", tag = "templates", request_body = CreateTemplate,
    responses(
        (status = 201, description = "Created", body = Accepted),
        (status = 422, description = "Invalid name or channel", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []), ("session" = [])))]
pub async fn create(
    State(s): State<CommandState>,
    ctx: RequestContext,
    ApiJson(b): ApiJson<CreateTemplate>,
) -> Result<Response, Problem> {
    let created = s
        .templates
        .create(ctx.tenant(), b.name, b.channel, &ctx.metadata);
    Ok((StatusCode::CREATED, Json(created.await?)).into_response())
}

/// Rename a template.
#[utoipa::path(patch, path = "/api/v1/templates/{id}", tag = "templates", request_body = RenameTemplate,
    params(("id" = Uuid, Path, description = "Template id")),
    responses(
        (status = 200, description = "Renamed (or nothing to change)", body = Accepted),
        (status = 404, description = "No such template", body = Problem, content_type = "application/problem+json"),
        (status = 410, description = "The template was deleted", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid name", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []), ("session" = [])))]
pub async fn rename(
    State(s): State<CommandState>,
    ctx: RequestContext,
    PathIds(id): PathIds<TemplateId>,
    ApiJson(b): ApiJson<RenameTemplate>,
) -> Result<Json<Accepted>, Problem> {
    let renamed = s.templates.rename(ctx.tenant(), id, b.name, &ctx.metadata);
    Ok(Json(renamed.await?))
}

/// Delete a template (it stays in the log; it takes no more commands).
#[utoipa::path(delete, path = "/api/v1/templates/{id}", tag = "templates",
    params(("id" = Uuid, Path, description = "Template id")),
    responses(
        (status = 200, description = "Deleted", body = Accepted),
        (status = 404, description = "No such template", body = Problem, content_type = "application/problem+json"),
        (status = 410, description = "Already deleted", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []), ("session" = [])))]
pub async fn delete(
    State(s): State<CommandState>,
    ctx: RequestContext,
    PathIds(id): PathIds<TemplateId>,
) -> Result<Json<Accepted>, Problem> {
    Ok(Json(
        s.templates.delete(ctx.tenant(), id, &ctx.metadata).await?,
    ))
}

/// Save content as the template's next version. Every part is compiled (strict Handlebars)
/// and checked against the render context and the organization's fields first.
#[utoipa::path(post, path = "/api/v1/templates/{id}/versions", tag = "templates", request_body = SaveVersion,
    params(("id" = Uuid, Path, description = "Template id")),
    responses(
        (status = 201, description = "Saved as the next version", body = Accepted),
        (status = 404, description = "No such template", body = Problem, content_type = "application/problem+json"),
        (status = 410, description = "The template was deleted", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Missing parts, syntax errors or unknown variables (`template_errors`: part, line, column, message)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []), ("session" = [])))]
pub async fn save_version(
    State(s): State<CommandState>,
    ctx: RequestContext,
    PathIds(id): PathIds<TemplateId>,
    ApiJson(b): ApiJson<SaveVersion>,
) -> Result<Response, Problem> {
    let channel = s.templates.channel(ctx.tenant(), id).await?;
    let content = b.content(channel)?;
    let saved = s
        .templates
        .save_version(ctx.tenant(), id, content, &ctx.metadata);
    Ok((StatusCode::CREATED, Json(saved.await?)).into_response())
}

/// Publish a version: sends use it from now on (it replaces the version published before).
#[utoipa::path(post, path = "/api/v1/templates/{id}/versions/{n}/publish", tag = "templates",
    params(("id" = Uuid, Path, description = "Template id"), ("n" = u32, Path, description = "Version number")),
    responses(
        (status = 200, description = "Published (or already was)", body = Accepted),
        (status = 404, description = "No such template or version", body = Problem, content_type = "application/problem+json"),
        (status = 410, description = "The template was deleted", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []), ("session" = [])))]
pub async fn publish(
    State(s): State<CommandState>,
    ctx: RequestContext,
    PathIds((id, n)): PathIds<(TemplateId, String)>,
) -> Result<Json<Accepted>, Problem> {
    let version = version_number(&n)?;
    let published = s
        .templates
        .publish(ctx.tenant(), id, version, &ctx.metadata);
    Ok(Json(published.await?))
}
