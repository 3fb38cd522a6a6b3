//! One contact per email in an organization: the email is reserved for the contact
//! (`<tenant>:<email>`, scope `contact_email`) before the command that gives it that email,
//! so two concurrent creates can never both succeed.

use std::time::Duration;

use domain::contact::{ContactCommand, ContactError, ContactPatch, NewContact, ProfilePatch};
use domain::field::FieldSchema;
use domain::{ContactId, TenantId};
use event_store::append::Claim;
use event_store::reservation::{self, Holder, Scope};
use event_store::EventMetadata;
use sqlx::PgPool;

use super::{Contacts, ContactsError};
use crate::executor::{Accepted, CreateError};
use crate::fields::claims;
use crate::reservations::reserved;
use crate::Invalid;

/// The reservation key of a contact email: `<tenant>:<email>`.
pub fn email_key(tenant: uuid::Uuid, email: &str) -> String {
    format!("{tenant}:{email}")
}

/// The contact of `tenant` with `email`, if any.
pub(crate) async fn owner_of(
    pool: &PgPool,
    tenant: TenantId,
    email: &str,
) -> Result<Option<ContactId>, ContactsError> {
    let holder =
        reservation::lookup(pool, Scope::ContactEmail, &email_key(tenant.0, email)).await?;
    Ok(holder.map(|h| ContactId(h.owner_id)))
}

fn holder(tenant: TenantId, id: ContactId) -> Holder {
    Holder {
        tenant_id: tenant.0,
        owner_id: id.0,
    }
}

impl Contacts {
    /// Creates contact `id` from fields checked against `schema`; `Ok(Err(existing))` if
    /// another contact has the email. Values of unique fields are reserved too.
    pub(crate) async fn create_checked(
        &self,
        schema: &FieldSchema,
        tenant: TenantId,
        id: ContactId,
        new: NewContact,
        meta: &EventMetadata,
    ) -> Result<Result<Accepted, ContactId>, ContactsError> {
        let holder = holder(tenant, id);
        let email = email_key(tenant.0, new.email.as_str());
        let values = claims::unique_values(
            schema,
            tenant.0,
            new.fields.iter().map(|(k, v)| (k.as_str(), v)),
        );
        // One statement: the events, the contact's key and every claim, or nothing. A value
        // held already (or a claim abandoned by a crash, which only the path below takes
        // over) takes the path below, which names who holds it.
        let mut all = vec![Claim {
            scope: Scope::ContactEmail,
            value: &email,
            holder,
        }];
        all.extend(values.iter().map(|(_, value)| Claim {
            scope: Scope::ContactField,
            value,
            holder,
        }));
        match self
            .executor
            .create(
                tenant.0,
                id.0,
                ContactCommand::Create(new.clone()),
                meta,
                &all,
            )
            .await
        {
            Ok(accepted) => return Ok(Ok(accepted)),
            Err(CreateError::Taken | CreateError::Exists) => {}
            Err(CreateError::Command(e)) => return Err(e.into()),
        }
        let created = reserved(&self.pool, Scope::ContactEmail, &email, holder, || async {
            claims::claim(&self.pool, tenant, id, &values).await?;
            let r = self
                .execute(tenant, id, ContactCommand::Create(new), meta)
                .await;
            if r.is_err() {
                claims::release(&self.pool, tenant, id, &values).await;
            }
            r
        })
        .await?;
        Ok(created.map_err(|other| ContactId(other.owner_id)))
    }

    /// Updates contact `id` with a patch checked against `schema`. A new email, and new
    /// values of unique fields, are reserved first (refused if another contact has one) and
    /// the old ones released after.
    pub(crate) async fn update_checked(
        &self,
        schema: &FieldSchema,
        tenant: TenantId,
        id: ContactId,
        patch: ContactPatch,
        meta: &EventMetadata,
    ) -> Result<Accepted, ContactsError> {
        let touches_unique = patch
            .fields
            .keys()
            .any(|k| schema.fields.get(k.as_str()).is_some_and(|d| d.unique));
        if patch.email.is_none() && !touches_unique {
            return self
                .execute(tenant, id, ContactCommand::Update(patch), meta)
                .await;
        }
        // A merged contact's changes go to its survivor, and so do the survivor's
        // reservations.
        let (id, current) = super::merge::follow(self, tenant, id).await?;
        let (mut take, mut give) = (Vec::new(), Vec::new());
        if current.exists {
            for (k, v) in &patch.fields {
                let old = current.fields.get(k.as_str());
                if old != v.as_ref() {
                    take.extend(claims::unique_values(
                        schema,
                        tenant.0,
                        v.iter().map(|v| (k.as_str(), v)),
                    ));
                    give.extend(claims::unique_values(
                        schema,
                        tenant.0,
                        old.into_iter().map(|v| (k.as_str(), v)),
                    ));
                }
            }
        }
        claims::claim(&self.pool, tenant, id, &take).await?;
        let result = self.update_email(&current, tenant, id, patch, meta).await;
        match &result {
            Ok(_) => claims::release(&self.pool, tenant, id, &give).await,
            Err(_) => claims::release(&self.pool, tenant, id, &take).await,
        }
        result
    }

