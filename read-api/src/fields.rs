//! The organization's field definitions (folded from its schema stream, so always current).

use axum::extract::State;
use axum::Json;
use event_store::reader::Until;
use http_kit::{Authenticated, Problem};
use replay::inspect;
use serde::Serialize;

use crate::QueryState;

/// One custom field.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct FieldView {
    pub key: String,
    pub label: String,
    /// text, long_text, number, boolean, date, datetime, select, multiselect, email, url,
    /// phone, country, timezone or locale.
    #[serde(rename = "type")]
    pub field_type: String,
    pub required: bool,
    #[schema(value_type = Object)]
    pub default: serde_json::Value,
    pub options: Vec<String>,
    /// No two contacts may have the same value.
    pub unique: bool,
}

/// The custom fields of the caller's organization, by key.
#[utoipa::path(get, path = "/api/v1/fields", tag = "fields",
    responses((status = 200, description = "Field definitions", body = [FieldView])),
    security(("api_key" = []), ("session" = [])))]
pub async fn list(
    State(s): State<QueryState>,
    Authenticated(caller): Authenticated,
) -> Result<Json<Vec<FieldView>>, Problem> {
    let found = inspect::inspect(
        &s.pool,
        caller.tenant_id,
        "field_schema",
        caller.tenant_id,
        Until::End,
    )
    .await
    .map_err(|e| Problem::from_internal(&e))?;
    let Some(found) = found else {
        return Ok(Json(vec![]));
    };
    let fields = found.state["fields"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    let out = fields
        .into_values()
        .filter_map(|d| {
            Some(FieldView {
                key: d["key"].as_str()?.to_owned(),
                label: d["label"].as_str()?.to_owned(),
                field_type: d["type"].as_str()?.to_owned(),
                required: d["required"].as_bool()?,
                default: d["default"].clone(),
                options: serde_json::from_value(d["options"].clone()).ok()?,
                unique: d["unique"].as_bool().unwrap_or(false),
            })
        })
        .collect();
    Ok(Json(out))
}
