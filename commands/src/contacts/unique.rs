//! One contact per email in an organization: the email is reserved for the contact
//! (`<tenant>:<email>`, scope `contact_email`) before the command that gives it that email,
//! so two concurrent creates can never both succeed.

use std::time::Duration;

use axum::http::StatusCode;
use domain::contact::{ContactCommand, ContactPatch, NewContact, ProfilePatch};
use domain::field::FieldSchema;
use event_store::append::Claim;
use event_store::reservation::{self, Holder, Scope};
use event_store::EventMetadata;
use http_kit::Problem;
use uuid::Uuid;

use crate::executor::{Accepted, CreateError};
use crate::fields::claims;
use crate::reservations::reserved;
use crate::CommandState;

/// The reservation key of a contact email: `<tenant>:<email>`.
pub fn email_key(tenant: Uuid, email: &str) -> String {
    format!("{tenant}:{email}")
}

/// 409 naming the contact that has the email.
pub fn taken(existing: Uuid) -> Problem {
    Problem::new(StatusCode::CONFLICT, "email-taken", "Email taken")
        .detail("another contact of this organization has this email")
        .with("existing_id", existing.to_string())
}

/// The contact of `tenant` with `email`, if any.
pub async fn owner_of(
    s: &CommandState,
    tenant: Uuid,
    email: &str,
) -> Result<Option<Uuid>, Problem> {
    reservation::lookup(&s.pool, Scope::ContactEmail, &email_key(tenant, email))
        .await
        .map(|h| h.map(|h| h.owner_id))
        .map_err(|e| Problem::from_internal(&e))
}

/// Creates contact `id`; `Err(existing)` if another contact has the email. Values of unique
/// fields are reserved too (409 naming the field if another contact has one).
pub async fn create(
    s: &CommandState,
    schema: &FieldSchema,
    tenant: Uuid,
    id: Uuid,
    new: NewContact,
    meta: &EventMetadata,
) -> Result<Result<Accepted, Uuid>, Problem> {
    let holder = Holder {
        tenant_id: tenant,
        owner_id: id,
    };
    let email = email_key(tenant, new.email.as_str());
    let values = claims::unique_values(
        schema,
        tenant,
        new.fields.iter().map(|(k, v)| (k.as_str(), v)),
    );
    // One statement: the events, the contact's key and every claim, or nothing. A value
    // held already (or a claim abandoned by a crash, which only the path below takes over)
    // takes the path below, which names who holds it.
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
    match s
        .contacts
        .create(tenant, id, ContactCommand::Create(new.clone()), meta, &all)
        .await
    {
        Ok(accepted) => return Ok(Ok(accepted)),
        Err(CreateError::Taken | CreateError::Exists) => {}
        Err(CreateError::Command(e)) => return Err(Problem::from(e)),
    }
    let created = reserved(&s.pool, Scope::ContactEmail, &email, holder, || async {
        claims::claim(s, tenant, id, &values).await?;
        let r = s
            .contacts
            .execute(tenant, id, ContactCommand::Create(new), meta)
            .await
            .map_err(Problem::from);
        if r.is_err() {
            claims::release(s, tenant, id, &values).await;
        }
        r
    })
    .await?;
    Ok(created.map_err(|other| other.owner_id))
}

/// Updates contact `id`. A new email, and new values of unique fields, are reserved first
/// (409 if another contact has one) and the old ones released after.
pub async fn update(
    s: &CommandState,
    schema: &FieldSchema,
    tenant: Uuid,
    id: Uuid,
    patch: ContactPatch,
    meta: &EventMetadata,
) -> Result<Accepted, Problem> {
    let touches_unique = patch
        .fields
        .keys()
        .any(|k| schema.fields.get(k.as_str()).is_some_and(|d| d.unique));
    if patch.email.is_none() && !touches_unique {
        return s
            .contacts
            .execute(tenant, id, ContactCommand::Update(patch), meta)
            .await
            .map_err(Problem::from);
    }
    // A merged contact's changes go to its survivor, and so do the survivor's reservations.
    let (id, current) = super::merge::follow(s, tenant, id).await?;
    let (mut take, mut give) = (Vec::new(), Vec::new());
    if current.exists {
        for (k, v) in &patch.fields {
            let old = current.fields.get(k.as_str());
            if old != v.as_ref() {
                take.extend(claims::unique_values(
                    schema,
                    tenant,
                    v.iter().map(|v| (k.as_str(), v)),
                ));
                give.extend(claims::unique_values(
                    schema,
                    tenant,
                    old.into_iter().map(|v| (k.as_str(), v)),
                ));
            }
        }
    }
    claims::claim(s, tenant, id, &take).await?;
    let result = update_email(s, &current, tenant, id, patch, meta).await;
    match &result {
        Ok(_) => claims::release(s, tenant, id, &give).await,
        Err(_) => claims::release(s, tenant, id, &take).await,
    }
    result
}

