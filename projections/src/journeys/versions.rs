//! `journey_version_defs`: every published version of every journey — its definition frozen,
//! the checked rules of its conditions, when it was published. Versions never change: each
//! is inserted once (`ON CONFLICT DO NOTHING`).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;
use domain::journey::aggregate::{Journey, JourneyEvent};
use event_store::RecordedEvent;
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use uuid::Uuid;

use super::summaries::number;
use crate::{json_rows, Projection, ProjectionError, Target};

pub struct JourneyVersionDefsProjection;

const EVENT: &str = "JourneyPublished";

/// A published version of a journey.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct VersionDefRow {
    pub tenant_id: Uuid,
    pub journey_id: Uuid,
    pub version: i32,
    /// The definition as published.
    #[schema(value_type = Object)]
    pub definition: serde_json::Value,
    /// The checked rule of each conditional step, by step id.
    #[schema(value_type = Object)]
    pub rules: serde_json::Value,
    pub published_at: DateTime<Utc>,
}

fn encode(reason: impl ToString) -> ProjectionError {
    ProjectionError::Row(reason.to_string())
}

#[async_trait]
impl Projection for JourneyVersionDefsProjection {
    fn name(&self) -> &'static str {
        "journey_version_defs"
    }

    fn table(&self) -> &'static str {
        "journey_version_defs"
    }

    /// Journey events hold no sealed values.
    fn needs_personal_data(&self) -> bool {
        false
    }

    fn concerns(&self, e: &RecordedEvent) -> bool {
        e.aggregate_type == Journey::TYPE && e.event_type == EVENT
    }

    fn aggregate_types(&self) -> Option<&'static [&'static str]> {
        Some(&[Journey::TYPE])
    }

    async fn apply(
        &self,
        conn: &mut PgConnection,
        target: &Target,
        events: &[RecordedEvent],
    ) -> Result<(), ProjectionError> {
        let mut rows = Vec::new();
        for e in events.iter().filter(|e| self.concerns(e)) {
            let (
                Some(journey_id),
                JourneyEvent::JourneyPublished {
                    version,
                    definition,
                    rules,
                    at,
                },
            ) = (e.entity_id(), crate::decode(e)?)
            else {
                continue;
            };
            rows.push(VersionDefRow {
                tenant_id: e.tenant_id,
                journey_id,
                version: number(version),
                definition: serde_json::to_value(definition).map_err(encode)?,
                rules: serde_json::to_value(rules).map_err(encode)?,
                published_at: at,
            });
        }
        json_rows::insert_new(conn, &target.table, &rows).await
    }
}
