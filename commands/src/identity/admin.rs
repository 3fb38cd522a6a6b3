//! Operations for operators (the `mauntic org|user|apikey|tenant` subcommands): the same
//! commands as the API, recorded with the actor `system:cli`.

use anyhow::{anyhow, bail, Context};
use domain::identity::organization::OrganizationCommand;
use domain::identity::user::{UserCommand, PLATFORM_TENANT};
use domain::identity::{KeyKind, OrgName, Role};
use domain::EmailAddress;
use event_store::reservation::{self, Holder, Scope};
use event_store::EventMetadata;
use http_kit::Problem;
use serde::Serialize;
use uuid::Uuid;

use super::organizations::{CreatedKey, KeySpec};
use super::password;
use super::support::reserved;
use crate::CommandState;

fn meta(tenant: Uuid) -> EventMetadata {
    EventMetadata {
        tenant_id: Some(tenant),
        actor: Some("system:cli".into()),
        correlation_id: Some(Uuid::now_v7()),
        ..Default::default()
    }
}

fn problem(p: Problem) -> anyhow::Error {
    anyhow!("{}: {}", p.title, p.detail.unwrap_or_default())
}

/// A user, created with a verified email (and a password, if given).
pub async fn create_user(
    s: &CommandState,
    email: &str,
    password: Option<String>,
    name: Option<String>,
) -> anyhow::Result<Uuid> {
    let email = EmailAddress::parse(email)?;
    let hash = match password {
        Some(p) => {
            password::check_policy(&p, email.as_str(), name.as_deref())?;
            Some(password::hash(s.identity.config.password_cost, p).await?)
        }
        None => None,
    };
    let user = Uuid::now_v7();
    let me = Holder {
        tenant_id: PLATFORM_TENANT,
        owner_id: user,
    };
    let command = UserCommand::SignUp {
        email: email.clone(),
        name,
        has_password: hash.is_some(),
        verification: None,
    };
    let meta = meta(PLATFORM_TENANT);
    let created = reserved(&s.pool, Scope::UserEmail, email.as_str(), me, || async {
        if let Some(h) = &hash {
            super::credentials::set_password(&s.pool, user, h).await?;
        }
        s.identity
            .users
            .execute(PLATFORM_TENANT, user, command, &meta)
            .await
            .map_err(Problem::from)
    })
    .await
    .map_err(problem)?;
    if created.is_err() {
        bail!("a user with email {email} exists");
    }
    Ok(user)
}

/// An organization, with the user `owner_email` (who must exist) as its owner.
pub async fn create_organization(
    s: &CommandState,
    name: &str,
    owner_email: Option<&str>,
) -> anyhow::Result<Uuid> {
    let name = OrgName::parse(name).map_err(|e| anyhow!("{e}"))?;
    let owner = match owner_email {
        Some(e) => {
            let email = EmailAddress::parse(e)?;
            let user = reservation::lookup(&s.pool, Scope::UserEmail, email.as_str())
                .await?
                .with_context(|| {
                    format!("no user with email {email}; create one with `mauntic user create`")
                })?;
            Some((user.owner_id, email))
        }
        None => None,
    };
    let org = Uuid::now_v7();
    s.identity
        .organizations
        .executor()
        .execute(
            org,
            org,
            OrganizationCommand::Create { name, owner },
            &meta(org),
        )
        .await
        .map_err(|e| problem(e.into()))?;
    Ok(org)
}

/// A key of `org` with `role` and `kind`.
pub async fn create_api_key(
    s: &CommandState,
    org: Uuid,
    name: &str,
    role: Role,
    kind: KeyKind,
) -> anyhow::Result<CreatedKey> {
    let spec = KeySpec {
        name: name.to_owned(),
        role,
        kind,
        expires_at: None,
    };
    let orgs = &s.identity.organizations;
    // The CLI makes keys as the platform: no maker's role to stay under.
    Ok(orgs
        .create_key(
            domain::TenantId(org),
            spec,
            domain::identity::Role::Owner,
            &meta(org),
        )
        .await?)
}

/// What `mauntic tenant create` prints.
#[derive(Debug, Clone, Serialize)]
pub struct NewTenant {
    /// The organization (the tenant every stream id starts with).
    pub tenant_id: Uuid,
    pub organization_id: Uuid,
    /// An admin key for it, shown once.
    pub api_key: String,
}

/// An organization without members and an admin API key for it: a tenant for machines
/// (the spine's `tenant create`, kept working).
pub async fn create_tenant(s: &CommandState, name: &str) -> anyhow::Result<NewTenant> {
    let org = create_organization(s, name, None).await?;
    let key = create_api_key(s, org, "first key", Role::Admin, KeyKind::Secret).await?;
    Ok(NewTenant {
        tenant_id: org,
        organization_id: org,
        api_key: key.key,
    })
}

/// Blocks (or unblocks) an organization: every API call of it is refused, nothing deleted.
pub async fn set_blocked(
    s: &CommandState,
    org: Uuid,
    blocked: Option<String>,
) -> anyhow::Result<()> {
    let command = match blocked {
        Some(reason) => OrganizationCommand::Block { reason },
        None => OrganizationCommand::Unblock,
    };
    s.identity
        .organizations
        .executor()
        .execute(org, org, command, &meta(org))
        .await
        .map_err(|e| problem(e.into()))?;
    Ok(())
}
