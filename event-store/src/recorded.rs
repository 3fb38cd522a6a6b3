use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use uuid::Uuid;

use crate::{Cursor, EventMetadata};

/// One event as the log holds it, with its place in the total order.
///
/// This is also the JSON body of every JetStream message the relay publishes and every line
/// `mauntic events tail` prints: a stable contract for outside subscribers.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RecordedEvent {
    pub cursor: Cursor,
    pub event_id: Uuid,
    pub tenant_id: Uuid,
    pub aggregate_type: String,
    /// The stream id the store sees: `"<tenant uuid>:<entity uuid>"`.
    pub aggregate_id: String,
    pub sequence: i64,
    pub event_type: String,
    pub event_version: String,
    /// The event's JSON as stored, undecoded: readers decode it into their own types
    /// ([`RecordedEvent::decode`]) and the relay forwards it byte for byte.
    pub payload: Box<RawValue>,
    pub metadata: EventMetadata,
    pub recorded_at: DateTime<Utc>,
}

impl RecordedEvent {
    /// The entity part of the stream id (after the tenant).
    pub fn entity_id(&self) -> Option<Uuid> {
        entity_of(&self.aggregate_id)
    }

    /// The payload as the aggregate's event type (or any type of the same shape).
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_str(self.payload.get())
    }

    /// The JetStream message id: `<aggregate_type>/<aggregate_id>/<sequence>`.
    pub fn msg_id(&self) -> String {
        format!(
            "{}/{}/{}",
            self.aggregate_type, self.aggregate_id, self.sequence
        )
    }
}

/// The stream id of an entity of a tenant.
pub fn stream_id(tenant_id: Uuid, entity_id: Uuid) -> String {
    format!("{tenant_id}:{entity_id}")
}

/// The entity part of a stream id, if it is well formed.
pub fn entity_of(aggregate_id: &str) -> Option<Uuid> {
    let (_, entity) = aggregate_id.split_once(':')?;
    Uuid::parse_str(entity).ok()
}
