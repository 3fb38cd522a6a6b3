//! Blast campaigns: drafts (create, change, clone, delete), schedule, send now, pause,
//! resume, cancel. Every command goes through `write::CampaignWriter`, which appends the
//! campaign's events together with their effects on the write-side tables the campaign
//! worker follows (`campaign_runs`, `campaign_recipients`, held delivery jobs).
//!
//! - [`Campaigns`]: the service (settings and references checked, then the write path).
//! - [`body`]: request bodies checked into settings and schedules.
//! - [`write`]: the one write path (and starting a send: pinning versions, fixing the audience).
//! - [`http`]: the routes.

pub mod body;
pub mod http;
mod service;
pub mod write;

pub use service::{Campaigns, CampaignsError};

use axum::routing::{patch, post};
use axum::Router;

use crate::CommandState;

pub fn routes() -> Router<CommandState> {
    Router::new()
        .route("/api/v1/campaigns", post(http::create))
        .route(
            "/api/v1/campaigns/{id}",
            patch(http::change).delete(http::delete),
        )
        .route("/api/v1/campaigns/{id}/schedule", post(http::schedule))
        .route("/api/v1/campaigns/{id}/unschedule", post(http::unschedule))
        .route("/api/v1/campaigns/{id}/send", post(http::send))
        .route("/api/v1/campaigns/{id}/pause", post(http::pause))
        .route("/api/v1/campaigns/{id}/resume", post(http::resume))
        .route("/api/v1/campaigns/{id}/cancel", post(http::cancel))
        .route("/api/v1/campaigns/{id}/clone", post(http::clone))
}
