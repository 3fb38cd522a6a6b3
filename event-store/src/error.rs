/// Infrastructure failures of the event store (never domain rejections).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database refused or failed a statement.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// A migration failed to apply.
    #[error("migration error: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// JetStream refused or failed an operation.
    #[error("jetstream error: {0}")]
    JetStream(String),
    /// A key could not be made, unwrapped or used (crypto-shredding).
    #[error("crypto error: {0}")]
    Crypto(String),
    /// A stored or received event could not be decoded.
    #[error("malformed event: {0}")]
    Malformed(String),
}

impl StoreError {
    pub(crate) fn js(e: impl std::fmt::Display) -> Self {
        Self::JetStream(e.to_string())
    }
}
