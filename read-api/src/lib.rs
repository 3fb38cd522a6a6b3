//! The query API: reads of read models (and, for audit, of the log). Never writes.
//!
//! - [`consistency`]: `?consistent_after=` / `X-Mauntic-After` read-your-writes waits.
//! - [`contacts`]: contact list (keyset pages) and detail.
//! - [`audit`]: an aggregate's history and state as of a sequence or time.
//! - [`system`]: projection lag.

pub mod audit;
pub mod consistency;
pub mod contacts;
pub mod system;

use std::time::Duration;

use axum::routing::get;
use axum::Router;
use sqlx::PgPool;

/// The state query handlers share.
#[derive(Clone)]
pub struct QueryState {
    pub pool: PgPool,
    /// How long a query waits for `consistent_after` before answering 503.
    pub consistency_timeout: Duration,
}

/// The query routes under `/api/v1` (authentication is layered on by the caller).
pub fn router(state: QueryState) -> Router {
    Router::new()
        .route("/api/v1/contacts", get(contacts::list))
        .route("/api/v1/contacts/{id}", get(contacts::get))
        .route("/api/v1/audit/{aggregate_type}/{id}", get(audit::get))
        .route("/api/v1/projections", get(system::projections))
        .with_state(state)
}

/// The OpenAPI description of the query routes.
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(contacts::list, contacts::get, audit::get, system::projections),
    components(schemas(
        contacts::ContactPage,
        projections::contacts::ContactRow,
        replay::inspect::Inspection,
        replay::inspect::HistoryEvent,
        projections::status::Lag
    ))
)]
pub struct ApiDoc;
