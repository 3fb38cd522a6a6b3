//! Message templates: the service ([`Templates`]: create, rename, delete, save content as a
//! new version — compiled and checked against the render context first — and publish) and
//! its routes (422 with part, line and column).

pub mod body;
pub mod http;
mod service;

pub use service::{Templates, TemplatesError};

use axum::routing::post;
use axum::Router;

use crate::CommandState;

pub fn routes() -> Router<CommandState> {
    Router::new()
        .route("/api/v1/templates", post(http::create))
        .route(
            "/api/v1/templates/{id}",
            axum::routing::patch(http::rename).delete(http::delete),
        )
        .route("/api/v1/templates/{id}/versions", post(http::save_version))
        .route(
            "/api/v1/templates/{id}/versions/{n}/publish",
            post(http::publish),
        )
}
