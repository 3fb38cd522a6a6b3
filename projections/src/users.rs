//! The `users` read model: who a user is, for their own account screen (no password hash,
//! no TOTP secret).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;
use domain::identity::user::{User, UserEvent as E, PLATFORM_TENANT};
use event_store::RecordedEvent;
use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

use crate::{json_rows, Projection, ProjectionError, Target};

/// Builds the `users` table from User events.
pub struct UsersProjection;

/// A user as their account screen shows them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct UserRow {
    /// Always the platform tenant (nil): users span organizations.
    pub tenant_id: Uuid,
    pub id: Uuid,
    pub email: String,
    pub name: Option<String>,
    pub email_verified: bool,
    /// Whether sign-in asks for a second factor (TOTP or a recovery code).
    pub totp_enabled: bool,
    /// False for users who only sign in through OpenID Connect.
    pub has_password: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The sequence number of the last event applied (the stream's version).
    pub version: i64,
}

impl UserRow {
    /// Folds one event into the row (`None` before the user exists). Events at or below the
    /// row's version are ignored.
    pub fn apply(row: Option<Self>, e: &RecordedEvent, event: E, id: Uuid) -> Option<Self> {
        let mut r = match (row, event) {
            (Some(r), _) if e.sequence <= r.version => return Some(r),
            (
                None,
                E::UserSignedUp {
                    email,
                    name,
                    has_password,
                    email_verified,
                },
            ) => {
                return Some(Self {
                    tenant_id: e.tenant_id,
                    id,
                    email,
                    name,
                    email_verified,
                    totp_enabled: false,
                    has_password,
                    created_at: e.recorded_at,
                    updated_at: e.recorded_at,
                    version: e.sequence,
                })
            }
            (None, _) => return None,
            (Some(mut r), event) => {
                match event {
                    E::EmailVerified {} => r.email_verified = true,
                    E::PasswordChanged { .. } => r.has_password = true,
                    E::TotpEnabled { .. } => r.totp_enabled = true,
                    E::TotpDisabled {} => r.totp_enabled = false,
                    _ => {}
                }
                r
            }
        };
        r.updated_at = e.recorded_at;
        r.version = e.sequence;
        Some(r)
    }
}

/// The columns an update rewrites.
const UPDATED: &[&str] = &[
    "email",
    "name",
    "email_verified",
    "totp_enabled",
    "has_password",
    "updated_at",
    "version",
];

#[async_trait]
impl Projection for UsersProjection {
    fn name(&self) -> &'static str {
        "users"
    }

    fn table(&self) -> &'static str {
        "users"
    }

    /// Reads only public fields.
    fn needs_personal_data(&self) -> bool {
        false
    }

    fn concerns(&self, e: &RecordedEvent) -> bool {
        e.aggregate_type == User::TYPE
    }

    fn aggregate_types(&self) -> Option<&'static [&'static str]> {
        Some(&[User::TYPE])
    }

    async fn apply(
        &self,
        conn: &mut PgConnection,
        target: &Target,
        events: &[RecordedEvent],
    ) -> Result<(), ProjectionError> {
        json_rows::fold_rows::<UserRow, E>(
            conn,
            target,
            events,
            User::TYPE,
            UserRow::apply,
            UPDATED,
        )
        .await
    }
}

/// User `id` (users live in the platform tenant).
pub async fn get<'e>(db: impl PgExecutor<'e>, id: Uuid) -> Result<Option<UserRow>, sqlx::Error> {
    let row: Option<(serde_json::Value,)> =
        sqlx::query_as("SELECT to_jsonb(u) FROM users u WHERE tenant_id = $1 AND id = $2")
            .bind(PLATFORM_TENANT)
            .bind(id)
            .persistent(false)
            .fetch_optional(db)
            .await?;
    row.map(|(v,)| serde_json::from_value(v).map_err(|e| sqlx::Error::Decode(Box::new(e))))
        .transpose()
}
