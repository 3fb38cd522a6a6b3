use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// What every event carries besides its payload: who, on whose behalf, and why.
///
/// Stored as a map of strings (cqrs-es's metadata); reading is lenient: unknown keys are
/// ignored and a malformed id reads as absent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct EventMetadata {
    #[serde(deserialize_with = "lenient_uuid")]
    pub tenant_id: Option<Uuid>,
    /// `apikey:<id>`, `user:<id>`, or `system:<component>`.
    pub actor: Option<String>,
    #[serde(deserialize_with = "lenient_uuid")]
    pub correlation_id: Option<Uuid>,
    #[serde(deserialize_with = "lenient_uuid")]
    pub causation_id: Option<Uuid>,
    pub request_id: Option<String>,
    /// The client's address, as the HTTP edge saw it.
    pub ip: Option<String>,
    /// The client's `User-Agent`.
    pub user_agent: Option<String>,
}

fn lenient_uuid<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Uuid>, D::Error> {
    let s: Option<String> = Option::deserialize(d).unwrap_or(None);
    Ok(s.and_then(|s| Uuid::parse_str(&s).ok()))
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
        put("ip", self.ip.clone());
        put("user_agent", self.user_agent.clone());
        m
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
            ip: Some("127.0.0.1".into()),
            user_agent: None,
        };
        let json = serde_json::to_string(&m.to_map()).unwrap_or_default();
        let back: EventMetadata = serde_json::from_str(&json).unwrap_or_default();
        assert_eq!(back, m);
        let odd: EventMetadata =
            serde_json::from_str(r#"{"tenant_id":"nope","extra":"x","actor":"a"}"#)
                .unwrap_or_default();
        assert_eq!((odd.tenant_id, odd.actor.as_deref()), (None, Some("a")));
    }
}
