//! Field definitions over HTTP, and checking contact writes against them.

pub mod claims;
pub mod http;

use axum::routing::{patch, post};
use axum::Router;
use domain::field::FieldSchema;
use http_kit::problem::FieldProblem;
use http_kit::Problem;
use uuid::Uuid;

use crate::CommandState;

pub fn routes() -> Router<CommandState> {
    Router::new()
        .route("/api/v1/fields", post(http::define))
        .route(
            "/api/v1/fields/{key}",
            patch(http::change).delete(http::remove),
        )
}

/// The organization's field definitions, as of now.
pub async fn schema(s: &CommandState, tenant: Uuid) -> Result<FieldSchema, Problem> {
    s.field_schemas
        .load(tenant, tenant)
        .await
        .map_err(Problem::from)
}

/// 422 naming every field that does not fit its definition.
pub fn refuse(problems: Vec<(String, String)>) -> Result<(), Problem> {
    if problems.is_empty() {
        return Ok(());
    }
    Err(Problem::invalid_fields(
        problems
            .into_iter()
            .map(|(field, reason)| FieldProblem { field, reason })
            .collect(),
    ))
}
