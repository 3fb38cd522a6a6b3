//! Warmup of sending domains: configure (or replace) a domain's daily ramp, or stop it.
//! One aggregate per organization and domain (`domain::delivery::warmup_config`); the
//! delivery worker follows the `delivery_warmup` read model built from its events.
//!
//! - [`body`]: the request body, checked into a schedule (defaults filled in).
//! - [`Warmups`]: the service (configure, remove).
//! - [`http`]: the routes, answering with the domain's status.

pub mod body;
pub mod http;
mod service;

pub use service::{WarmupAccepted, Warmups, WarmupsError};

use axum::routing::put;
use axum::Router;

use crate::CommandState;

pub fn routes() -> Router<CommandState> {
    Router::new().route(
        "/api/v1/warmup/{domain}",
        put(http::configure).delete(http::remove),
    )
}
