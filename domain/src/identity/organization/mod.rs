//! The organization: the tenant. Its members and their roles, pending invites, API keys,
//! settings, and whether it is blocked. Invariant: once it has members, at least one is
//! an owner.

mod aggregate;
mod command;
mod error;
mod event;

#[cfg(test)]
mod tests;

pub use aggregate::{ApiKey, Invite, InviteStatus, Member, Organization};
pub use command::{NewApiKey, NewInvite, OrganizationCommand, SettingsPatch};
pub use error::OrganizationError;
pub use event::OrganizationEvent;

/// Most members one organization can have.
pub const MAX_MEMBERS: usize = 1000;
/// Most live (unrevoked) API keys one organization can have.
pub const MAX_KEYS: usize = 100;
