//! Delivery jobs on the command side: requesting messages (`POST /api/v1/messages`, test
//! sends of a template version) and the batched write path the delivery worker and
//! campaign fan-outs share ([`jobs`]).

pub mod body;
pub mod http;
pub mod jobs;
mod messages;

pub use jobs::{Jobs, JobsError};
pub use messages::{Messages, MessagesError};

use axum::routing::post;
use axum::Router;

use crate::CommandState;

/// Delivery's part of the command side.
#[derive(Clone)]
pub struct Delivery {
    /// Delivery jobs: requested in batches with their queue rows.
    pub jobs: Jobs,
    /// Transactional messages and test sends.
    pub messages: Messages,
    /// The suppression list.
    pub suppressions: crate::suppressions::Suppressions,
    /// Channel providers (their credentials sealed with the master keys they hold).
    pub providers: crate::providers::Providers,
    /// Warmup schedules of sending domains.
    pub warmups: crate::warmup::Warmups,
}

pub fn routes() -> Router<CommandState> {
    Router::new()
        .route("/api/v1/messages", post(http::send_message))
        .route(
            "/api/v1/templates/{id}/versions/{n}/test",
            post(http::test_send),
        )
}
