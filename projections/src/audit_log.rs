//! The `audit_log` read model: one row per event of an organization — who (user or key),
//! what (aggregate, event, changed fields), when, from where (address, user agent), with
//! the correlation and request ids. Built from event metadata, so it is as old as the log.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;
use domain::delivery::DeliveryJob;
use domain::identity::user::PLATFORM_TENANT;
use event_store::RecordedEvent;
use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

use crate::{json_rows, Projection, ProjectionError, Target};

/// Builds the `audit_log` table from every organization's events.
pub struct AuditLogProjection;

/// Keys of event payloads that hold secrets (as digests) and are never listed.
const SECRET_KEYS: &[&str] = &[
    "token",
    "digest",
    "password_hash",
    "secret",
    "recovery_codes",
    "code",
];

/// One audited event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditRow {
    /// The organization.
    pub tenant_id: Uuid,
    /// With `global_position`, the event's place in the log (its cursor).
    pub tx_id: i64,
    pub global_position: i64,
    pub event_id: Uuid,
    pub recorded_at: DateTime<Utc>,
    /// `user:<id>`, `apikey:<id>` or `system:<component>`.
    pub actor: Option<String>,
    /// e.g. `contact`, `organization`.
    pub aggregate_type: String,
    /// The entity's id (without the tenant).
    pub aggregate_id: Uuid,
    /// The event's sequence number in its aggregate's stream.
    pub sequence: i64,
    pub event_type: String,
    /// The fields the event changed (`email`, `fields.plan`, `role`, …).
    pub changed: Vec<String>,
    /// The client's address.
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    /// The request's `X-Correlation-Id` (or the one it was given when it had none).
    pub correlation_id: Option<Uuid>,
    /// `X-Request-Id` of the request.
    pub request_id: Option<String>,
}

/// What an event changed: its own `changed` list if it has one, else the names of its
/// fields, sorted, less those that hold secrets. `payload` is externally tagged
/// (`{"EventName": {…}}`).
pub fn changed_fields(payload: &serde_json::Value) -> Vec<String> {
    let Some(inner) = payload
        .as_object()
        .and_then(|o| o.values().next())
        .and_then(|v| v.as_object())
    else {
        return vec![];
    };
    if let Some(list) = inner.get("changed").and_then(|c| c.as_array()) {
        return list
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect();
    }
    let mut keys: Vec<String> = inner
        .keys()
        .filter(|k| !SECRET_KEYS.contains(&k.as_str()))
        .cloned()
        .collect();
    keys.sort_unstable();
    keys
}

impl AuditRow {
    /// The row of event `e`; `None` for events outside organizations (the platform
    /// tenant's: users) or without an entity id.
    pub fn from_event(e: &RecordedEvent) -> Result<Option<Self>, ProjectionError> {
        let Some(aggregate_id) = e.entity_id() else {
            return Ok(None);
        };
        if e.tenant_id == PLATFORM_TENANT {
            return Ok(None);
        }
        let payload: serde_json::Value = crate::decode(e)?;
        Ok(Some(Self {
            tenant_id: e.tenant_id,
            tx_id: e.cursor.tx_id,
            global_position: e.cursor.position,
            event_id: e.event_id,
            recorded_at: e.recorded_at,
            actor: e.metadata.actor.clone(),
            aggregate_type: e.aggregate_type.clone(),
            aggregate_id,
            sequence: e.sequence,
            event_type: e.event_type.clone(),
            changed: changed_fields(&payload),
            ip: e.metadata.ip.clone(),
            user_agent: e.metadata.user_agent.clone(),
            correlation_id: e.metadata.correlation_id,
            request_id: e.metadata.request_id.clone(),
        }))
    }
}

#[async_trait]
impl Projection for AuditLogProjection {
    fn name(&self) -> &'static str {
        "audit_log"
    }

    fn table(&self) -> &'static str {
        "audit_log"
    }

    /// Reads only public fields.
    fn needs_personal_data(&self) -> bool {
        false
    }

    /// Every organization's events, except what the platform's own workers do to delivery
    /// jobs (requests of a campaign fan-out, dispatches, outcomes, tracking): they come by
    /// the million, say nothing about who did what, and each job keeps its whole history
    /// (`GET /api/v1/audit/delivery_job/{id}`). A job requested through the API is listed.
    fn concerns(&self, e: &RecordedEvent) -> bool {
        e.tenant_id != PLATFORM_TENANT
            && !(e.aggregate_type == DeliveryJob::TYPE
                && e.metadata
                    .actor
                    .as_deref()
                    .is_some_and(|a| a.starts_with("system:")))
    }

    async fn apply(
        &self,
        conn: &mut PgConnection,
        target: &Target,
        events: &[RecordedEvent],
    ) -> Result<(), ProjectionError> {
        let mut rows = Vec::with_capacity(events.len());
        for e in events.iter().filter(|e| self.concerns(e)) {
            rows.extend(AuditRow::from_event(e)?);
        }
        json_rows::insert_new(conn, &target.table, &rows).await
    }
}

/// What to list: every given condition must hold.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Exactly this actor (`user:<id>`, `apikey:<id>`, `system:<component>`).
    pub actor: Option<String>,
    pub aggregate_type: Option<String>,
    pub aggregate_id: Option<Uuid>,
    /// Recorded at or after this instant.
    pub from: Option<DateTime<Utc>>,
    /// Recorded before this instant.
    pub to: Option<DateTime<Utc>>,
}

/// A page of `tenant`'s audit log, newest first (by cursor), strictly after (older than) the
/// `(tx_id, global_position)` `after`.
pub async fn list<'e>(
    db: impl PgExecutor<'e>,
    tenant: Uuid,
    f: &AuditFilter,
    after: Option<(i64, i64)>,
    limit: i64,
) -> Result<Vec<AuditRow>, sqlx::Error> {
    let rows: Vec<(serde_json::Value,)> = sqlx::query_as(
        "SELECT to_jsonb(a) FROM audit_log a WHERE tenant_id = $1 \
           AND ($2::text IS NULL OR actor = $2) \
           AND ($3::text IS NULL OR aggregate_type = $3) \
           AND ($4::uuid IS NULL OR aggregate_id = $4) \
           AND ($5::timestamptz IS NULL OR recorded_at >= $5) \
           AND ($6::timestamptz IS NULL OR recorded_at < $6) \
           AND ($7::bigint IS NULL OR (tx_id, global_position) < ($7, $8)) \
         ORDER BY tx_id DESC, global_position DESC LIMIT $9",
    )
    .bind(tenant)
    .bind(&f.actor)
    .bind(&f.aggregate_type)
    .bind(f.aggregate_id)
    .bind(f.from)
    .bind(f.to)
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

#[cfg(test)]
mod tests {
    use super::changed_fields;
    use serde_json::json;

    #[test]
    fn an_event_that_lists_its_changes_is_taken_at_its_word() {
        let p = json!({"ContactUpdated": {"changed": ["fields.plan"], "email": "a@b.c"}});
        assert_eq!(changed_fields(&p), vec!["fields.plan"]);
    }

    #[test]
    fn otherwise_its_fields_are_listed_without_secrets() {
        let p =
            json!({"MemberInvited": {"invite_id": 1, "email": "a@b.c", "token": "x", "code": 1}});
        assert_eq!(changed_fields(&p), vec!["email", "invite_id"]);
        let p = json!({"ApiKeyCreated": {"name": "k", "digest": "x", "secret": "y"}});
        assert_eq!(changed_fields(&p), vec!["name"]);
        assert!(changed_fields(&json!({"OrganizationUnblocked": {}})).is_empty());
    }
}
