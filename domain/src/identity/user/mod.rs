//! The user: a person who signs in. Users span organizations, so their streams live in the
//! platform tenant ([`PLATFORM_TENANT`]), not in any organization's.

mod aggregate;
mod command;
mod error;
mod event;

#[cfg(test)]
mod tests;

pub use aggregate::{PendingToken, User};
pub use command::UserCommand;
pub use error::UserError;
pub use event::UserEvent;

/// The tenant part of every user stream id: users belong to no single organization.
pub const PLATFORM_TENANT: uuid::Uuid = uuid::Uuid::nil();
