//! Who may do what: the role × action table. Every command and query is mapped to one
//! [`Action`] at the HTTP edge and checked here, in this one place.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A member's (or an API key's) role in an organization.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Everything, including transferring ownership. An organization always has one.
    Owner,
    /// Everything but ownership: members, keys, settings, billing, audit.
    Admin,
    /// Edits content, campaigns, journeys and contacts.
    Member,
    /// Reads only.
    Viewer,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Owner, Role::Admin, Role::Member, Role::Viewer];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Member => "member",
            Role::Viewer => "viewer",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| format!("{s:?} is not a role: use owner, admin, member or viewer"))
    }
}

/// What a request does, as far as authorization cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Read the organization's data (contacts, content, campaigns, settings, members).
    Read,
    /// Change the organization's data (contacts, content, campaigns, journeys).
    Write,
    /// Send tracking and ingest events (the only thing a public key may do).
    Ingest,
    /// Invite, remove and change the role of members.
    ManageMembers,
    /// Create and revoke API keys.
    ManageKeys,
    /// Rename the organization and change its settings.
    ManageOrganization,
    /// Plans, subscriptions, invoices.
    ManageBilling,
    /// Read the audit log.
    ReadAudit,
    /// Hand ownership to another member.
    TransferOwnership,
}

impl Action {
    pub const ALL: [Action; 9] = [
        Action::Read,
        Action::Write,
        Action::Ingest,
        Action::ManageMembers,
        Action::ManageKeys,
        Action::ManageOrganization,
        Action::ManageBilling,
        Action::ReadAudit,
        Action::TransferOwnership,
    ];
}

/// Whether `role` may perform `action`: the authorization table.
///
/// | action                 | owner | admin | member | viewer |
/// |------------------------|:-----:|:-----:|:------:|:------:|
/// | read                   |   ✓   |   ✓   |   ✓    |   ✓    |
/// | write, ingest          |   ✓   |   ✓   |   ✓    |        |
/// | members, keys, org, billing, audit | ✓ | ✓ |     |        |
/// | transfer ownership     |   ✓   |       |        |        |
pub fn allows(role: Role, action: Action) -> bool {
    use Action::*;
    match action {
        Read => true,
        Write | Ingest => role != Role::Viewer,
        ManageMembers | ManageKeys | ManageOrganization | ManageBilling | ReadAudit => {
            matches!(role, Role::Owner | Role::Admin)
        }
        TransferOwnership => role == Role::Owner,
    }
}

/// Secret keys act with their role; public keys (embedded in websites) may only ingest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyKind {
    Secret,
    Public,
}

impl KeyKind {
    /// Whether a key of this kind with `role` may perform `action`.
    pub fn allows(self, role: Role, action: Action) -> bool {
        match self {
            KeyKind::Secret => allows(role, action),
            KeyKind::Public => action == Action::Ingest,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn viewers_only_read_and_members_cannot_manage_members_keys_or_billing() {
        for a in Action::ALL {
            assert_eq!(allows(Role::Viewer, a), a == Action::Read, "{a:?}");
            assert_eq!(
                allows(Role::Member, a),
                matches!(a, Action::Read | Action::Write | Action::Ingest),
                "{a:?}"
            );
            assert!(allows(Role::Owner, a));
            assert_eq!(allows(Role::Admin, a), a != Action::TransferOwnership);
        }
    }

    #[test]
    fn a_public_key_may_only_ingest_whatever_its_role() {
        for r in Role::ALL {
            for a in Action::ALL {
                assert_eq!(KeyKind::Public.allows(r, a), a == Action::Ingest);
            }
        }
    }
}
