//! The `contact_notes` read model: the notes on contacts, with their author.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;
use domain::contact::{Contact, ContactEvent};
use event_store::RecordedEvent;
use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

use crate::{Projection, ProjectionError, Target};

pub struct ContactNotesProjection;

/// Notes added and removed, merges (which move notes to the survivor) and erasures (which
/// delete them).
fn concerns(e: &RecordedEvent) -> bool {
    e.aggregate_type == Contact::TYPE
        && (e.event_type.starts_with("ContactNote")
            || e.event_type == "ContactMerged"
            || e.event_type == "ContactErased")
}

/// A note on a contact.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct NoteRow {
    pub id: Uuid,
    pub contact_id: Uuid,
    pub text: String,
    /// `user:<id>` or `apikey:<id>`.
    pub author: Option<String>,
    pub created_at: DateTime<Utc>,
}

#[async_trait]
impl Projection for ContactNotesProjection {
    fn name(&self) -> &'static str {
        "contact_notes"
    }

    fn table(&self) -> &'static str {
        "contact_notes"
    }

    fn concerns(&self, e: &RecordedEvent) -> bool {
        concerns(e)
    }

    fn aggregate_types(&self) -> Option<&'static [&'static str]> {
        Some(&[Contact::TYPE])
    }

    async fn apply(
        &self,
        conn: &mut PgConnection,
        target: &Target,
        events: &[RecordedEvent],
    ) -> Result<(), ProjectionError> {
        let table = &target.table;
        for e in events.iter().filter(|e| concerns(e)) {
            let Some(contact) = e.entity_id() else {
                continue;
            };
            match crate::decode::<ContactEvent>(e)? {
                ContactEvent::ContactNoteAdded { note_id, text } => {
                    sqlx::query(&format!(
                        "INSERT INTO {table} (tenant_id, id, contact_id, text, author, created_at) \
                         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING"
                    ))
                    .bind(e.tenant_id)
                    .bind(note_id)
                    .bind(contact)
                    .bind(text)
                    .bind(&e.metadata.actor)
                    .bind(e.recorded_at)
                    .persistent(false)
                    .execute(&mut *conn)
                    .await?;
                }
                ContactEvent::ContactNoteRemoved { note_id } => {
                    sqlx::query(&format!(
                        "DELETE FROM {table} WHERE tenant_id = $1 AND id = $2"
                    ))
                    .bind(e.tenant_id)
                    .bind(note_id)
                    .persistent(false)
                    .execute(&mut *conn)
                    .await?;
                }
                // The merged contact's notes are the survivor's from now on.
                ContactEvent::ContactMerged { source_id, .. } => {
                    sqlx::query(&format!(
                        "UPDATE {table} SET contact_id = $3 WHERE tenant_id = $1 AND contact_id = $2"
                    ))
                    .bind(e.tenant_id)
                    .bind(source_id)
                    .bind(contact)
                    .persistent(false)
                    .execute(&mut *conn)
                    .await?;
                }
                // An erased contact's notes go (the merged contacts' notes are its own).
                ContactEvent::ContactErased { .. } => {
                    sqlx::query(&format!(
                        "DELETE FROM {table} WHERE tenant_id = $1 AND contact_id = $2"
                    ))
                    .bind(e.tenant_id)
                    .bind(contact)
                    .persistent(false)
                    .execute(&mut *conn)
                    .await?;
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// The notes on contact `contact` of `tenant`, newest first.
pub async fn of<'e>(
    db: impl PgExecutor<'e>,
    tenant: Uuid,
    contact: Uuid,
) -> Result<Vec<NoteRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, contact_id, text, author, created_at FROM contact_notes \
         WHERE tenant_id = $1 AND contact_id = $2 ORDER BY created_at DESC, id DESC",
    )
    .bind(tenant)
    .bind(contact)
    .fetch_all(db)
    .await
}
