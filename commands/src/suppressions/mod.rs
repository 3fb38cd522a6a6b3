//! The suppression list: addresses of an organization never sent to on a channel.
//!
//! - [`address`]: normalizing an address per channel, and the entry id derived from it
//!   (the two functions the delivery worker calls before anything else).
//! - [`many`]: suppressing a batch in one transaction (the one write path of adds: the API,
//!   imports, the delivery worker), and the write side's "suppressed right now?".
//! - [`body`]: the add request body; channel and reason names.
//! - [`import`]: a CSV file of addresses, validated row by row.
//! - [`Suppressions`]: the service (add, remove, import).
//! - [`http`]: the routes.

pub mod address;
pub mod body;
pub mod http;
pub mod import;
pub mod many;
mod service;

pub use service::{ImportReport, Suppressions, SuppressionsError};

use axum::extract::DefaultBodyLimit;
use axum::routing::{delete, post};
use axum::Router;

pub use address::{entry_id, normalize, InvalidAddress};
pub use many::{
    suppress_many, suppress_many_in, suppressed_now, NewSuppression, Outcome, SuppressError,
    SuppressMany,
};

use crate::CommandState;

pub fn routes() -> Router<CommandState> {
    Router::new()
        .route("/api/v1/suppressions", post(http::add))
        .route(
            "/api/v1/suppressions/import",
            // The file's size is checked as it is read (10 MB), not by the JSON body limit.
            post(http::import).layer(DefaultBodyLimit::disable()),
        )
        .route("/api/v1/suppressions/{id}", delete(http::remove))
}
