use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// What every event carries besides its payload: who, on whose behalf, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct EventMetadata {
    pub tenant_id: Option<Uuid>,
    /// `apikey:<id>`, `user:<id>`, or `system:<component>`.
    pub actor: Option<String>,
    pub correlation_id: Option<Uuid>,
    pub causation_id: Option<Uuid>,
    pub request_id: Option<String>,
}

impl EventMetadata {
    /// The string map cqrs-es stores in the `metadata` column.
    pub fn to_map(&self) -> HashMap<String, String> {
        let mut m = HashMap::new();
        let mut put = |k: &str, v: Option<String>| {
            if let Some(v) = v {
                m.insert(k.to_owned(), v);
            }
        };
        put("tenant_id", self.tenant_id.map(|u| u.to_string()));
        put("actor", self.actor.clone());
        put("correlation_id", self.correlation_id.map(|u| u.to_string()));
        put("causation_id", self.causation_id.map(|u| u.to_string()));
        put("request_id", self.request_id.clone());
        m
    }

    /// Reads the stored metadata column; unknown keys are ignored.
    pub fn from_json(v: &serde_json::Value) -> Self {
        let s = |k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_owned);
        let u = |k: &str| s(k).and_then(|x| Uuid::parse_str(&x).ok());
        Self {
            tenant_id: u("tenant_id"),
            actor: s("actor"),
            correlation_id: u("correlation_id"),
            causation_id: u("causation_id"),
            request_id: s("request_id"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_round_trips_through_the_stored_map() {
        let m = EventMetadata {
            tenant_id: Some(Uuid::now_v7()),
            actor: Some("apikey:1".into()),
            correlation_id: Some(Uuid::now_v7()),
            causation_id: None,
            request_id: Some("r-1".into()),
        };
        let json = serde_json::to_value(m.to_map()).unwrap_or_default();
        assert_eq!(EventMetadata::from_json(&json), m);
    }
}
