//! The `contact_timeline` read model: one row per event that concerns a contact, for the
//! contact's activity feed. Today that is the contact's own stream; events of other
//! aggregates join when they name a contact (`contact_id` in their payload).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;
use domain::contact::Contact;
use domain::delivery::DeliveryJob;
use domain::identity::user::PLATFORM_TENANT;
use event_store::RecordedEvent;
use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

use crate::{json_rows, Projection, ProjectionError, Target};

pub struct ContactTimelineProjection;

/// One entry of a contact's timeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TimelineRow {
    pub tenant_id: Uuid,
    pub contact_id: Uuid,
    pub tx_id: i64,
    pub global_position: i64,
    pub event_id: Uuid,
    pub recorded_at: DateTime<Utc>,
    pub aggregate_type: String,
    pub event_type: String,
    pub actor: Option<String>,
    /// The event's own fields.
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
}

impl TimelineRow {
    /// The contact an event concerns, if any: a contact's own event, or an event whose
    /// payload names `contact_id` — except a message's request: the timeline lists a message
    /// once it is sent (`DeliverySent` names the contact), with what became of it, not each
    /// of a campaign's million requests as it fans out.
    fn from_event(e: &RecordedEvent) -> Option<Self> {
        if e.tenant_id == PLATFORM_TENANT
            || (e.aggregate_type == DeliveryJob::TYPE && e.event_type == "DeliveryRequested")
        {
            return None;
        }
        // Most events of other aggregates name no contact: not worth parsing.
        if e.aggregate_type != Contact::TYPE && !e.payload.get().contains("\"contact_id\"") {
            return None;
        }
        let payload: serde_json::Value = e.decode().ok()?;
        let data = payload.as_object()?.values().next()?.clone();
        let contact_id = if e.aggregate_type == Contact::TYPE {
            e.entity_id()?
        } else {
            data.get("contact_id")?.as_str()?.parse().ok()?
        };
        Some(Self {
            tenant_id: e.tenant_id,
            contact_id,
            tx_id: e.cursor.tx_id,
            global_position: e.cursor.position,
            event_id: e.event_id,
            recorded_at: e.recorded_at,
            aggregate_type: e.aggregate_type.clone(),
            event_type: e.event_type.clone(),
            actor: e.metadata.actor.clone(),
            data,
        })
    }
}

#[async_trait]
impl Projection for ContactTimelineProjection {
    fn name(&self) -> &'static str {
        "contact_timeline"
    }

    fn table(&self) -> &'static str {
        "contact_timeline"
    }

    fn concerns(&self, e: &RecordedEvent) -> bool {
        e.tenant_id != PLATFORM_TENANT
    }

    async fn apply(
        &self,
        conn: &mut PgConnection,
        target: &Target,
        events: &[RecordedEvent],
    ) -> Result<(), ProjectionError> {
        let rows: Vec<TimelineRow> = events.iter().filter_map(TimelineRow::from_event).collect();
        json_rows::insert_new(conn, &target.table, &rows).await?;
        // An erased contact leaves the timeline, with the contacts merged into it.
        let (tenants, ids) = crate::erased(events);
        if !ids.is_empty() {
            sqlx::query(&format!(
                "DELETE FROM {} WHERE (tenant_id, contact_id) IN \
                 (SELECT * FROM UNNEST($1::uuid[], $2::uuid[]))",
                target.table
            ))
            .bind(&tenants)
            .bind(&ids)
            .persistent(false)
            .execute(&mut *conn)
            .await?;
        }
        Ok(())
    }
}

/// A page of contact `contact`'s timeline, newest first, after `(tx_id, position)` `after`.
pub async fn page<'e>(
    db: impl PgExecutor<'e>,
    tenant: Uuid,
    contact: Uuid,
    after: Option<(i64, i64)>,
    limit: i64,
) -> Result<Vec<TimelineRow>, sqlx::Error> {
    let rows: Vec<(serde_json::Value,)> = sqlx::query_as(
        "SELECT to_jsonb(t) FROM contact_timeline t WHERE tenant_id = $1 AND contact_id = $2 \
           AND ($3::bigint IS NULL OR (tx_id, global_position) < ($3, $4)) \
         ORDER BY tx_id DESC, global_position DESC LIMIT $5",
    )
    .bind(tenant)
    .bind(contact)
    .bind(after.map(|a| a.0))
    .bind(after.map_or(0, |a| a.1))
    .bind(limit)
    .persistent(false)
    .fetch_all(db)
    .await?;
    rows.into_iter()
        .map(|(v,)| serde_json::from_value(v).map_err(|e| sqlx::Error::Decode(Box::new(e))))
        .collect()
}
