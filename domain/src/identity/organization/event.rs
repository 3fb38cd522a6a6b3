use chrono::{DateTime, Utc};
use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::identity::{Digest, KeyKind, OrgSettings, Role};

/// Facts about an organization. Type names never change; shapes evolve through upcasters.
/// Secrets appear only as digests.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum OrganizationEvent {
    OrganizationCreated {
        name: String,
        settings: OrgSettings,
    },
    OrganizationRenamed {
        name: String,
    },
    OrganizationSettingsChanged {
        /// Names of the settings that changed.
        changed: Vec<String>,
        settings: OrgSettings,
    },
    MemberInvited {
        invite_id: Uuid,
        email: String,
        role: Role,
        token: Digest,
        expires_at: DateTime<Utc>,
        invited_by: String,
    },
    InviteResent {
        invite_id: Uuid,
        token: Digest,
        expires_at: DateTime<Utc>,
    },
    InviteRevoked {
        invite_id: Uuid,
    },
    InviteAccepted {
        invite_id: Uuid,
        user_id: Uuid,
        email: String,
        role: Role,
    },
    MemberAdded {
        user_id: Uuid,
        email: String,
        role: Role,
    },
    MemberRoleChanged {
        user_id: Uuid,
        from: Role,
        to: Role,
    },
    MemberRemoved {
        user_id: Uuid,
    },
    OwnershipTransferred {
        from: Uuid,
        to: Uuid,
    },
    ApiKeyCreated {
        key_id: Uuid,
        name: String,
        role: Role,
        kind: KeyKind,
        prefix: String,
        digest: Digest,
        expires_at: Option<DateTime<Utc>>,
        created_by: String,
    },
    ApiKeyRevoked {
        key_id: Uuid,
    },
    OrganizationBlocked {
        reason: String,
    },
    OrganizationUnblocked {},
}

impl DomainEvent for OrganizationEvent {
    fn event_type(&self) -> String {
        match self {
            Self::OrganizationCreated { .. } => "OrganizationCreated",
            Self::OrganizationRenamed { .. } => "OrganizationRenamed",
            Self::OrganizationSettingsChanged { .. } => "OrganizationSettingsChanged",
            Self::MemberInvited { .. } => "MemberInvited",
            Self::InviteResent { .. } => "InviteResent",
            Self::InviteRevoked { .. } => "InviteRevoked",
            Self::InviteAccepted { .. } => "InviteAccepted",
            Self::MemberAdded { .. } => "MemberAdded",
            Self::MemberRoleChanged { .. } => "MemberRoleChanged",
            Self::MemberRemoved { .. } => "MemberRemoved",
            Self::OwnershipTransferred { .. } => "OwnershipTransferred",
            Self::ApiKeyCreated { .. } => "ApiKeyCreated",
            Self::ApiKeyRevoked { .. } => "ApiKeyRevoked",
            Self::OrganizationBlocked { .. } => "OrganizationBlocked",
            Self::OrganizationUnblocked { .. } => "OrganizationUnblocked",
        }
        .to_owned()
    }

    fn event_version(&self) -> String {
        "1.0".to_owned()
    }
}
