//! Delivery jobs on the command side: requesting messages (`POST /api/v1/messages`, test
//! sends of a template version) and the batched write path the delivery worker and
//! campaign fan-outs share ([`jobs`]).

pub mod http;
pub mod jobs;

pub use jobs::{Jobs, JobsError};

use axum::routing::post;
use axum::Router;

use crate::CommandState;

pub fn routes() -> Router<CommandState> {
    Router::new()
        .route("/api/v1/messages", post(http::send_message))
        .route(
            "/api/v1/templates/{id}/versions/{n}/test",
            post(http::test_send),
        )
}
