//! Segments over HTTP: definitions (static lists and dynamic rules), static membership, and
//! the one writer of memberships ([`membership`]) the workers use too.

pub mod http;
pub mod membership;
pub mod rules;

use axum::routing::{patch, post};
use axum::Router;

use crate::CommandState;

pub fn routes() -> Router<CommandState> {
    Router::new()
        .route("/api/v1/segments", post(http::create))
        .route(
            "/api/v1/segments/{id}",
            patch(http::update).delete(http::delete),
        )
        .route("/api/v1/segments/{id}/contacts", post(http::add_contacts))
        .route(
            "/api/v1/segments/{id}/contacts:remove",
            post(http::remove_contacts),
        )
        .route("/api/v1/segments/{id}/refresh", post(http::refresh))
}
