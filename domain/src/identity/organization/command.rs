use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::identity::{Digest, KeyKind, OrgName, Role};
use crate::EmailAddress;

/// What can be asked of an organization. Values arrive validated; secrets arrive as digests
/// (the plain token or key is shown once to its holder and never stored). Commands that
/// depend on time carry `now`, so the aggregate stays pure.
#[derive(Debug, Clone, PartialEq)]
pub enum OrganizationCommand {
    /// Found the organization; `owner` (a user id and email) becomes its first owner.
    Create {
        name: OrgName,
        owner: Option<(Uuid, EmailAddress)>,
    },
    Rename(OrgName),
    ChangeSettings(SettingsPatch),
    /// Invite `email` with `role`; `by` is the inviter's role.
    Invite {
        invite: NewInvite,
        by: Role,
    },
    /// A fresh token (and expiry) for a pending invite; the old token stops working.
    ResendInvite {
        invite_id: Uuid,
        token: Digest,
        expires_at: DateTime<Utc>,
    },
    RevokeInvite {
        invite_id: Uuid,
    },
    /// The user `user_id` (whose verified email is `email`) presents `token`.
    AcceptInvite {
        invite_id: Uuid,
        token: Digest,
        user_id: Uuid,
        email: EmailAddress,
        now: DateTime<Utc>,
    },
    /// Add a member directly (operators, `mauntic org create --owner`).
    AddMember {
        user_id: Uuid,
        email: EmailAddress,
        role: Role,
    },
    ChangeMemberRole {
        user_id: Uuid,
        role: Role,
        by: Role,
    },
    RemoveMember {
        user_id: Uuid,
        by: Role,
    },
    /// The owner `from` hands ownership to the member `to`; `from` becomes an admin.
    TransferOwnership {
        from: Uuid,
        to: Uuid,
    },
    CreateApiKey(NewApiKey),
    RevokeApiKey {
        key_id: Uuid,
    },
    Block {
        reason: String,
    },
    Unblock,
}

/// Settings to change; `None` leaves a setting as it is, `Some(None)` clears an optional one.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SettingsPatch {
    pub time_zone: Option<String>,
    pub locale: Option<String>,
    pub sender_name: Option<Option<String>>,
    pub sender_email: Option<Option<String>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewInvite {
    pub invite_id: Uuid,
    pub email: EmailAddress,
    pub role: Role,
    pub token: Digest,
    pub expires_at: DateTime<Utc>,
    pub invited_by: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewApiKey {
    pub key_id: Uuid,
    pub name: String,
    pub role: Role,
    pub kind: KeyKind,
    /// The first characters of the key, shown in lists to recognise it.
    pub prefix: String,
    pub digest: Digest,
    pub expires_at: Option<DateTime<Utc>>,
    pub created_by: String,
}
