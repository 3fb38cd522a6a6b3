//! Operating on history: projection rebuilds, time travel and audit, tails of the log.
//! Holds no second copy of any projection or aggregate logic: it drives the same code.
//!
//! - [`rebuild`]: rebuild a projection into a shadow table and swap it in.
//! - [`inspect`]: an aggregate's state as of a sequence or time, with its events.
//! - [`tail`]: events from a cursor on, catching up and then following live.

pub mod inspect;
pub mod rebuild;
pub mod tail;

/// An operation on history failed.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error(transparent)]
    Store(#[from] event_store::StoreError),
    #[error(transparent)]
    Projection(#[from] projections::ProjectionError),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// A rebuild of this projection is already running.
    #[error("a rebuild of {0} is already running")]
    Busy(String),
    /// A stored event no longer decodes as its aggregate's events.
    #[error("event {sequence} of {aggregate_id} does not decode: {reason}")]
    Decode {
        aggregate_id: String,
        sequence: i64,
        reason: String,
    },
}
