//! Delivery jobs on the command side: requesting messages (`POST /api/v1/messages`, test
//! sends of a template version) and the batched write path the delivery worker and
//! campaign fan-outs share ([`jobs`]).

pub mod http;
pub mod jobs;

pub use jobs::{Jobs, JobsError};

use std::sync::Arc;

use axum::routing::post;
use axum::Router;
use domain::delivery::provider_config::ProviderConfig;
use domain::delivery::suppression::SuppressionEntry;
use domain::delivery::warmup_config::WarmupConfig;
use event_store::shred::keyring::Keyring;

use crate::executor::Executor;
use crate::CommandState;

/// Delivery's part of the command side.
#[derive(Clone)]
pub struct Delivery {
    /// Delivery jobs: requested in batches with their queue rows.
    pub jobs: Jobs,
    /// The suppression list.
    pub suppressions: Arc<Executor<SuppressionEntry>>,
    /// Channel providers (their credentials sealed with [`Self::keys`]).
    pub providers: Arc<Executor<ProviderConfig>>,
    /// Warmup schedules of sending domains.
    pub warmups: Arc<Executor<WarmupConfig>>,
    /// The master keys that seal provider credentials (`MAUNTIC_MASTER_KEY`, and
    /// `MAUNTIC_MASTER_KEY_PREVIOUS` during a rotation).
    pub keys: Arc<Keyring>,
}

pub fn routes() -> Router<CommandState> {
    Router::new()
        .route("/api/v1/messages", post(http::send_message))
        .route(
            "/api/v1/templates/{id}/versions/{n}/test",
            post(http::test_send),
        )
}
