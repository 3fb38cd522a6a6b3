//! Segments: the service ([`Segments`]: definitions, static membership, refreshes), its
//! routes, and the one writer of memberships ([`membership`]) the workers use too.

pub mod http;
pub mod membership;
mod service;

pub use service::{
    MembershipChanged, NewSegment, SegmentChange, Segments, SegmentsError, MAX_CONTACTS,
};

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
