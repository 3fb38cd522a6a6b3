//! Thin handlers: extract → typed command → execute with metadata → answer.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use domain::template::render::Known;
use domain::template::{TemplateCommand, TemplateError};
use http_kit::ApiPath;
use http_kit::{ApiJson, Problem};
use uuid::Uuid;

use super::body::{self, CreateTemplate, RenameTemplate, SaveVersion};
use crate::context::RequestContext;
use crate::executor::Accepted;
use crate::{CommandError, CommandState};

fn template_id(raw: &str) -> Result<Uuid, Problem> {
    Uuid::parse_str(raw).map_err(|_| Problem::not_found("template"))
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
    let command = TemplateCommand::Create {
        name: b.name,
        channel: b.channel,
    };
    let accepted = s
        .templates
        .execute(ctx.tenant_id, Uuid::now_v7(), command, &ctx.metadata)
        .await?;
    Ok((StatusCode::CREATED, Json(accepted)).into_response())
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
    ApiPath(id): ApiPath<String>,
    ApiJson(b): ApiJson<RenameTemplate>,
) -> Result<Json<Accepted>, Problem> {
    let id = template_id(&id)?;
    let command = TemplateCommand::Rename { name: b.name };
    let accepted = s
        .templates
        .execute(ctx.tenant_id, id, command, &ctx.metadata)
        .await?;
    Ok(Json(accepted))
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
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Accepted>, Problem> {
    let id = template_id(&id)?;
    let accepted = s
        .templates
        .execute(ctx.tenant_id, id, TemplateCommand::Delete, &ctx.metadata)
        .await?;
    Ok(Json(accepted))
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
    ApiPath(id): ApiPath<String>,
    ApiJson(b): ApiJson<SaveVersion>,
) -> Result<Response, Problem> {
    let id = template_id(&id)?;
    let template = s.templates.load(ctx.tenant_id, id).await?;
    if !template.exists {
        return Err(CommandError::Rejected(TemplateError::NotFound).into());
    }
    if template.deleted {
        return Err(CommandError::Rejected(TemplateError::Deleted).into());
    }
    let content = b.content(template.channel)?;
    let schema = crate::fields::schema(&s, ctx.tenant_id).await?;
    let known = Known {
        fields: schema.fields.keys().cloned().collect(),
    };
    let content = body::check(content, &known)?;
    let accepted = s
        .templates
        .execute(
            ctx.tenant_id,
            id,
            TemplateCommand::SaveVersion { content },
            &ctx.metadata,
        )
        .await?;
    Ok((StatusCode::CREATED, Json(accepted)).into_response())
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
    ApiPath((id, n)): ApiPath<(String, String)>,
) -> Result<Json<Accepted>, Problem> {
    let id = template_id(&id)?;
    let version = version_number(&n)?;
    let accepted = s
        .templates
        .execute(
            ctx.tenant_id,
            id,
            TemplateCommand::Publish { version },
            &ctx.metadata,
        )
        .await?;
    Ok(Json(accepted))
}
