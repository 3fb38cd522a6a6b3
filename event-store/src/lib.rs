//! The Postgres event log and everything that reads it in order.
//!
//! - [`cursor`]: the log's total order, `(tx_id, global_position)`.
//! - [`reader`]: gap-safe reads after a cursor, per-stream history, the head.
//! - [`store`]: pool, database creation, migrations, the installation id.
//! - [`append`]: batched appends (with new keys and unique claims beside them).
//! - [`metadata`]: the metadata every event carries.
//! - [`wakeup`]: LISTEN/NOTIFY wake-ups for tails of the log.
//! - [`nats`]: the JetStream contract (stream, subjects, headers).
//! - [`relay`]: the single-leader relay from the log to JetStream.
//! - [`source`]: the subscriber interface and the Postgres tail.
//! - [`feed`]: the log read once per process (from Postgres or JetStream) for every tail.
//! - [`stream`]: one stream read for a command, with its key, in one statement.
//! - [`reservation`]: unique values (emails, key digests) claimed by one owner at a time.
//! - [`shred`]: crypto-shredding of personal data (per-contact keys outside the log).
//! - [`clock`]: the time commands and tokens see; tests move it.
//! - [`checkpoint`]: named cursors stored beside the read models.

pub mod append;
pub mod checkpoint;
pub mod clock;
pub mod cursor;
pub mod error;
pub mod feed;
pub mod follow;
pub mod metadata;
pub mod nats;
pub mod reader;
pub mod recorded;
pub mod relay;
pub mod reservation;
pub mod shred;
pub mod source;
pub mod store;
pub mod stream;
pub mod wakeup;

pub use clock::Clock;
pub use cursor::Cursor;
pub use error::StoreError;
pub use metadata::EventMetadata;
pub use recorded::RecordedEvent;
