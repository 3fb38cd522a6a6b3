//! Journeys: drafts (create, change), publish, pause, resume, archive, and entries. The
//! service is [`Journeys`]; every journey command goes through `write::JourneyWriter`, which
//! appends the journey's events
//! together with their effects on the write-side tables the journey worker runs on; every
//! entry (the API's, the trigger worker's, a `link` step's) goes through `enter::enter_in`.
//!
//! - [`write`]: the one write path of journey commands.
//! - [`enter`]: the one path of entries (re-entry policy, `JourneyEntered`, run rows).
//! - [`http`]: the routes.

pub mod enter;
pub mod http;
mod service;
pub mod write;

pub use service::{Journeys, JourneysError};

use axum::routing::{patch, post};
use axum::Router;

use crate::CommandState;

pub fn routes() -> Router<CommandState> {
    Router::new()
        .route("/api/v1/journeys", post(http::create))
        .route("/api/v1/journeys/{id}", patch(http::change))
        .route("/api/v1/journeys/{id}/publish", post(http::publish))
        .route("/api/v1/journeys/{id}/pause", post(http::pause))
        .route("/api/v1/journeys/{id}/resume", post(http::resume))
        .route("/api/v1/journeys/{id}/archive", post(http::archive))
        .route("/api/v1/journeys/{id}/entries", post(http::entries))
}
