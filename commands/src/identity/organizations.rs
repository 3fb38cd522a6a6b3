//! The organizations service: an organization's name and settings, its members (roles,
//! removal, leaving, ownership), invites (sent by mail with a single-use link) and API keys.
//! The acting member's role comes in as `by`; the aggregate decides what it may do.

use std::sync::Arc;

use domain::identity::organization::{
    NewApiKey, NewInvite, Organization, OrganizationCommand as C, OrganizationError, SettingsPatch,
};
use domain::identity::{KeyKind, OrgName, Role};
use domain::{ApiKeyId, EmailAddress, InviteId, MemberId, TenantId, UserId};
use event_store::reservation::{Holder, Scope};
use event_store::{Clock, EventMetadata};
use http_kit::auth::keys;
use http_kit::auth::orgs::OrgCache;
use http_kit::secret;
use sqlx::PgPool;
use uuid::Uuid;

use super::config::{chrono, IdentityConfig};
use super::mail::SystemMailer;
use crate::executor::{Accepted, Executor};
use crate::reservations::reserved;
use crate::CommandError;

/// Why an organization command was not carried out.
pub type OrganizationsError = CommandError<OrganizationError>;

/// A new API key: the only time its secret is shown.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct CreatedKey {
    pub id: Uuid,
    /// The key. Store it now: it cannot be shown again.
    pub key: String,
    pub prefix: String,
    #[schema(value_type = String)]
    pub cursor: event_store::Cursor,
}

/// What a new key is to be.
pub struct KeySpec {
    pub name: String,
    pub role: Role,
    pub kind: KeyKind,
    pub expires_at: Option<::chrono::DateTime<::chrono::Utc>>,
}

/// The organizations of the platform.
#[derive(Clone)]
pub struct Organizations {
    pool: PgPool,
    executor: Arc<Executor<Organization>>,
    cache: OrgCache,
    config: Arc<IdentityConfig>,
    mailer: SystemMailer,
    clock: Clock,
}

impl Organizations {
    pub fn new(
        pool: PgPool,
        executor: Arc<Executor<Organization>>,
        cache: OrgCache,
        config: Arc<IdentityConfig>,
        mailer: SystemMailer,
        clock: Clock,
    ) -> Self {
        Self {
            pool,
            executor,
            cache,
            config,
            mailer,
            clock,
        }
    }

    /// The command runner underneath (sign-up, invites accepted, the CLI).
    pub fn executor(&self) -> &Arc<Executor<Organization>> {
        &self.executor
    }

    /// Renames the organization and/or changes its settings (at least one command runs).
    pub async fn update(
        &self,
        org: TenantId,
        name: Option<OrgName>,
        patch: SettingsPatch,
        meta: &EventMetadata,
    ) -> Result<Accepted, OrganizationsError> {
        let mut last = None;
        if let Some(name) = name {
            last = Some(self.run(org, C::Rename(name), meta).await?);
        }
        if patch != SettingsPatch::default() || last.is_none() {
            last = Some(self.run(org, C::ChangeSettings(patch), meta).await?);
        }
        last.ok_or_else(|| CommandError::Technical("no command ran".into()))
    }

    /// `user` leaves the organization (anyone may; the last owner is refused).
    pub async fn leave(
        &self,
        org: TenantId,
        user: UserId,
        meta: &EventMetadata,
    ) -> Result<Accepted, OrganizationsError> {
        let command = C::RemoveMember {
            user_id: user.0,
            by: Role::Owner,
        };
        self.run(org, command, meta).await
    }

    /// Hands ownership from `from` to member `to`; `from` becomes an admin.
    pub async fn transfer_ownership(
        &self,
        org: TenantId,
        from: UserId,
        to: UserId,
        meta: &EventMetadata,
    ) -> Result<Accepted, OrganizationsError> {
        let command = C::TransferOwnership {
            from: from.0,
            to: to.0,
        };
        self.run(org, command, meta).await
    }

    /// Changes `member`'s role, as a `by`.
    pub async fn change_role(
        &self,
        org: TenantId,
        member: MemberId,
        role: Role,
        by: Role,
        meta: &EventMetadata,
    ) -> Result<Accepted, OrganizationsError> {
        let command = C::ChangeMemberRole {
            user_id: member.0,
            role,
            by,
        };
        self.run(org, command, meta).await
    }

    /// Removes `member`, as a `by`.
    pub async fn remove_member(
        &self,
        org: TenantId,
        member: MemberId,
        by: Role,
        meta: &EventMetadata,
    ) -> Result<Accepted, OrganizationsError> {
        let command = C::RemoveMember {
            user_id: member.0,
            by,
        };
        self.run(org, command, meta).await
    }

