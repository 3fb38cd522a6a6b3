//! Identity: organizations (the tenants), their members, invites and API keys; users; and the
//! one role × action table every request is checked against.
//!
//! - [`role`]: roles, actions, key kinds and [`role::allows`], the authorization table.
//! - [`organization`]: the Organization aggregate (members, invites, keys, block).
//! - [`user`]: the User aggregate (sign-up, verification, passwords, TOTP, OpenID links).
//! - [`values`]: names, settings and token digests shared by both.

pub mod organization;
pub mod role;
pub mod user;
pub mod values;

pub use role::{allows, Action, KeyKind, Role};
pub use values::{Digest, OrgName, OrgSettings};
