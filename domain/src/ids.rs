use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The id of one kind of entity: what it is called (in a "no such …" answer) and its UUID.
pub trait EntityId: Copy + fmt::Display {
    /// What the entity is called, e.g. `contact`.
    const ENTITY: &'static str;
    fn from_uuid(id: Uuid) -> Self;
    fn uuid(self) -> Uuid;
}

macro_rules! id {
    ($(#[$m:meta])* $name:ident, $entity:literal) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            /// A new, time-ordered id (UUIDv7).
            pub fn generate() -> Self {
                Self(Uuid::now_v7())
            }
        }

        impl EntityId for $name {
            const ENTITY: &'static str = $entity;
            fn from_uuid(id: Uuid) -> Self {
                Self(id)
            }
            fn uuid(self) -> Uuid {
                self.0
            }
        }

        impl From<$name> for Uuid {
            fn from(id: $name) -> Uuid {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

id!(
    /// An organization: the unit of isolation. Every stream id starts with it.
    TenantId,
    "organization"
);
id!(
    /// A contact of a tenant.
    ContactId,
    "contact"
);
id!(
    /// A user: a person who signs in, member of any number of organizations.
    UserId,
    "user"
);
id!(
    /// A company of a tenant.
    CompanyId,
    "company"
);
id!(
    /// A segment (dynamic or static) of a tenant.
    SegmentId,
    "segment"
);
id!(
    /// A message template of a tenant.
    TemplateId,
    "template"
);
id!(
    /// A blast campaign of a tenant.
    CampaignId,
    "campaign"
);
id!(
    /// A journey of a tenant.
    JourneyId,
    "journey"
);
id!(
    /// A channel provider (an SMTP server, an SES account, …) of a tenant.
    ProviderId,
    "provider"
);
id!(
    /// A CSV import of contacts.
    ImportId,
    "import"
);
id!(
    /// An entry of a tenant's suppression list.
    SuppressionId,
    "suppression"
);
id!(
    /// A note on a contact.
    NoteId,
    "note"
);
id!(
    /// A user as a member of an organization (the user's id, named as a member).
    MemberId,
    "member"
);
id!(
    /// An invitation to join an organization.
    InviteId,
    "invite"
);
id!(
    /// An API key of an organization.
    ApiKeyId,
    "API key"
);
id!(
    /// One contact's run through a journey.
    ExecutionId,
    "execution"
);
id!(
    /// One message to deliver (a delivery job).
    DeliveryId,
    "delivery"
);

/// The id the event store sees for an entity of a tenant: `"<tenant>:<entity>"`.
/// Built only from a tenant and an entity, so a command can only name its own tenant's streams.
pub fn stream_id(tenant: TenantId, entity: Uuid) -> String {
    format!("{tenant}:{entity}")
}