    /// Invites `email` with `role` (as a `by`); the invite's id answers. The mail with its
    /// single-use link is sent after the invite is stored (a mail that fails is logged).
    pub async fn invite(
        &self,
        org: TenantId,
        email: EmailAddress,
        role: Role,
        by: Role,
        meta: &EventMetadata,
    ) -> Result<Accepted, OrganizationsError> {
        let invite_id = InviteId::generate().0;
        let token = secret::random_hex(32);
        let command = C::Invite {
            invite: NewInvite {
                invite_id,
                email: email.clone(),
                role,
                token: secret::digest(&token),
                expires_at: self.clock.now() + chrono(self.config.invite_ttl),
                invited_by: meta.actor.clone().unwrap_or_else(|| "system".into()),
            },
            by,
        };
        let accepted = self.run(org, command, meta).await?;
        self.send_invite(org, email.as_str(), invite_id, &token)
            .await;
        Ok(Accepted {
            id: invite_id,
            cursor: accepted.cursor,
        })
    }

    /// Revokes a pending invite.
    pub async fn revoke_invite(
        &self,
        org: TenantId,
        invite: InviteId,
        meta: &EventMetadata,
    ) -> Result<Accepted, OrganizationsError> {
        let command = C::RevokeInvite {
            invite_id: invite.0,
        };
        let accepted = self.run(org, command, meta).await?;
        Ok(Accepted {
            id: invite.0,
            cursor: accepted.cursor,
        })
    }

    /// Sends a pending invite again with a new link (the old link stops working).
    pub async fn resend_invite(
        &self,
        org: TenantId,
        invite: InviteId,
        meta: &EventMetadata,
    ) -> Result<Accepted, OrganizationsError> {
        let token = secret::random_hex(32);
        let command = C::ResendInvite {
            invite_id: invite.0,
            token: secret::digest(&token),
            expires_at: self.clock.now() + chrono(self.config.invite_ttl),
        };
        let accepted = self.run(org, command, meta).await?;
        let current = self.cache.current(org.0).await;
        let current = current.map_err(|e| CommandError::Technical(Box::new(e)))?;
        let email = current.and_then(|o| o.invites.get(&invite.0).map(|i| i.email.clone()));
        if let Some(email) = email {
            self.send_invite(org, &email, invite.0, &token).await;
        }
        Ok(Accepted {
            id: invite.0,
            cursor: accepted.cursor,
        })
    }

    /// Creates an API key (reserving its digest first, so it resolves to this key); a key
    /// never outranks its maker (`by`).
    pub async fn create_key(
        &self,
        org: TenantId,
        spec: KeySpec,
        by: Role,
        meta: &EventMetadata,
    ) -> Result<CreatedKey, OrganizationsError> {
        // Roles order owner < admin < member < viewer.
        if spec.role < by {
            return Err(CommandError::Rejected(OrganizationError::NotAllowed {
                by,
                what: "create a key with a higher role than its own",
            }));
        }
        let KeySpec {
            name,
            role,
            kind,
            expires_at,
        } = spec;
        let key = keys::generate(kind);
        let key_id = ApiKeyId::generate().0;
        let holder = Holder {
            tenant_id: org.0,
            owner_id: key_id,
        };
        let command = C::CreateApiKey(NewApiKey {
            key_id,
            name,
            role,
            kind,
            prefix: key.prefix.clone(),
            digest: key.digest.clone(),
            expires_at,
            created_by: meta.actor.clone().unwrap_or_else(|| "system".into()),
        });
        let created = reserved(&self.pool, Scope::ApiKey, &key.digest.0, holder, || {
            self.run(org, command, meta)
        })
        .await?;
        // 192 random bits colliding: not in this universe, but never hand out a shared key.
        let accepted =
            created.map_err(|_| CommandError::Technical("a key digest is taken".into()))?;
        Ok(CreatedKey {
            id: key_id,
            key: key.plain,
            prefix: key.prefix,
            cursor: accepted.cursor,
        })
    }

    /// Revokes a key; it fails on its very next request.
    pub async fn revoke_key(
        &self,
        org: TenantId,
        key: ApiKeyId,
        meta: &EventMetadata,
    ) -> Result<Accepted, OrganizationsError> {
        let accepted = self
            .run(org, C::RevokeApiKey { key_id: key.0 }, meta)
            .await?;
        Ok(Accepted {
            id: key.0,
            cursor: accepted.cursor,
        })
    }

    async fn run(
        &self,
        org: TenantId,
        command: C,
        meta: &EventMetadata,
    ) -> Result<Accepted, OrganizationsError> {
        self.executor.execute(org.0, org.0, command, meta).await
    }

    async fn send_invite(&self, org: TenantId, to: &str, invite: Uuid, token: &str) {
        let current = self.cache.current(org.0).await.ok().flatten();
        let name = current.map(|o| o.name.clone()).unwrap_or_default();
        let url = format!(
            "{}/accept-invite?token={}",
            self.config.public_url.trim_end_matches('/'),
            super::accounts::invite_token(org.0, invite, token)
        );
        let body = format!("You are invited to join {name} on Mauntic3.\n\nAccept the invitation: {url}\n\nSign in (or sign up) with this email address first. The link works once.\n");
        let subject = format!("Join {name} on Mauntic3");
        if let Err(e) = self.mailer.send(to, &subject, body).await {
            tracing::warn!(error = %e, "invite mail not sent");
        }
    }
}
