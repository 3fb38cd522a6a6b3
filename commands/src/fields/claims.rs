//! Unique custom fields: each value is reserved for its contact (`<tenant>:<key>:<value>`)
//! before the command that gives it to the contact, like a contact's email.

use axum::http::StatusCode;
use domain::contact::FieldValue;
use domain::field::FieldSchema;
use event_store::reservation::{self, Holder, Scope};
use http_kit::Problem;
use uuid::Uuid;

use crate::CommandState;

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
/// what it reserved and answers 409 naming the field and that contact.
pub async fn claim(
    s: &CommandState,
    tenant: Uuid,
    contact: Uuid,
    values: &[(String, String)],
) -> Result<(), Problem> {
    let me = Holder {
        tenant_id: tenant,
        owner_id: contact,
    };
    for (i, (field, value)) in values.iter().enumerate() {
        let held = reservation::claim(&s.pool, Scope::ContactField, value, me)
            .await
            .map_err(|e| Problem::from_internal(&e))?;
        if held != me {
            release(s, tenant, contact, &values[..i]).await;
            return Err(
                Problem::new(StatusCode::CONFLICT, "field-taken", "Value taken")
                    .detail(format!("fields.{field}: another contact has this value"))
                    .with("field", format!("fields.{field}"))
                    .with("existing_id", held.owner_id.to_string()),
            );
        }
    }
    Ok(())
}

/// Gives the values up (after a failed command, or values the contact no longer has).
pub async fn release(s: &CommandState, tenant: Uuid, contact: Uuid, values: &[(String, String)]) {
    let me = Holder {
        tenant_id: tenant,
        owner_id: contact,
    };
    for (_, value) in values {
        if let Err(e) = reservation::release(&s.pool, Scope::ContactField, value, me).await {
            tracing::warn!(error = %e, "could not release a unique field value");
        }
    }
}
