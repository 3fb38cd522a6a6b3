//! CSV import of contacts: streamed upload, column → field mapping, create or update by
//! email, tags, progress and per-row errors, in the background and resumed after a crash.
//!
//! - [`options`]: the mapping and options, checked against fields and the header.
//! - [`row`]: one record → a validated contact (the contact API's own checks).
//! - [`batch`]: one batch in one transaction (bulk claims, bulk loads, the aggregate's
//!   `handle`, one batched append with the progress).
//! - [`reader`]: the header, then records in batches (a blocking thread).
//! - [`engine`]: running batches (two in flight) with retries, resuming.
//! - [`store`]: the `imports` and `import_errors` tables.
//! - [`http`]: the routes.

pub mod batch;
pub mod engine;
pub mod http;
pub mod options;
pub mod reader;
pub mod row;
pub mod store;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;

pub use engine::{ImportConfig, Imports};
pub use options::ImportOptions;

use crate::CommandState;

pub fn routes() -> Router<CommandState> {
    Router::new()
        .route(
            "/api/v1/imports",
            // The upload's size is checked while it streams to disk (MAUNTIC_IMPORT_MAX_BYTES),
            // not by the body limit of JSON requests.
            post(http::create)
                .layer(DefaultBodyLimit::disable())
                .get(http::list),
        )
        .route("/api/v1/imports/{id}", get(http::get))
        .route("/api/v1/imports/{id}/errors", get(http::errors))
}
