//! Writing contact events straight into the log, thousands of rows per INSERT.

use std::collections::BTreeMap;

use anyhow::Context;
use domain::contact::{ContactEvent, FieldValue};
use sqlx::PgConnection;
use uuid::Uuid;

use super::common::CONTACT;

/// Rows per INSERT.
pub const BATCH: usize = 5000;

/// One event of one contact stream.
pub struct Row {
    pub entity: Uuid,
    pub sequence: i64,
    pub event: ContactEvent,
}

fn event_type(e: &ContactEvent) -> &'static str {
    match e {
        ContactEvent::ContactCreated { .. } => "ContactCreated",
        ContactEvent::ContactUpdated { .. } => "ContactUpdated",
        ContactEvent::ContactTagsAdded { .. } => "ContactTagsAdded",
        ContactEvent::ContactTagRemoved { .. } => "ContactTagRemoved",
        ContactEvent::ContactConsentChanged { .. } => "ContactConsentChanged",
        ContactEvent::ContactDoNotContactAdded { .. } => "ContactDoNotContactAdded",
        ContactEvent::ContactDoNotContactRemoved { .. } => "ContactDoNotContactRemoved",
        ContactEvent::ContactFrequencyRuleChanged { .. } => "ContactFrequencyRuleChanged",
        ContactEvent::ContactStageChanged { .. } => "ContactStageChanged",
        ContactEvent::ContactPointsChanged { .. } => "ContactPointsChanged",
        ContactEvent::ContactCompanyLinked { .. } => "ContactCompanyLinked",
        ContactEvent::ContactCompanyUnlinked { .. } => "ContactCompanyUnlinked",
        ContactEvent::ContactOwnerChanged { .. } => "ContactOwnerChanged",
        ContactEvent::ContactNoteAdded { .. } => "ContactNoteAdded",
        ContactEvent::ContactNoteRemoved { .. } => "ContactNoteRemoved",
        ContactEvent::ContactEventRecorded { .. } => "ContactEventRecorded",
        ContactEvent::ContactMerged { .. } => "ContactMerged",
        ContactEvent::ContactMergedInto { .. } => "ContactMergedInto",
        ContactEvent::ContactErased { .. } => "ContactErased",
    }
}

/// The `sequence`-th event (1 to 5) of contact number `n`, a plausible life: created, renamed
/// with a field set, tagged, untagged, then moved to another address with a field removed.
pub fn contact_event(n: u64, sequence: i64) -> ContactEvent {
    let email = format!("c{n}@bench.example.org");
    let first_name = Some(format!("First{n}"));
    match sequence {
        1 => ContactEvent::ContactCreated {
            email,
            first_name,
            last_name: None,
            fields: BTreeMap::from([
                ("plan".to_owned(), FieldValue::Text("pro".into())),
                ("score".to_owned(), FieldValue::Number(n.into())),
            ]),
            tags: vec!["bench".into()],
            profile: Default::default(),
        },
        2 => ContactEvent::ContactUpdated {
            changed: vec!["last_name".into(), "fields.score".into()],
            email,
            first_name,
            last_name: Some(format!("Last{n}")),
            fields_set: BTreeMap::from([("score".to_owned(), FieldValue::Number((n + 1).into()))]),
            fields_unset: vec![],
            profile: Default::default(),
        },
        3 => ContactEvent::ContactTagsAdded {
            tags: vec!["vip".into(), format!("t{}", n % 50)],
        },
        4 => ContactEvent::ContactTagRemoved {
            tag: "bench".into(),
        },
        _ => ContactEvent::ContactUpdated {
            changed: vec!["email".into(), "fields.plan".into()],
            email: format!("c{n}@moved.example.org"),
            first_name,
            last_name: Some(format!("Last{n}")),
            fields_set: BTreeMap::new(),
            fields_unset: vec!["plan".into()],
            profile: Default::default(),
        },
    }
}

/// Appends `rows` of `tenant` in one statement (one transaction), in the order given.
pub async fn insert(
    conn: &mut PgConnection,
    tenant: Uuid,
    metadata: &serde_json::Value,
    rows: &[Row],
) -> anyhow::Result<()> {
    let mut ids = Vec::with_capacity(rows.len());
    let mut sequences = Vec::with_capacity(rows.len());
    let mut types = Vec::with_capacity(rows.len());
    let mut payloads = Vec::with_capacity(rows.len());
    for r in rows {
        ids.push(event_store::recorded::stream_id(tenant, r.entity));
        sequences.push(r.sequence);
        types.push(event_type(&r.event));
        payloads.push(serde_json::to_value(&r.event).context("serializing an event")?);
    }
    // Identity values follow the SELECT's order: ORDER BY keeps each stream's events in
    // sequence order in the log.
    sqlx::query(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) \
         SELECT $1, u.aggregate_id, u.sequence, u.event_type, '1.0', u.payload, $6 \
         FROM UNNEST($2::text[], $3::bigint[], $4::text[], $5::jsonb[]) WITH ORDINALITY \
              AS u(aggregate_id, sequence, event_type, payload, n) \
         ORDER BY u.n",
    )
    .bind(CONTACT)
    .bind(&ids)
    .bind(&sequences)
    .bind(&types)
    .bind(&payloads)
    .bind(metadata)
    .execute(conn)
    .await
    .context("inserting events")?;
    Ok(())
}

/// The metadata of seeded events.
pub fn metadata(tenant: Uuid) -> serde_json::Value {
    serde_json::json!({"tenant_id": tenant.to_string(), "actor": "bench"})
}
