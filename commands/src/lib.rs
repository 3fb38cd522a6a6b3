//! The command API: HTTP → typed command → aggregate → event log, answered with the aggregate
//! id and the cursor after its events.
//!
//! - [`executor`]: runs a command on a tenant's stream with metadata; retries conflicts.
//! - [`error`]: the one mapping from command failures to problem+json.
//! - [`context`]: the metadata of a request (actor, correlation, causation, request id).
//! - [`contacts`]: contact routes and their request bodies.

pub mod contacts;
pub mod context;
pub mod error;
pub mod executor;

use axum::Router;
use sqlx::PgPool;

pub use error::CommandError;
pub use executor::Executor;

/// The state command handlers share.
#[derive(Clone)]
pub struct CommandState {
    pub pool: PgPool,
    pub contacts: std::sync::Arc<Executor<domain::contact::Contact>>,
}

impl CommandState {
    pub fn new(pool: PgPool) -> Self {
        let notifier = event_store::wakeup::Notifier::start(pool.clone());
        Self {
            contacts: std::sync::Arc::new(Executor::new(pool.clone(), notifier, ())),
            pool,
        }
    }
}

/// The command routes under `/api/v1` (authentication is layered on by the caller).
pub fn router(state: CommandState) -> Router {
    contacts::routes().with_state(state)
}

/// The OpenAPI description of the command routes.
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(
        contacts::http::create,
        contacts::http::update,
        contacts::http::add_tags,
        contacts::http::remove_tag
    ),
    components(schemas(
        contacts::body::CreateContact,
        contacts::body::UpdateContact,
        contacts::body::AddTags,
        executor::Accepted,
        http_kit::problem::FieldProblem,
        http_kit::Problem
    ))
)]
pub struct ApiDoc;