/// Runs the update, moving the email's reservation if the email changes.
async fn update_email(
    s: &CommandState,
    current: &domain::contact::Contact,
    tenant: Uuid,
    id: Uuid,
    patch: ContactPatch,
    meta: &EventMetadata,
) -> Result<Accepted, Problem> {
    let run = |patch| async move {
        s.contacts
            .execute(tenant, id, ContactCommand::Update(patch), meta)
            .await
            .map_err(Problem::from)
    };
    let new_email = match &patch.email {
        Some(e) if current.exists && current.email != e.as_str() => e.clone(),
        _ => return run(patch).await,
    };
    let holder = Holder {
        tenant_id: tenant,
        owner_id: id,
    };
    let claimed = reserved(
        &s.pool,
        Scope::ContactEmail,
        &email_key(tenant, new_email.as_str()),
        holder,
        || run(patch),
    )
    .await?;
    let accepted = claimed.map_err(|other| taken(other.owner_id))?;
    if let Err(e) = reservation::release(
        &s.pool,
        Scope::ContactEmail,
        &email_key(tenant, &current.email),
        holder,
    )
    .await
    {
        tracing::warn!(error = %e, "could not release a contact's old email");
    }
    Ok(accepted)
}

/// Creates the contact with this email, or updates the one that has it: names and fields
/// given are set, tags added. `(accepted, created)`.
pub async fn upsert(
    s: &CommandState,
    tenant: Uuid,
    new: NewContact,
    meta: &EventMetadata,
) -> Result<(Accepted, bool), Problem> {
    let schema = crate::fields::schema(s, tenant).await?;
    for attempt in 0..20u32 {
        match owner_of(s, tenant, new.email.as_str()).await? {
            None => {
                match create(
                    s,
                    &schema,
                    tenant,
                    Uuid::now_v7(),
                    checked_new(&schema, &new)?,
                    meta,
                )
                .await?
                {
                    Ok(a) => return Ok((a, true)),
                    Err(_) => continue, // created meanwhile: update it
                }
            }
            Some(existing) => {
                let mut patch = upsert_patch(&new);
                crate::fields::refuse(schema.check_patch(&mut patch.fields))?;
                match update(s, &schema, tenant, existing, patch, meta).await {
                    Ok(mut a) => {
                        if !new.tags.is_empty() {
                            a = s
                                .contacts
                                .execute(
                                    tenant,
                                    existing,
                                    ContactCommand::AddTags(new.tags.clone()),
                                    meta,
                                )
                                .await?;
                        }
                        return Ok((a, false));
                    }
                    // Reserved by a create whose event is not stored yet: wait for it.
                    Err(p) if p.status == StatusCode::NOT_FOUND.as_u16() => {
                        tokio::time::sleep(Duration::from_millis(5 << attempt.min(5))).await;
                    }
                    Err(p) => return Err(p),
                }
            }
        }
    }
    Err(
        Problem::new(StatusCode::CONFLICT, "conflict", "Concurrent change")
            .detail("the contact kept changing while this request was applied; retry it")
            .retry_after(1),
    )
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
fn checked_new(
    schema: &domain::field::FieldSchema,
    new: &NewContact,
) -> Result<NewContact, Problem> {
    let mut new = new.clone();
    crate::fields::refuse(schema.check_new(&mut new.fields))?;
    Ok(new)
}
