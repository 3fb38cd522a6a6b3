//! Unique custom fields: each value is reserved for its contact (`<tenant>:<key>:<value>`)
//! before the command that gives it to the contact, like a contact's email.

use domain::contact::FieldValue;
use domain::field::FieldSchema;
use domain::{ContactId, TenantId};
use event_store::reservation::{self, Holder, Scope};
use sqlx::PgPool;
use uuid::Uuid;

use crate::contacts::ContactsError;

fn text(v: &FieldValue) -> String {
    match v {
        FieldValue::Text(s) => s.clone(),
        other => serde_json::to_string(other).unwrap_or_default(),
    }
}

fn value_key(tenant: Uuid, key: &str, v: &FieldValue) -> String {
    format!("{tenant}:{key}:{}", text(v))
}

/// The values of unique fields among `fields`, as reservation keys.
pub fn unique_values<'a>(
    schema: &FieldSchema,
    tenant: Uuid,
    fields: impl Iterator<Item = (&'a str, &'a FieldValue)>,
) -> Vec<(String, String)> {
    fields
        .filter(|(k, _)| schema.fields.get(*k).is_some_and(|d| d.unique))
        .map(|(k, v)| (k.to_owned(), value_key(tenant, k, v)))
        .collect()
}

/// Reserves every value for `contact`; on the first one held by another contact, releases
/// what it reserved and answers [`ContactsError::FieldTaken`] naming the field and that
/// contact.
pub async fn claim(
    pool: &PgPool,
    tenant: TenantId,
    contact: ContactId,
    values: &[(String, String)],
) -> Result<(), ContactsError> {
    let me = holder(tenant, contact);
    for (i, (field, value)) in values.iter().enumerate() {
        let held = reservation::claim(pool, Scope::ContactField, value, me).await?;
        if held != me {
            release(pool, tenant, contact, &values[..i]).await;
            return Err(ContactsError::FieldTaken {
                field: format!("fields.{field}"),
                existing: ContactId(held.owner_id),
            });
        }
    }
    Ok(())
}

fn holder(tenant: TenantId, contact: ContactId) -> Holder {
    Holder {
        tenant_id: tenant.0,
        owner_id: contact.0,
    }
}

/// Gives the values up (after a failed command, or values the contact no longer has).
pub async fn release(
    pool: &PgPool,
    tenant: TenantId,
    contact: ContactId,
    values: &[(String, String)],
) {
    let me = holder(tenant, contact);
    for (_, value) in values {
        if let Err(e) = reservation::release(pool, Scope::ContactField, value, me).await {
            tracing::warn!(error = %e, "could not release a unique field value");
        }
    }
}
