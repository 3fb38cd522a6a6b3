//! Contact commands over HTTP.

pub mod body;
pub mod http;
pub mod unique;

use axum::routing::{delete, patch, post};
use axum::Router;

use crate::CommandState;

pub fn routes() -> Router<CommandState> {
    Router::new()
        .route("/api/v1/contacts", post(http::create))
        .route("/api/v1/contacts:upsert", post(http::upsert))
        .route("/api/v1/contacts/{id}", patch(http::update))
        .route("/api/v1/contacts/{id}/tags", post(http::add_tags))
        .route("/api/v1/contacts/{id}/tags/{tag}", delete(http::remove_tag))
}