    /// Runs the update, moving the email's reservation if the email changes.
    async fn update_email(
        &self,
        current: &domain::contact::Contact,
        tenant: TenantId,
        id: ContactId,
        patch: ContactPatch,
        meta: &EventMetadata,
    ) -> Result<Accepted, ContactsError> {
        let run = |patch| self.execute(tenant, id, ContactCommand::Update(patch), meta);
        let new_email = match &patch.email {
            Some(e) if current.exists && current.email != e.as_str() => e.clone(),
            _ => return run(patch).await,
        };
        let holder = holder(tenant, id);
        let claimed = reserved(
            &self.pool,
            Scope::ContactEmail,
            &email_key(tenant.0, new_email.as_str()),
            holder,
            || run(patch),
        )
        .await?;
        let accepted = claimed.map_err(|other| ContactsError::EmailTaken {
            existing: ContactId(other.owner_id),
        })?;
        if let Err(e) = reservation::release(
            &self.pool,
            Scope::ContactEmail,
            &email_key(tenant.0, &current.email),
            holder,
        )
        .await
        {
            tracing::warn!(error = %e, "could not release a contact's old email");
        }
        Ok(accepted)
    }

    /// Creates the contact with this email, or updates the one that has it: names and
    /// fields given are set, tags added. `(accepted, created)`.
    pub async fn upsert(
        &self,
        tenant: TenantId,
        new: NewContact,
        meta: &EventMetadata,
    ) -> Result<(Accepted, bool), ContactsError> {
        let schema = self.fields.schema(tenant).await?;
        for attempt in 0..20u32 {
            match self.owner_of(tenant, &new.email).await? {
                None => {
                    let checked = checked_new(&schema, &new)?;
                    match self
                        .create_checked(&schema, tenant, ContactId::generate(), checked, meta)
                        .await?
                    {
                        Ok(a) => return Ok((a, true)),
                        Err(_) => continue, // created meanwhile: update it
                    }
                }
                Some(existing) => {
                    let mut patch = upsert_patch(&new);
                    Invalid::check(schema.check_patch(&mut patch.fields))?;
                    match self
                        .update_checked(&schema, tenant, existing, patch, meta)
                        .await
                    {
                        Ok(mut a) => {
                            if !new.tags.is_empty() {
                                let tags = ContactCommand::AddTags(new.tags.clone());
                                a = self.execute(tenant, existing, tags, meta).await?;
                            }
                            return Ok((a, false));
                        }
                        // Reserved by a create whose event is not stored yet: wait for it.
                        Err(ContactsError::Rejected(ContactError::NotFound)) => {
                            tokio::time::sleep(Duration::from_millis(5 << attempt.min(5))).await;
                        }
                        Err(e) => return Err(e),
                    }
                }
            }
        }
        Err(ContactsError::Conflict)
    }
}

/// What an upsert (or an import's row) changes on the contact that has the email: the names
/// and fields it gives (an absent name, field or phone leaves the current one as it is).
pub fn upsert_patch(new: &NewContact) -> ContactPatch {
    ContactPatch {
        email: None,
        first_name: new.first_name.clone().map(Some),
        last_name: new.last_name.clone().map(Some),
        fields: new
            .fields
            .iter()
            .map(|(k, v)| (k.clone(), Some(v.clone())))
            .collect(),
        profile: ProfilePatch {
            phone: new.profile.phone.clone().filter(Option::is_some),
            time_zone: new.profile.time_zone.clone().filter(Option::is_some),
            locale: new.profile.locale.clone().filter(Option::is_some),
        },
    }
}

/// `new` with its fields checked against the field definitions (defaults filled in).
fn checked_new(schema: &FieldSchema, new: &NewContact) -> Result<NewContact, Invalid> {
    let mut new = new.clone();
    Invalid::check(schema.check_new(&mut new.fields))?;
    Ok(new)
}
