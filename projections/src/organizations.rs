//! The `organizations` read model: one row per organization with its members, invites and
//! keys (never a secret or digest), for the organization screens and a user's list of
//! organizations.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;
use domain::identity::organization::{Organization, OrganizationEvent as E};
use event_store::RecordedEvent;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

use crate::{json_rows, Projection, ProjectionError, Target};

/// Builds the `organizations` table from Organization events.
pub struct OrganizationsProjection;

/// An organization as its screens show it (`tenant_id` = `id`: an organization is its own
/// tenant).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OrganizationRow {
    pub tenant_id: Uuid,
    pub id: Uuid,
    pub name: String,
    /// The organization's settings (time zone, locale, …).
    #[schema(value_type = Object)]
    pub settings: serde_json::Value,
    /// Members, oldest first.
    pub members: Vec<MemberRow>,
    /// Every invite ever sent, oldest first, whatever its status.
    pub invites: Vec<InviteRow>,
    /// Every key ever created, oldest first, revoked ones included.
    pub api_keys: Vec<KeyRow>,
    /// A blocked organization's keys and members are refused.
    pub blocked: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The sequence number of the last event applied (the stream's version).
    pub version: i64,
}

/// A member of an organization.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MemberRow {
    pub user_id: Uuid,
    pub email: String,
    /// owner, admin, member or viewer.
    pub role: String,
    pub joined_at: DateTime<Utc>,
}

/// An invite to join an organization (never its token).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct InviteRow {
    pub id: Uuid,
    pub email: String,
    /// The role the invitee gets: owner, admin, member or viewer.
    pub role: String,
    /// pending, accepted or revoked.
    pub status: String,
    /// A pending invite past this instant can no longer be accepted.
    pub expires_at: DateTime<Utc>,
    /// `user:<id>` or `apikey:<id>`.
    pub invited_by: String,
    pub created_at: DateTime<Utc>,
    /// The user who accepted it (accepted invites only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accepted_by: Option<Uuid>,
}

/// An API key of an organization (never the key or its digest).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct KeyRow {
    pub id: Uuid,
    pub name: String,
    /// owner, admin, member or viewer.
    pub role: String,
    /// secret or public.
    pub kind: String,
    /// The key's first characters, to recognise it.
    pub prefix: String,
    /// `user:<id>`, `apikey:<id>` or `system:<component>`.
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// A unit enum's serde name (`KeyKind::Secret` → `secret`).
fn text<T: Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

impl OrganizationRow {
    /// Folds one event into the row (`None` before the organization exists). Events at or
    /// below the row's version are ignored.
    pub fn apply(row: Option<Self>, e: &RecordedEvent, event: E, id: Uuid) -> Option<Self> {
        let at = e.recorded_at;
        let mut r = match (row, event) {
            (Some(r), _) if e.sequence <= r.version => return Some(r),
            (None, E::OrganizationCreated { name, settings }) => Self {
                tenant_id: e.tenant_id,
                id,
                name,
                settings: serde_json::to_value(settings).unwrap_or_default(),
                members: vec![],
                invites: vec![],
                api_keys: vec![],
                blocked: false,
                created_at: at,
                updated_at: at,
                version: e.sequence,
            },
            (None, _) => return None,
            (Some(mut r), event) => {
                r.fold(event, at);
                r
            }
        };
        r.updated_at = at;
        r.version = e.sequence;
        Some(r)
    }

    fn fold(&mut self, event: E, at: DateTime<Utc>) {
        match event {
            E::OrganizationCreated { .. } => {}
            E::OrganizationRenamed { name } => self.name = name,
            E::OrganizationSettingsChanged { settings, .. } => {
                self.settings = serde_json::to_value(settings).unwrap_or_default();
            }
            E::MemberInvited {
                invite_id,
                email,
                role,
                expires_at,
                invited_by,
                ..
            } => self.invites.push(InviteRow {
                id: invite_id,
                email,
                role: role.to_string(),
                status: "pending".into(),
                expires_at,
                invited_by,
                created_at: at,
                accepted_by: None,
            }),
            E::InviteResent {
                invite_id,
                expires_at,
                ..
            } => self.invite(invite_id, |i| i.expires_at = expires_at),
            E::InviteRevoked { invite_id } => {
                self.invite(invite_id, |i| i.status = "revoked".into())
            }
            E::InviteAccepted {
                invite_id,
                user_id,
                email,
                role,
            } => {
                self.invite(invite_id, |i| {
                    i.status = "accepted".into();
                    i.accepted_by = Some(user_id);
                });
                self.add_member(user_id, email, role.to_string(), at);
            }
            E::MemberAdded {
                user_id,
                email,
                role,
            } => self.add_member(user_id, email, role.to_string(), at),
            E::MemberRoleChanged { user_id, to, .. } => self.set_role(user_id, to.to_string()),
            E::MemberRemoved { user_id } => self.members.retain(|m| m.user_id != user_id),
            E::OwnershipTransferred { from, to } => {
                self.set_role(to, "owner".into());
                self.set_role(from, "admin".into());
            }
            E::ApiKeyCreated {
                key_id,
                name,
                role,
                kind,
                prefix,
                expires_at,
                created_by,
                ..
            } => self.api_keys.push(KeyRow {
                id: key_id,
                name,
                role: role.to_string(),
                kind: text(&kind),
                prefix,
                created_by,
                created_at: at,
                expires_at,
                revoked_at: None,
            }),
            E::ApiKeyRevoked { key_id } => {
                if let Some(k) = self.api_keys.iter_mut().find(|k| k.id == key_id) {
                    k.revoked_at.get_or_insert(at);
                }
            }
            E::OrganizationBlocked { .. } => self.blocked = true,
            E::OrganizationUnblocked {} => self.blocked = false,
        }
    }

