//! The `contact_merges` read model: which contact answers for a merged one. Chains collapse
//! to the final survivor (B into A, then A into C: B → C), so a query resolves any contact
//! id with one lookup.

use async_trait::async_trait;
use cqrs_es::Aggregate;
use domain::contact::{Contact, ContactEvent};
use event_store::RecordedEvent;
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

use crate::{Projection, ProjectionError, Target};

pub struct ContactMergesProjection;

const EVENT: &str = "ContactMergedInto";
const ERASED: &str = "ContactErased";

#[async_trait]
impl Projection for ContactMergesProjection {
    fn name(&self) -> &'static str {
        "contact_merges"
    }

    fn table(&self) -> &'static str {
        "contact_merges"
    }

    /// Reads only public fields.
    fn needs_personal_data(&self) -> bool {
        false
    }

    fn concerns(&self, e: &RecordedEvent) -> bool {
        e.aggregate_type == Contact::TYPE && (e.event_type == EVENT || e.event_type == ERASED)
    }

    fn aggregate_types(&self) -> Option<&'static [&'static str]> {
        Some(&[Contact::TYPE])
    }

    /// Merges are rare: one statement per merge, in log order, so a chain merged within one
    /// batch collapses the same way as across batches.
    async fn apply(
        &self,
        conn: &mut PgConnection,
        target: &Target,
        events: &[RecordedEvent],
    ) -> Result<(), ProjectionError> {
        let table = &target.table;
        for e in events.iter().filter(|e| self.concerns(e)) {
            let Some(merged) = e.entity_id() else {
                continue;
            };
            let survivor_id = match crate::decode(e)? {
                ContactEvent::ContactMergedInto { survivor_id } => survivor_id,
                // The ids merged into an erased contact no longer resolve to anyone (404).
                ContactEvent::ContactErased { .. } => {
                    sqlx::query(&format!(
                        "DELETE FROM {table} WHERE tenant_id = $1 AND survivor_id = $2"
                    ))
                    .bind(e.tenant_id)
                    .bind(merged)
                    .persistent(false)
                    .execute(&mut *conn)
                    .await?;
                    continue;
                }
                _ => continue,
            };
            // The merged contact, and every contact that resolved to it, now resolve to the
            // survivor (or to whatever the survivor itself was merged into, for a log whose
            // merges were recorded in any order).
            sqlx::query(&format!(
                "WITH s AS (SELECT coalesce((SELECT survivor_id FROM {table} \
                                WHERE tenant_id = $1 AND id = $3), $3) AS final) \
                 INSERT INTO {table} (tenant_id, id, survivor_id, merged_at) \
                 SELECT $1, $2, s.final, $4 FROM s \
                 ON CONFLICT (tenant_id, id) DO UPDATE SET survivor_id = EXCLUDED.survivor_id"
            ))
            .bind(e.tenant_id)
            .bind(merged)
            .bind(survivor_id)
            .bind(e.recorded_at)
            .persistent(false)
            .execute(&mut *conn)
            .await?;
            sqlx::query(&format!(
                "UPDATE {table} SET survivor_id = \
                     (SELECT survivor_id FROM {table} WHERE tenant_id = $1 AND id = $2) \
                 WHERE tenant_id = $1 AND survivor_id = $2"
            ))
            .bind(e.tenant_id)
            .bind(merged)
            .persistent(false)
            .execute(&mut *conn)
            .await?;
        }
        Ok(())
    }
}

/// The contact that answers for `id` of `tenant`: its final survivor if it was merged,
/// else `id` itself.
pub async fn resolve<'e>(
    db: impl PgExecutor<'e>,
    tenant: Uuid,
    id: Uuid,
) -> Result<Uuid, sqlx::Error> {
    let survivor: Option<Uuid> = sqlx::query_scalar(
        "SELECT survivor_id FROM contact_merges WHERE tenant_id = $1 AND id = $2",
    )
    .bind(tenant)
    .bind(id)
    .fetch_optional(db)
    .await?;
    Ok(survivor.unwrap_or(id))
}

/// The contacts merged (directly or through a chain) into `survivor` of `tenant`.
pub async fn merged_into<'e>(
    db: impl PgExecutor<'e>,
    tenant: Uuid,
    survivor: Uuid,
) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT id FROM contact_merges WHERE tenant_id = $1 AND survivor_id = $2 ORDER BY merged_at, id",
    )
    .bind(tenant)
    .bind(survivor)
    .fetch_all(db)
    .await
}
