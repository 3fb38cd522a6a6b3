//! The journey worker.
//!
//! - [`runner`]: claims due executions from the timer table (`journey_runs`) and runs them
//!   through the engine, writing every effect in the batch's transaction.
//! - [`triggers`]: follows the log — entries from contact events and segment entries,
//!   signals to executions in flight (exit criteria, goals, `delay_event`, gates) — and runs
//!   schedule triggers.

pub mod runner;
pub mod triggers;

pub use runner::{JourneyRunner, JourneyWorkerConfig, Ran};
pub use triggers::TriggerFollower;

/// Why a journey batch failed (it is retried: nothing was half-written).
#[derive(Debug, thiserror::Error)]
pub enum JourneyError {
    #[error(transparent)]
    Sql(#[from] sqlx::Error),
    #[error(transparent)]
    Store(#[from] event_store::StoreError),
    #[error(transparent)]
    Jobs(#[from] commands::delivery::jobs::JobsError),
    #[error(transparent)]
    Enter(#[from] commands::journeys::enter::EnterError),
    #[error("an execution was appended concurrently")]
    Conflict,
    #[error("the {0} read model did not catch up in time")]
    Lagging(&'static str),
    #[error("{0}")]
    Command(String),
}

impl From<event_store::append::AppendError> for JourneyError {
    fn from(e: event_store::append::AppendError) -> Self {
        match e {
            event_store::append::AppendError::Conflict => Self::Conflict,
            event_store::append::AppendError::Store(s) => Self::Store(s),
        }
    }
}
