//! Time travel and audit: an aggregate as of a sequence or a time, with the events that
//! built it and who caused each.

use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;
use domain::campaign::Campaign;
use domain::company::Company;
use domain::contact::Contact;
use domain::delivery::provider_config::ProviderConfig;
use domain::delivery::suppression::SuppressionEntry;
use domain::delivery::warmup_config::WarmupConfig;
use domain::delivery::DeliveryJob;
use domain::field::FieldSchema;
use domain::identity::organization::Organization;
use domain::identity::user::User;
use domain::journey::{Execution, Journey};
use domain::segment::{Segment, SegmentMembership};
use domain::template::Template;
use event_store::reader::{self, Until};
use event_store::{Cursor, RecordedEvent};
use serde::Serialize;
use sqlx::PgPool;
use uuid::Uuid;

use crate::ReplayError;

/// The aggregate types that can be inspected.
pub const AGGREGATE_TYPES: &[&str] = &[
    Contact::TYPE,
    Company::TYPE,
    Organization::TYPE,
    User::TYPE,
    Segment::TYPE,
    SegmentMembership::TYPE,
    Template::TYPE,
    DeliveryJob::TYPE,
    SuppressionEntry::TYPE,
    ProviderConfig::TYPE,
    WarmupConfig::TYPE,
    Campaign::TYPE,
    Journey::TYPE,
    Execution::TYPE,
];

/// An aggregate as of a point in its history.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Inspection {
    pub aggregate_type: String,
    pub id: Uuid,
    pub tenant_id: Uuid,
    /// The sequence number of the last event included.
    pub version: i64,
    pub as_of: Option<DateTime<Utc>>,
    /// The aggregate's state after those events.
    #[schema(value_type = Object)]
    pub state: serde_json::Value,
    pub events: Vec<HistoryEvent>,
}

/// One event in an aggregate's history.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct HistoryEvent {
    pub sequence: i64,
    pub event_type: String,
    pub event_version: String,
    pub event_id: Uuid,
    pub recorded_at: DateTime<Utc>,
    #[schema(value_type = String)]
    pub cursor: Cursor,
    pub actor: Option<String>,
    pub correlation_id: Option<Uuid>,
    pub causation_id: Option<Uuid>,
    pub request_id: Option<String>,
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
}

impl From<&RecordedEvent> for HistoryEvent {
    fn from(e: &RecordedEvent) -> Self {
        Self {
            sequence: e.sequence,
            event_type: e.event_type.clone(),
            event_version: e.event_version.clone(),
            event_id: e.event_id,
            recorded_at: e.recorded_at,
            cursor: e.cursor,
            actor: e.metadata.actor.clone(),
            correlation_id: e.metadata.correlation_id,
            causation_id: e.metadata.causation_id,
            request_id: e.metadata.request_id.clone(),
            payload: e.decode().unwrap_or(serde_json::Value::Null),
        }
    }
}

/// The aggregate `aggregate_type`/`id` of `tenant` as of `until`; `None` if it did not exist
/// then (or belongs to another tenant).
pub async fn inspect(
    pool: &PgPool,
    tenant: Uuid,
    aggregate_type: &str,
    id: Uuid,
    until: Until,
) -> Result<Option<Inspection>, ReplayError> {
    let stream = event_store::recorded::stream_id(tenant, id);
    let events = reader::load_stream(pool, aggregate_type, &stream, until).await?;
    // Personal values in clear while the contact's key exists, erased placeholders after.
    let mut conn = pool
        .acquire()
        .await
        .map_err(event_store::StoreError::from)?;
    let events = event_store::shred::reveal(&mut conn, &events, |_| true)
        .await?
        .unwrap_or(events);
    drop(conn);
    let Some(last) = events.last() else {
        return Ok(None);
    };
    let state = match aggregate_type {
        t if t == Contact::TYPE => fold::<Contact>(&events)?,
        t if t == Company::TYPE => fold::<Company>(&events)?,
        t if t == FieldSchema::TYPE => fold::<FieldSchema>(&events)?,
        t if t == Organization::TYPE => fold::<Organization>(&events)?,
        t if t == User::TYPE => fold::<User>(&events)?,
        t if t == Segment::TYPE => fold::<Segment>(&events)?,
        t if t == SegmentMembership::TYPE => fold::<SegmentMembership>(&events)?,
        t if t == Template::TYPE => fold::<Template>(&events)?,
        t if t == DeliveryJob::TYPE => fold::<DeliveryJob>(&events)?,
        t if t == SuppressionEntry::TYPE => fold::<SuppressionEntry>(&events)?,
        t if t == ProviderConfig::TYPE => fold::<ProviderConfig>(&events)?,
        t if t == WarmupConfig::TYPE => fold::<WarmupConfig>(&events)?,
        t if t == Campaign::TYPE => fold::<Campaign>(&events)?,
        t if t == Journey::TYPE => fold::<Journey>(&events)?,
        t if t == Execution::TYPE => fold::<Execution>(&events)?,
        _ => return Ok(None),
    };
    Ok(Some(Inspection {
        aggregate_type: aggregate_type.to_owned(),
        id,
        tenant_id: tenant,
        version: last.sequence,
        as_of: match until {
            Until::Time(t) => Some(t),
            _ => None,
        },
        state,
        events: events.iter().map(HistoryEvent::from).collect(),
    }))
}

/// The tenants that have a stream `aggregate_type`/`id` (for operators who know only the id).
pub async fn tenants_of(
    pool: &PgPool,
    aggregate_type: &str,
    id: Uuid,
) -> Result<Vec<Uuid>, ReplayError> {
    Ok(event_store::reader::tenants_of(pool, aggregate_type, id).await?)
}

/// Replays events through the aggregate's own `apply`.
fn fold<A: Aggregate>(events: &[RecordedEvent]) -> Result<serde_json::Value, ReplayError> {
    let mut state = A::default();
    for e in events {
        let event: A::Event = e.decode().map_err(|x| ReplayError::Decode {
            aggregate_id: e.aggregate_id.clone(),
            sequence: e.sequence,
            reason: x.to_string(),
        })?;
        state.apply(event);
    }
    serde_json::to_value(&state).map_err(|x| ReplayError::Decode {
        aggregate_id: String::new(),
        sequence: 0,
        reason: x.to_string(),
    })
}
