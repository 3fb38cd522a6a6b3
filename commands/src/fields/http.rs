//! Define, change and remove the custom fields of the caller's organization.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use domain::contact::{short_text, FieldKey, FieldValue};
use domain::field::{FieldDefinition, FieldSchemaCommand, FieldType};
use http_kit::json::present;
use http_kit::ApiPath;
use http_kit::{ApiJson, Problem};
use serde::Deserialize;

use crate::context::RequestContext;
use crate::executor::Accepted;
use crate::CommandState;

/// `POST /api/v1/fields`
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DefineField {
    /// A lower-case identifier, e.g. `plan`.
    pub key: String,
    pub label: String,
    /// text, long_text, number, boolean, date, datetime, select, multiselect, email, url,
    /// phone, country, timezone or locale.
    #[serde(rename = "type")]
    #[schema(value_type = String, example = "select")]
    pub field_type: FieldType,
    #[serde(default)]
    pub required: bool,
    #[schema(value_type = Object)]
    pub default: Option<serde_json::Value>,
    #[serde(default)]
    pub options: Vec<String>,
    /// No two contacts may have the same value (chosen now; it cannot change later).
    #[serde(default)]
    pub unique: bool,
}

/// `PATCH /api/v1/fields/{key}`: absent keys stay; `"default": null` removes the default.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeField {
    pub label: Option<String>,
    pub required: Option<bool>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Object)]
    pub default: Option<Option<serde_json::Value>>,
    pub options: Option<Vec<String>>,
}

fn invalid(e: domain::contact::InvalidValue) -> Problem {
    Problem::validation(e.field, e.reason)
}

fn default_value(
    key: &FieldKey,
    raw: Option<&serde_json::Value>,
) -> Result<Option<FieldValue>, Problem> {
    match raw {
        None => Ok(None),
        Some(v) => {
            FieldValue::from_json(key, v).map_err(|e| Problem::validation("default", e.reason))
        }
    }
}

fn options(raw: Vec<String>) -> Result<Vec<String>, Problem> {
    raw.iter()
        .map(|o| short_text("options", o, 100).map_err(invalid))
        .collect()
}

async fn run(
    s: &CommandState,
    ctx: &RequestContext,
    c: FieldSchemaCommand,
) -> Result<Accepted, Problem> {
    s.field_schemas
        .execute(ctx.tenant_id, ctx.tenant_id, c, &ctx.metadata)
        .await
        .map_err(Problem::from)
}

/// Define a custom field for the organization's contacts.
#[utoipa::path(post, path = "/api/v1/fields", tag = "fields", request_body = DefineField,
    responses(
        (status = 201, description = "Defined (the id is the organization's schema)", body = Accepted),
        (status = 409, description = "Defined already", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid definition", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []), ("session" = [])))]
pub async fn define(
    State(s): State<CommandState>,
    ctx: RequestContext,
    ApiJson(b): ApiJson<DefineField>,
) -> Result<Response, Problem> {
    let key = FieldKey::parse(&b.key).map_err(|e| Problem::validation("key", e.reason))?;
    let definition = FieldDefinition {
        label: short_text("label", &b.label, 100).map_err(invalid)?,
        field_type: b.field_type,
        required: b.required,
        default: default_value(&key, b.default.as_ref())?,
        options: options(b.options)?,
        unique: b.unique,
        key: key.as_str().to_owned(),
    };
    let accepted = run(&s, &ctx, FieldSchemaCommand::Define(definition)).await?;
    Ok((StatusCode::CREATED, Json(accepted)).into_response())
}

/// Change a field's label, required flag, default or options (never its type).
#[utoipa::path(patch, path = "/api/v1/fields/{key}", tag = "fields", request_body = ChangeField,
    params(("key" = String, Path, description = "Field key")),
    responses(
        (status = 200, description = "Changed (or unchanged)", body = Accepted),
        (status = 404, description = "No such field", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid definition", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []), ("session" = [])))]
pub async fn change(
    State(s): State<CommandState>,
    ctx: RequestContext,
    ApiPath(key): ApiPath<String>,
    ApiJson(b): ApiJson<ChangeField>,
) -> Result<Json<Accepted>, Problem> {
    let schema = super::schema(&s, ctx.tenant_id).await?;
    let current = schema
        .fields
        .get(&key)
        .cloned()
        .ok_or_else(|| Problem::not_found("field"))?;
    let k = FieldKey::parse(&key).map_err(|_| Problem::not_found("field"))?;
    let definition = FieldDefinition {
        label: match b.label {
            Some(l) => short_text("label", &l, 100).map_err(invalid)?,
            None => current.label.clone(),
        },
        required: b.required.unwrap_or(current.required),
        default: match b.default {
            Some(d) => default_value(&k, d.as_ref())?,
            None => current.default.clone(),
        },
        options: match b.options {
            Some(o) => options(o)?,
            None => current.options.clone(),
        },
        ..current
    };
    run(&s, &ctx, FieldSchemaCommand::Change(definition))
        .await
        .map(Json)
}

/// Remove a field definition (values already stored stay on the contacts, unchecked).
#[utoipa::path(delete, path = "/api/v1/fields/{key}", tag = "fields",
    params(("key" = String, Path, description = "Field key")),
    responses(
        (status = 200, description = "Removed", body = Accepted),
        (status = 404, description = "No such field", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []), ("session" = [])))]
pub async fn remove(
    State(s): State<CommandState>,
    ctx: RequestContext,
    ApiPath(key): ApiPath<String>,
) -> Result<Json<Accepted>, Problem> {
    run(&s, &ctx, FieldSchemaCommand::Remove { key })
        .await
        .map(Json)
}
