//! Projectors: read models built from the log by cursor, each with its checkpoint committed
//! in the same transaction as the rows it writes.
//!
//! - [`projection`]: the `Projection` trait and the registry of all projections.
//! - [`runner`]: applies batches (idempotent, ordered, checkpointed) and the run loop.
//! - [`contacts`]: the `contacts` read model.
//! - [`status`]: lag of each projection (head cursor vs checkpoint) and consistency waits.

pub mod contacts;
pub mod error;
pub mod projection;
pub mod runner;
pub mod status;

pub use error::ProjectionError;
pub use projection::{all, by_name, Projection, Target};
