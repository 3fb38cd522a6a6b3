//! Segment membership, kept current.
//!
//! - [`definitions`]: every organization's segments, folded from the log and kept current.
//! - [`decide`]: which of its segments a contact belongs in (the in-memory evaluator over
//!   the contacts read model).
//! - [`evaluator`]: follows the log; when a contact changes, re-evaluates it against its
//!   organization's dynamic segments and records entries and exits.
//! - [`refresher`]: re-evaluates whole segments (new or changed rules, deletions, and rules
//!   on relative dates, on a schedule).

pub mod decide;
pub mod definitions;
pub mod evaluator;
pub mod refresher;

/// Why a segment worker's step failed (it is retried).
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error(transparent)]
    Store(#[from] event_store::StoreError),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error("another writer changed a membership stream first")]
    Conflict,
    #[error("the {0} read model did not catch up in time")]
    Lagging(&'static str),
    #[error("malformed event: {0}")]
    Decode(String),
    /// The worker is stopping: a refresh ends between two pages.
    #[error("stopping")]
    Stopping,
}

impl From<event_store::append::AppendError> for WorkerError {
    fn from(e: event_store::append::AppendError) -> Self {
        match e {
            event_store::append::AppendError::Conflict => Self::Conflict,
            event_store::append::AppendError::Store(s) => Self::Store(s),
        }
    }
}

/// The metadata of events a segment worker appends.
pub(crate) fn metadata(tenant: uuid::Uuid) -> event_store::EventMetadata {
    event_store::EventMetadata {
        tenant_id: Some(tenant),
        actor: Some("system:segments".to_owned()),
        correlation_id: Some(uuid::Uuid::now_v7()),
        causation_id: None,
        request_id: None,
        ip: None,
        user_agent: None,
    }
}
