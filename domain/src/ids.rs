use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! id {
    ($(#[$m:meta])* $name:ident) => {
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

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

id!(
    /// An organization: the unit of isolation. Every stream id starts with it.
    TenantId
);
id!(
    /// A contact of a tenant.
    ContactId
);
id!(
    /// A user: a person who signs in, member of any number of organizations.
    UserId
);

/// The id the event store sees for an entity of a tenant: `"<tenant>:<entity>"`.
/// Built only from a tenant and an entity, so a command can only name its own tenant's streams.
pub fn stream_id(tenant: TenantId, entity: Uuid) -> String {
    format!("{tenant}:{entity}")
}
