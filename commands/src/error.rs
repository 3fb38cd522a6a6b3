//! Command failures and their one mapping to HTTP.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use domain::contact::ContactError;
use http_kit::Problem;

/// Why a command was not carried out.
#[derive(Debug, thiserror::Error)]
pub enum CommandError<E: std::error::Error> {
    /// The aggregate refused it (a business rule).
    #[error(transparent)]
    Rejected(E),
    /// Other writers kept winning the race for the stream, even after retries.
    #[error("the aggregate was changed concurrently; retries exhausted")]
    Conflict,
    /// The store failed.
    #[error("command could not be stored: {0}")]
    Technical(String),
}

/// How a domain rejection is shown.
pub trait Rejection: std::error::Error {
    fn problem(&self) -> Problem;
}

impl Rejection for ContactError {
    fn problem(&self) -> Problem {
        match self {
            ContactError::NotFound => Problem::not_found("contact"),
            ContactError::AlreadyExists => {
                Problem::new(StatusCode::CONFLICT, "already-exists", "Already exists")
                    .detail(self.to_string())
            }
            ContactError::TooManyTags { .. } => Problem::validation("tags", self.to_string()),
            ContactError::TooManyFields { .. } => Problem::validation("fields", self.to_string()),
        }
    }
}

impl<E: Rejection> From<CommandError<E>> for Problem {
    fn from(e: CommandError<E>) -> Self {
        match e {
            CommandError::Rejected(e) => e.problem(),
            CommandError::Conflict => {
                Problem::new(StatusCode::CONFLICT, "conflict", "Concurrent change")
                    .detail("the resource kept changing while this request was applied; retry it")
                    .retry_after(1)
            }
            CommandError::Technical(cause) => {
                tracing::error!(%cause, "command failed");
                Problem::internal()
            }
        }
    }
}

impl<E: Rejection> IntoResponse for CommandError<E> {
    fn into_response(self) -> Response {
        Problem::from(self).into_response()
    }
}