    fn invite(&mut self, id: Uuid, change: impl FnOnce(&mut InviteRow)) {
        if let Some(i) = self.invites.iter_mut().find(|i| i.id == id) {
            change(i);
        }
    }

    /// Appends the member (events come in order, so `members` stays sorted by `joined_at`).
    fn add_member(&mut self, user_id: Uuid, email: String, role: String, at: DateTime<Utc>) {
        self.members.retain(|m| m.user_id != user_id);
        self.members.push(MemberRow {
            user_id,
            email,
            role,
            joined_at: at,
        });
    }

    fn set_role(&mut self, user_id: Uuid, role: String) {
        if let Some(m) = self.members.iter_mut().find(|m| m.user_id == user_id) {
            m.role = role;
        }
    }
}

/// The columns an update rewrites (`tenant_id`, `id` and `created_at` never change).
const UPDATED: &[&str] = &[
    "name",
    "settings",
    "members",
    "invites",
    "api_keys",
    "blocked",
    "updated_at",
    "version",
];

#[async_trait]
impl Projection for OrganizationsProjection {
    fn name(&self) -> &'static str {
        "organizations"
    }

    fn table(&self) -> &'static str {
        "organizations"
    }

    /// Reads only public fields.
    fn needs_personal_data(&self) -> bool {
        false
    }

    fn concerns(&self, e: &RecordedEvent) -> bool {
        e.aggregate_type == Organization::TYPE
    }

    fn aggregate_types(&self) -> Option<&'static [&'static str]> {
        Some(&[Organization::TYPE])
    }

    async fn apply(
        &self,
        conn: &mut PgConnection,
        target: &Target,
        events: &[RecordedEvent],
    ) -> Result<(), ProjectionError> {
        json_rows::fold_rows::<OrganizationRow, E>(
            conn,
            target,
            events,
            Organization::TYPE,
            OrganizationRow::apply,
            UPDATED,
        )
        .await
    }
}

/// Organization `id` (the caller's tenant).
pub async fn get<'e>(
    db: impl PgExecutor<'e>,
    id: Uuid,
) -> Result<Option<OrganizationRow>, sqlx::Error> {
    let row: Option<(serde_json::Value,)> =
        sqlx::query_as("SELECT to_jsonb(o) FROM organizations o WHERE tenant_id = $1 AND id = $1")
            .bind(id)
            .persistent(false)
            .fetch_optional(db)
            .await?;
    row.map(|(v,)| serde_json::from_value(v).map_err(|e| sqlx::Error::Decode(Box::new(e))))
        .transpose()
}

/// One of a user's organizations, with the user's role in it.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Membership {
    /// The organization's id.
    pub id: Uuid,
    /// The organization's name.
    pub name: String,
    /// The user's role there: owner, admin, member or viewer.
    pub role: String,
}

/// The organizations `user` is a member of, by name (the GIN index on `members` finds them).
pub async fn memberships_of<'e>(
    db: impl PgExecutor<'e>,
    user: Uuid,
) -> Result<Vec<Membership>, sqlx::Error> {
    sqlx::query_as(
        "SELECT o.id, o.name, m->>'role' AS role \
         FROM organizations o CROSS JOIN LATERAL jsonb_array_elements(o.members) m \
         WHERE o.members @> $1 AND m @> $2 ORDER BY o.name, o.id",
    )
    .bind(json!([{ "user_id": user }]))
    .bind(json!({ "user_id": user }))
    .persistent(false)
    .fetch_all(db)
    .await
}
