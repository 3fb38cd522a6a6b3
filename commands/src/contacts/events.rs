//! Custom contact events (`signed_up`, `purchase`): the one path that records them. Both
//! routes (`events_http.rs`) and the journey worker call [`record_event`].

use chrono::{DateTime, Utc};
use domain::contact::{Contact, ContactCommand, ContactError, EventName, EventProperties};
use event_store::EventMetadata;
use uuid::Uuid;

use crate::executor::{Accepted, Executor};
use crate::CommandError;

/// Records custom event `name` on contact `contact_id` of `tenant`, which happened at
/// `occurred_at` (check a caller's value with `domain::contact::custom_event::occurred_at`),
/// coming from `source` (`api`, `journey:<id>`). A merged contact's event is recorded on its
/// survivor, whose id the answer carries. Refused (`CommandError::Rejected`) with
/// `ContactError::NotFound` for a contact that does not exist and `ContactError::Erased`
/// for an erased one.
#[allow(clippy::too_many_arguments)] // the command's four fields, plus where and by whom
#[tracing::instrument(level = "debug", skip_all, fields(%tenant, %contact_id, name = name.as_str()), err(level = "debug"))]
pub async fn record_event(
    contacts: &Executor<Contact>,
    tenant: Uuid,
    contact_id: Uuid,
    name: EventName,
    properties: EventProperties,
    occurred_at: DateTime<Utc>,
    source: Option<String>,
    metadata: &EventMetadata,
) -> Result<Accepted, CommandError<ContactError>> {
    let command = ContactCommand::RecordEvent {
        name,
        properties,
        occurred_at,
        source,
    };
    contacts
        .execute(tenant, contact_id, command, metadata)
        .await
}
