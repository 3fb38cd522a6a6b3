use event_store::StoreError;

/// A projection could not apply a batch.
#[derive(Debug, thiserror::Error)]
pub enum ProjectionError {
    /// Reading the log or a checkpoint failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Writing the read model failed.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// A stored event does not decode as its aggregate's event type.
    #[error("event {event_id} ({event_type}) does not decode: {reason}")]
    Decode {
        event_id: uuid::Uuid,
        event_type: String,
        reason: String,
    },
    /// A read-model row does not convert to or from its JSON form.
    #[error("read-model row: {0}")]
    Row(String),
}
