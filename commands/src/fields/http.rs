//! Define, change and remove the custom fields of the caller's organization.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use domain::contact::{short_text, FieldKey, FieldValue, InvalidValue};
use domain::field::{FieldDefinition, FieldType};
use http_kit::json::present;
use http_kit::ApiPath;
use http_kit::{ApiJson, Problem};
use serde::Deserialize;

use super::FieldChange;
use crate::contacts::body::Check;
use crate::context::RequestContext;
use crate::executor::Accepted;
use crate::{CommandState, Invalid};

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

fn default_value(
    key: &FieldKey,
    raw: Option<&serde_json::Value>,
) -> Result<Option<FieldValue>, InvalidValue> {
    match raw {
        None => Ok(None),
        Some(v) => {
            FieldValue::from_json(key, v).map_err(|e| InvalidValue::new("default", e.reason))
        }
    }
}

fn options(raw: Vec<String>) -> Result<Vec<String>, InvalidValue> {
    raw.iter().map(|o| short_text("options", o, 100)).collect()
}

impl DefineField {
    /// The definition this asks for (every invalid part named).
    pub fn validate(self) -> Result<FieldDefinition, Invalid> {
        let mut c = Check::default();
        let key =
            c.take(FieldKey::parse(&self.key).map_err(|e| InvalidValue::new("key", e.reason)));
        let label = c.take(short_text("label", &self.label, 100));
        let default = key
            .as_ref()
            .and_then(|k| c.take(default_value(k, self.default.as_ref())));
        let options = c.take(options(self.options));
        let definition = match (key, label, default, options) {
            (Some(key), Some(label), Some(default), Some(options)) => Some(FieldDefinition {
                label,
                field_type: self.field_type,
                required: self.required,
                default,
                options,
                unique: self.unique,
                key: key.as_str().to_owned(),
            }),
            _ => None,
        };
        c.finish(definition)
    }
}

impl ChangeField {
    /// The change this asks for to field `key`.
    pub fn validate(self, key: &FieldKey) -> Result<FieldChange, Invalid> {
        let mut c = Check::default();
        let label = self.label.map(|l| c.take(short_text("label", &l, 100)));
        let default = self.default.map(|d| c.take(default_value(key, d.as_ref())));
        let options = self.options.map(|o| c.take(options(o)));
        let change = FieldChange {
            label: label.flatten(),
            required: self.required,
            default: default.flatten(),
            options: options.flatten(),
        };
        c.finish(Some(change))
    }
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
    let definition = b.validate()?;
    let accepted = s
        .fields
        .define(ctx.tenant(), definition, &ctx.metadata)
        .await?;
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
    // A malformed key cannot name a field: 404, like an unknown one.
    let k = FieldKey::parse(&key).map_err(|_| Problem::not_found("field"))?;
    let change = b.validate(&k)?;
    s.fields
        .change(ctx.tenant(), &key, change, &ctx.metadata)
        .await
        .map(Json)
        .map_err(Problem::from)
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
    s.fields
        .remove(ctx.tenant(), key, &ctx.metadata)
        .await
        .map(Json)
        .map_err(Problem::from)
}
