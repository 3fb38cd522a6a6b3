//! The `organizations` read model: one row per organization with its members, invites and
//! keys (never a secret or digest), for the organization screens and a user's list of
//! organizations.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;
use domain::identity::organization::{Organization, OrganizationEvent as E};
use event_store::RecordedEvent;
use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

use crate::{json_rows, Projection, ProjectionError, Target};

pub struct OrganizationsProjection;

/// An organization as its screens show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OrganizationRow {
    pub tenant_id: Uuid,
    pub id: Uuid,
    pub name: String,
    #[schema(value_type = Object)]
    pub settings: serde_json::Value,
    pub members: Vec<MemberRow>,
    pub invites: Vec<InviteRow>,
    pub api_keys: Vec<KeyRow>,
    pub blocked: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MemberRow {
    pub user_id: Uuid,
    pub email: String,
    /// owner, admin, member or viewer.
    pub role: String,
    pub joined_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct InviteRow {
    pub id: Uuid,
    pub email: String,
    pub role: String,
    /// pending, accepted or revoked.
    pub status: String,
    pub expires_at: DateTime<Utc>,
    /// `user:<id>` or `apikey:<id>`.
    pub invited_by: String,
    pub created_at: DateTime<Utc>,
    pub accepted_by: Option<Uuid>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct KeyRow {
    pub id: Uuid,
    pub name: String,
    pub role: String,
    /// secret or public.
    pub kind: String,
    /// The key's first characters.
    pub prefix: String,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

fn text<T: Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

impl OrganizationRow {
    /// Folds one event into the row (`None` before the organization exists).
    pub fn apply(row: Option<Self>, e: &RecordedEvent, event: E, id: Uuid) -> Option<Self> {
        let at = e.recorded_at;
        let mut r = match (row, event) {
            (Some(r), _) if e.sequence <= r.version => return Some(r),
            (None, E::OrganizationCreated { name, settings }) => {
                return Some(Self {
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
                })
            }
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
            } => {
                self.invites.push(InviteRow {
                    id: invite_id,
                    email,
                    role: role.to_string(),
                    status: "pending".into(),
                    expires_at,
                    invited_by,
                    created_at: at,
                    accepted_by: None,
                });
            }
            E::InviteResent {
                invite_id,
                expires_at,
                ..
            } => {
                if let Some(i) = self.invites.iter_mut().find(|i| i.id == invite_id) {
                    i.expires_at = expires_at;
                }
            }
            E::InviteRevoked { invite_id } => {
                if let Some(i) = self.invites.iter_mut().find(|i| i.id == invite_id) {
                    i.status = "revoked".into();
                }
            }
            E::InviteAccepted {
                invite_id,
                user_id,
                email,
                role,
            } => {
                if let Some(i) = self.invites.iter_mut().find(|i| i.id == invite_id) {
                    i.status = "accepted".into();
                    i.accepted_by = Some(user_id);
                }
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
            } => {
                self.api_keys.push(KeyRow {
                    id: key_id,
                    name,
                    role: role.to_string(),
                    kind: text(&kind),
                    prefix,
                    created_by,
                    created_at: at,
                    expires_at,
                    revoked_at: None,
                });
            }
            E::ApiKeyRevoked { key_id } => {
                if let Some(k) = self.api_keys.iter_mut().find(|k| k.id == key_id) {
                    k.revoked_at.get_or_insert(at);
                }
            }
            E::OrganizationBlocked { .. } => self.blocked = true,
            E::OrganizationUnblocked {} => self.blocked = false,
        }
    }

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

/// Organization `id`.
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
    Ok(row.and_then(|(v,)| serde_json::from_value(v).ok()))
}

/// One of a user's organizations.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Membership {
    pub id: Uuid,
    pub name: String,
    pub role: String,
}

/// The organizations `user` is a member of, by name.
pub async fn memberships_of<'e>(
    db: impl PgExecutor<'e>,
    user: Uuid,
) -> Result<Vec<Membership>, sqlx::Error> {
    sqlx::query_as(
        "SELECT o.id, o.name, m->>'role' AS role FROM organizations o, jsonb_array_elements(o.members) m \
         WHERE o.members @> jsonb_build_array(jsonb_build_object('user_id', $1::text)) \
           AND m->>'user_id' = $1::text ORDER BY o.name, o.id",
    )
    .bind(user)
    .persistent(false)
    .fetch_all(db)
    .await
}
