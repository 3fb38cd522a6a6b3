//! What an `action_update_contact` step does to the contact: the same validation and write
//! paths as the contacts API (fields checked against the organization's definitions, unique
//! values claimed; tags added and removed). Every change here sets a value, so applying it
//! twice records nothing the second time — which is what makes the step happen once in
//! effect when the journey worker applies it before committing the step.

use domain::contact::{ContactCommand, Tag};
use domain::journey::definition::ContactChange;
use event_store::EventMetadata;
use http_kit::Problem;
use uuid::Uuid;

use crate::contacts::body::{AddTags, UpdateContact};
use crate::CommandState;

/// Applies `change` to contact `contact` of `tenant`.
pub async fn apply(
    s: &CommandState,
    tenant: Uuid,
    contact: Uuid,
    change: &ContactChange,
    metadata: &EventMetadata,
) -> Result<(), Problem> {
    if !change.fields.is_empty() {
        let body = UpdateContact {
            email: None,
            first_name: None,
            last_name: None,
            phone: None,
            time_zone: None,
            locale: None,
            fields: change.fields.clone().into_iter().collect(),
        };
        let mut patch = body.validate()?;
        let schema = crate::fields::schema(s, tenant).await?;
        crate::fields::refuse(schema.check_patch(&mut patch.fields))?;
        crate::contacts::unique::update(s, &schema, tenant, contact, patch, metadata).await?;
    }
    if !change.add_tags.is_empty() {
        let tags = AddTags {
            tags: change.add_tags.clone(),
        }
        .validate()?;
        s.contacts
            .execute(tenant, contact, ContactCommand::AddTags(tags), metadata)
            .await
            .map_err(Problem::from)?;
    }
    for t in &change.remove_tags {
        let tag = Tag::parse(t).map_err(|e| Problem::validation(e.field, e.reason))?;
        s.contacts
            .execute(tenant, contact, ContactCommand::RemoveTag(tag), metadata)
            .await
            .map_err(Problem::from)?;
    }
    Ok(())
}
