//! Company commands over HTTP, and linking contacts to companies.

pub mod http;

use axum::routing::{patch, post, put};
use axum::Router;

use crate::CommandState;

pub fn routes() -> Router<CommandState> {
    Router::new()
        .route("/api/v1/companies", post(http::create))
        .route("/api/v1/companies/{id}", patch(http::update))
        .route(
            "/api/v1/contacts/{id}/companies/{company_id}",
            put(http::link).delete(http::unlink),
        )
}
